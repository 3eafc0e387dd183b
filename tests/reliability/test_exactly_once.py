"""Property 1: exactly one effect per notification, reply and cash confirmation, however often it comes.

The same signed WeChat Pay or Alipay notification is delivered again and
again, in a row and at once from 50 threads (each with its own PostgreSQL
connection, through Django's whole request handler); the same signed SMS
reply likewise; and 50 clerks' clicks confirm the same cash sale at once.
Each must have one effect (one ledger entry, one confirmation, one SMP
subscription) and every delivery must be answered as a success, so that the
sender stops retrying.
"""

from __future__ import annotations

from collections import Counter

import pytest

from billing.models import LedgerEntry, Payment, PaymentNotification, SmsConfirmation, SmsInbound
from ipvas.errors import InvalidState
from orders.constants import OrderStatus
from orders.models import Entitlement, Order, OrderEvent
from sandbox import payments as sandbox_payments
from sandbox.models import SimCrmActivity, SimSmpSubscription
from tests.reliability.support import (
    PHONES,
    Delivery,
    balance,
    choose,
    client,
    make_rich,
    new_order,
    paid_notification,
    race,
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

AT_ONCE = 50


def qr_order_paid_at_the_provider(method: str) -> tuple[Order, Delivery]:
    """An EPG order whose QR code the customer paid: the provider's notification is ready to go."""
    order = new_order()
    run_due()  # the pre-check
    order = choose(order, method)
    trade = trade_of(order)
    trade = sandbox_payments.pay_trade(trade.provider, trade.out_trade_no)
    return order, paid_notification(trade)


def effects(order: Order) -> dict[str, object]:
    order.refresh_from_db()
    return {
        "status": order.status,
        "ledger entries": LedgerEntry.objects.filter(order=order).count(),
        "ledger net": sum(LedgerEntry.objects.filter(order=order).values_list("amount_fen", flat=True)),
        "payment_confirmed events": OrderEvent.objects.filter(order=order, action="payment_confirmed").count(),
        "complete events": OrderEvent.objects.filter(order=order, action="complete").count(),
        "SMP subscriptions": SimSmpSubscription.objects.filter(order_no=order.order_no).count(),
        "entitlements": Entitlement.objects.filter(order=order).count(),
    }


def one_effect(order: Order) -> dict[str, object]:
    return {
        "status": OrderStatus.COMPLETED,
        "ledger entries": 1,
        "ledger net": order.amount_fen,
        "payment_confirmed events": 1,
        "complete events": 1,
        "SMP subscriptions": 1,
        "entitlements": 1,
    }


@pytest.mark.parametrize("method", ["wechat_qr", "alipay_qr"])
@pytest.mark.parametrize("times", size(100, 1000))
def test_a_notification_replayed_in_a_row_has_one_effect(demo, method, times):
    require_postgresql()
    order, delivery = qr_order_paid_at_the_provider(method)
    via = client()
    answers: Counter = Counter()
    for i in range(times):
        answers[said_success(delivery, delivery.post(via))] += 1
        if i % 25 == 24:
            run_due()  # the worker provisions between replays: later ones find the order completed
    run_due()

    got = effects(order)
    record(
        f"exactly_once-replayed-{method}-{times}",
        kind="notifications replayed in a row",
        delivered=times,
        answered_success=answers[True],
        effects=got,
        ok=got == one_effect(order) and answers[True] == times,
    )
    assert answers == Counter({True: times})
    assert got == one_effect(order)
    assert PaymentNotification.objects.filter(payment__order=order).count() == 1


@pytest.mark.parametrize("method", ["wechat_qr", "alipay_qr"])
@pytest.mark.parametrize("rounds", size(1, 10))
def test_a_notification_delivered_50_times_at_once_has_one_effect(demo, method, rounds):
    require_postgresql()
    wrong: list[str] = []
    successes = 0
    for _ in range(rounds):
        order, delivery = qr_order_paid_at_the_provider(method)
        run = race(*[lambda d=delivery: d.post(client()) for _ in range(AT_ONCE)])
        assert run.errors == []
        responses = run.results
        successes += sum(said_success(delivery, r) for r in responses)
        run_due()
        got = effects(order)
        if got != one_effect(order):
            wrong.append(f"{order.order_no}: {got}")
        if not all(said_success(delivery, r) for r in responses):
            wrong.append(f"{order.order_no}: answers {Counter((r.status_code, r.content[:40]) for r in responses)}")

    record(
        f"exactly_once-concurrent-{method}-{rounds}",
        kind="notifications delivered at once",
        delivered=rounds * AT_ONCE,
        answered_success=successes,
        counterexamples=wrong,
        ok=not wrong,
    )
    assert wrong == []


@pytest.mark.parametrize("rounds", size(1, 10))
def test_an_sms_reply_delivered_50_times_at_once_confirms_once(demo, rounds):
    require_postgresql()
    make_rich()
    wrong: list[str] = []
    for _ in range(rounds):
        order = new_order()
        run_due()
        choose(order, "phone_bill_sms")
        run_due()  # the confirmation SMS goes out
        before = balance()
        delivery = sms_reply(PHONES["tv1001"], "Y")
        run = race(*[lambda d=delivery: d.post(client()) for _ in range(AT_ONCE)])
        assert run.errors == []
        responses = run.results
        outcomes = Counter(r.json().get("outcome") if r.status_code == 200 else r.status_code for r in responses)
        run_due()

        got = effects(order)
        charged = before - balance()
        if outcomes != Counter({"confirmed": 1, "duplicate": AT_ONCE - 1}):
            wrong.append(f"{order.order_no}: answers {dict(outcomes)}")
        if got != one_effect(order) or charged != order.amount_fen:
            wrong.append(f"{order.order_no}: {got}, phone bill charged {charged}")
        if SmsConfirmation.objects.filter(order=order, status="confirmed").count() != 1:
            wrong.append(f"{order.order_no}: not one confirmed confirmation")

    record(
        f"exactly_once-sms-{rounds}",
        kind="SMS replies delivered at once",
        delivered=rounds * AT_ONCE,
        inbound_rows=SmsInbound.objects.count(),
        counterexamples=wrong,
        ok=not wrong,
    )
    assert wrong == []
    assert SmsInbound.objects.count() == rounds


@pytest.mark.parametrize("rounds", size(1, 10))
def test_a_cash_sale_confirmed_50_times_at_once_is_taken_once(demo, rounds):
    require_postgresql()
    wrong: list[str] = []
    for _ in range(rounds):
        order = new_order(channel="crm")
        run_due()  # the pre-check by mobile number
        run = race(*[raised(InvalidState)(lambda o=order: choose(o, "cash")) for _ in range(AT_ONCE)])
        assert run.errors == []
        answers = run.results
        run_due()  # the CRM activity, then provisioning on the marketing account

        accepted = sum(isinstance(a, Order) for a in answers)
        refused = sum(isinstance(a, InvalidState) for a in answers)
        got = effects(order)
        seen = {
            "accepted": accepted,
            "refused": refused,
            "payments": Payment.objects.filter(order=order).count(),
            "CRM activities": SimCrmActivity.objects.filter(order_no=order.order_no).count(),
            "cash in the ledger": list(
                LedgerEntry.objects.filter(order=order).values_list("idempotency_key", "amount_fen")
            ),
        }
        expected = {
            "accepted": 1,
            "refused": AT_ONCE - 1,
            "payments": 1,
            "CRM activities": 1,
            "cash in the ledger": [(f"crm:cash:{order.order_no}", order.amount_fen)],
        }
        if seen != expected or got != one_effect(order):
            wrong.append(f"{order.order_no}: {seen} {got}")

    record(
        f"exactly_once-cash-{rounds}",
        kind="cash confirmations at once",
        delivered=rounds * AT_ONCE,
        counterexamples=wrong,
        ok=not wrong,
    )
    assert wrong == []
