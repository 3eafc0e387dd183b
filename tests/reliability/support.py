"""What the reliability tests share: orders put in a state through the services, deliveries made the
way the outside systems make them, threads released together by a barrier, the bank-style money
check, and the figures that bench/reliability.py prints.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from django.db import connection
from django.db.models import Count, Sum
from django.test import Client
from django.utils import timezone

from billing.models import LedgerEntry, Payment
from channels_crm.models import Clerk
from ipvas.actors import Actor, ActorKind
from lifecycle.paying import payment_choose
from lifecycle.placing import order_create
from orders.constants import OrderStatus
from orders.models import Entitlement, Order, OrderEvent, Subscription
from sandbox import payments as sandbox_payments
from sandbox.models import SimCrmActivity, SimSmpAccount, SimSmpSubscription, SimTrade
from tests.support.concurrency import connections_for
from tests.support.tasks import run_due_tasks as run_due  # noqa: F401  (the reliability tests' name for it)

ROOT = Path(__file__).resolve().parents[2]
FIGURES = ROOT / "test-artifacts" / "reliability"
WECHAT_URL = "/billing/notify/wechatpay/"
ALIPAY_URL = "/billing/notify/alipay/"
SMS_URL = "/sms/inbound/"
EPG = Actor(ActorKind.EPG_CLIENT, "reliability")
CLERK = Actor(ActorKind.CLERK, "clerk01")
PROVIDER_OF = {"wechat_qr": "wechatpay", "alipay_qr": "alipay"}
PHONES = {"tv1001": "13800000001", "tv1002": "13800000002", "tv1003": "13800000003", "tv1004": "13800000004"}
TERMINAL = {
    OrderStatus.COMPLETED,
    OrderStatus.REJECTED,
    OrderStatus.EXPIRED,
    OrderStatus.FAILED,
    OrderStatus.REFUNDED,
    OrderStatus.CANCELLED,
}
RICH = 10**9  # fen: a phone-bill balance that no run spends


def size(short: int, soak: int) -> list[Any]:
    """The two sizes of a property, as pytest parameters: ``short`` runs by default, ``soak`` on demand."""
    return [pytest.param(short, id="short"), pytest.param(soak, id="soak", marks=pytest.mark.soak)]


# --- threads released at once ----------------------------------------------------------


@dataclass
class Race:
    results: list[Any]  # what each callable returned (None where it raised)
    errors: list[BaseException]  # what they raised
    seconds: list[float]  # how long each took, from its start after the barrier and its delay


def race(*works: Callable[[], Any], delays: Iterable[float] = (), timeout: float = 60) -> Race:
    """Run each callable in its own thread (own database connection), all released by one barrier.

    ``delays`` hold each one back after the barrier for that many seconds, so that
    a fast contender can be made to arrive while a slow one is half way through.
    """
    barrier = threading.Barrier(len(works), timeout=30)
    wait = [*delays, *([0.0] * len(works))][: len(works)]
    outcome = Race(results=[None] * len(works), errors=[], seconds=[0.0] * len(works))
    lock = threading.Lock()

    def target(index: int, work: Callable[[], Any]) -> None:
        try:
            barrier.wait()
            if wait[index]:
                time.sleep(wait[index])
            started = time.perf_counter()
            outcome.results[index] = work()
            outcome.seconds[index] = time.perf_counter() - started
        except BaseException as exc:
            with lock:
                outcome.errors.append(exc)
            barrier.abort()
        finally:
            connection.close()

    threads = [threading.Thread(target=target, args=(i, w), daemon=True) for i, w in enumerate(works)]
    with connections_for(len(threads)):
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=timeout)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    return outcome


class Racers:
    """Threads that stay, each with its own database connection, and race again and again.

    ``run`` releases them together (one barrier) on the callables given, and waits
    for all of them; the connections are opened once, not once per round.
    """

    def __init__(self, count: int) -> None:
        self.count = count
        self.start = threading.Barrier(count + 1, timeout=120)
        self.done = threading.Barrier(count + 1, timeout=120)
        self.works: list[Callable[[], Any] | None] = [None] * count
        self.delays: list[float] = [0.0] * count
        self.outcome = Race(results=[], errors=[], seconds=[])
        self.lock = threading.Lock()
        self.closing = False
        self.threads = [threading.Thread(target=self._loop, args=(i,), daemon=True) for i in range(count)]
        for thread in self.threads:
            thread.start()

    def _loop(self, index: int) -> None:
        try:
            while True:
                self.start.wait()
                if self.closing:
                    return
                try:
                    if self.delays[index]:
                        time.sleep(self.delays[index])
                    started = time.perf_counter()
                    work = self.works[index]
                    self.outcome.results[index] = work() if work else None
                    self.outcome.seconds[index] = time.perf_counter() - started
                except BaseException as exc:
                    with self.lock:
                        self.outcome.errors.append(exc)
                self.done.wait()
        finally:
            connection.close()

    def run(self, *works: Callable[[], Any], delays: Iterable[float] = ()) -> Race:
        assert len(works) <= self.count
        self.works = [*works, *([None] * (self.count - len(works)))]
        self.delays = [*delays, *([0.0] * self.count)][: self.count]
        self.outcome = Race(results=[None] * self.count, errors=[], seconds=[0.0] * self.count)
        self.start.wait()
        self.done.wait()
        return Race(
            results=self.outcome.results[: len(works)],
            errors=self.outcome.errors,
            seconds=self.outcome.seconds[: len(works)],
        )

    def close(self) -> None:
        self.closing = True
        self.start.wait()
        for thread in self.threads:
            thread.join(timeout=30)


class Lead:
    """Random head starts for two contenders, learnt from how long each takes.

    Released together, a bare service call reaches the order's lock long before a
    request that is parsed, verified and decrypted first (and a single quick
    transaction finishes before a handler that claims, then calls out). Holding one
    side back, chosen at random, by a random share of the other's time makes either
    win, and many finish close together.
    """

    def __init__(self, seed: int, first_guess: float = 0.02) -> None:
        import random

        self.rng = random.Random(seed)
        self.typical = [first_guess, first_guess]

    def delays(self) -> tuple[float, float]:
        held = self.rng.randrange(2)
        wait = self.rng.uniform(0, self.typical[1 - held])
        return (wait, 0.0) if held == 0 else (0.0, wait)

    def learn(self, seconds: list[float]) -> None:
        self.typical = [0.7 * t + 0.3 * s for t, s in zip(self.typical, seconds, strict=True)]


_handler = None


def client(*, raise_request_exception: bool = True) -> Client:
    """A test client sharing one loaded request handler (building the middleware chain is slow)."""
    global _handler
    made = Client(raise_request_exception=raise_request_exception)
    if _handler is None:
        _handler = made.handler
        _handler.load_middleware()
    made.handler = _handler
    return made


def raised(kind: type[BaseException]) -> Callable[[Callable[[], Any]], Callable[[], Any]]:
    """Wrap a callable so that ``kind`` comes back as its result instead of escaping the thread."""

    def wrap(work: Callable[[], Any]) -> Callable[[], Any]:
        def run() -> Any:
            try:
                return work()
            except kind as exc:
                return exc

        return run

    return wrap


# --- orders through the services ---------------------------------------------------------


def clerk_user():  # type: ignore[no-untyped-def]
    return Clerk.objects.select_related("user", "store").get(staff_id="clerk01")


def new_order(*, channel: str = "epg", account: str = "tv1001", product: str = "VIP-MONTH", content_id: str = ""):  # type: ignore[no-untyped-def]
    """An order in ``prechecking`` (its pre-check is the first outbox message)."""
    if channel == "crm":
        clerk = clerk_user()
        return order_create(
            channel="crm",
            product_code=product,
            phone=PHONES.get(account, account),
            content_id=content_id,
            actor=CLERK,
            clerk=clerk.user,
            store_code=clerk.store.code,
        )
    return order_create(channel="epg", product_code=product, tv_account=account, content_id=content_id, actor=EPG)


def choose(order: Order, method: str) -> Order:
    return payment_choose(order_id=order.pk, method=method, actor=CLERK if order.channel == "crm" else EPG)


def make_rich(*accounts: str) -> None:
    SimSmpAccount.objects.filter(tv_account__in=accounts or ("tv1001",)).update(balance_fen=RICH)


def balance(account: str = "tv1001") -> int:
    return SimSmpAccount.objects.get(tv_account=account).balance_fen


def trade_of(order: Order) -> SimTrade:
    payment = Payment.objects.filter(order=order, provider__in=PROVIDER_OF.values()).latest("pk")
    return SimTrade.objects.get(provider=payment.provider, out_trade_no=payment.out_trade_no)


def move_deadline(order: Order, *, seconds_ago: float = 1, **extra: Any) -> Order:
    """Time travel for one order: its deadline (and whatever else is given) moved into the past."""
    deadline = timezone.now() - timezone.timedelta(seconds=seconds_ago)
    Order.objects.filter(pk=order.pk).update(deadline_at=deadline, **extra)
    order.refresh_from_db()
    return order


# --- deliveries, as the providers and the SMS gateway make them ------------------------------


@dataclass(frozen=True)
class Delivery:
    """One signed request that an outside system sends (and may send again, byte for byte)."""

    path: str
    body: bytes
    content_type: str
    headers: dict[str, str]

    def post(self, via: Client | None = None):  # type: ignore[no-untyped-def]
        via = via or client()
        meta = {"HTTP_" + name.upper().replace("-", "_"): value for name, value in self.headers.items()}
        return via.post(self.path, data=self.body, content_type=self.content_type, **meta)


def paid_notification(trade: SimTrade) -> Delivery:
    """The provider's signed 'paid' notification of a trade (paid at the simulated provider first)."""
    if trade.provider == sandbox_payments.WECHATPAY:
        body, headers = sandbox_payments.wechatpay_notification(trade)
        return Delivery(WECHAT_URL, body, "application/json", headers)
    form = urlencode(sandbox_payments.alipay_notification(trade)).encode()
    return Delivery(ALIPAY_URL, form, "application/x-www-form-urlencoded", {})


