"""A finished day of demo sales, reconciled three ways (issue #12, item 9).

Reconciliation works on a day that is over, from the statements WeChat Pay, Alipay and the SMP give for it.
On fresh demo data there is none: today cannot be reconciled and yesterday had no sales. ``build_demo_day``
lives a day in the simulated world, with the clock set back to it (time-machine, as the tests travel): it
places orders through the system's own services — on the TV and at the demo counter, paid by every method,
one refunded in admin, one refused by the SMP —, pays them through the sandbox's own endpoints, runs the due
work as the worker would, and adds one subscription that only the SMP knows (somebody provisioned it by hand
on the SMP), so that the run has a discrepancy to show. Then it reconciles the day: the simulators write the
three statements, the run compares them with the ledger, and admin shows the result.

Run it before the worker starts (``python3 dev.py`` does): the day's due work is done here, in the past.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

import time_machine
from django.conf import settings
from django.test import Client, override_settings
from django.utils import timezone

from billing.models import Payment, ReconciliationRun
from billing.reconciliation.days import day_bounds
from billing.reconciliation.services import reconcile_day
from channels_crm.models import Clerk
from epg_api.models import EpgClient
from ipvas import outbox
from ipvas.actors import Actor, ActorKind
from ipvas.celery import app
from ipvas.models import OutboxMessage
from lifecycle.manual import refund_by_admin
from lifecycle.paying import payment_choose
from lifecycle.placing import order_create
from orders.constants import Channel, PaymentMethod
from orders.models import Order
from sandbox.models import SimSmpSubscription

DEMO_EPG_CLIENT = "演示 EPG（沙箱演示日）"
DEMO_CLERK = "clerk01"
RUN_BY = "sandbox"


@dataclass
class DemoDay:
    day: date
    built: bool
    orders: list[Order] = field(default_factory=list)
    run: ReconciliationRun | None = None


def run_due_work(*, rounds: int = 100) -> int:
    """What the worker would do now: every outbox message that is due, and what those enqueue."""
    app.loader.import_default_modules()
    done = 0
    for _ in range(rounds):
        due = list(
            OutboxMessage.objects.filter(relayed_at__isnull=True, due_at__lte=timezone.now()).order_by("due_at", "pk")
        )
        if not due:
            return done
        for message in due:
            OutboxMessage.objects.filter(pk=message.pk).update(relayed_at=timezone.now())
            # Under the message's task id, as the worker runs it: a follow-up's success is then recorded, and
            # the stalled sweep does not send it again when the worker starts (outbox.must_finish).
            app.tasks[message.task_name].apply(kwargs=message.kwargs, task_id=outbox.task_id(message), throw=True)
            done += 1
    return done


def _demo_client() -> EpgClient:
    """The demo EPG client: its first key, whose id its orders carry, whichever of its keys was issued later or
    revoked since (a later key has the same name, and the newest came first, so the day was lived again)."""
    client = EpgClient.objects.filter(name=DEMO_EPG_CLIENT, acts_for=None).order_by("created").first()
    if client is None:
        client, _key = EpgClient.objects.create_key(name=DEMO_EPG_CLIENT)
    return client


def _day_built(day: date, client: EpgClient) -> bool:
    start, end = day_bounds(day)
    return Order.objects.filter(
        origin_kind=ActorKind.EPG_CLIENT, origin_id=client.pk, created_at__gte=start, created_at__lt=end
    ).exists()


def _code(prefix: str, length: int, ending: str) -> str:
    """A payment code of the sandbox (docs/interfaces.md §10): ``ending`` decides what the provider does."""
    middle = "".join(secrets.choice("0123456789") for _ in range(length - len(prefix) - len(ending)))
    return prefix + middle + ending


class _Day:
    """One day lived in the sandbox: the clock moves on between sales, and the due work runs after each step."""

    def __init__(self, traveller: time_machine.Coordinates, client: EpgClient, clerk: Clerk) -> None:
        self.traveller = traveller
        self.epg = Actor(ActorKind.EPG_CLIENT, client.pk)
        self.clerk = clerk
        self.counter = Actor(ActorKind.CLERK, clerk.staff_id)
        host = (settings.ALLOWED_HOSTS or ["localhost"])[0].lstrip(".")
        self.http = Client(HTTP_HOST=host if host != "*" else "localhost")
        self.orders: list[Order] = []

    def later(self, minutes: int) -> None:
        self.traveller.shift(timedelta(minutes=minutes))

    def on_tv(self, product: str, tv_account: str, content_id: str = "") -> Order:
        order = order_create(
            channel=Channel.EPG, product_code=product, tv_account=tv_account, content_id=content_id, actor=self.epg
        )
        return self._placed(order)

    def at_counter(self, product: str, phone: str) -> Order:
        order = order_create(
            channel=Channel.CRM,
            product_code=product,
            phone=phone,
            actor=self.counter,
            clerk=self.clerk.user,
            store_code=self.clerk.store.code,
        )
        return self._placed(order)

    def _placed(self, order: Order) -> Order:
        run_due_work()  # the SMP's pre-check
        self.orders.append(order)
        return order

    def pay(self, order: Order, method: str, *, code: str = "") -> None:
        actor = self.epg if order.channel == Channel.EPG else self.counter
        payment_choose(order_id=order.pk, method=method, actor=actor, code=code)
        run_due_work()
        if method in (PaymentMethod.WECHAT_QR, PaymentMethod.ALIPAY_QR):
            self.later(1)  # the customer scans and pays in the app
            payment = Payment.objects.filter(order=order, method=method).order_by("-created_at", "-pk").first()
            provider = "wechatpay" if method == PaymentMethod.WECHAT_QR else "alipay"
            answer = self.http.post(
                f"/sandbox/{provider}/pay/",
                data=json.dumps({"out_trade_no": payment.out_trade_no if payment else order.order_no}),
                content_type="application/json",
            )
            if answer.status_code != 200:
                raise RuntimeError(f"the sandbox's {provider} did not take the payment: {answer.content[:200]!r}")
        run_due_work()  # the charge, the activity, the SMP's subscription

    def refund(self, order: Order, reason: str) -> None:
        refund_by_admin(order_id=order.pk, reason=reason, actor=Actor(ActorKind.ADMIN, "admin"))
        run_due_work()


def _smp_only_subscription(day: date, now: datetime) -> None:
    """A subscription made by hand on the SMP, that no order of ours asked for: the run's discrepancy."""
    SimSmpSubscription.objects.create(
        order_no=f"SMPHAND{day:%Y%m%d}",
        subscription_id=f"SUB-HAND-{day:%Y%m%d}",
        tv_account="tv1001",
        product_code="SMP-VIP-MONTH",
        package_code="SMP-VIP-MONTH",
        charge="phone_bill",
        amount_fen=2500,
        starts_at=now,
        ends_at=now + timedelta(days=30),
    )


