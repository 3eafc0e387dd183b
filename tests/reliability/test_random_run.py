"""Property 4, the randomised run: many orders through outside systems that fail, then the books balance.

Orders of every kind (EPG and CRM, every payment method, the demo accounts
including tv1002 with 100 fen and the suspended tv1003) are driven through a
real Celery worker while, on a schedule:

* the simulated SMP cycles through down, slow (subscribes, then answers too
  late), flaky and ok, and the CRM is flaky for a while;
* the broker goes away for the worker: the worker is stopped for a few
  seconds and started again (the shared Redis itself is not restarted: other
  sessions use it), so that published work waits in Redis;
* the broker goes away for the web process: its Celery producer is pointed at
  a closed port, so every relay on commit fails and the work stays in the
  outbox for the beat relay;
* the cache goes away for the web process (``override_settings`` with a Redis
  cache on a closed port): requests fail, and the providers' notifications
  that failed are delivered again afterwards, as the providers retry.

The customers act at random: pay (sometimes with the notification delivered
twice, and a second notification for the same trade), abandon the QR code,
cancel, cancel and pay anyway, reply Y, N or nothing, never choose a method.
Afterwards everything runs until quiet (the test plays Celery beat: the
outbox relay and the deadline sweep) and the books are checked the way a
bank checks them (tests.reliability.support.check_money).

The seed is printed and recorded; IPVAS_RELIABILITY_SEED replays a run.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

import pytest
from django.test import override_settings

from billing.models import Refund, RefundStatus, WorkItem, WorkItemKind
from ipvas import outbox
from ipvas.actors import Actor, ActorKind
from ipvas.errors import ApplicationError
from ipvas.models import OutboxMessage
from lifecycle.due import deadlines_sweep
from lifecycle.manual import work_item_resolve
from lifecycle.paying import order_cancel
from orders.constants import OrderStatus
from orders.models import Order
from sandbox import faults
from sandbox import payments as sandbox_payments
from tests.epg_api.support import Api, new_api_key
from tests.integration.conftest import start_worker, stop_worker
from tests.reliability.support import (
    PHONES,
    TERMINAL,
    Delivery,
    check_money,
    choose,
    client,
    make_rich,
    new_order,
    paid_notification,
    record,
    said_success,
    size,
    sms_reply,
    trade_of,
)
from tests.support.concurrency import require_postgresql

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]
logger = logging.getLogger(__name__)

# Short business deadlines, the same in the worker and in this process (which plays web and beat).
DEADLINES = {
    "PAYMENT_WINDOW_SECONDS": 6,
    "ORDER_IDLE_SECONDS": 8,
    "PRECHECK_DEADLINE_SECONDS": 20,
    "PROVISIONING_DEADLINE_SECONDS": 10,
    "CRM_ACTIVITY_DEADLINE_SECONDS": 10,
    "ORDER_CLAIM_LEASE_SECONDS": 3,
    "OUTBOX_STALE_SECONDS": 2,
}
DEAD = "redis://127.0.0.1:9/0"  # nothing listens on port 9
DEAD_CACHE = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": DEAD}}
STORE = Actor(ActorKind.CLERK, "store-manager")
QR = ("wechat_qr", "alipay_qr")

# One cycle of the outside world, in seconds from its start: (when, what, how).
CYCLE = [
    (2, "smp", "down"),
    (5, "smp", "ok"),
    (6, "smp", "slow"),
    (9, "smp", "flaky"),
    (10, "worker", "stop"),
    (12, "smp", "ok"),
    (14, "worker", "start"),
    (15, "crm", "flaky"),
    (17, "smp", "down"),
    (19, "smp", "ok"),
    (20, "crm", "ok"),
    (20, "broker", "dead"),
    (22.5, "broker", "back"),
    (23, "smp", "flaky"),
    (24, "cache", "dead"),
    (26, "cache", "back"),
    (26, "smp", "slow"),
    (29, "smp", "ok"),
]
CYCLE_SECONDS = 30


def weighted(rng: random.Random, choices: dict[Any, float]) -> Any:
    return rng.choices(list(choices), weights=list(choices.values()))[0]


@dataclass
class Plan:
    """One customer: what they will buy and do, and how far they got."""

    n: int
    channel: str
    account: str  # a TV account (EPG) or a mobile number (CRM)
    product: str
    method: str | None  # None: never chooses (the order idles out)
    behaviour: str
    think: float  # seconds before paying or replying
    start_at: float  # seconds into the run
    content_id: str = ""
    order_no: str = ""
    order_id: int = 0
    chosen_at: float = 0.0
    stage: str = "new"  # new -> created -> chosen -> done
    notes: list[str] = field(default_factory=list)


def plans(rng: random.Random, count: int, spread: float) -> list[Plan]:
    made = []
    for n in range(count):
        channel = weighted(rng, {"epg": 0.65, "crm": 0.35})
        product = weighted(rng, {"VIP-MONTH": 0.4, "VIP-QUARTER": 0.15, "VIP-YEAR": 0.15, "PPV-MOVIE": 0.3})
        if channel == "epg":
            account = weighted(rng, {"tv1001": 0.6, "tv1002": 0.2, "tv1003": 0.1, "tv1004": 0.05, "nobody": 0.05})
            method = weighted(
                rng, {"wechat_qr": 0.28, "alipay_qr": 0.24, "phone_bill": 0.2, "phone_bill_sms": 0.22, None: 0.06}
            )
        else:
            account = weighted(rng, {PHONES["tv1001"]: 0.6, PHONES["tv1002"]: 0.25, PHONES["tv1003"]: 0.15})
            method = weighted(rng, {"cash": 0.35, "phone_bill": 0.2, "wechat_qr": 0.25, "alipay_qr": 0.2})
        if method in QR:
            behaviour = weighted(
                rng, {"pay": 0.55, "pay_twice": 0.15, "abandon": 0.1, "cancel": 0.1, "cancel_then_pay": 0.1}
            )
        elif method == "phone_bill_sms":
            behaviour = weighted(rng, {"Y": 0.65, "N": 0.15, "silent": 0.2})
        else:
            behaviour = "none"
        made.append(
            Plan(
                n=n,
                channel=channel,
                account=account,
                product=product,
                method=method,
                behaviour=behaviour,
                think=rng.uniform(0, 3),
                start_at=rng.uniform(0, spread),
                content_id=f"rel-{n}-{rng.randrange(10**6)}" if product == "PPV-MOVIE" else "",
            )
        )
    return sorted(made, key=lambda p: p.start_at)


class Run:
    """The outside world and the customers, driven from this process; the worker does the rest."""

    def __init__(self, *, seed: int, count: int, cycles: int, worker_env: dict[str, str]) -> None:
        self.rng = random.Random(seed)
        self.seed = seed
        self.worker_env = worker_env
        self.schedule = sorted((t + k * CYCLE_SECONDS, what, how) for k in range(cycles) for t, what, how in CYCLE)
        self.pending = list(self.schedule)
        self.plans = plans(self.rng, count, spread=cycles * CYCLE_SECONDS - 4)
        self.api = Api(new_api_key("reliability run"), client=client(raise_request_exception=False))
        self.worker = start_worker(concurrency=2, extra_env=worker_env)
        self.started = time.monotonic()
        self.faults: Counter = Counter()
        self.figures: Counter = Counter()
        self.problems: list[str] = []
        self.redeliver: list[Delivery] = []
        self.cache_override: override_settings | None = None
        self.broker_dead = False
        self.last_beat = 0.0
        self.background: threading.Thread | None = None

    def now(self) -> float:
        return time.monotonic() - self.started

    # --- the outside world failing ------------------------------------------------------------

    def apply(self, what: str, how: str) -> None:
        logger.warning("reliability run at %.1f s: %s %s", self.now(), what, how)
        if what in ("smp", "crm"):
            faults.set_mode(what, how)
            if how != "ok":
                self.faults[f"{what} {how}"] += 1
        elif what == "worker" and how == "stop":
            # In the background: the customers do not wait for the worker's warm shutdown.
            self.in_background(stop_worker, self.worker)
            self.faults["worker stopped (broker unreachable for it)"] += 1
        elif what == "worker":
            self.in_background(self.start_again)
        elif what == "broker" and how == "dead":
            self.point_producer_at(DEAD)
            self.broker_dead = True
            self.faults["broker unreachable for the web process"] += 1
        elif what == "broker" and self.broker_dead:
            self.point_producer_at(None)
            self.broker_dead = False
            left = OutboxMessage.objects.filter(relayed_at__isnull=True).count()
            self.figures["messages the broker outage left to the beat relay"] += left
        elif what == "cache" and how == "dead":
            self.cache_override = override_settings(CACHES=DEAD_CACHE)
            self.cache_override.enable()
            self.faults["cache unreachable for the web process"] += 1
        elif what == "cache" and self.cache_override is not None:
            self.cache_override.disable()
            self.cache_override = None

    def in_background(self, work: Any, *args: Any) -> None:
        self.join_background()
        self.background = threading.Thread(target=work, args=args, daemon=True)
        self.background.start()

    def join_background(self) -> None:
        if self.background is not None:
            self.background.join(timeout=90)
            self.background = None

    def start_again(self) -> None:
        from ipvas.celery import app

        with mock.patch.object(app.control, "purge", return_value=0):  # keep what waited in Redis
            self.worker = start_worker(concurrency=2, extra_env=self.worker_env)

    _own: dict[str, Any] | None = None  # the producer's own settings, to go back to

    @classmethod
    def point_producer_at(cls, url: str | None) -> None:
        """The web process's Celery producer: a broker URL that refuses connections, or back to its own.

        Celery reads CELERY_BROKER_URL from the environment before its settings, so
        the write URL is the one to change; its connection pools are dropped so
        that the next publish connects anew. While it points nowhere, a publish
        fails at once (no connection retries, no publish retries) instead of
        after seconds of retrying: what matters here is that it fails.
        """
        from ipvas.celery import app

        names = ("broker_write_url", "task_publish_retry", "broker_transport_options")
        if cls._own is None:
            cls._own = {name: app.conf[name] for name in names}
        if url is None:
            for name, value in cls._own.items():
                app.conf[name] = value
        else:
            app.conf.broker_write_url = url
            app.conf.task_publish_retry = False
            app.conf.broker_transport_options = {**(cls._own["broker_transport_options"] or {}), "max_retries": 0}
        app._pool = None
        app.amqp._producer_pool = None

    def restore(self) -> None:
        for what, how in (("smp", "ok"), ("crm", "ok"), ("broker", "back"), ("cache", "back")):
            self.apply(what, how)
        self.join_background()
        if self.worker.process.poll() is not None:
            self.start_again()

    # --- beat ----------------------------------------------------------------------------------

    def beat(self) -> None:
        """What Celery beat does, every second: relay the outbox, sweep the deadlines."""
        if self.now() - self.last_beat < 1:
            return
        self.last_beat = self.now()
        try:
            outbox.relay_pending()
        except Exception as exc:  # the broker is away; the next beat relays it
            self.figures["beat relays failed (broker away)"] += 1
            logger.info("beat relay failed: %s", exc)
        deadlines_sweep()

    # --- the customers -------------------------------------------------------------------------

    def in_trouble(self) -> bool:
        """A request may fail now: the cache is away."""
        return self.cache_override is not None

    def note(self, plan: Plan, what: str) -> None:
        plan.notes.append(f"{self.now():.1f}s {what}")

    def create(self, plan: Plan) -> None:
        if plan.channel == "epg":
            body = {"tv_account": plan.account, "product_code": plan.product}
            if plan.content_id:
                body["content_id"] = plan.content_id
            response = self.api.post("/orders/", body)
            if response.status_code != 201:
                self.unexpected(plan, f"create answered {response.status_code}")
                return
            plan.order_no = response.json()["order_no"]
            plan.order_id = Order.objects.get(order_no=plan.order_no).pk
        else:
            try:
                order = new_order(channel="crm", account=plan.account, product=plan.product, content_id=plan.content_id)
            except Exception as exc:
                self.unexpected(plan, f"create raised {exc!r}")
                return
            plan.order_no, plan.order_id = order.order_no, order.pk
        plan.stage = "created"
        self.figures["orders created"] += 1
        self.note(plan, "created")

    def unexpected(self, plan: Plan, what: str) -> None:
        """A request failed: expected while the cache is away (it is tried again), a problem otherwise."""
        self.note(plan, what)
        if self.in_trouble():
            self.figures["requests failed while the cache was away"] += 1
        else:
            self.problems.append(f"plan {plan.n} ({plan.channel} {plan.method}): {what} with nothing failing")

    def choose(self, plan: Plan) -> None:
        if plan.channel == "epg":
            response = self.api.choose(plan.order_no, plan.method or "")
            if response.status_code == 409:  # it moved on (expired) meanwhile
                plan.stage = "done"
                self.note(plan, "choose: 409")
                return
            if response.status_code != 200:
                self.unexpected(plan, f"choose answered {response.status_code}")
                return
        else:
            order = Order.objects.get(pk=plan.order_id)
            try:
                choose(order, plan.method or "")
            except ApplicationError as exc:
                self.note(plan, f"choose refused: {exc}")
                plan.stage = "done"
                return
            except Exception as exc:
                self.unexpected(plan, f"choose raised {exc!r}")
                return
        plan.stage = "chosen"
        plan.chosen_at = self.now()
        self.note(plan, f"chose {plan.method}")

    def deliver(self, plan: Plan, delivery: Delivery, what: str) -> None:
        response = delivery.post(self.api.client)
        self.figures["notifications and replies delivered"] += 1
        if said_success(delivery, response):
            self.note(plan, f"{what}: success")
            return
        self.note(plan, f"{what}: HTTP {response.status_code}")
        if self.in_trouble():
            self.figures["notifications refused while the cache was away (delivered again later)"] += 1
            self.redeliver.append(delivery)
        else:
            self.problems.append(f"plan {plan.n}: {what} answered {response.status_code} with nothing failing")

    def pay(self, plan: Plan) -> None:
        order = Order.objects.get(pk=plan.order_id)
        trade = trade_of(order)
        try:
            trade = sandbox_payments.pay_trade(trade.provider, trade.out_trade_no)
        except sandbox_payments.SandboxRefusal as exc:
            self.note(plan, f"the provider refused the payment: {exc}")
            return
        delivery = paid_notification(trade)
        self.deliver(plan, delivery, "paid notification")
        if plan.behaviour == "pay_twice":
            self.deliver(plan, delivery, "the same notification again")
            self.deliver(plan, paid_notification(trade), "a second notification of the trade")
            self.figures["notifications replayed"] += 2

    def cancel(self, plan: Plan) -> None:
        if plan.channel == "epg":
            response = self.api.cancel(plan.order_no)
            self.note(plan, f"cancel: {response.status_code}")
            if response.status_code >= 500:
                self.unexpected(plan, f"cancel answered {response.status_code}")
        else:
            try:
                order_cancel(order_id=plan.order_id, actor=STORE)
                self.note(plan, "cancelled")
            except ApplicationError as exc:
                self.note(plan, f"cancel refused: {exc}")

    def act(self, plan: Plan, status: str) -> None:
        """The customer, once the order waits for them."""
        if plan.stage == "created" and status == OrderStatus.AWAITING_PAYMENT and plan.method:
            self.choose(plan)
            return
        if plan.stage != "chosen" or self.now() - plan.chosen_at < plan.think:
            return
        if status != OrderStatus.PAYMENT_PENDING:
            plan.stage = "done"
            return
        behaviour = plan.behaviour
        if behaviour in ("pay", "pay_twice"):
            self.pay(plan)
        elif behaviour == "cancel":
            self.cancel(plan)
        elif behaviour == "cancel_then_pay":
            self.cancel(plan)
            self.pay(plan)
        elif behaviour in ("Y", "N"):
            self.deliver(plan, sms_reply(PHONES.get(plan.account, plan.account), behaviour), f"SMS reply {behaviour}")
        plan.stage = "done"

    # --- the run ---------------------------------------------------------------------------------

    def on_time(self) -> None:
        """Whatever of the schedule is due happens now, between any two steps of the customers."""
        while self.pending and self.pending[0][0] <= self.now():
            _, what, how = self.pending.pop(0)
            self.apply(what, how)

    def drive(self) -> None:
        """The schedule plays out while the customers act; then they finish what they started."""
        end = self.schedule[-1][0] + 1
        while self.now() < end or (any(p.stage != "done" for p in self.plans) and self.now() < end + 90):
            self.on_time()
            for plan in self.plans:
                if plan.stage == "new" and plan.start_at <= self.now():
                    self.on_time()
                    self.create(plan)
            live = {p.order_id: p for p in self.plans if p.order_id and p.stage in ("created", "chosen")}
            for order_id, status in Order.objects.filter(pk__in=list(live)).values_list("pk", "status"):
                if status in TERMINAL:
                    live[order_id].stage = "done"
                else:
                    self.on_time()
                    self.act(live[order_id], status)
            self.beat()
            time.sleep(0.2)

    def settle(self, timeout: float) -> dict[str, Any]:
        """Everything well again: the providers retry what failed, then run (beat + worker) until quiet."""
        self.restore()
        for delivery in self.redeliver:
            response = delivery.post(self.api.client)
            self.figures["notifications delivered again after the fault"] += 1
            if not said_success(delivery, response):
                self.problems.append(f"a notification delivered again answered {response.status_code}")
        ids = [p.order_id for p in self.plans if p.order_id]
        deadline = time.monotonic() + timeout
        state: dict[str, Any] = {}
        while time.monotonic() < deadline:
            self.last_beat = 0
            self.beat()
            for item in WorkItem.objects.filter(
                order_id__in=ids, kind=WorkItemKind.CASH_PAYBACK, resolved_at__isnull=True
            ):
                # The store pays the cash back, as the work queue asks it to.
                work_item_resolve(item_id=item.pk, note="cash paid back at the till", actor=STORE, cash_paid_back=True)
                self.figures["cash paid back by the store"] += 1
            state = {
                "unsettled orders": Order.objects.filter(pk__in=ids).exclude(status__in=TERMINAL).count(),
                "refunds under way": Refund.objects.filter(
                    order_id__in=ids, status__in=[RefundStatus.REQUESTED, RefundStatus.PROCESSING]
                ).count(),
                "outbox waiting": OutboxMessage.objects.filter(relayed_at__isnull=True).count(),
            }
            if not any(state.values()) and not check_money(ids).problems:
                break
            time.sleep(1)
        time.sleep(2)  # whatever was still published runs
        return state

    def stop(self) -> None:
        self.restore()
        stop_worker(self.worker)


@pytest.mark.parametrize("count", size(60, 400))
def test_random_orders_through_failing_outside_systems_lose_nothing_and_double_nothing(demo, settings, count):
    require_postgresql()
    seed = int(os.environ.get("IPVAS_RELIABILITY_SEED") or time.time_ns() % 10**9)
    print(f"reliability run: seed {seed} (IPVAS_RELIABILITY_SEED={seed} replays the plans)")
    for name, value in DEADLINES.items():
        setattr(settings, name, value)
    settings.OUTBOX_RELAY_ON_COMMIT = True
    make_rich("tv1001")  # tv1002 keeps its 100 fen: its phone-bill orders are refused
    cycles = max(1, round(count / 120))
    run = Run(seed=seed, count=count, cycles=cycles, worker_env={k: str(v) for k, v in DEADLINES.items()})
    started = time.monotonic()
    try:
        run.drive()
        driven = time.monotonic()
        unsettled = run.settle(timeout=120 if cycles == 1 else 300)
    finally:
        run.stop()
    settled = time.monotonic()

    ids = [p.order_id for p in run.plans if p.order_id]
    report = check_money(ids)
    orders = {o.pk: o for o in Order.objects.filter(pk__in=ids)}
    # Nothing may stay subscribed on the SMP for an order that did not complete.
    unknown = list(report.smp_left_subscribed)
    outcomes = Counter(
        (o.channel, o.payment_method or "-", o.status + (f"/{o.failure_code}" if o.failure_code else ""))
        for o in orders.values()
    )
    problems = run.problems + report.problems + unknown
    record(
        f"random_run-{count}",
        kind="randomised run through failing outside systems",
        seed=seed,
        orders=len(ids),
        seconds=round(settled - started),
        seconds_driving=round(driven - started),
        seconds_settling=round(settled - driven),
        statuses=dict(report.statuses),
        outcomes={" ".join(k): v for k, v in sorted(outcomes.items())},
        faults_injected=dict(run.faults),
        figures=dict(run.figures),
        unsettled_at_the_end=unsettled,
        counterexamples=problems,
        ok=not problems,
    )
    if problems:
        plan_of = {p.order_no: p for p in run.plans}
        for line in problems[:15]:
            plan = plan_of.get(line.split(" ", 1)[0])
            if plan is not None:
                print(line, "\n   ", plan, "\n   ", list(orders[plan.order_id].events.values_list("action", "reason")))
    assert run.faults, "no fault was injected"
    assert problems == [], f"seed {seed}: " + report.summary() + "\n" + "\n".join(problems[:20])
    assert len(ids) == count
