"""Run the benchmarks and print every figure beside its baseline (bench/README.md).

    .venv/bin/python bench/run.py              the default run (~15 min): 100,000 orders, 10,000 entitlements
    .venv/bin/python bench/run.py --quick      smaller data and shorter runs (~5 min)
    .venv/bin/python bench/run.py --scale      every figure again at 10x the data, and how its cost grows
    .venv/bin/python bench/run.py --only entitlements,sweep
    .venv/bin/python bench/run.py --only renewals   the renewals piece alone: its own database, nothing else touched

Benchmarks print figures; they are not timed tests.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common
from bench.common import Figure, fmt, markdown_table, say

LOADS: list[tuple[str, float, float]] = []
PIECES = ("entitlements", "servers", "sweep", "notifications", "pipeline", "renewals", "instructions")
# The pieces that run in this process, over the data set of bench/data.py; renewals and instructions run in
# processes of their own, on databases of their own (bench/renewals.py, bench/instructions.py).
SHARED_DATA = ("entitlements", "servers", "sweep", "notifications", "pipeline")


@dataclass(frozen=True)
class Size:
    orders: int
    entitlements: int
    sweep_orders: int
    sweep_baseline: int
    seconds: float
    repeats: int
    connections: int
    pipeline_orders: int
    notifications_seconds: float
    # bench/renewals.py at its --quick size in every run; the full million: `make bench-renewals`.
    renewal_subscriptions: int = 100_000
    renewal_due: int = 3_000
    # bench/instructions.py: runs counted per path.
    instruction_runs: int = 40


DEFAULT = Size(
    orders=100_000,
    entitlements=10_000,
    sweep_orders=100_000,
    sweep_baseline=10_000,
    seconds=8,
    repeats=3,
    connections=32,
    pipeline_orders=150,
    notifications_seconds=8,
)
QUICK = Size(
    orders=10_000,
    entitlements=1_000,
    sweep_orders=10_000,
    sweep_baseline=1_000,
    seconds=3,
    repeats=3,
    connections=32,
    pipeline_orders=50,
    notifications_seconds=3,
    instruction_runs=20,
)


def run_pieces(size: Size, pieces: list[str], label: str) -> list[Figure]:
    from bench import data

    ds = None
    if any(p in SHARED_DATA for p in pieces):
        ds = data.build(orders=size.orders, entitlements=size.entitlements)
    figures: list[Figure] = []
    for piece in pieces:
        started = time.monotonic()
        cpu_before = common.cpu_times()
        try:
            if piece in SHARED_DATA:
                data.quiesce()
                data.purge_broker()
            figures += run_piece(piece, size, ds)
        except Exception:
            say(f"{piece} failed:")
            traceback.print_exc()
        finally:
            common.stop_all()
        load = os.getloadavg()[0]
        steal = common.steal_share(cpu_before, common.cpu_times())
        LOADS.append((f"{piece} ({label})", load, steal))
        say(
            f"{piece} took {time.monotonic() - started:.0f} s ({label}); load average {load:.1f}, "
            f"{100 * steal:.0f}% of the CPU time stolen by the hypervisor"
        )
        if load > common.CPUS + 0.5 or steal > 0.1:
            say("  warning: the machine was busy with other work: these figures are noisy")
    return figures


def run_piece(piece: str, size: Size, ds: object) -> list[Figure]:
    if piece == "entitlements":
        from bench import entitlements

        return entitlements.run(ds, entitlements.Settings(size.seconds, size.repeats, size.connections))
    if piece == "servers":
        from bench import servers

        return servers.run(ds, servers.Settings(size.seconds, size.repeats, size.connections))
    if piece == "sweep":
        from bench import sweep

        return sweep.run(orders=size.sweep_orders, baseline_orders=size.sweep_baseline, repeats=size.repeats)
    if piece == "notifications":
        from bench import notifications

        return notifications.run(notifications.Settings(size.notifications_seconds, size.repeats, connections=16))
    if piece == "pipeline":
        from bench import pipeline

        return pipeline.run(ds, pipeline.Settings(orders=size.pipeline_orders, repeats=size.repeats))
    if piece == "renewals":
        from bench import renewals

        return renewals.run(subscriptions=size.renewal_subscriptions, due=size.renewal_due, repeats=size.repeats)
    if piece == "instructions":
        from bench import instructions

        return instructions.in_own_process(size.instruction_runs)
    raise ValueError(piece)


def summary(figures: list[Figure]) -> str:
    rows = []
    for f in figures:
        ratio = "" if f.ratio is None else f"{f.ratio:.2f}"
        target = ""
        if f.target:
            target = f"{f.target}: {'yes' if f.reached else '**no**'}"
        baseline = f"{fmt(f.baseline.median)} ({f.baseline_name})" if f.baseline is not None else "-"
        rows.append([f.name, f"{fmt(f.value.median)} {f.unit}", common.spread(f.value), baseline, ratio, target])
    header = ["figure", "median", "min / median / max", "baseline (median)", "ratio", "target met"]
    return markdown_table(header, rows)


def scale_summary(base: list[Figure], big: list[Figure], factor: int) -> str:
    rows = []
    by_name = {f.name: f for f in big}
    for f in base:
        g = by_name.get(f.name)
        if g is None:
            continue
        growth = g.value.median / f.value.median if f.value.median else float("nan")
        cost = 1 / growth if f.higher_is_better else growth
        rows.append([f.name, f"{fmt(f.value.median)} {f.unit}", f"{fmt(g.value.median)} {g.unit}", f"{cost:.2f}"])
    header = ["figure", "1x data (median)", f"{factor}x data (median)", f"cost at {factor}x / cost at 1x"]
    return markdown_table(header, rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller data, shorter runs")
    parser.add_argument("--scale", action="store_true", help="also at 10x the data, with the growth of each cost")
    parser.add_argument("--only", default=",".join(PIECES), help=f"comma-separated subset of {','.join(PIECES)}")
    args = parser.parse_args()
    pieces = [p.strip() for p in args.only.split(",") if p.strip()]
    for piece in pieces:
        if piece not in PIECES:
            parser.error(f"unknown piece {piece!r}; choose from {', '.join(PIECES)}")
    size = QUICK if args.quick else DEFAULT
    # A TERM stops the servers and workers started here, as Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    common.ensure_services()
    shared = any(p in SHARED_DATA for p in pieces)
    if shared:
        common.ensure_database()
        common.setup_django()
        box, tool = common.machine(), common.loadgen_tool()
    else:
        # renewals or instructions alone: their own processes and databases; the bench's are left alone.
        from bench import renewals

        box, tool = common.machine(database_url=renewals.DATABASE_URL), "none"
    started = time.monotonic()
    say(f"{box['date']} · {box['cpus']} x {box['cpu']} · {box['ram']} RAM · load generator: {tool}")
    try:
        figures = run_pieces(size, pieces, "1x")
        big: list[Figure] = []
        if args.scale:
            bigger = Size(
                **{
                    **size.__dict__,
                    "orders": size.orders * 10,
                    "entitlements": size.entitlements * 10,
                }
            )
            say(f"--scale: again at 10x the data ({bigger.orders:,} orders, {bigger.entitlements:,} entitlements)")
            # renewals measures its own 10x (against ten times fewer subscriptions) in every run.
            big = run_pieces(bigger, [p for p in pieces if p not in ("renewals", "instructions")], "10x")
    finally:
        common.stop_all()

    minutes = (time.monotonic() - started) / 60
    print()
    print(f"## Summary ({'quick' if args.quick else 'default'} run, {minutes:.0f} min)")
    print()
    data_sets = []
    if shared:
        data_sets.append(f"{size.orders:,} orders and {size.entitlements:,} entitlements")
    if "renewals" in pieces:
        data_sets.append(f"{size.renewal_subscriptions:,} subscriptions, {size.renewal_due:,} due (renewals)")
    print(
        f"{box['date']}; {box['cpus']} x {box['cpu']}, {box['ram']} RAM; Python {box['python']}, "
        f"PostgreSQL {box['postgresql']}; {'; '.join(data_sets)}; "
        f"load generator {tool} on core {common.LOADGEN_CPUS}, server on core {common.SERVER_CPUS}."
    )
    print()
    print(summary(figures))
    print()
    print(
        "Load average (1 min) after each piece, and the share of CPU time the hypervisor gave to other "
        "machines meanwhile (steal): "
        + ", ".join(f"{name} {load:.1f} / {100 * steal:.0f}%" for name, load, steal in LOADS)
        + f". On {common.CPUS} CPUs a load above {common.CPUS} or any steal means other work shared the "
        "machine: throughput figures are noisy, ratios and CPU per request less so."
    )
    if big:
        print()
        print(f"### At 10x the data ({size.orders * 10:,} orders, {size.entitlements * 10:,} entitlements)")
        print()
        print(summary(big))
        print()
        print(scale_summary(figures, big, 10))
    print(flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