def _live(day: _Day, when: date) -> None:
    """The day's sales, in the order they happen."""
    month = day.on_tv("VIP-MONTH", "tv1001")
    day.pay(month, PaymentMethod.WECHAT_QR)
    day.later(37)
    movie = day.on_tv("PPV-MOVIE", "tv1001", content_id=f"MOVIE-{when:%m%d}")
    day.pay(movie, PaymentMethod.ALIPAY_QR)
    day.later(52)
    quarter = day.on_tv("VIP-QUARTER", "tv1001")
    day.pay(quarter, PaymentMethod.PHONE_BILL)
    day.later(44)
    short = day.on_tv("VIP-YEAR", "tv1002")  # 100 fen on the phone bill: the SMP refuses the charge
    day.pay(short, PaymentMethod.PHONE_BILL)
    day.later(68)
    cash = day.at_counter("VIP-MONTH", "13800000001")
    day.pay(cash, PaymentMethod.CASH)
    day.later(25)
    year = day.at_counter("VIP-YEAR", "13800000001")
    day.pay(year, PaymentMethod.PAYMENT_CODE, code=_code("13", 18, "0000"))
    day.later(31)
    mistaken = day.at_counter("VIP-MONTH", "13800000001")
    day.pay(mistaken, PaymentMethod.PAYMENT_CODE, code=_code("28", 18, "0000"))
    day.later(12)
    day.refund(mistaken, "顾客误购，当场要求退款")
    day.later(95)
    _smp_only_subscription(when, timezone.now())


def build_demo_day(day: date | None = None, *, say: Callable[[str], None] = lambda _text: None) -> DemoDay:
    """Live ``day`` (yesterday by default) in the sandbox and reconcile it; nothing when it was lived already."""
    if not settings.SANDBOX:
        raise RuntimeError("the demo day is the sandbox's: IPVAS_SANDBOX is off")
    day = day or timezone.localdate() - timedelta(days=1)
    if day >= timezone.localdate():
        raise ValueError("only a day that is over can be reconciled: choose yesterday or before")
    client = _demo_client()
    if _day_built(day, client):
        say(f"sandbox_demo_day: {day} has its demo sales already")
        return DemoDay(day=day, built=False, run=ReconciliationRun.objects.filter(day=day).first())
    clerk = Clerk.objects.select_related("store", "user").get(staff_id=DEMO_CLERK)
    start = timezone.make_aware(datetime.combine(day, time(9, 30)))
    with override_settings(OUTBOX_RELAY_ON_COMMIT=False), time_machine.travel(start, tick=True) as traveller:
        lived = _Day(traveller, client, clerk)
        _live(lived, day)
        traveller.move_to(timezone.make_aware(datetime.combine(day, time(23, 50))))
        run_due_work()  # the day's deadlines (payment windows, follow-ups) come and go
    run = reconcile_day(day, fetch=True, triggered_by=RUN_BY)
    say(f"sandbox_demo_day: {day}: {len(lived.orders)} demo orders, reconciled ({run.matched} matched, "
        f"{run.discrepancies} discrepancies)")  # fmt: skip
    return DemoDay(day=day, built=True, orders=lived.orders, run=run)
