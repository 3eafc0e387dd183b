"""Property 2: a race has one winner, round after round, on PostgreSQL.

Each round puts one order on the line and releases two or three threads
(each with its own connection) behind a barrier: the customer's payment or
reply against the deadline handler, a cancel against the payment, two
workers (and the sweep) provisioning the same order. Whoever wins, the
order ends one way, its history tells one story, and the ledger agrees with
what the simulated provider, SMP and CRM hold (tests.reliability.support.check_money).
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from django.conf import settings
from django.db.models import Count
from django.utils import timezone

from ipvas.errors import InvalidState
from ipvas.models import OutboxMessage
from lifecycle.due import deadlines_sweep, order_process_due
from lifecycle.paying import order_cancel
from lifecycle.payment_due import CLOSE_GRACE
from orders.constants import OrderStatus
from orders.models import Entitlement, Order, OrderEvent
from sandbox import faults
from sandbox import payments as sandbox_payments
from sandbox.models import SimSmpSubscription
from tests.reliability.support import (
    EPG,
    PHONES,
    TERMINAL,
    Lead,
    MoneyReport,
    Racers,
    balance,
    check_money,
    choose,
    client,
    make_rich,
    move_deadline,
    new_order,
    paid_notification,
    raised,
    record,
    run_due,
    said_success,
    size,
    sms_reply,
    trade_of,
)
from tests.support.concurrency import require_postgresql

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

ROUNDS = size(50, 500)


@pytest.fixture
def racers():
    """Three contenders, each on its own connection, for every round of a test."""
    threads = Racers(3)
    yield threads
    threads.close()


def settle_all(order_ids: list[int], *, passes: int = 6) -> None:
    """Run what is due; an order still waiting on a retry is made due (time travel) and run again."""
    for _ in range(passes):
        run_due()
        waiting = list(Order.objects.filter(pk__in=order_ids).exclude(status__in=TERMINAL))
        if not waiting:
            return
        for order in waiting:
            order = move_deadline(order, seconds_ago=5)
            order_process_due(order_id=order.pk, due_at=order.deadline_at)


def outcome_table(tally: Counter) -> dict[str, int]:
    return {" / ".join(k) if isinstance(k, tuple) else k: v for k, v in sorted(tally.items())}


def settle(name: str, kind: str, *, rounds: int, tally: Counter, wrong: list[str], order_ids: list[int]) -> MoneyReport:
    """The end of every race: check the money, record the figures, fail on a wrong outcome or a money problem."""
    report = check_money(order_ids)
    record(
        f"race-{name}-{rounds}",
        kind=kind,
        rounds=rounds,
        outcomes=outcome_table(tally),
        counterexamples=wrong + report.problems,
        ok=not (wrong or report.problems),
    )
    assert wrong == []
    assert report.problems == [], report.summary()
    return report


# --- the customer's payment against the QR deadline ------------------------------------------------

PAID_CLOSE_ANSWERS = "paid, the close finds it paid"
PAID_CLOSE_UNANSWERED = "paid, the provider never confirms the close"
PAYING_RACES_THE_CLOSE = "paying races the close"
QR_VARIANTS = (PAID_CLOSE_ANSWERS, PAID_CLOSE_UNANSWERED, PAYING_RACES_THE_CLOSE)
QR_OUTCOMES = {
    # The provider says it was paid: the money is kept and the product given.
    PAID_CLOSE_ANSWERS: {OrderStatus.COMPLETED},
    # The order expired without the provider's word: money that still comes is refunded.
    PAID_CLOSE_UNANSWERED: {OrderStatus.COMPLETED, OrderStatus.REFUNDED},
    # Closed first, the provider refuses the payment: nothing was taken.
    PAYING_RACES_THE_CLOSE: {OrderStatus.COMPLETED, OrderStatus.EXPIRED},
}


@pytest.mark.parametrize("rounds", ROUNDS)
def test_payment_notification_against_the_qr_deadline_has_one_winner(demo, racers, rounds):
    require_postgresql()
    order_ids: list[int] = []
    tally: Counter = Counter()
    wrong: list[str] = []
    lead = Lead(seed=rounds)
    for i in range(rounds):
        method = ("wechat_qr", "alipay_qr")[i % 2]
        variant = QR_VARIANTS[i % 3]
        order = new_order()
        run_due()
        order = choose(order, method)
        trade = trade_of(order)
        provider, out_trade_no = trade.provider, trade.out_trade_no
        delivery = None
        extra = {}
        if variant != PAYING_RACES_THE_CLOSE:
            delivery = paid_notification(sandbox_payments.pay_trade(provider, out_trade_no))
        if variant == PAID_CLOSE_UNANSWERED:
            faults.set_mode(provider, "down")
            window = timedelta(seconds=settings.PAYMENT_WINDOW_SECONDS)
            extra["status_changed_at"] = timezone.now() - window - CLOSE_GRACE - timedelta(seconds=5)
        order = move_deadline(order, **extra)

        def customer(delivery=delivery, provider=provider, out_trade_no=out_trade_no) -> str:
            if delivery is None:
                try:
                    trade = sandbox_payments.pay_trade(provider, out_trade_no)
                except sandbox_payments.SandboxRefusal:
                    return "payment refused by the provider"
                delivery = paid_notification(trade)
            response = delivery.post(client())
            return "success" if said_success(delivery, response) else f"HTTP {response.status_code}"

        def deadline(order=order) -> str:
            return order_process_due(order_id=order.pk, due_at=order.deadline_at)

        run = racers.run(customer, deadline, delays=lead.delays())
        assert run.errors == []
        said, did = run.results
        lead.learn(run.seconds)
        faults.set_mode(provider, "ok")
        run_due()  # provisioning, refunds, closing stray QR orders
        order.refresh_from_db()
        order_ids.append(order.pk)
        tally[(variant, order.status)] += 1
        if said not in ("success", "payment refused by the provider"):
            wrong.append(f"{order.order_no} ({variant}): the notification was answered {said}")
        if order.status not in QR_OUTCOMES[variant]:
            wrong.append(f"{order.order_no} ({variant}): ended {order.status} (deadline handler said {did})")

    settle(
        "payment_vs_qr_deadline",
        "race: payment notification vs QR deadline",
        rounds=rounds,
        tally=tally,
        wrong=wrong,
        order_ids=order_ids,
    )


# --- the SMS reply against the SMS deadline ----------------------------------------------------------


@pytest.mark.parametrize("rounds", ROUNDS)
def test_sms_yes_against_the_sms_deadline_has_one_winner(demo, racers, rounds):
    require_postgresql()
    make_rich()
    before = balance()
    order_ids: list[int] = []
    tally: Counter = Counter()
    wrong: list[str] = []
    lead = Lead(seed=rounds)
    for i in range(rounds):
        order = new_order()
        run_due()
        choose(order, "phone_bill_sms")
        run_due()  # the confirmation SMS goes out
        # The window is not over for the confirmation: the reply is in time, the deadline task early.
        delivery = sms_reply(PHONES["tv1001"], ("Y", "y", " Ｙ ")[i % 3])
        order = move_deadline(order)

        def reply(delivery=delivery) -> str:
            response = delivery.post(client())
            return response.json().get("outcome", "") if response.status_code == 200 else str(response.status_code)

        def deadline(order=order) -> str:
            return order_process_due(order_id=order.pk, due_at=order.deadline_at)

        run = racers.run(reply, deadline, delays=lead.delays())
        assert run.errors == []
        said, did = run.results
        lead.learn(run.seconds)
        run_due()
        order.refresh_from_db()
        order_ids.append(order.pk)
        tally[(f"reply {said}", f"deadline {did}", order.status)] += 1
        # Late, the reply finds the confirmation expired (none_pending) or its order expired (too_late).
        expected = {
            "confirmed": OrderStatus.COMPLETED,
            "none_pending": OrderStatus.EXPIRED,
            "too_late": OrderStatus.EXPIRED,
        }
        if expected.get(said) != order.status:
            wrong.append(f"{order.order_no}: the reply was {said!r}, the deadline {did!r}, the order {order.status}")

    completed = Order.objects.filter(pk__in=order_ids, status=OrderStatus.COMPLETED)
    charged = before - balance()
    expected_charge = sum(completed.values_list("amount_fen", flat=True))
    if charged != expected_charge:
        wrong.append(f"the SMP charged {charged} fen for {completed.count()} orders worth {expected_charge}")
    settle(
        "sms_vs_sms_deadline",
        "race: SMS 'Y' vs SMS deadline",
        rounds=rounds,
        tally=tally,
        wrong=wrong,
        order_ids=order_ids,
    )
    assert set(Order.objects.filter(pk__in=order_ids).values_list("status", flat=True)) <= {
        OrderStatus.COMPLETED,
        OrderStatus.EXPIRED,
    }


# --- cancel against the payment ----------------------------------------------------------------------


@pytest.mark.parametrize("rounds", ROUNDS)
def test_cancel_against_the_payment_has_one_winner(demo, racers, rounds):
    require_postgresql()
    order_ids: list[int] = []
    tally: Counter = Counter()
    wrong: list[str] = []
    lead = Lead(seed=rounds)
    for i in range(rounds):
        method = ("wechat_qr", "alipay_qr")[i % 2]
        pays_in_the_race = i % 4 >= 2
        order = new_order()
        run_due()
        order = choose(order, method)
        trade = trade_of(order)
        provider, out_trade_no = trade.provider, trade.out_trade_no
        delivery = None if pays_in_the_race else paid_notification(sandbox_payments.pay_trade(provider, out_trade_no))

        def customer(delivery=delivery, provider=provider, out_trade_no=out_trade_no) -> str:
            if delivery is None:
                delivery = paid_notification(sandbox_payments.pay_trade(provider, out_trade_no))
            response = delivery.post(client())
            return "success" if said_success(delivery, response) else f"HTTP {response.status_code}"

        def cancel(order=order) -> str:
            answer = raised(InvalidState)(lambda: order_cancel(order_id=order.pk, actor=EPG))()
            return "refused" if isinstance(answer, InvalidState) else "cancelled"

        run = racers.run(customer, cancel, delays=lead.delays())
        assert run.errors == []
        said, cancelled = run.results
        lead.learn(run.seconds)
        run_due()  # provisioning, or the refund of money that came for a cancelled order
        order.refresh_from_db()
        order_ids.append(order.pk)
        tally[(f"cancel {cancelled}", order.status)] += 1
        expected = {"refused": OrderStatus.COMPLETED, "cancelled": OrderStatus.REFUNDED}[cancelled]
        if said != "success" or order.status != expected:
            wrong.append(f"{order.order_no}: cancel {cancelled}, notification answered {said}, order {order.status}")

    settle("cancel_vs_payment", "race: cancel vs payment", rounds=rounds, tally=tally, wrong=wrong, order_ids=order_ids)


# --- two workers (and the sweep) provisioning one order ---------------------------------------------


@pytest.mark.parametrize("rounds", ROUNDS)
def test_two_workers_provisioning_one_order_subscribe_it_once(demo, racers, rounds):
    require_postgresql()
    make_rich()
    orders = [new_order() for _ in range(rounds)]
    run_due()  # every pre-check
    for order in orders:
        choose(order, "phone_bill")  # straight to provisioning: the SMP's subscribe is the charge
    order_ids = [o.pk for o in orders]
    # Their provisioning tasks are "in the broker": the threads below are the workers that got them.
    OutboxMessage.objects.filter(relayed_at__isnull=True).update(relayed_at=timezone.now())
    Order.objects.filter(pk__in=order_ids).update(deadline_at=timezone.now() + timedelta(hours=1))
    before = balance()
    tally: Counter = Counter()
    for i, order in enumerate(orders):
        slow = i % 5 == 4  # the SMP subscribes, then answers too late for the worker holding the claim
        if slow:
            faults.set_mode("smp", "slow")
        order = move_deadline(order, seconds_ago=5)  # overdue for the sweep too

        def worker(order=order) -> str:
            return order_process_due(order_id=order.pk, due_at=order.deadline_at)

        run = racers.run(worker, worker, deadlines_sweep)
        assert run.errors == []
        results = run.results
        if slow:
            faults.set_mode("smp", "ok")
        tally[("slow SMP" if slow else "SMP answers", *sorted(results[:2]))] += 1
    settle_all(order_ids)

    per_order = {
        "SMP subscriptions": Counter(
            dict(
                SimSmpSubscription.objects.filter(order_no__in=[o.order_no for o in orders])
                .values_list("order_no")
                .annotate(n=Count("pk"))
                .values_list("order_no", "n")
            )
        ),
        "entitlements": Counter(
            dict(
                Entitlement.objects.filter(order_id__in=order_ids)
                .values_list("order_id")
                .annotate(n=Count("pk"))
                .values_list("order_id", "n")
            )
        ),
        "complete events": Counter(
            dict(
                OrderEvent.objects.filter(order_id__in=order_ids, action="complete")
                .values_list("order_id")
                .annotate(n=Count("pk"))
                .values_list("order_id", "n")
            )
        ),
    }
    wrong = [
        f"{what}: {dict(counts)}"
        for what, counts in per_order.items()
        if len(counts) != rounds or set(counts.values()) != {1}
    ]
    charged = before - balance()
    worth = sum(o.amount_fen for o in orders)
    if charged != worth:
        wrong.append(f"the SMP charged {charged} fen for {rounds} orders worth {worth}")
    report = settle(
        "two_workers_provisioning",
        "race: two workers (and the sweep) provisioning one order",
        rounds=rounds,
        tally=tally,
        wrong=wrong,
        order_ids=order_ids,
    )
    assert report.statuses == Counter({OrderStatus.COMPLETED: rounds})