def sms_reply(phone: str, text: str) -> Delivery:
    from sandbox.sms import signed_reply

    body, headers = signed_reply(phone, text)
    return Delivery(SMS_URL, body, "application/json", headers)


def said_success(delivery: Delivery, response) -> bool:  # type: ignore[no-untyped-def]
    """What the sender reads as 'applied, stop retrying' (docs/interfaces.md §3, §4)."""
    if delivery.path == ALIPAY_URL:
        return response.status_code == 200 and response.content == b"success"
    if delivery.path == WECHAT_URL:
        return response.status_code == 204 or (response.status_code == 200 and response.content == b"")
    return response.status_code == 200


# --- one provisioning, seen from everywhere ------------------------------------------------------


def provisioned_once(order: Order, *, charged: int) -> dict[str, object]:
    """What a phone-bill order left behind, to compare with ``once(order)``."""
    order.refresh_from_db()
    return {
        "status": order.status,
        "SMP subscriptions": SimSmpSubscription.objects.filter(order_no=order.order_no).count(),
        "phone bill charged": charged,
        "ledger": list(LedgerEntry.objects.filter(order=order).values_list("idempotency_key", "amount_fen")),
        "entitlements": Entitlement.objects.filter(order=order).count(),
        "complete events": OrderEvent.objects.filter(order=order, action="complete").count(),
    }


