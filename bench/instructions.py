"""Instructions per request and per task on the order's hot paths, counted by valgrind's callgrind (issue #17).

CPU time on a shared machine moves by ±20 % between runs a minute apart, so a 5 % cut cannot be seen in
it; the instructions a request executes do not depend on what else the machine does. Each path runs in a
process of its own under ``valgrind --tool=callgrind --instr-atstart=no``: Django is set up and the path's
inputs are made with counting off (at a few times native speed), a few warm-up runs go, then counting is
started, N more runs go and the counts are dumped (client requests of callgrind's, through a small C shim
compiled at first use with the machine's gcc: Python cannot make them itself). Per run: the dump's total
over N.

Requests go through ``ipvas.wsgi.application`` (Django's handler) in this process, as granian calls it, with the bench's
production settings (no server, no socket: what is ours). Tasks run as Celery's ``apply`` runs them: the
task and its trace, not the worker's pool or its fetch from the broker; the SMP simulator is a server of
its own (bench/pipeline.py's), so the steps pay for their HTTP client, not for the simulator. The
baseline is /bench/bare/ (the same middleware, no work), counted in the same run; the figure the issue
sets against it is the entitlement check's (≥ 0.8x the bare endpoint's speed: bare/check ≥ 0.8 here).

Without valgrind or gcc, the same runs are timed instead (CPU time of the N runs, noisy).

    .venv/bin/python bench/instructions.py                 every path, 40 runs each
    .venv/bin/python bench/instructions.py --only bare,notification --runs 100
    .venv/bin/python bench/instructions.py --only poll-304 --profile     where its instructions go (cProfile)
    make bench-instructions
    bench/run.py --only instructions      the same as a piece of the benchmark (its own database)
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import os
import pstats
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from io import BytesIO
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common
from bench.common import BENCH_VAR, PYTHON, ROOT, Figure, Stat, fmt, say

API = "/api/epg/v1"
WARM_UP = 5
# What each path is, in the order they are printed: a request (through WSGIHandler) or a task (apply).
PATHS = {
    "bare": "GET /bench/bare/ (the baseline: the same middleware, no work)",
    "entitlement": "GET /entitlements/ (cached): the set-top box's check",
    "products": "GET /products/",
    "poll-304": "GET /orders/{no}/ unchanged (If-None-Match)",
    "poll": "GET /orders/{no}/ (a completed order)",
    "order": "POST /orders/ (and its pre-check's publish on commit)",
    "precheck": "the pre-check task (SMP query over HTTP)",
    "payment": "POST /orders/{no}/payment/ phone bill (and its publish)",
    "provision": "the provisioning task (SMP subscribe and phone-bill charge over HTTP)",
    "notification": "POST /billing/notify/wechatpay/ (RSA signature, AES-GCM, the payment applied)",
    "publish": "a broker publish of an outbox message (send_task to Redis)",
}
# One EPG order paid by phone bill, from POST /orders/ to completed, as the pipeline benchmark makes it.
ORDER_PATH = ("order", "precheck", "payment", "provision")

SHIM_SOURCE = r"""
#include <valgrind/callgrind.h>
void ipvas_count_start(void) { CALLGRIND_START_INSTRUMENTATION; CALLGRIND_ZERO_STATS; }
void ipvas_count_dump(const char *label) { CALLGRIND_DUMP_STATS_AT(label); CALLGRIND_STOP_INSTRUMENTATION; }
"""
SHIM = BENCH_VAR / "callgrind_shim.so"


def counting_available() -> bool:
    """valgrind (installed from Debian's package when missing, as wrk is), its headers and gcc are here."""
    headers = Path("/usr/include/valgrind/callgrind.h")
    return common.have_tool("valgrind") and bool(shutil.which("gcc")) and headers.exists()


def build_shim() -> None:
    if SHIM.exists():
        return
    source = BENCH_VAR / "callgrind_shim.c"
    source.write_text(SHIM_SOURCE)
    subprocess.run(["gcc", "-O1", "-shared", "-fPIC", "-o", str(SHIM), str(source)], check=True)


# --- the child: one path, under callgrind or timed --------------------------------------------------


class Wsgi:
    """Requests through the WSGI application granian serves (ipvas.wsgi: Django's handler, with the entitlement
    check's lean path), in this process, with the EPG client's API key."""

    def __init__(self, api_key: str) -> None:
        from ipvas.wsgi import application

        self.handler = application
        self.auth = f"Api-Key {api_key}"

    def __call__(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        path, _, query = path.partition("?")
        environ = {
            "REQUEST_METHOD": method,
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8765",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
            "HTTP_HOST": "127.0.0.1",
            "HTTP_AUTHORIZATION": self.auth,
            "CONTENT_TYPE": "application/json" if body else "",
            "CONTENT_LENGTH": str(len(body)),
            "wsgi.input": BytesIO(body),
            "wsgi.url_scheme": "http",
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
            "wsgi.version": (1, 0),
        }
        for name, value in (headers or {}).items():
            environ["HTTP_" + name.upper().replace("-", "_")] = value
        answer: dict = {}

        def start_response(status: str, response_headers: list, exc_info: object = None) -> None:
            answer["status"] = int(status.split()[0])
            answer["headers"] = dict(response_headers)

        response = self.handler(environ, start_response)
        try:
            content = b"".join(response)
        finally:
            response.close()
        return answer["status"], answer["headers"], content

    def json(self, method: str, path: str, payload: dict | None = None, expect: int = 200) -> dict:
        status, _, content = self(method, path, json.dumps(payload).encode() if payload is not None else b"")
        if status != expect:
            raise RuntimeError(f"{method} {path}: {status} {content[:300]!r}")
        return json.loads(content) if content else {}


def _task(name: str, expect: str) -> Callable[[int], str]:
    """Run task ``name`` for an order as Celery's apply does; anything but ``expect`` stops the bench (it
    would be counting another path)."""
    from ipvas.celery import app

    app.loader.import_default_modules()
    task = app.tasks[name]

    def run(order_id: int) -> str:
        outcome = task.apply(kwargs={"order_id": order_id}, throw=True).get()
        if outcome != expect:
            raise RuntimeError(f"{name} for order {order_id}: {outcome!r}, not {expect!r}")
        return outcome

    return run


def _ordered(wsgi: Wsgi, count: int, accounts: list[str]) -> list[dict]:
    return [
        wsgi.json("POST", f"{API}/orders/", {"product_code": "VIP-MONTH", "tv_account": account}, expect=201)
        for account in accounts[:count]
    ]


def _order_id(order_no: str) -> int:
    from orders.models import Order

    return Order.objects.values_list("pk", flat=True).get(order_no=order_no)


def _prechecked(wsgi: Wsgi, count: int, accounts: list[str]) -> list[int]:
    precheck = _task("lifecycle.tasks.precheck_order", "passed")
    ids = [_order_id(created["order_no"]) for created in _ordered(wsgi, count, accounts)]
    for order_id in ids:
        precheck(order_id)
    return ids


def prepare(path: str, count: int, api_key: str, accounts: list[str]) -> list[Callable[[], object]]:
    """``count`` runs of ``path``, each a callable, with everything they need made beforehand."""
    from orders.models import Order

    wsgi = Wsgi(api_key)

    def expect(status: int, method: str, url: str, body: bytes = b"", headers: dict | None = None):
        def one() -> None:
            got, _, content = wsgi(method, url, body, headers)
            if got != status:
                raise RuntimeError(f"{method} {url}: {got} {content[:300]!r}")

        return one

    if path == "bare":
        return [expect(200, "GET", "/bench/bare/")] * count
    if path == "entitlement":
        owners = [f"ent{i:07d}" for i in range(20)]
        return [
            expect(200, "GET", f"{API}/entitlements/?tv_account={owners[i % 20]}&product_code=VIP-MONTH")
            for i in range(count)
        ]
    if path == "products":
        return [expect(200, "GET", f"{API}/products/")] * count
    if path in ("poll", "poll-304"):
        order_no = Order.objects.filter(status="completed", channel="epg").values_list("order_no", flat=True)[0]
        _, headers, _ = wsgi("GET", f"{API}/orders/{order_no}/")
        if path == "poll":
            return [expect(200, "GET", f"{API}/orders/{order_no}/")] * count
        return [expect(304, "GET", f"{API}/orders/{order_no}/", headers={"If-None-Match": headers["ETag"]})] * count
    if path == "order":
        body = [json.dumps({"product_code": "VIP-MONTH", "tv_account": a}).encode() for a in accounts[:count]]
        return [expect(201, "POST", f"{API}/orders/", b) for b in body]
    if path == "precheck":
        precheck = _task("lifecycle.tasks.precheck_order", "passed")
        ids = [_order_id(created["order_no"]) for created in _ordered(wsgi, count, accounts)]
        return [lambda order_id=order_id: precheck(order_id) for order_id in ids]
    if path == "payment":
        ids = _prechecked(wsgi, count, accounts)
        numbers = dict(Order.objects.filter(pk__in=ids).values_list("pk", "order_no"))
        body = json.dumps({"method": "phone_bill"}).encode()
        return [expect(200, "POST", f"{API}/orders/{numbers[order_id]}/payment/", body) for order_id in ids]
    if path == "provision":
        provision = _task("lifecycle.tasks.provision_order", "completed")
        ids = _prechecked(wsgi, count, accounts)
        numbers = dict(Order.objects.filter(pk__in=ids).values_list("pk", "order_no"))
        for order_id in ids:
            wsgi.json("POST", f"{API}/orders/{numbers[order_id]}/payment/", {"method": "phone_bill"})
        return [lambda order_id=order_id: provision(order_id) for order_id in ids]
    if path == "notification":
        from bench.notifications import NOTIFY, make_paid_trades, signed

        requests = signed(make_paid_trades(count))
        return [expect(204, "POST", NOTIFY, body, headers) for body, headers in requests]
    if path == "publish":
        from django.utils import timezone

        from ipvas.models import OutboxMessage
        from ipvas.outbox import _publish
        from lifecycle.tasks import order_deadline

        messages = [
            OutboxMessage(task_name=order_deadline.name, kwargs={"order_id": 10**9 + i}, due_at=timezone.now())
            for i in range(count)
        ]
        return [lambda m=message: _publish(m, timezone.now()) for message in messages]
    raise ValueError(f"no path {path!r}")


def child(path: str, runs: int, api_key: str, accounts: list[str]) -> None:
    """Make the inputs, warm up, count ``runs`` runs of ``path``; print the CPU time they took."""
    import ctypes

    import django

    django.setup()
    shim = ctypes.CDLL(str(SHIM)) if SHIM.exists() else None
    calls = prepare(path, WARM_UP + runs, api_key, accounts)
    for call in calls[:WARM_UP]:
        call()
    # Each count starts from the same collector state: else a full collection of the objects the inputs
    # made falls inside the counted runs or not by how many there are (some 58 million instructions).
    gc.collect()
    if shim:
        shim.ipvas_count_start()
    # The process's CPU clock, not the wall's: a wait for PostgreSQL or the SMP is not where instructions go.
    profile = cProfile.Profile(time.process_time) if os.environ.get("IPVAS_BENCH_PROFILE") else None
    started = time.process_time()
    if profile:
        profile.enable()
    for call in calls[WARM_UP:]:
        call()
    if profile:
        profile.disable()
    cpu = time.process_time() - started
    if profile:
        lines = int(os.environ["IPVAS_BENCH_PROFILE"])
        pstats.Stats(profile, stream=sys.stderr).sort_stats(
            os.environ.get("IPVAS_BENCH_PROFILE_SORT", "cumulative")
        ).print_stats(lines)
    if shim:
        shim.ipvas_count_dump(path.encode())
    print(json.dumps({"path": path, "runs": runs, "cpu_seconds": cpu}), flush=True)


# --- the parent: the data, the SMP simulator, one child per path ---------------------------------------


def _accounts_for(path: str, runs: int) -> list[str]:
    """Distinct SMP accounts per path (the pipeline's, free of open orders), so that no order meets another."""
    from bench.data import PIPELINE_ACCOUNTS

    if path not in ORDER_PATH:
        return []
    first = ORDER_PATH.index(path) * (WARM_UP + runs)
    if first + WARM_UP + runs > PIPELINE_ACCOUNTS:
        raise SystemExit(f"--runs {runs}: more orders than the data set's {PIPELINE_ACCOUNTS} SMP accounts")
    return [f"pipe{first + i:06d}" for i in range(WARM_UP + runs)]


def count(path: str, runs: int, api_key: str, env: dict[str, str], counting: bool) -> tuple[float, float]:
    """Run the child for ``path``; returns (instructions per run or 0, CPU µs per run). With
    IPVAS_BENCH_PROFILE set (``--profile``), the child prints cProfile's top lines of its runs."""
    out = BENCH_VAR / "callgrind" / path
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    argv = [str(PYTHON), str(Path(__file__).resolve()), "--child", path, "--runs", str(runs), "--api-key", api_key]
    if counting:
        argv = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}/out.%p", *argv]
    done = subprocess.run(
        argv, cwd=ROOT, env={**env, "IPVAS_BENCH_ACCOUNTS": ",".join(_accounts_for(path, runs))},
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"{path}: exit {done.returncode}\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    cpu_us = 1e6 * json.loads(lines[-1])["cpu_seconds"] / runs
    if env.get("IPVAS_BENCH_PROFILE"):
        print(done.stderr)
    if not counting:
        return 0.0, cpu_us
    dumps = [p for p in out.iterdir() if f"Client Request: {path}\n" in p.read_text(errors="replace")[:4000]]
    if len(dumps) != 1:
        raise RuntimeError(f"{path}: {len(dumps)} dumps of its counts in {out}")
    totals = re.search(r"^(?:totals|summary): (\d+)", dumps[0].read_text(errors="replace"), re.MULTILINE)
    return int(totals.group(1)) / runs, cpu_us


def measure(runs: int, only: list[str], *, profile: bool = False) -> tuple[dict[str, tuple[float, float]], bool]:
    """Each path of ``only`` in a child process: {path: (instructions per run, CPU µs per run)}, and whether
    the instructions were counted (valgrind) or only the time."""
    from bench import data
    from bench.pipeline import SMP_CLIENT_ENV, SMP_PORT, SMP_TOKEN

    counting = counting_available() and not profile
    if counting:
        build_shim()
    elif not profile:
        say("valgrind or gcc missing: the runs are timed instead of counted (CPU time, noisy)")
    ds = data.build(orders=2_000, entitlements=400)
    from orders import selectors

    for i in range(20):
        selectors.entitlement_check(tv_account=f"ent{i:07d}")
    env = common.bench_env(OUTBOX_RELAY_ON_COMMIT="1", **SMP_CLIENT_ENV)
    if profile:
        env["IPVAS_BENCH_PROFILE"] = os.environ.get("IPVAS_BENCH_PROFILE_LINES", "40")
    simulator = common.Server(
        cpus=None, port=SMP_PORT, SMP_API_TOKEN=SMP_TOKEN,
        DATABASE_URL=common.not_measured(common.DATABASE_URL, "bench-simulator"),
    )  # fmt: skip
    say(f"counting {runs} runs of each of {', '.join(only)} ({'callgrind' if counting else 'CPU time'})")
    results: dict[str, tuple[float, float]] = {}
    with simulator, ThreadPoolExecutor(max_workers=1 if profile else common.CPUS) as pool:
        futures = {path: pool.submit(count, path, runs, ds.api_key, env, counting) for path in only}
        for path, future in futures.items():
            results[path] = future.result()
            instructions, cpu_us = results[path]
            say(f"  {path}: {instructions / 1e6:.2f} million instructions, {cpu_us:,.0f} µs CPU per run")
    data.purge_broker()
    return results, counting


def in_own_process(runs: int) -> list[Figure]:
    """bench/run.py's piece: every path, in a process of its own on a database and Redis databases of its own
    (its small data set must not replace the other pieces'), the figures read back from a file."""
    out = BENCH_VAR / "instructions.json"
    out.unlink(missing_ok=True)
    env = dict(os.environ)
    env.update(
        BENCH_DATABASE_URL=common.DATABASE_URL + "_instructions",
        BENCH_REDIS_URL=common.REDIS_CACHE_URL.rsplit("/", 1)[0] + "/7",
        BENCH_BROKER_URL=common.REDIS_BROKER_URL.rsplit("/", 1)[0] + "/8",
        BENCH_PORT=str(common.PORT + 10),
    )
    argv = [str(PYTHON), str(Path(__file__).resolve()), "--runs", str(runs), "--json", str(out)]
    subprocess.run(argv, cwd=ROOT, env=env, check=True)
    found = json.loads(out.read_text())
    return figures({path: tuple(pair) for path, pair in found["results"].items()}, found["counting"])


def figures(results: dict[str, tuple[float, float]], counting: bool) -> list[Figure]:
    unit = "M instr." if counting else "µs CPU"
    value = {path: (i / 1e6 if counting else cpu) for path, (i, cpu) in results.items()}
    bare = Stat([value["bare"]]) if "bare" in value else None
    out = []
    for path, described in PATHS.items():
        if path not in value:
            continue
        f = Figure(
            f"{path}: {described}", Stat([value[path]]), unit, bare, "bare endpoint",
            higher_is_better=False,
            note=f"{fmt(results[path][1])} µs CPU under {'valgrind' if counting else 'no tool'}",
        )  # fmt: skip
        if path == "entitlement" and bare is not None:
            f.target, f.note = "<= 1.25", "the issue's ≥ 0.8x bare's speed is ≤ 1.25x bare's instructions"
        out.append(f)
    if all(p in value for p in ORDER_PATH):
        total = sum(value[p] for p in ORDER_PATH)
        out.append(Figure(f"an order, {' + '.join(ORDER_PATH)}", Stat([total]), unit, bare, "bare endpoint",
                          higher_is_better=False, note="three publishes on commit included"))  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=40, help="runs counted per path (after 5 warm-up runs)")
    parser.add_argument("--only", default=",".join(PATHS), help="comma-separated: " + ", ".join(PATHS))
    parser.add_argument("--profile", action="store_true", help="no counting: cProfile's top lines of each path's runs")
    parser.add_argument("--json", help="also write the figures to this file (bench/run.py reads them)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--api-key", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.runs, args.api_key, os.environ["IPVAS_BENCH_ACCOUNTS"].split(","))
        return
    only = [p.strip() for p in args.only.split(",") if p.strip()]
    unknown = set(only) - set(PATHS)
    if unknown:
        parser.error(f"no such path: {', '.join(sorted(unknown))}")
    common.ensure_services()
    common.ensure_database()
    common.setup_django()
    started = time.monotonic()
    try:
        results, counting = measure(args.runs, only, profile=args.profile)
    finally:
        common.stop_all()
    if args.json:
        Path(args.json).write_text(json.dumps({"counting": counting, "results": results}))
    title = f"Instructions per run, {args.runs} runs each ({time.monotonic() - started:.0f} s)"
    common.print_figures(title, figures(results, counting))


if __name__ == "__main__":
    main()
