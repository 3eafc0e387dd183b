"""6. Renewals: the day 30,000 subscriptions among a million are due, worked through by the beat's sweep.

    .venv/bin/python bench/renewals.py            1,000,000 subscriptions, 30,000 due (`make bench-renewals`)
    .venv/bin/python bench/renewals.py --quick    a tenth: 100,000 subscriptions, 3,000 due (bench/run.py's size)
    .venv/bin/python bench/renewals.py --subscriptions 200000 --due 6000 --repeats 3

A million monthly subscriptions (VIP-MONTH, phone bill) are bulk-created with their origin orders and
entitlements: the due ones had their reminder sent five days ago and their renewal time passed an hour
ago; the others are due on the other days of the month. Each due account exists at the simulated SMP
with enough balance, and its current period too (so that a renewal continues from exactly its end).

Then, in this process, as the beat and a worker would do it (no broker, no web server), in turn until
the sweep finds nothing due:

1. one batch of the sweep (``lifecycle.renewals.subscriptions_sweep``, ``SUBSCRIPTION_SWEEP_BATCH``
   subscriptions): a renewal order for each;
2. the worker's work, until nothing is due: the outbox drained in batches of the same size, each
   message run as its Celery task (``task.apply``): the pre-check at the simulated SMP, the phone-bill
   charge and subscribe (``provisioning``), the completion that moves the subscription's paid-until
   date, and the "renewed" SMS through the simulated gateway.

It prints renewal orders created per second (1), renewals completed per second (2), and the two
together (end to end), each beside the same run over ten times fewer subscriptions and due ones (the
scaling ratio); the process's RSS after every batch (flat: batches 2..k against batch 1); and, over a
separate run of 3 to 10 sweep batches with tracemalloc on (it slows Python down; those subscriptions
are among the million, made due for it), the traced peak of each batch above what was allocated when
it began, and what stays allocated after each (garbage collected before each reading).

It runs on its own PostgreSQL database, ``ipvas_bench_renewals`` (``BENCH_RENEWALS_DATABASE_URL``),
created if missing and **emptied at the start of every data set**, with a file cache and a file broker
under ``var/bench/renewals/``: it touches neither Redis nor the other benchmarks' database.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import sys
import time
import tracemalloc
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import Figure, Stat, fmt, print_figures, rss_mib, say  # noqa: E402

DATABASE_URL = os.environ.get("BENCH_RENEWALS_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/ipvas_bench_renewals")
VAR = ROOT / "var" / "bench" / "renewals"
BULK = 5000
TRACED_BATCHES = 10
# A due subscription waits here until its group's run arms it (each run needs fresh due ones).
PARKED = timedelta(days=400)
MIB = 1024 * 1024


@dataclass
class Size:
    subscriptions: int
    due: int
    repeats: int  # runs over the baseline (ten times fewer); the full size runs once


FULL = Size(subscriptions=1_000_000, due=30_000, repeats=3)
QUICK = Size(subscriptions=100_000, due=3_000, repeats=3)


def environment() -> None:
    """This process's settings: the production-like ones of the bench, on a database of its own."""
    shutil.rmtree(VAR, ignore_errors=True)
    VAR.mkdir(parents=True)
    for name in ("REDIS_URL", "PROMETHEUS_MULTIPROC_DIR"):
        os.environ.pop(name, None)
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "ipvas.settings",
            "IPVAS_VAR_DIR": str(VAR),
            "DATABASE_URL": DATABASE_URL,
            # The file broker: the second delete of an entitlement cache entry is published to it and
            # never consumed; not memory://, whose queue would grow in this process.
            "CELERY_BROKER_URL": "filesystem://",
            "OUTBOX_RELAY_ON_COMMIT": "0",  # the outbox is drained here, as the worker would run it
            "IPVAS_SANDBOX": "1",
            "DEBUG": "0",
            "LOG_LEVEL": "WARNING",
            "LOG_FORMAT": "json",
        }
    )
    import psycopg

    name = DATABASE_URL.rsplit("/", 1)[1]
    with psycopg.connect(DATABASE_URL.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        if not conn.execute("select 1 from pg_database where datname=%s", (name,)).fetchone():
            conn.execute(f'create database "{name}"')
    import django

    django.setup()


# --- the data ----------------------------------------------------------------------------------


@dataclass
class DataSet:
    subscriptions: int
    due: int
    groups: dict[str, tuple[int, int]]  # name -> (first pk, last pk) of the due subscriptions it arms
    seconds: float


def build(*, subscriptions: int, due: int, groups: list[str]) -> DataSet:
    """Empty the database, then bulk-create ``subscriptions`` monthly subscriptions, each with its
    origin order and entitlement; ``due`` of them in each of ``groups`` (parked until armed), the others
    due on the other days of the month (their reminders 1 to 24 days ahead)."""
    import io

    from django.core.management import call_command
    from django.db import connection, transaction
    from django.utils import timezone

    from ipvas.actors import ActorKind
    from orders.constants import Channel, OrderStatus, PaymentMethod
    from orders.models import Entitlement, Order, Product, Subscription
    from sandbox.models import SimSmpAccount, SimSmpSubscription, SmpAccountStatus

    started = time.monotonic()
    renewing = due * len(groups)
    say(f"building {subscriptions:,} subscriptions, {due:,} due in each of {len(groups)} run(s)")
    call_command("migrate", interactive=False, verbosity=0)
    call_command("flush", interactive=False, verbosity=0)
    call_command("seed_demo", stdout=io.StringIO())
    product = Product.objects.get(code="VIP-MONTH")
    now = timezone.now()
    spread = max(1, due)
    bounds: dict[str, list[int]] = {}

    for first in range(0, subscriptions, 10 * BULK):
        last = min(subscriptions, first + 10 * BULK)
        with transaction.atomic():
            subs = []
            for i in range(first, last):
                if i < renewing:
                    # Its renewal was due in the last hour or two; the reminder went out five days before.
                    renewal_at = now - timedelta(hours=2) + timedelta(seconds=3600 * (i % spread) / spread)
                    end = renewal_at + timedelta(hours=24)
                    reminder, sent, due_at = renewal_at - timedelta(days=5), renewal_at - timedelta(days=5), None
                else:
                    end = now + timedelta(days=7, hours=i % (23 * 24))
                    renewal_at = end - timedelta(hours=24)
                    reminder, sent = renewal_at - timedelta(days=5), None
                    due_at = reminder
                subs.append(
                    Subscription(
                        subscription_no=f"RS{i:010d}",
                        tv_account=f"rn{i:07d}",
                        phone=f"136{i:08d}",
                        product=product,
                        payment_method=PaymentMethod.PHONE_BILL,
                        renewal_price_fen=product.price_fen,
                        current_period_end=end,
                        next_reminder_at=reminder,
                        reminder_sent_at=sent,
                        next_renewal_at=renewal_at,
                        consent_channel=Channel.EPG,
                        consent_method=PaymentMethod.PHONE_BILL,
                        consent_at=end - timedelta(days=30),
                        consent_evidence={"order_no": f"RO{i:010d}", "placed_by": "epg_client:bench"},
                        due_at=due_at if due_at is not None else renewal_at + PARKED,
                    )
                )
            subs = Subscription.objects.bulk_create(subs, batch_size=BULK)
            for i, sub in zip(range(first, last), subs, strict=True):
                if i < renewing:
                    name = groups[i // due]
                    bounds.setdefault(name, [sub.pk, sub.pk])[1] = sub.pk
            orders = Order.objects.bulk_create(
                [
                    Order(
                        order_no=f"RO{i:010d}",
                        channel=Channel.EPG,
                        tv_account=sub.tv_account,
                        phone=sub.phone,
                        product=product,
                        amount_fen=product.price_fen,
                        status=OrderStatus.COMPLETED,
                        payment_method=PaymentMethod.PHONE_BILL,
                        status_changed_at=sub.consent_at,
                        origin_kind=ActorKind.EPG_CLIENT,
                        origin_id="bench",
                        auto_renew=True,
                        subscription=sub,
                    )
                    for i, sub in zip(range(first, last), subs, strict=True)
                ],
                batch_size=BULK,
            )
            Entitlement.objects.bulk_create(
                [
                    Entitlement(
                        order=order,
                        tv_account=sub.tv_account,
                        product=product,
                        product_code=product.code,
                        kind=product.kind,
                        starts_at=sub.consent_at,
                        ends_at=sub.current_period_end,
                        smp_subscription_id=f"SUBRN{i:010d}",
                    )
                    for i, sub, order in zip(range(first, last), subs, orders, strict=True)
                ],
                batch_size=BULK,
            )
            # The simulated SMP knows the accounts that renew today and their current periods.
            mine = [(i, sub) for i, sub in zip(range(first, last), subs, strict=True) if i < renewing]
            SimSmpAccount.objects.bulk_create(
                [
                    SimSmpAccount(
                        tv_account=sub.tv_account, phone=sub.phone, status=SmpAccountStatus.ACTIVE, balance_fen=10**9
                    )
                    for _i, sub in mine
                ],
                batch_size=BULK,
            )
            SimSmpSubscription.objects.bulk_create(
                [
                    SimSmpSubscription(
                        order_no=f"RO{i:010d}",
                        idempotency_key=f"RO{i:010d}",
                        subscription_id=f"SUBRN{i:010d}",
                        tv_account=sub.tv_account,
                        product_code=product.smp_product_code,
                        package_code=product.smp_product_code,
                        charge="phone_bill",
                        amount_fen=product.price_fen,
                        starts_at=sub.consent_at,
                        ends_at=sub.current_period_end,
                    )
                    for i, sub in mine
                ],
                batch_size=BULK,
            )
        if last % 200_000 == 0 or last == subscriptions:
            say(f"  {last:,} subscriptions in {time.monotonic() - started:.0f} s")
    with connection.cursor() as cursor:
        # Planner statistics and visibility after a bulk load, as autovacuum would soon give them (bench/data.py).
        cursor.execute("VACUUM ANALYZE")
    seconds = time.monotonic() - started
    say(f"  data set ready in {seconds:.0f} s")
    return DataSet(
        subscriptions=subscriptions,
        due=due,
        groups={name: (lo, hi) for name, (lo, hi) in bounds.items()},
        seconds=seconds,
    )


def arm(ds: DataSet, group: str) -> int:
    """Make one group's subscriptions due: their renewal time passed."""
    from django.db.models import F

    from orders.models import Subscription

    lo, hi = ds.groups[group]
    return Subscription.objects.filter(pk__gte=lo, pk__lte=hi).update(due_at=F("next_renewal_at"))


# --- one run -----------------------------------------------------------------------------------


@dataclass
class Phase:
    seconds: float = 0.0
    batches: list[float] = field(default_factory=list)  # seconds per batch
    items: list[int] = field(default_factory=list)  # subscriptions or outbox messages per batch
    rss: list[float] = field(default_factory=list)  # MiB after each batch
    peaks: list[float] = field(default_factory=list)  # traced peak within each batch, above its start (MiB)
    retained: list[float] = field(default_factory=list)  # traced MiB still allocated after each batch


@dataclass
class Run:
    due: int
    subscriptions: int
    sweep: Phase
    work: Phase
    rounds: list[float]  # the worker's seconds per renewal, after each sweep batch
    completed: int

    @property
    def created_per_s(self) -> float:
        return self.due / self.sweep.seconds

    @property
    def completed_per_s(self) -> float:
        return self.completed / self.work.seconds

    @property
    def end_to_end_per_s(self) -> float:
        return self.completed / (self.sweep.seconds + self.work.seconds)


def _batch(phase: Phase, step: Any, *, trace: bool) -> int:
    if trace:
        # Garbage (reference cycles) left by the batch before is collected first, so that neither
        # what a batch needs nor what stays allocated depends on when the collector last ran.
        gc.collect()
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
    t0 = time.perf_counter()
    found = step()
    if found:
        phase.batches.append(time.perf_counter() - t0)
        phase.items.append(found)
        phase.rss.append(rss_mib())
        if trace:
            peak = tracemalloc.get_traced_memory()[1]
            gc.collect()
            phase.peaks.append((peak - before) / MIB)
            phase.retained.append(tracemalloc.get_traced_memory()[0] / MIB)
    return found


def drain(batch_size: int) -> int:
    """One batch of the worker: the outbox messages due now, each run as its task, in this process."""
    from django.utils import timezone

    from ipvas.celery import app
    from ipvas.models import OutboxMessage

    due = list(
        OutboxMessage.objects.filter(relayed_at__isnull=True, due_at__lte=timezone.now())
        .order_by("due_at", "pk")
        .values_list("pk", "task_name", "kwargs")[:batch_size]
    )
    if not due:
        return 0
    OutboxMessage.objects.filter(pk__in=[pk for pk, _name, _kwargs in due]).update(relayed_at=timezone.now())
    for _pk, name, kwargs in due:
        app.tasks[name].apply(kwargs=kwargs, throw=True)
    return len(due)


def run_group(ds: DataSet, group: str, *, trace: bool = False) -> Run:
    """Arm one group and let the sweep and the worker renew it, batch by batch, until nothing is due."""
    from django.conf import settings

    from ipvas.celery import app
    from lifecycle.renewals import subscriptions_sweep
    from orders.constants import Channel, OrderStatus
    from orders.models import Order

    app.loader.import_default_modules()
    batch = settings.SUBSCRIPTION_SWEEP_BATCH
    lo, hi = ds.groups[group]
    armed = arm(ds, group)
    sweep, work = Phase(), Phase()
    if trace:
        tracemalloc.start()
    # As the beat and a worker: a sweep, then the worker until nothing is due, then the next sweep. (Not
    # every sweep first: a renewal order not pre-checked PRECHECK_DEADLINE_SECONDS after the sweep made
    # it is rejected, smp_unavailable.)
    rounds = []
    while started := _batch(sweep, lambda: subscriptions_sweep(batch_size=batch), trace=trace):
        before = len(work.batches)
        while _batch(work, lambda: drain(batch), trace=trace):
            pass
        rounds.append(sum(work.batches[before:]) / started)
    sweep.seconds, work.seconds = sum(sweep.batches), sum(work.batches)
    if trace:
        tracemalloc.stop()
    renewals = Order.objects.filter(channel=Channel.RENEWAL, subscription_id__gte=lo, subscription_id__lte=hi)
    created = renewals.count()
    completed = renewals.filter(status=OrderStatus.COMPLETED).count()
    if created != armed or completed != armed:
        raise RuntimeError(f"{armed} due: {created} renewal orders created, {completed} completed")
    return Run(due=armed, subscriptions=ds.subscriptions, sweep=sweep, work=work, rounds=rounds, completed=completed)


def check_renewed(ds: DataSet, group: str) -> None:
    """Every renewal of the group paid its period once, and moved the paid-until date by a month."""
    from django.db.models import F

    from billing.models import LedgerEntry
    from orders.constants import Channel
    from orders.models import Entitlement, Subscription

    lo, hi = ds.groups[group]
    subs = Subscription.objects.filter(pk__gte=lo, pk__lte=hi)
    n = subs.count()
    renewed = subs.filter(periods=2, status="active", due_at=F("next_reminder_at")).count()
    paid = LedgerEntry.objects.filter(
        order__channel=Channel.RENEWAL, order__subscription_id__gte=lo, order__subscription_id__lte=hi
    ).count()
    stacked = Entitlement.objects.filter(
        order__channel=Channel.RENEWAL, order__subscription_id__gte=lo, order__subscription_id__lte=hi
    ).count()
    if not n == renewed == paid == stacked:
        raise RuntimeError(f"{n} subscriptions: {renewed} renewed, {paid} ledger entries, {stacked} entitlements")


# --- the figures -------------------------------------------------------------------------------


def _per_item_ms(phase: Phase) -> list[float]:
    """Milliseconds per item in each full batch (the last one is usually short)."""
    full = [1000 * s / n for s, n in zip(phase.batches, phase.items, strict=True) if n == max(phase.items)]
    return full or [1000 * phase.seconds / max(1, sum(phase.items))]


def _flat(name: str, values: list[float], unit: str, first: str, note: str) -> Figure:
    """The last batches against the first: flat is a ratio near 1."""
    return Figure(
        name,
        Stat(values[1:] or values),
        unit,
        Stat(values[:1]),
        first,
        higher_is_better=False,
        target="<= 1.1",
        note=note,
    )


def figures_of(big: Run, small: list[Run], traced: Run) -> list[Figure]:
    small_label = f"{small[0].subscriptions:,} subscriptions, {small[0].due:,} due"
    note = f"{big.subscriptions:,} subscriptions, {big.due:,} due: 1 run; baseline: {len(small)} runs"
    sweeps, works = len(big.sweep.batches), len(big.work.batches)
    messages = sum(big.work.items)
    return [
        Figure(
            "renewals: renewal orders created by the sweep per second",
            Stat([big.created_per_s]),
            "orders/s",
            Stat([r.created_per_s for r in small]),
            small_label,
            note=note,
        ),
        Figure(
            "renewals: renewal orders pre-checked, charged by phone bill and completed per second",
            Stat([big.completed_per_s]),
            "orders/s",
            Stat([r.completed_per_s for r in small]),
            small_label,
            note=note + "; one in-process worker: SMP pre-check, subscribe with the charge, renewed SMS",
        ),
        Figure(
            "renewals: end to end (sweep and worker), renewals completed per second",
            Stat([big.end_to_end_per_s]),
            "renewals/s",
            Stat([r.end_to_end_per_s for r in small]),
            small_label,
            note=f"{big.due:,} renewals in {big.sweep.seconds + big.work.seconds:.0f} s",
        ),
        Figure(
            "renewals: sweep time per due subscription",
            Stat(_per_item_ms(big.sweep)),
            "ms",
            Stat([1000 * r.sweep.seconds / r.due for r in small]),
            small_label,
            higher_is_better=False,
            note=f"min/max: per full batch of {max(big.sweep.items)} ({sweeps} batches)",
        ),
        Figure(
            "renewals: worker time per renewal",
            Stat([1000 * x for x in big.rounds]),
            "ms",
            Stat([1000 * r.work.seconds / r.completed for r in small]),
            small_label,
            higher_is_better=False,
            note=f"{messages:,} outbox messages ({messages / big.due:.1f} per renewal) in {works} batches; "
            "min/max: per sweep batch's renewals",
        ),
        _flat(
            f"renewals: process RSS after sweep batches 2..{sweeps} vs batch 1",
            big.sweep.rss,
            "MiB",
            "after sweep batch 1",
            f"largest {max(big.sweep.rss):.0f} MiB",
        ),
        _flat(
            f"renewals: process RSS after worker batches 2..{works} vs batch 1",
            big.work.rss,
            "MiB",
            "after worker batch 1",
            f"largest {max(big.work.rss):.0f} MiB",
        ),
        _flat(
            f"renewals: traced peak per sweep batch, batches 2..{len(traced.sweep.peaks)} vs batch 1",
            traced.sweep.peaks,
            "MiB",
            "sweep batch 1",
            "tracemalloc, above what was allocated when the batch began; "
            f"largest/batch 1 = {max(traced.sweep.peaks) / traced.sweep.peaks[0]:.2f}",
        ),
        _flat(
            f"renewals: traced peak per worker batch, batches 2..{len(traced.work.peaks)} vs batch 1",
            traced.work.peaks,
            "MiB",
            "worker batch 1",
            "tracemalloc, above what was allocated when the batch began; "
            f"largest/batch 1 = {max(traced.work.peaks) / traced.work.peaks[0]:.2f}",
        ),
        Figure(
            f"renewals: memory still allocated after worker batch {len(traced.work.retained)}",
            Stat(traced.work.retained[-1:]),
            "MiB",
            Stat(traced.work.retained[:1]),
            "after worker batch 1",
            higher_is_better=False,
            note=f"tracemalloc; min/max over the batches {min(traced.work.retained):.2f} / "
            f"{max(traced.work.retained):.2f} MiB",
        ),
    ]


def _say_run(label: str, run: Run) -> None:
    say(
        f"  {label}: sweep {run.sweep.seconds:.1f} s in {len(run.sweep.batches)} batches "
        f"({fmt(run.created_per_s)} orders/s), worker {run.work.seconds:.1f} s in {len(run.work.batches)} "
        f"batches ({fmt(run.completed_per_s)} completed/s); RSS {run.sweep.rss[0]:.0f} -> "
        f"{run.sweep.rss[-1]:.0f} MiB (sweep), {run.work.rss[0]:.0f} -> {run.work.rss[-1]:.0f} MiB (worker)"
    )


def measure(size: Size) -> tuple[list[Figure], dict[str, Any]]:
    from django.conf import settings

    batch = settings.SUBSCRIPTION_SWEEP_BATCH
    say(
        f"6. renewals: {size.subscriptions:,} subscriptions, {size.due:,} due (baseline "
        f"{size.subscriptions // 10:,} and {size.due // 10:,} x {size.repeats}), batches of {batch}"
    )
    runs = [f"run{n}" for n in range(size.repeats)]
    small_ds = build(subscriptions=size.subscriptions // 10, due=size.due // 10, groups=runs)
    small = []
    for n, group in enumerate(runs):
        small.append(run_group(small_ds, group))
        check_renewed(small_ds, group)
        _say_run(f"baseline {n + 1}/{size.repeats}", small[-1])

    # As bench/sweep.py: 3 to 10 batches, as many as the baseline's due subscriptions fill.
    traced_due = max(3, min(TRACED_BATCHES, (size.due // 10) // batch)) * batch
    big_ds = build(subscriptions=size.subscriptions, due=size.due, groups=["big"])
    # The traced run's subscriptions are among the million: re-armed from those due on later days.
    big = run_group(big_ds, "big")
    check_renewed(big_ds, "big")
    _say_run(f"{size.subscriptions:,} subscriptions", big)
    traced_ds = _traced_group(big_ds, traced_due)
    traced = run_group(traced_ds, "traced", trace=True)
    say(
        "  tracemalloc, peak above the start per sweep batch (MiB): "
        + ", ".join(f"{p:.2f}" for p in traced.sweep.peaks)
        + "; per worker batch: "
        + ", ".join(f"{p:.2f}" for p in traced.work.peaks)
    )
    figures = figures_of(big, small, traced)
    raw = {
        "build_seconds": {"baseline": small_ds.seconds, "full": big_ds.seconds},
        "big": asdict(big),
        "baseline": [asdict(r) for r in small],
        "traced": asdict(traced),
    }
    return figures, raw


def _traced_group(ds: DataSet, count: int) -> DataSet:
    """``count`` subscriptions due on a later day, made due now (reminder sent, renewal time passed) and
    known to the simulated SMP, for the traced run."""
    from django.db import transaction
    from django.utils import timezone

    from orders.models import Entitlement, Subscription
    from sandbox.models import SimSmpAccount, SimSmpSubscription, SmpAccountStatus

    now = timezone.now()
    first = ds.groups["big"][1] + 1
    pks = list(Subscription.objects.filter(pk__gte=first).order_by("pk").values_list("pk", flat=True)[:count])
    lo, hi = pks[0], pks[-1]
    with transaction.atomic():
        Subscription.objects.filter(pk__gte=lo, pk__lte=hi).update(
            current_period_end=now + timedelta(hours=23),
            next_renewal_at=now - timedelta(hours=1),
            next_reminder_at=now - timedelta(days=5, hours=1),
            reminder_sent_at=now - timedelta(days=5, hours=1),
            due_at=now + PARKED,
        )
        Entitlement.objects.filter(order__subscription_id__gte=lo, order__subscription_id__lte=hi).update(
            starts_at=now - timedelta(days=29), ends_at=now + timedelta(hours=23)
        )
        rows = list(
            Subscription.objects.filter(pk__gte=lo, pk__lte=hi).values_list("subscription_no", "tv_account", "phone")
        )
        SimSmpAccount.objects.bulk_create(
            [
                SimSmpAccount(tv_account=tv, phone=phone, status=SmpAccountStatus.ACTIVE, balance_fen=10**9)
                for _no, tv, phone in rows
            ],
            batch_size=BULK,
        )
        SimSmpSubscription.objects.bulk_create(
            [
                SimSmpSubscription(
                    order_no="RO" + no[2:],
                    idempotency_key="RO" + no[2:],
                    subscription_id="SUBRN" + no[2:],
                    tv_account=tv,
                    product_code="SMP-VIP-MONTH",
                    package_code="SMP-VIP-MONTH",
                    charge="phone_bill",
                    amount_fen=2500,
                    starts_at=now - timedelta(days=29),
                    ends_at=now + timedelta(hours=23),
                )
                for no, tv, _phone in rows
            ],
            batch_size=BULK,
        )
    return DataSet(subscriptions=ds.subscriptions, due=len(pks), groups={**ds.groups, "traced": (lo, hi)}, seconds=0.0)


def machine() -> dict[str, str]:
    from bench import common

    return common.machine(database_url=DATABASE_URL)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a tenth: 100,000 subscriptions, 3,000 due")
    parser.add_argument("--subscriptions", type=int, help="subscriptions in all (default 1,000,000)")
    parser.add_argument("--due", type=int, help="of which due now (default 30,000)")
    parser.add_argument("--repeats", type=int, help="runs over the baseline (default 3)")
    parser.add_argument("--json", type=Path, help="also write the figures here (bench/run.py reads them)")
    args = parser.parse_args()
    size = QUICK if args.quick else FULL
    size = Size(
        subscriptions=args.subscriptions or size.subscriptions,
        due=args.due or size.due,
        repeats=args.repeats or size.repeats,
    )
    if size.due // 10 < 1 or size.due * (size.repeats + 1) > size.subscriptions:
        parser.error("--due must be at least 10, and all runs' due subscriptions fit in --subscriptions")
    environment()
    box = machine()
    say(f"{box['date']} · {box['cpus']} x {box['cpu']} · {box['ram']} RAM · PostgreSQL {box['postgresql']}")
    started = time.monotonic()
    figures, raw = measure(size)
    print_figures("6. Renewals", figures)
    minutes = (time.monotonic() - started) / 60
    print(
        f"{box['date']}; {box['cpus']} x {box['cpu']}, {box['ram']} RAM; Python {box['python']}, PostgreSQL "
        f"{box['postgresql']}; {size.subscriptions:,} subscriptions, {size.due:,} due; {minutes:.0f} min; "
        f"load average {os.getloadavg()[0]:.1f}.",
        flush=True,
    )
    if args.json:
        args.json.write_text(
            json.dumps({"figures": [_figure_json(f) for f in figures], "machine": box, "raw": raw}, default=str)
        )
    return 0


def _figure_json(f: Figure) -> dict[str, Any]:
    return {
        "name": f.name,
        "value": f.value.values,
        "unit": f.unit,
        "baseline": f.baseline.values if f.baseline is not None else None,
        "baseline_name": f.baseline_name,
        "target": f.target,
        "higher_is_better": f.higher_is_better,
        "note": f.note,
    }


def figures_from_json(data: dict[str, Any]) -> list[Figure]:
    return [
        Figure(
            name=f["name"],
            value=Stat(f["value"]),
            unit=f["unit"],
            baseline=Stat(f["baseline"]) if f["baseline"] is not None else None,
            baseline_name=f["baseline_name"],
            target=f["target"],
            higher_is_better=f["higher_is_better"],
            note=f["note"],
        )
        for f in data["figures"]
    ]


def run(*, subscriptions: int, due: int, repeats: int) -> list[Figure]:
    """bench/run.py's piece: this benchmark in a process of its own (its own database and settings)."""
    import subprocess
    import tempfile

    from bench.common import PYTHON

    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as out:
        path = Path(out.name)
    argv = [str(PYTHON), str(Path(__file__).resolve()), "--subscriptions", str(subscriptions), "--due", str(due),
            "--repeats", str(repeats), "--json", str(path)]  # fmt: skip
    try:
        done = subprocess.run(argv, cwd=ROOT, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"bench/renewals.py exited with {done.returncode}")
        return figures_from_json(json.loads(path.read_text()))
    finally:
        path.unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(main())