def once(order: Order) -> dict[str, object]:
    return {
        "status": OrderStatus.COMPLETED,
        "SMP subscriptions": 1,
        "phone bill charged": order.amount_fen,
        "ledger": [(f"smp:charge:{order.order_no}", order.amount_fen)],
        "entitlements": 1,
        "complete events": 1,
    }


# --- the bank-style check ---------------------------------------------------------------------


@dataclass
class MoneyReport:
    orders: int = 0
    statuses: Counter = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    smp_left_subscribed: list[str] = field(default_factory=list)

    def summary(self) -> str:
        head = f"{self.orders} orders {dict(self.statuses)}"
        return head + ("" if not self.problems else "\n  " + "\n  ".join(self.problems[:40]))


def outside_money(orders: Iterable[Order]) -> dict[tuple[int, str], int]:
    """What the simulated outside systems hold for each order: (order id, provider) -> fen."""
    by_no = {o.order_no: o.pk for o in orders}
    held: dict[tuple[int, str], int] = defaultdict(int)
    trades = {
        (p.provider, p.out_trade_no): p.order_id
        for p in Payment.objects.filter(order_id__in=by_no.values(), provider__in=PROVIDER_OF.values())
    }
    for trade in SimTrade.objects.filter(out_trade_no__in=[t[1] for t in trades]).filter(status="SUCCESS"):
        order_id = trades.get((trade.provider, trade.out_trade_no))
        if order_id is not None:
            held[(order_id, trade.provider)] += trade.amount_fen - trade.refunded_fen
    for sub in SimSmpSubscription.objects.filter(order_no__in=by_no, charge="phone_bill"):
        held[(by_no[sub.order_no], "smp")] += sub.amount_fen - sub.reversed_fen
    for activity in SimCrmActivity.objects.filter(order_no__in=by_no, reversed_at__isnull=True):
        held[(by_no[activity.order_no], "crm")] += activity.amount_fen
    return held


def ledger_money(order_ids: Iterable[int]) -> dict[tuple[int, str], int]:
    rows = (
        LedgerEntry.objects.filter(order_id__in=list(order_ids))
        .values("order_id", "provider")
        .annotate(net=Sum("amount_fen"))
    )
    return {(r["order_id"], r["provider"]): r["net"] for r in rows}


