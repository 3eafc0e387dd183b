"""4. The deadline sweep: the time to expire N overdue orders, in bounded batches with flat memory.

N ``awaiting_payment`` orders whose deadline passed an hour ago are
bulk-created; ``lifecycle.due.deadlines_sweep`` runs batch after batch (as
beat would call it) until it finds none. Baseline: the same with a tenth of
the orders (time per order). Memory: tracemalloc's peak within each batch and
what stays allocated after it, batch k against batch 1, over a separate run
(tracemalloc slows Python down, so the timed run goes without it; it records
the process's RSS per batch instead).
"""

from __future__ import annotations

import time
import tracemalloc
from dataclasses import dataclass, field
from datetime import timedelta

from bench.common import Figure, Stat, fmt, print_figures, rss_mib, say
from bench.data import BATCH, analyze, quiesce

MIB = 1024 * 1024


@dataclass
class SweepRun:
    orders: int
    seconds: float
    batches: list[float] = field(default_factory=list)  # seconds per batch
    rss: list[float] = field(default_factory=list)  # MiB after each batch
    peaks: list[float] = field(default_factory=list)  # traced peak MiB within each batch
    retained: list[float] = field(default_factory=list)  # traced MiB still allocated after each batch

    @property
    def ms_per_order(self) -> float:
        return 1000 * self.seconds / self.orders


_RUN = 0


def make_overdue(count: int) -> str:
    """``count`` orders that waited for a payment method an hour too long; returns their number prefix."""
    from django.db import transaction
    from django.utils import timezone

    from ipvas.actors import ActorKind
    from orders.constants import Channel, OrderStatus
    from orders.models import Order, Product

    global _RUN
    _RUN += 1
    prefix = f"SW{_RUN:03d}{int(time.time()) % 100000:05d}"
    product = Product.objects.get(code="VIP-MONTH")
    now = timezone.now()
    overdue = now - timedelta(hours=1)
    for start in range(0, count, 10 * BATCH):
        with transaction.atomic():
            Order.objects.bulk_create(
                [
                    Order(
                        order_no=f"{prefix}{i:09d}",
                        channel=Channel.EPG,
                        tv_account=f"sweep{i % 20000:06d}",
                        phone="13900000000",
                        product=product,
                        amount_fen=product.price_fen,
                        status=OrderStatus.AWAITING_PAYMENT,
                        deadline_at=overdue + timedelta(microseconds=i),
                        status_changed_at=overdue,
                        origin_kind=ActorKind.EPG_CLIENT,
                        origin_id="bench",
                    )
                    for i in range(start, min(count, start + 10 * BATCH))
                ],
                batch_size=BATCH,
            )
    analyze(Order)
    return prefix


def sweep_all(count: int, *, trace: bool = False, max_batches: int | None = None) -> SweepRun:
    """Create ``count`` overdue orders and sweep until none is left (or ``max_batches``)."""
    from django.conf import settings

    from lifecycle.due import deadlines_sweep
    from orders.constants import OrderStatus
    from orders.models import Order

    quiesce()
    prefix = make_overdue(count)
    batch_size = settings.DEADLINE_SWEEP_BATCH
    run = SweepRun(orders=count, seconds=0)
    if trace:
        tracemalloc.start()
    started = time.perf_counter()
    while True:
        if trace:
            tracemalloc.reset_peak()
        t0 = time.perf_counter()
        found = deadlines_sweep(batch_size=batch_size)
        if not found:
            break
        run.batches.append(time.perf_counter() - t0)
        run.rss.append(rss_mib())
        if trace:
            current, peak = tracemalloc.get_traced_memory()
            run.peaks.append(peak / MIB)
            run.retained.append(current / MIB)
        if max_batches and len(run.batches) >= max_batches:
            break
    run.seconds = time.perf_counter() - started
    if trace:
        tracemalloc.stop()
    if not max_batches:
        expired = Order.objects.filter(order_no__startswith=prefix, status=OrderStatus.EXPIRED).count()
        if expired != count:
            raise RuntimeError(f"the sweep expired {expired} of {count} orders")
    return run


def run(*, orders: int, baseline_orders: int, repeats: int) -> list[Figure]:
    from django.conf import settings

    batch = settings.DEADLINE_SWEEP_BATCH
    say(f"4. deadline sweep: {orders:,} overdue orders (baseline {baseline_orders:,} x {repeats}), batches of {batch}")
    small = []
    for i in range(repeats):
        small.append(sweep_all(baseline_orders))
        say(f"  {baseline_orders:,} orders {i + 1}/{repeats}: {small[-1].seconds:.1f} s")
    big = sweep_all(orders)
    per_batch = Stat([1000 * b / batch for b in big.batches[:-1]] or [big.ms_per_order])
    say(
        f"  {orders:,} orders: {big.seconds:.1f} s in {len(big.batches)} batches "
        f"({fmt(orders / big.seconds)} orders/s); RSS {big.rss[0]:.0f} MiB after batch 1, "
        f"{big.rss[-1]:.0f} MiB after batch {len(big.rss)}"
    )
    traced_batches = max(3, min(10, baseline_orders // batch))
    traced = sweep_all(traced_batches * batch, trace=True)
    say(
        "  tracemalloc, peak per batch (MiB): "
        + ", ".join(f"{p:.2f}" for p in traced.peaks[:3])
        + " ... "
        + ", ".join(f"{p:.2f}" for p in traced.peaks[-3:])
    )

    small_ms = Stat([r.ms_per_order for r in small])
    linear = Stat([r.seconds * orders / baseline_orders for r in small])
    note = f"1 run of {len(big.batches)} batches of {batch}; min/max: per batch"
    figures = [
        Figure(
            f"deadline sweep: time to expire {orders:,} overdue orders",
            Stat([big.seconds]),
            "s",
            linear,
            f"{baseline_orders:,} orders, scaled linearly",
            higher_is_better=False,
            note="1 run; baseline: 3 runs",
        ),
        Figure(
            "deadline sweep: time per order",
            per_batch,
            "ms",
            small_ms,
            f"{baseline_orders:,} orders",
            higher_is_better=False,
            note=note,
        ),
        Figure(
            "deadline sweep: orders expired per second",
            Stat([orders / big.seconds]),
            "orders/s",
            Stat([r.orders / r.seconds for r in small]),
            f"{baseline_orders:,} orders",
            note="issue #17's target: >= 5,000 orders/s (set-based)",
        ),
        Figure(
            f"deadline sweep: traced peak memory, batch {len(traced.peaks)} vs batch 1",
            Stat(traced.peaks[1:]),
            "MiB",
            Stat(traced.peaks[:1]),
            "batch 1",
            higher_is_better=False,
            target="<= 1.1",
            note=f"tracemalloc; min/max over batches 2..k; largest/batch 1 = {max(traced.peaks) / traced.peaks[0]:.2f}",
        ),
        Figure(
            f"deadline sweep: memory still allocated after batch {len(traced.retained)}",
            Stat(traced.retained[-1:]),
            "MiB",
            Stat(traced.retained[:1]),
            "after batch 1",
            higher_is_better=False,
            note=f"tracemalloc; {1024 * (traced.retained[-1] - traced.retained[0]):+.0f} KiB over "
            f"{len(traced.retained) - 1} batches",
        ),
        Figure(
            f"deadline sweep: process RSS after batch {len(big.rss)}",
            Stat([big.rss[-1]]),
            "MiB",
            Stat([big.rss[0]]),
            "after batch 1",
            higher_is_better=False,
            target="<= 1.1",
            note=f"the {orders:,}-order run",
        ),
    ]
    print_figures("4. Deadline sweep", figures)
    return figures
