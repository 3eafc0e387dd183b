"""The data the benchmarks run over, bulk-created: finished orders and live entitlements, at 1x or 10x.

Call ``setup_django()`` (bench/common.py) first.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from bench.common import flush_redis, say

BATCH = 5000
# Accounts the entitlement benchmark asks about, at every scale: a fifth of them own nothing.
SAMPLE_ACCOUNTS = 5000
PIPELINE_ACCOUNTS = 3000
PIPELINE_BALANCE_FEN = 10**9


@dataclass
class Dataset:
    orders: int
    entitlements: int
    api_key: str
    client_id: str
    sample_accounts: list[str]
    seconds: float


def _bulk(model: Any, rows: list[Any]) -> None:
    model.objects.bulk_create(rows, batch_size=BATCH)
    rows.clear()


def build(*, orders: int, entitlements: int) -> Dataset:
    """Empty the bench database and Redis, then load the demo data and ``orders`` finished orders,
    ``entitlements`` of them completed with a live entitlement (two per TV account: the current
    period and the next, stacked)."""
    from django.core.management import call_command
    from django.db import transaction
    from django.utils import timezone

    from billing.models import Payment
    from billing.models.payments import PaymentStatus, Provider
    from epg_api.models import EpgClient
    from ipvas.actors import ActorKind
    from orders.constants import Channel, FailureCode, OrderStatus, PaymentMethod
    from orders.models import Entitlement, Order, Product
    from sandbox.models import SimSmpAccount, SmpAccountStatus

    started = time.monotonic()
    say(f"building the data set: {orders:,} orders, {entitlements:,} entitlements")
    call_command("migrate", interactive=False, verbosity=0)
    call_command("flush", interactive=False, verbosity=0)
    flush_redis()
    call_command("seed_demo", stdout=io.StringIO())
    _client, api_key = EpgClient.objects.create_key(name="bench EPG")
    client_id = _client.pk
    month = Product.objects.get(code="VIP-MONTH")
    now = timezone.now()

    with transaction.atomic():
        _bulk(
            SimSmpAccount,
            [
                SimSmpAccount(
                    tv_account=f"pipe{i:06d}",
                    phone=f"139{i:08d}",
                    status=SmpAccountStatus.ACTIVE,
                    balance_fen=PIPELINE_BALANCE_FEN,
                )
                for i in range(PIPELINE_ACCOUNTS)
            ],
        )

    entitled_accounts = entitlements // 2
    pending_orders: list[Order] = []
    done = 0
    while done < orders:
        with transaction.atomic():
            stop = min(orders, done + 10 * BATCH)
            for i in range(done, stop):
                completed = i < entitlements
                if completed:
                    status, code, tv_account = OrderStatus.COMPLETED, "", f"ent{i // 2:07d}"
                else:
                    status = (OrderStatus.EXPIRED, OrderStatus.REJECTED, OrderStatus.CANCELLED)[i % 3]
                    code = (FailureCode.PAYMENT_TIMEOUT, FailureCode.ACCOUNT_NOT_FOUND, FailureCode.CANCELLED)[i % 3]
                    tv_account = f"bg{i % 50000:07d}"
                pending_orders.append(
                    Order(
                        order_no=f"BG{i:012d}",
                        channel=Channel.EPG,
                        tv_account=tv_account,
                        phone=f"137{i % 10**8:08d}",
                        product=month,
                        amount_fen=month.price_fen,
                        status=status,
                        payment_method=PaymentMethod.PHONE_BILL if completed else "",
                        failure_code=code,
                        status_changed_at=now,
                        origin_kind=ActorKind.EPG_CLIENT,
                        origin_id=client_id,
                    )
                )
            _bulk(Order, pending_orders)
            done = stop
    say(f"  {orders:,} orders in {time.monotonic() - started:.0f} s")

    # The completed orders get their payment and their entitlement.
    completed_ids = list(
        Order.objects.filter(status=OrderStatus.COMPLETED, order_no__startswith="BG")
        .order_by("pk")
        .values_list("pk", "order_no", "tv_account")
    )
    for offset in range(0, len(completed_ids), 10 * BATCH):
        chunk = completed_ids[offset : offset + 10 * BATCH]
        with transaction.atomic():
            payments = [
                Payment(
                    order_id=pk,
                    method=PaymentMethod.PHONE_BILL,
                    provider=Provider.SMP,
                    out_trade_no=order_no,
                    amount_fen=month.price_fen,
                    status=PaymentStatus.PAID,
                    paid_at=now,
                )
                for pk, order_no, _tv in chunk
            ]
            _bulk(Payment, payments)
            rows = []
            for n, (pk, _order_no, tv_account) in enumerate(chunk, start=offset):
                # The current period, then the next one stacked after it.
                starts = now - timedelta(days=10) if n % 2 == 0 else now + timedelta(days=20)
                rows.append(
                    Entitlement(
                        order_id=pk,
                        tv_account=tv_account,
                        product=month,
                        product_code=month.code,
                        kind=month.kind,
                        starts_at=starts,
                        ends_at=starts + timedelta(days=30),
                        smp_subscription_id=f"SUBBG{n:010d}",
                    )
                )
            _bulk(Entitlement, rows)
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    owners = [f"ent{i:07d}" for i in range(min(entitled_accounts, SAMPLE_ACCOUNTS * 4 // 5))]
    strangers = [f"nobody{i:06d}" for i in range(max(1, len(owners) // 4))]
    # Every fifth question is about an account that owns nothing.
    sample = [*owners]
    for n, stranger in enumerate(strangers):
        sample.insert(5 * n + 4, stranger)
    seconds = time.monotonic() - started
    say(f"  data set ready in {seconds:.0f} s")
    return Dataset(
        orders=orders,
        entitlements=entitlements,
        api_key=api_key,
        client_id=client_id,
        sample_accounts=sample,
        seconds=seconds,
    )


def analyze(*models: Any) -> None:
    """Fresh planner statistics after a bulk load, as autovacuum would soon give them.

    Without them PostgreSQL may plan ``UPDATE ... WHERE id = %s AND status = %s``
    (django-fsm's concurrent-transition guard) on the status index, believing
    one row has the status that 100,000 bulk-created rows have: every update
    then scans them all. (This machine's PostgreSQL runs with autovacuum off.)
    """
    from django.db import connection

    with connection.cursor() as cursor:
        for model in models:
            cursor.execute(f'ANALYZE "{model._meta.db_table}"')


def quiesce() -> int:
    """Leave no order due: what one benchmark left behind must not become the next one's work."""
    from orders.models import Order

    return Order.objects.filter(deadline_at__isnull=False).update(deadline_at=None)


def purge_broker() -> None:
    from ipvas.celery import app

    app.control.purge()