def check_money(order_ids: Iterable[int], *, manual_refunds: Iterable[int] = ()) -> MoneyReport:
    """Every order ended, and the ledger agrees with the outside world and with the order's outcome.

    Per order and provider, the ledger's net equals what the simulated provider, the SMP
    (phone-bill charges less reversals) or the CRM (cash activities not reversed) holds;
    a completed order holds exactly its price, any other order nothing; no order was both
    completed and expired; no order was confirmed or completed twice.
    """
    ids = list(order_ids)
    manual = set(manual_refunds)
    orders = list(Order.objects.filter(pk__in=ids).select_related("product"))
    report = MoneyReport(orders=len(orders))
    ledger = ledger_money(ids)
    outside = outside_money(orders)
    events: dict[int, Counter] = defaultdict(Counter)
    for row in OrderEvent.objects.filter(order_id__in=ids).values("order_id", "action").annotate(n=Count("pk")):
        events[row["order_id"]][row["action"]] = row["n"]
    live_subs = set(
        SimSmpSubscription.objects.filter(
            order_no__in=[o.order_no for o in orders], cancelled_at__isnull=True
        ).values_list("order_no", flat=True)
    )
    entitled = set(
        Entitlement.objects.filter(order_id__in=ids, revoked_at__isnull=True).values_list("order_id", flat=True)
    )
    for order in orders:
        report.statuses[order.status] += 1
        label = f"{order.order_no} ({order.channel} {order.payment_method or '-'} {order.tv_account or order.phone})"
        if order.status not in TERMINAL:
            report.problems.append(f"{label} is still {order.status}")
        keys = {k for k in (*ledger, *outside) if k[0] == order.pk}
        for key in sorted(keys, key=str):
            if ledger.get(key, 0) != outside.get(key, 0):
                report.problems.append(
                    f"{label}: ledger holds {ledger.get(key, 0)} fen at {key[1]}, {key[1]} holds {outside.get(key, 0)}"
                )
        net = sum(v for k, v in ledger.items() if k[0] == order.pk)
        if order.status == OrderStatus.COMPLETED and net != order.amount_fen and order.pk not in manual:
            report.problems.append(f"{label} completed holding {net} fen, not its price {order.amount_fen}")
        if order.status != OrderStatus.COMPLETED and order.status in TERMINAL and net != 0:
            report.problems.append(f"{label} is {order.status} yet holds {net} fen")
        seen = events[order.pk]
        if seen["complete"] and seen["expire"]:
            report.problems.append(f"{label} was both completed and expired")
        for action in ("complete", "payment_confirmed", "refunded"):
            if seen[action] > 1:
                report.problems.append(f"{label}: {seen[action]} '{action}' events")
        if (order.status == OrderStatus.COMPLETED) != (order.pk in entitled):
            report.problems.append(f"{label} is {order.status}; our entitlement: {order.pk in entitled}")
        if order.status == OrderStatus.COMPLETED and order.order_no not in live_subs:
            report.problems.append(f"{label} completed without a live SMP subscription")
        if order.status != OrderStatus.COMPLETED and order.order_no in live_subs:
            report.smp_left_subscribed.append(f"{label} is {order.status}, still subscribed on the SMP")
    return report


# --- figures for bench/reliability.py -----------------------------------------------------------


def record(name: str, **figures: Any) -> None:
    """Keep what a run did (rounds, outcomes, counterexamples) for the figures table."""
    FIGURES.mkdir(parents=True, exist_ok=True)
    figures.setdefault("recorded_at", time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    (FIGURES / f"{name}.json").write_text(json.dumps(figures, indent=2, default=str, ensure_ascii=False))


def at_its_first_reminder(time_machine) -> Subscription:  # type: ignore[no-untyped-def]
    """An auto-renewing VIP-MONTH of tv1001 paid by phone bill, at the moment its first reminder is due: the
    beat's sweep has queued it (the task that sends it is not run)."""
    from lifecycle.renewals import subscriptions_sweep
    from tests.support.tasks import run_due_tasks

    order = order_create(channel="epg", product_code="VIP-MONTH", tv_account="tv1001", actor=EPG, auto_renew=True)
    run_due_tasks()
    payment_choose(order_id=order.pk, method="phone_bill", actor=EPG)
    run_due_tasks()
    subscription = Order.objects.get(pk=order.pk).subscription
    assert subscription is not None
    time_machine.move_to(subscription.next_reminder_at, tick=False)
    subscriptions_sweep()
    return subscription
