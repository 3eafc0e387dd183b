"""3. Payment notifications: WeChat Pay notifications verified, recorded and acknowledged per second.

Orders waiting for a WeChat Pay QR payment are bulk-created with their
pending payments and the simulated provider's paid trades; the sandbox signs
one notification for each (sandbox.payments.wechatpay_notification: RSA
signature, AES-GCM resource) and each is POSTed once to
/billing/notify/wechatpay/ by bench/loadgen.py from the other core (wrk cannot
send each request exactly once). Every answer must be 204 and every order
must have moved to provisioning. Baseline: /bench/bare/ with the same load
generator at the same concurrency. Verification alone (verify_event, signature,
timestamp, nonce, decryption) is timed in-process.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta

from bench.common import (
    PRODUCTION_SERVER,
    Figure,
    Load,
    Server,
    Stat,
    http_request,
    print_figures,
    run_load,
    say,
    write_requests,
)
from bench.data import BATCH, analyze

NOTIFY = "/billing/notify/wechatpay/"
_RUN = 0


@dataclass
class Settings:
    seconds: float
    repeats: int
    connections: int = 16


def make_paid_trades(count: int) -> list:
    """``count`` orders in payment_pending on WeChat Pay, each with its pending payment and a paid simulated trade."""
    from django.db import transaction
    from django.utils import timezone

    from billing.models import Payment
    from billing.models.payments import PaymentStatus, Provider
    from ipvas.actors import ActorKind
    from orders.constants import Channel, OrderStatus, PaymentMethod
    from orders.models import Order, Product
    from sandbox.models import SimTrade, SimTradeStatus

    global _RUN
    _RUN += 1
    prefix = f"NT{_RUN:03d}{int(time.time()) % 100000:05d}"
    product = Product.objects.get(code="VIP-MONTH")
    now = timezone.now()
    with transaction.atomic():
        orders = Order.objects.bulk_create(
            [
                Order(
                    order_no=f"{prefix}{i:08d}",
                    channel=Channel.EPG,
                    tv_account=f"notify{i % 20000:06d}",
                    phone="13900000000",
                    product=product,
                    amount_fen=product.price_fen,
                    status=OrderStatus.PAYMENT_PENDING,
                    payment_method=PaymentMethod.WECHAT_QR,
                    deadline_at=None,  # the benchmark must not race the payment window
                    status_changed_at=now,
                    origin_kind=ActorKind.EPG_CLIENT,
                    origin_id="bench",
                )
                for i in range(count)
            ],
            batch_size=BATCH,
        )
        Payment.objects.bulk_create(
            [
                Payment(
                    order=order,
                    method=PaymentMethod.WECHAT_QR,
                    provider=Provider.WECHATPAY,
                    out_trade_no=order.order_no,
                    amount_fen=order.amount_fen,
                    status=PaymentStatus.PENDING,
                    qr_code_url="weixin://wxpay/bizpayurl?pr=bench",
                    expires_at=now + timedelta(minutes=30),
                )
                for order in orders
            ],
            batch_size=BATCH,
        )
        trades = SimTrade.objects.bulk_create(
            [
                SimTrade(
                    provider="wechatpay",
                    out_trade_no=order.order_no,
                    transaction_id=f"4200{prefix}{i:010d}",
                    amount_fen=order.amount_fen,
                    description=product.name,
                    code_url="weixin://wxpay/bizpayurl?pr=bench",
                    status=SimTradeStatus.PAID,
                    expires_at=now + timedelta(minutes=30),
                    paid_at=now,
                )
                for i, order in enumerate(orders)
            ],
            batch_size=BATCH,
        )
    analyze(Order, Payment, SimTrade)
    return trades


def signed(trades: list) -> list[tuple[bytes, dict[str, str]]]:
    from sandbox.payments import wechatpay_notification

    return [wechatpay_notification(trade) for trade in trades]


def requests_file(notifications: list[tuple[bytes, dict[str, str]]], name: str):
    return write_requests(
        (
            http_request("POST", NOTIFY, {**headers, "Content-Type": "application/json"}, body)
            for body, headers in notifications
        ),
        name,
    )


def post_all(count: int, s: Settings, name: str) -> tuple[Load, int]:
    """Sign ``count`` fresh notifications and POST each once; returns the load and how many orders moved."""
    from orders.constants import OrderStatus
    from orders.models import Order

    trades = make_paid_trades(count)
    path = requests_file(signed(trades), name)
    load = run_load(path, seconds=10 * s.seconds + 60, connections=s.connections, once=True)
    moved = Order.objects.filter(order_no__in=[t.out_trade_no for t in trades], status=OrderStatus.PROVISIONING).count()
    return load, moved


def verification_alone(count: int) -> Stat:
    """verify_event in this process, per notification: signature, timestamp, nonce (Redis), decryption."""
    from adapters.wechatpay.notify import verify_event

    per_round = []
    for _ in range(3):
        notifications = signed(make_paid_trades(count))
        started = time.perf_counter()
        for body, headers in notifications:
            verify_event(headers, body)
        per_round.append(1000 * (time.perf_counter() - started) / count)
    return Stat(per_round)


def run(s: Settings) -> list[Figure]:
    say(
        f"3. payment notifications: {PRODUCTION_SERVER} on one core, {s.connections} connections, "
        f"~{s.seconds:.0f} s x {s.repeats}"
    )
    bare = write_requests([http_request("GET", "/bench/bare/")], "bare-notify")
    loads: list[Load] = []
    baselines: list[Load] = []
    with Server():
        pilot, _ = post_all(100, s, "notify-pilot")
        run_load(bare, seconds=2, connections=s.connections, python=True)
        count = max(200, int(pilot.rps * s.seconds))
        say(f"  pilot: {pilot.rps:.0f} notifications/s; {count} per run")
        for i in range(s.repeats):
            baselines.append(run_load(bare, seconds=s.seconds, connections=s.connections, python=True))
            load, moved = post_all(count, s, f"notify-{i}")
            loads.append(load)
            say(
                f"  {i + 1}/{s.repeats}: {load.rps:.0f} notifications/s (p50 {load.p50_ms:.1f} ms, p99 "
                f"{load.p99_ms:.1f} ms), {moved}/{count} orders paid; bare {baselines[-1].rps:,.0f} req/s"
            )
            if load.errors or moved != count:
                raise RuntimeError(f"{load.errors} refused notifications, {count - moved} orders not paid")
    verify_ms = verification_alone(100)
    per_notification_ms = Stat([x.cpu_us / 1000 for x in loads])
    note = f"{PRODUCTION_SERVER}, {s.connections} conn., loadgen.py"
    figures = [
        Figure(
            "payment notifications verified, recorded, acknowledged",
            Stat([x.rps for x in loads]),
            "/s",
            Stat([x.rps for x in baselines]),
            "bare endpoint",
            note=note,
        ),
        Figure(
            "payment notification: p50 latency",
            Stat([x.p50_ms for x in loads]),
            "ms",
            Stat([x.p50_ms for x in baselines]),
            "bare endpoint",
            higher_is_better=False,
            note=note,
        ),
        Figure(
            "payment notification: p99 latency",
            Stat([x.p99_ms for x in loads]),
            "ms",
            Stat([x.p99_ms for x in baselines]),
            "bare endpoint",
            higher_is_better=False,
            note=note,
        ),
        Figure(
            "payment notification: server CPU per notification",
            Stat([x.cpu_us / 1000 for x in loads]),
            "ms",
            Stat([x.cpu_us / 1000 for x in baselines]),
            "bare endpoint",
            higher_is_better=False,
            note="from /proc",
        ),
        Figure(
            "payment notification: verification alone (verify_event)",
            verify_ms,
            "ms",
            per_notification_ms,
            "whole notification (server CPU)",
            higher_is_better=False,
            note="in-process, 3 x 100; ratio = verification's share",
        ),
    ]
    print_figures("3. Payment notifications (POST /billing/notify/wechatpay/)", figures)
    return figures
