"""Automatic refunds (issue #5, point 1): money taken for an order the SMP cannot provision goes back.

Orders are driven from the outside: the EPG API with a real key, the clerk's
pages for cash, the sandbox's payers and phones. The SMP, WeChat Pay, Alipay
and the CRM are the sandbox's simulators, broken with their fault modes or by
changing their own records, and ``settle()`` stands in for the Celery worker;
time travel decides what is due.
"""

from __future__ import annotations

from datetime import timedelta
from itertools import pairwise
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.test import Client
from django.utils import timezone

from adapters.providers.types import ProviderUnavailable, RefundRequest, RefundResult, RefundState
from billing.models import LedgerEntry, Payment, PaymentNotification, Refund, WorkItem
from ipvas.actors import Actor, ActorKind
from ipvas.errors import InvalidState
from ipvas.models import OutboxMessage
from lifecycle import manual
from lifecycle.refunds import refund_settled
from orders.models import Entitlement, Order
from sandbox import faults
from sandbox import payments as sandbox_payments
from sandbox.models import (
    SimCrmActivity,
    SimRefund,
    SimSmpAccount,
    SimSmpProduct,
    SimSmpSubscription,
    SimTrade,
    SimTradeStatus,
)
from tests import quick
from tests.channels_crm.support import new_order, pay, sign_in
from tests.epg_api.support import Api, new_api_key, provider_pay, settle, sms_reply

NOW = "2026-11-25 12:00:00+08:00"
PROVIDER = {"wechat_qr": "wechatpay", "alipay_qr": "alipay"}
QR_METHODS = ["wechat_qr", "alipay_qr"]
OPS = Actor(ActorKind.ADMIN, "ops-lead")
PRICE = 2500  # VIP-MONTH, fen
BALANCE = 100000  # tv1001's phone-bill balance in the demo data, fen


# --- set-up ---------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _quick(monkeypatch, settings):
    """Speed only, behaviour unchanged (tests/quick.py)."""
    quick.speed_up(monkeypatch, settings)


@pytest.fixture
def api(demo) -> Api:
    return Api(new_api_key("EPG refund tests"))


@pytest.fixture
def frozen(time_machine):
    time_machine.move_to(NOW, tick=False)
    return time_machine


# --- the outside world ------------------------------------------------------------------------


def smp_stops_selling(product_code: str = "VIP-MONTH") -> None:
    """The SMP refuses to subscribe the product from now on (product_not_available), not a fault."""
    SimSmpProduct.objects.filter(code=f"SMP-{product_code}").update(active=False)


def qr_shown(api: Api, method: str) -> tuple[str, str]:
    """An order of tv1001 for VIP-MONTH past its pre-check, its QR code shown: (order_no, out_trade_no)."""
    order = api.place("tv1001", "VIP-MONTH")
    assert order["status"] == "awaiting_payment", order
    shown = api.pay_with(order["order_no"], method)
    return shown["order_no"], shown["payment"]["out_trade_no"]


def customer_pays(method: str, out_trade_no: str) -> None:
    answer = provider_pay(method, out_trade_no)
    assert answer["delivered"] is True, answer


def balance(tv_account: str = "tv1001") -> int:
    return SimSmpAccount.objects.get(tv_account=tv_account).balance_fen


def trade_of(method: str, out_trade_no: str) -> SimTrade:
    return SimTrade.objects.get(provider=PROVIDER[method], out_trade_no=out_trade_no)


def not_provisioned_and_its_refund_refused(api: Api) -> tuple[Order, SimTrade]:
    """A WeChat Pay order the SMP will not provision, whose refund WeChat Pay refuses (it no longer has the trade
    as paid): the order waits in provisioning for a person."""
    no, out_trade_no = qr_shown(api, "wechat_qr")
    smp_stops_selling()
    customer_pays("wechat_qr", out_trade_no)
    trade = trade_of("wechat_qr", out_trade_no)
    SimTrade.objects.filter(pk=trade.pk).update(status=SimTradeStatus.NOT_PAID)
    settle()
    return Order.objects.get(order_no=no), trade


def next_due(task_name: str) -> Any:
    message = (
        OutboxMessage.objects.filter(relayed_at__isnull=True, task_name=task_name).order_by("due_at", "pk").first()
    )
    assert message is not None, f"no {task_name} waiting"
    return message.due_at


def post_wechat(body: bytes, headers: dict[str, str]):
    return Client().post("/billing/notify/wechatpay/", data=body, content_type="application/json", headers=headers)


# --- what the books say -----------------------------------------------------------------------


def ledger(order: Order) -> list[tuple[str, int]]:
    return list(LedgerEntry.objects.filter(order=order).order_by("pk").values_list("kind", "amount_fen"))


def ledger_keys(order: Order) -> list[str]:
    return list(LedgerEntry.objects.filter(order=order).order_by("pk").values_list("idempotency_key", flat=True))


def entitled(api: Api) -> bool:
    response = api.entitlements(tv_account="tv1001", product_code="VIP-MONTH")
    assert response.status_code == 200, response.content
    return response.json()["entitled"]


def world(order: Order) -> dict[str, Any]:
    """Everything a repeated task could wrongly change."""
    return {
        "order": Order.objects.values_list("status", "failure_code").get(pk=order.pk),
        "ledger": ledger(order),
        "refunds": sorted(Refund.objects.values_list("out_refund_no", "status", "amount_fen")),
        "provider_refunds": sorted(SimRefund.objects.values_list("out_refund_no", "amount_fen")),
        "work": sorted(WorkItem.objects.values_list("kind", "resolved_at")),
        "subscriptions": SimSmpSubscription.objects.count(),
        "entitlements": Entitlement.objects.count(),
    }


def assert_refunded_once(order: Order, method: str, out_trade_no: str) -> None:
    """The order's whole payment went back through its provider once, and the books say so."""
    order.refresh_from_db()
    assert (order.status, order.failure_code) == ("refunded", "provisioning_failed")
    assert order.deadline_at is None
    provider = PROVIDER[method]
    trade = trade_of(method, out_trade_no)
    sim_refund = SimRefund.objects.get()
    assert (sim_refund.provider, sim_refund.trade_id, sim_refund.amount_fen) == (provider, trade.pk, PRICE)
    assert trade.refunded_fen == PRICE
    refund = Refund.objects.get()
    assert (refund.status, refund.out_refund_no, refund.amount_fen, refund.provider_refund_id) == (
        "succeeded",
        sim_refund.out_refund_no,
        PRICE,
        sim_refund.refund_id,
    )
    assert ledger(order) == [("payment", PRICE), ("refund", -PRICE)]
    assert ledger_keys(order) == [
        f"{provider}:payment:{trade.transaction_id}",
        f"{provider}:refund:{refund.out_refund_no}",
    ]
    assert not Entitlement.objects.filter(order=order).exists()
    assert not SimSmpSubscription.objects.filter(order_no=order.order_no).exists()
    last = order.events.order_by("at", "pk").last()
    assert (last.from_status, last.to_status, last.action) == ("provisioning", "refunded", "refunded")


# --- QR payments: the SMP cannot provision ------------------------------------------------------


@pytest.mark.parametrize("method", QR_METHODS)
def test_paid_qr_order_the_smp_refuses_is_refunded_at_once(api, frozen, method):
    no, out_trade_no = qr_shown(api, method)
    smp_stops_selling()

    customer_pays(method, out_trade_no)
    ran = settle()

    order = Order.objects.get(order_no=no)
    assert ("lifecycle.tasks.provision_order", "refunding") in ran
    assert ("lifecycle.tasks.process_refund", "succeeded") in ran
    assert_refunded_once(order, method, out_trade_no)
    assert "product_not_available" in Refund.objects.get().reason
    seen = api.order(no)
    assert (seen["status"], seen["failure"]["code"], seen["entitlement"]) == ("refunded", "provisioning_failed", None)
    assert entitled(api) is False
    assert not WorkItem.objects.exists()

    # Every task and watch that is still scheduled, run later, changes nothing.
    before = world(order)
    frozen.shift(timedelta(hours=2))
    settle()
    assert world(order) == before


@pytest.mark.parametrize("method", QR_METHODS)
def test_paid_qr_order_the_smp_never_answers_is_refunded_at_the_provisioning_deadline(api, frozen, method):
    no, out_trade_no = qr_shown(api, method)
    faults.set_mode("smp", "down")

    customer_pays(method, out_trade_no)
    settle()

    order = Order.objects.get(order_no=no)
    assert order.status == "provisioning"
    cutoff = order.status_changed_at + timedelta(seconds=django_settings.PROVISIONING_DEADLINE_SECONDS)
    frozen.move_to(cutoff - timedelta(seconds=1))
    settle()
    order.refresh_from_db()
    assert order.status == "provisioning"  # still trying, the money still in
    assert order.events.filter(action="retry").count() >= 2
    assert not Refund.objects.exists() and not SimRefund.objects.exists()

    frozen.move_to(cutoff)
    settle()

    assert_refunded_once(order, method, out_trade_no)
    assert "deadline" in Refund.objects.get().reason
    assert entitled(api) is False


def test_refund_is_retried_with_backoff_while_wechat_pay_is_down_then_made_once(api, frozen):
    no, out_trade_no = qr_shown(api, "wechat_qr")
    smp_stops_selling()
    customer_pays("wechat_qr", out_trade_no)
    faults.set_mode("wechatpay", "down")

    settle()

    order = Order.objects.get(order_no=no)
    refund = Refund.objects.get()
    assert (refund.status, refund.attempts) == ("requested", 1)
    assert "down" in refund.last_error
    assert order.status == "provisioning"
    attempts_at = [timezone.now()]
    for _ in range(3):
        frozen.move_to(next_due("lifecycle.tasks.process_refund"))
        settle()
        attempts_at.append(timezone.now())
    gaps = [later - earlier for earlier, later in pairwise(attempts_at)]
    assert gaps == sorted(gaps) and len(set(gaps)) == len(gaps), gaps  # each wait longer than the last
    refund.refresh_from_db()
    order.refresh_from_db()
    assert (refund.status, refund.attempts, order.status) == ("requested", 4, "provisioning")
    assert not SimRefund.objects.exists() and not WorkItem.objects.exists()

    faults.set_mode("wechatpay", "ok")
    frozen.move_to(next_due("lifecycle.tasks.process_refund"))
    settle()

    assert_refunded_once(order, "wechat_qr", out_trade_no)
    before = world(order)
    frozen.shift(timedelta(hours=1))
    settle()
    assert world(order) == before


def test_a_ten_minute_wechat_pay_outage_is_ridden_out_without_a_person(api, frozen):
    no, out_trade_no = qr_shown(api, "wechat_qr")
    smp_stops_selling()
    customer_pays("wechat_qr", out_trade_no)
    faults.set_mode("wechatpay", "down")
    settle()
    outage_ends = timezone.now() + timedelta(minutes=10)
    while True:
        due = OutboxMessage.objects.filter(relayed_at__isnull=True).order_by("due_at").values_list("due_at", flat=True)
        if not due or due[0] > outage_ends:
            break
        frozen.move_to(due[0])
        settle()

    assert Refund.objects.get().status == "requested"
    assert not WorkItem.objects.exists()
    faults.set_mode("wechatpay", "ok")
    frozen.move_to(next_due("lifecycle.tasks.process_refund"))
    settle()
    assert_refunded_once(Order.objects.get(order_no=no), "wechat_qr", out_trade_no)


def test_a_refund_whose_answers_are_all_lost_is_never_taken_for_failed_nor_made_twice(api, frozen, settings):
    """Every call of an admin's partial refund reaches WeChat Pay, which refunds it, but no answer comes back
    (slow: after the client's timeout). It is not marked failed after the last of its quick retries (the
    money may be back already), so another refund cannot be started on top of it; a person is told, it is
    asked again every few minutes, and when WeChat Pay answers it is recorded once."""
    no, out_trade_no = qr_shown(api, "wechat_qr")
    customer_pays("wechat_qr", out_trade_no)
    settle()
    order = Order.objects.get(order_no=no)
    assert order.status == "completed"
    admin = Actor(ActorKind.ADMIN, "ops-lead")
    settings.WECHATPAY_TIMEOUT_SECONDS, settings.SIMULATOR_SLOW_SECONDS = 0.05, 0.1  # each answer comes too late
    faults.set_mode("wechatpay", "slow")
    manual.refund_by_admin(order_id=order.pk, reason="goodwill", actor=admin, amount_fen=1000)
    settle()
    for _ in range(20):  # the quick retries and more: about an hour
        frozen.move_to(next_due("lifecycle.tasks.process_refund"))
        settle()

    refund = Refund.objects.get()
    assert refund.status in ("requested", "processing") and refund.attempts > 12
    assert trade_of("wechat_qr", out_trade_no).refunded_fen == 1000  # WeChat Pay did refund, unheard
    assert "no answer" in WorkItem.objects.get(order=order, kind="refund_failed").detail
    again = manual.refund_by_admin(order_id=order.pk, reason="goodwill, again", actor=admin, amount_fen=1000)
    assert again == "already_under_way" and Refund.objects.count() == 1

    faults.set_mode("wechatpay", "ok")
    frozen.move_to(next_due("lifecycle.tasks.process_refund"))
    settle()
    refund.refresh_from_db()
    assert refund.status == "succeeded"
    assert trade_of("wechat_qr", out_trade_no).refunded_fen == 1000
    assert ledger(order) == [("payment", PRICE), ("refund", -1000)]


def test_retry_refund_does_not_revive_a_failed_refund_that_a_later_one_replaced(api, frozen):
    """An admin's partial refund is refused and fails (a person is asked); the admin refunds the same amount
    again, which goes through. Retrying the failed one from the work queue would pay it out a second time:
    it is refused, and the item can only be resolved."""
    no, out_trade_no = qr_shown(api, "wechat_qr")
    customer_pays("wechat_qr", out_trade_no)
    settle()
    order = Order.objects.get(order_no=no)
    admin = Actor(ActorKind.ADMIN, "ops-lead")
    trade = trade_of("wechat_qr", out_trade_no)
    SimTrade.objects.filter(pk=trade.pk).update(status=SimTradeStatus.NOT_PAID)  # WeChat Pay refuses for now
    manual.refund_by_admin(order_id=order.pk, reason="goodwill", actor=admin, amount_fen=1000)
    settle()
    item = WorkItem.objects.get(order=order, kind="refund_failed")
    SimTrade.objects.filter(pk=trade.pk).update(status=SimTradeStatus.PAID)
    assert manual.refund_by_admin(order_id=order.pk, reason="goodwill", actor=admin, amount_fen=1000) == (
        "provider_refund"
    )
    settle()
    assert list(Refund.objects.order_by("pk").values_list("status", flat=True)) == ["failed", "succeeded"]

    with pytest.raises(InvalidState):
        manual.work_item_retry_refund(item_id=item.pk, note="retry", actor=admin)
    settle()
    assert trade_of("wechat_qr", out_trade_no).refunded_fen == 1000
    assert ledger(order) == [("payment", PRICE), ("refund", -1000)]
    manual.work_item_resolve(item_id=item.pk, note="refunded by the second refund", actor=admin)


def test_an_order_paid_twice_that_cannot_be_provisioned_gives_back_both_payments(api, frozen):
    """The customer switches from Alipay to WeChat Pay and back; the first Alipay code is still payable (a
    precreated code never scanned has no trade to close at Alipay: it lives until its expiry) and pays the
    order, the second pays it twice and is refunded. The SMP then cannot provision: the payment that paid for
    the order goes back too. (It used to refund the newest payment, refunded already: refused every sweep, the
    order stuck in provisioning with the customer's money.)"""
    no = api.place("tv1001", "VIP-MONTH")["order_no"]
    first = api.pay_with(no, "alipay_qr")["payment"]["out_trade_no"]
    api.pay_with(no, "wechat_qr")
    second = api.pay_with(no, "alipay_qr")["payment"]["out_trade_no"]
    SimTrade.objects.filter(provider="alipay", out_trade_no=first).update(status=SimTradeStatus.NOT_PAID)
    smp_stops_selling()
    faults.set_mode("smp", "down")  # no answer at all for now: the order waits in provisioning
    customer_pays("alipay_qr", first)
    customer_pays("alipay_qr", second)
    settle()
    order = Order.objects.get(order_no=no)
    assert order.status == "provisioning"
    assert trade_of("alipay_qr", second).refunded_fen == PRICE  # paid twice: back at once

    faults.set_mode("smp", "ok")  # it answers now: the product is not sold any more
    frozen.shift(timedelta(seconds=django_settings.PROVISIONING_DEADLINE_SECONDS))
    for _ in range(3):
        frozen.shift(timedelta(minutes=2))
        settle()

    order.refresh_from_db()
    assert (order.status, order.failure_code) == ("refunded", "provisioning_failed")
    assert trade_of("alipay_qr", first).refunded_fen == PRICE
    assert trade_of("alipay_qr", second).refunded_fen == PRICE
    assert sorted(ledger(order)) == [("payment", PRICE), ("payment", PRICE), ("refund", -PRICE), ("refund", -PRICE)]
    assert not WorkItem.objects.filter(order=order).exists()


def test_retry_refund_asks_again_only_for_the_latest_refund_of_a_payment(api, frozen):
    """An admin's partial refund is refused; the admin asks for it again, refused too (both on one item).
    Retrying from the work queue asks once more for the latest only: the money goes back once."""
    no, out_trade_no = qr_shown(api, "wechat_qr")
    customer_pays("wechat_qr", out_trade_no)
    settle()
    order = Order.objects.get(order_no=no)
    trade = trade_of("wechat_qr", out_trade_no)
    SimTrade.objects.filter(pk=trade.pk).update(status=SimTradeStatus.NOT_PAID)  # WeChat Pay refuses for now
    for _ in range(2):
        assert manual.refund_by_admin(order_id=order.pk, reason="goodwill", actor=OPS, amount_fen=1000) == (
            "provider_refund"
        )
        settle()
    assert list(Refund.objects.order_by("pk").values_list("status", flat=True)) == ["failed", "failed"]
    item = WorkItem.objects.get(order=order, kind="refund_failed")
    SimTrade.objects.filter(pk=trade.pk).update(status=SimTradeStatus.PAID)

    assert manual.work_item_retry_refund(item_id=item.pk, note="WeChat Pay repaired", actor=OPS) == 1
    settle()

    assert list(Refund.objects.order_by("pk").values_list("status", flat=True)) == ["failed", "succeeded"]
    assert trade_of("wechat_qr", out_trade_no).refunded_fen == 1000
    assert ledger(order) == [("payment", PRICE), ("refund", -1000)]


def test_retry_refund_does_not_revive_a_refund_that_retried_provisioning_overruled(api, frozen):
    """The SMP refuses, the automatic refund is refused too; ops repair the SMP and retry provisioning: the
    order completes. Later a goodwill refund is refused. Retrying it asks for the goodwill amount only, not the
    whole payment that the first, overruled refund asked for (which would end the product too)."""
    order, trade = not_provisioned_and_its_refund_refused(api)
    first_item = WorkItem.objects.get(order=order, kind="refund_failed")
    SimSmpProduct.objects.filter(code="SMP-VIP-MONTH").update(active=True)
    manual.work_item_retry_provisioning(item_id=first_item.pk, note="SMP repaired", actor=OPS)
    settle()
    order.refresh_from_db()
    assert order.status == "completed"
    manual.refund_by_admin(order_id=order.pk, reason="goodwill", actor=OPS, amount_fen=1000)
    settle()
    second_item = WorkItem.objects.get(order=order, kind="refund_failed", resolved_at=None)
    SimTrade.objects.filter(pk=trade.pk).update(status=SimTradeStatus.PAID)

    assert manual.work_item_retry_refund(item_id=second_item.pk, note="WeChat Pay repaired", actor=OPS) == 1
    settle()

    order.refresh_from_db()
    assert order.status == "completed" and order.entitlement.revoked_at is None
    assert trade_of("wechat_qr", trade.out_trade_no).refunded_fen == 1000
    assert ledger(order) == [("payment", PRICE), ("refund", -1000)]


@pytest.mark.parametrize("action", ["retry_refund", "paid_back_by_hand"])
def test_a_refund_of_another_payment_that_retried_provisioning_overruled_stays_overruled(api, frozen, action):
    """The order is paid by a second Alipay code; the SMP refuses, its refund is refused too; ops repair the SMP
    and retry provisioning: the order completes, overruling that refund. The first code, still payable, pays
    the order twice; that refund is refused too. Acting on its item gives back that payment only, never the one
    the completed order stands on."""
    no = api.place("tv1001", "VIP-MONTH")["order_no"]
    first = api.pay_with(no, "alipay_qr")["payment"]["out_trade_no"]
    api.pay_with(no, "wechat_qr")
    second = api.pay_with(no, "alipay_qr")["payment"]["out_trade_no"]
    SimTrade.objects.filter(provider="alipay", out_trade_no=first).update(status=SimTradeStatus.NOT_PAID)
    smp_stops_selling()
    customer_pays("alipay_qr", second)
    SimTrade.objects.filter(provider="alipay", out_trade_no=second).update(status=SimTradeStatus.NOT_PAID)
    settle()
    order = Order.objects.get(order_no=no)
    overruled = WorkItem.objects.get(order=order, kind="refund_failed")
    frozen.shift(timedelta(seconds=20))  # ops repair the SMP a moment later
    SimSmpProduct.objects.filter(code="SMP-VIP-MONTH").update(active=True)
    manual.work_item_retry_provisioning(item_id=overruled.pk, note="SMP repaired", actor=OPS)
    settle()
    order.refresh_from_db()
    assert order.status == "completed"
    SimTrade.objects.filter(provider="alipay", out_trade_no=second).update(status=SimTradeStatus.PAID)
    frozen.shift(timedelta(seconds=10))
    customer_pays("alipay_qr", first)  # paid twice
    SimTrade.objects.filter(provider="alipay", out_trade_no=first).update(status=SimTradeStatus.NOT_PAID)
    settle()
    item = WorkItem.objects.get(order=order, kind="refund_failed", resolved_at=None)
    SimTrade.objects.filter(provider="alipay", out_trade_no=first).update(status=SimTradeStatus.PAID)

    if action == "retry_refund":
        assert manual.work_item_retry_refund(item_id=item.pk, note="Alipay repaired", actor=OPS) == 1
    else:
        assert manual.work_item_paid_back_by_hand(item_id=item.pk, note="bank transfer", actor=OPS) == PRICE
    settle()

    order.refresh_from_db()
    assert order.status == "completed" and order.entitlement.revoked_at is None
    assert trade_of("alipay_qr", second).refunded_fen == 0  # the payment the order stands on
    assert sorted(amount for _kind, amount in ledger(order)) == [-PRICE, PRICE, PRICE]


def test_refund_the_provider_refuses_waits_for_a_person_then_retry_refund_returns_the_money(api, frozen):
    order, trade = not_provisioned_and_its_refund_refused(api)
    out_trade_no = trade.out_trade_no

    refund = Refund.objects.get()
    assert refund.status == "failed" and "TRADE_NOT_PAID" in refund.last_error
    item = WorkItem.objects.get()
    assert (item.order_id, item.kind, item.resolved_at) == (order.pk, "refund_failed", None)
    assert order.status == "provisioning"
    assert ledger(order) == [("payment", PRICE)]
    # Waiting for the person: no second refund, no second item, never completed nor refunded.
    for wait in (timedelta(minutes=1), timedelta(minutes=15), timedelta(hours=1), timedelta(hours=3)):
        frozen.shift(wait)
        settle()
        order.refresh_from_db()
        assert order.status == "provisioning", wait
        assert list(Refund.objects.values_list("status", flat=True)) == ["failed"], wait
        assert not SimRefund.objects.exists(), wait
        assert list(WorkItem.objects.values_list("pk", "resolved_at")) == [(item.pk, None)], wait
        assert ledger(order) == [("payment", PRICE)], wait

    # Support repairs the trade at WeChat Pay, then the person retries the refund.
    SimTrade.objects.filter(pk=trade.pk).update(status=SimTradeStatus.PAID)
    assert manual.work_item_retry_refund(item_id=item.pk, note="WeChat Pay support repaired the trade", actor=OPS) == 1
    settle()

    assert_refunded_once(order, "wechat_qr", out_trade_no)
    item.refresh_from_db()
    assert item.resolved_at is not None and item.resolved_by == "admin:ops-lead"
    event = order.events.get(action="work_retried_refund")
    assert (event.actor_kind, event.actor_id, event.reason) == (
        "admin",
        "ops-lead",
        "WeChat Pay support repaired the trade",
    )


# --- WeChat Pay's refund notifications ------------------------------------------------------------


@pytest.fixture
def refund_processing(api, frozen) -> tuple[Order, Refund, SimRefund]:
    """A refund WeChat Pay accepted and answered PROCESSING; it says how it ended by notification."""
    no, out_trade_no = qr_shown(api, "wechat_qr")
    smp_stops_selling()
    customer_pays("wechat_qr", out_trade_no)
    faults.set_mode("wechatpay", "down")  # our own calls to WeChat Pay do not get through meanwhile
    settle()
    refund = Refund.objects.get()
    sandbox_payments.refund(
        "wechatpay",
        RefundRequest(
            out_trade_no=out_trade_no,
            out_refund_no=refund.out_refund_no,
            amount_fen=refund.amount_fen,
            total_fen=PRICE,
            reason=refund.reason,
        ),
    )
    sim_refund = SimRefund.objects.get()
    outcome = refund_settled(  # WeChat Pay's answer: the refund's own chain (retrying meanwhile) goes on
        refund_id=refund.pk,
        result=RefundResult(RefundState.PROCESSING, refund.out_refund_no, refund_id=sim_refund.refund_id),
        ask_again=False,
    )
    assert outcome == "processing"
    refund.refresh_from_db()
    assert refund.status == "processing"
    order = Order.objects.get(order_no=no)
    assert order.status == "provisioning" and ledger(order) == [("payment", PRICE)]
    return order, refund, sim_refund


def test_refund_success_notification_settles_a_refund_left_processing_once(refund_processing):
    order, refund, sim_refund = refund_processing
    body, headers = sandbox_payments.wechatpay_refund_notification(sim_refund)

    response = post_wechat(body, headers)
    settle()

    assert response.status_code == 204, response.content
    refund.refresh_from_db()
    assert (refund.status, refund.provider_refund_id) == ("succeeded", sim_refund.refund_id)
    order.refresh_from_db()
    assert (order.status, order.failure_code) == ("refunded", "provisioning_failed")
    assert ledger(order) == [("payment", PRICE), ("refund", -PRICE)]
    assert PaymentNotification.objects.filter(outcome="refund succeeded").count() == 1

    # The same delivery again, then another notification of the same refund: answered, not applied.
    assert post_wechat(body, headers).status_code == 204
    again_body, again_headers = sandbox_payments.wechatpay_refund_notification(sim_refund)
    assert post_wechat(again_body, again_headers).status_code == 204
    faults.set_mode("wechatpay", "ok")
    settle()

    assert ledger(order) == [("payment", PRICE), ("refund", -PRICE)]
    assert LedgerEntry.objects.filter(kind="refund").count() == 1
    assert SimRefund.objects.count() == 1
    assert Order.objects.get(pk=order.pk).status == "refunded"
    assert sorted(PaymentNotification.objects.exclude(payment=None).values_list("outcome", flat=True)) == [
        "confirmed",
        "refund duplicate",
        "refund succeeded",
    ]


def test_refund_abnormal_notification_fails_the_refund_and_asks_a_person(refund_processing):
    order, refund, sim_refund = refund_processing
    body, headers = sandbox_payments.wechatpay_refund_notification(sim_refund, status="ABNORMAL")

    assert post_wechat(body, headers).status_code == 204
    settle()

    refund.refresh_from_db()
    order.refresh_from_db()
    assert refund.status == "failed"
    assert WorkItem.objects.get().kind == "refund_failed"
    assert order.status == "provisioning"
    assert ledger(order) == [("payment", PRICE)]


def test_a_refund_processing_for_days_is_asked_less_often_and_told_to_a_person(refund_processing, frozen, monkeypatch):
    """WeChat Pay answers PROCESSING for days (a bank card's refund): asked again with a growing wait, at most
    every hour, not every 30 s; after three days a person is told, and it is still asked."""
    from sandbox.simulators.providers import SimulatedProvider

    order, refund, _sim_refund = refund_processing
    asked = []

    def still_processing(self, out_refund_no, *, out_trade_no):  # type: ignore[no-untyped-def]
        asked.append(timezone.now())
        return RefundResult(RefundState.PROCESSING, out_refund_no)

    monkeypatch.setattr(SimulatedProvider, "query_refund", still_processing)
    faults.set_mode("wechatpay", "ok")
    start = timezone.now()
    while timezone.now() < start + timedelta(days=4):
        frozen.shift(timedelta(minutes=10))
        settle()

    gaps = [later - earlier for earlier, later in pairwise(asked)]
    assert 96 <= len(asked) <= 110  # hourly once the wait reached its cap, not 11,520 times
    assert timedelta(hours=1) <= gaps[-1] and max(gaps) <= timedelta(hours=1, minutes=10)
    refund.refresh_from_db()
    assert refund.status == "processing"
    item = WorkItem.objects.get(order=order, kind="refund_failed")
    assert item.detail == f"{refund.out_refund_no}: still processing at wechatpay after 3 days; asked again every hour"
    manual.work_item_resolve(item_id=item.pk, note="WeChat Pay says the bank takes a week", actor=OPS)
    for _ in range(18):  # three hours more: resolved, it stays resolved
        frozen.shift(timedelta(minutes=10))
        settle()
    assert not WorkItem.objects.filter(order=order, resolved_at=None).exists()


def test_a_refund_processing_whose_question_gets_no_answer_is_asked_again(api, frozen, monkeypatch):
    """A refund an admin asked for is PROCESSING at WeChat Pay; one question about it gets no answer (WeChat Pay
    down for a minute). It is asked again, and settles when WeChat Pay says it is done: the order ends refunded.
    (A guard against a second chain of questions used to take the retry for one and end the only chain.)"""
    from sandbox.simulators.providers import SimulatedProvider

    no, out_trade_no = qr_shown(api, "wechat_qr")
    customer_pays("wechat_qr", out_trade_no)
    settle()
    order = Order.objects.get(order_no=no)
    refund_call, query = SimulatedProvider.refund, SimulatedProvider.query_refund
    answers = ["processing", "down"]

    def accepted(self, request):  # type: ignore[no-untyped-def]
        refund_call(self, request)
        return RefundResult(RefundState.PROCESSING, request.out_refund_no)

    def later(self, out_refund_no, *, out_trade_no):  # type: ignore[no-untyped-def]
        answer = answers.pop(0) if answers else "done"
        if answer == "down":
            raise ProviderUnavailable("wechatpay did not answer")
        if answer == "processing":
            return RefundResult(RefundState.PROCESSING, out_refund_no)
        return query(self, out_refund_no, out_trade_no=out_trade_no)

    monkeypatch.setattr(SimulatedProvider, "refund", accepted)
    monkeypatch.setattr(SimulatedProvider, "query_refund", later)
    assert manual.refund_by_admin(order_id=order.pk, reason="customer asked", actor=OPS) == "provider_refund"
    for _ in range(30):
        frozen.shift(timedelta(seconds=30))
        settle()

    order.refresh_from_db()
    assert Refund.objects.get().status == "succeeded"
    assert order.status == "refunded"
    assert ledger(order) == [("payment", PRICE), ("refund", -PRICE)]


def test_a_refunded_orders_subscription_the_smp_will_not_end_is_told_to_a_person(api, frozen, monkeypatch):
    from adapters.smp import UnsubscribeResult
    from sandbox.simulators.smp import SimulatedSmp

    no, out_trade_no = qr_shown(api, "wechat_qr")
    customer_pays("wechat_qr", out_trade_no)
    settle()
    order = Order.objects.get(order_no=no)
    assert order.status == "completed"
    monkeypatch.setattr(SimulatedSmp, "unsubscribe", lambda self, **kwargs: UnsubscribeResult(ok=False))

    manual.refund_by_admin(order_id=order.pk, reason="customer asked", actor=OPS)
    settle()

    order.refresh_from_db()
    assert order.status == "refunded"
    item = WorkItem.objects.get(order=order, kind="provider_disagrees")
    assert "the SMP refused to end the subscription" in item.detail


# --- phone bill: the SMP is the charge -----------------------------------------------------------------


@pytest.mark.parametrize("method", ["phone_bill", "phone_bill_sms"])
def test_phone_bill_order_the_smp_refuses_fails_and_its_reversal_changes_no_balance(api, frozen, method):
    no = api.place("tv1001", "VIP-MONTH")["order_no"]
    smp_stops_selling()

    api.pay_with(no, method)
    if method == "phone_bill_sms":
        settle()
        sms_reply("13800000001", "Y")
    ran = settle()

    order = Order.objects.get(order_no=no)
    assert (order.status, order.failure_code) == ("failed", "provisioning_failed")
    assert ("lifecycle.tasks.reverse_phone_bill", "nothing_to_reverse") in ran
    assert balance() == BALANCE
    assert ledger(order) == []
    assert Payment.objects.get(order=order).status == "failed"
    assert not SimSmpSubscription.objects.exists() and not Entitlement.objects.exists()
    assert not Refund.objects.exists() and not WorkItem.objects.exists()
    assert api.order(no)["failure"]["code"] == "provisioning_failed"


def test_phone_bill_charged_but_the_answer_lost_is_reversed_after_the_deadline(api, frozen, settings):
    settings.SMP_SIMULATOR_SLOW_SECONDS = 0.3
    settings.SMP_TIMEOUT_SECONDS = 0.1
    no = api.place("tv1001", "VIP-MONTH")["order_no"]
    faults.set_mode("smp", "slow")  # it does the work, then answers after we stopped listening

    api.pay_with(no, "phone_bill")
    settle()

    order = Order.objects.get(order_no=no)
    subscription = SimSmpSubscription.objects.get(order_no=no)
    assert (subscription.charge, subscription.amount_fen) == ("phone_bill", PRICE)
    assert balance() == BALANCE - PRICE  # charged at the SMP...
    assert order.status == "provisioning" and ledger(order) == []  # ...but we never heard it

    frozen.move_to(order.status_changed_at + timedelta(seconds=django_settings.PROVISIONING_DEADLINE_SECONDS))
    ran = settle()

    order.refresh_from_db()
    assert (order.status, order.failure_code) == ("failed", "provisioning_failed")
    assert ("lifecycle.tasks.reverse_phone_bill", "retry") in ran  # the reversal's answer was lost too
    assert balance() == BALANCE
    faults.set_mode("smp", "ok")
    frozen.move_to(next_due("lifecycle.tasks.reverse_phone_bill"))
    ran = settle()

    assert ran == [("lifecycle.tasks.reverse_phone_bill", "reversed")]
    assert balance() == BALANCE
    subscription.refresh_from_db()
    assert subscription.cancelled_at is not None and subscription.reversed_fen == PRICE
    assert ledger(order) == [("payment", PRICE), ("reversal", -PRICE)]
    assert ledger_keys(order) == [f"smp:charge:{no}", f"smp:reversal:{no}"]
    order.refresh_from_db()
    assert (order.status, order.failure_code) == ("failed", "provisioning_failed")
    assert not Entitlement.objects.exists()

    # The reversal run again reverses nothing more.
    from lifecycle.tasks import reverse_phone_bill

    assert reverse_phone_bill.apply(kwargs={"order_id": order.pk}).get() == "reversed"
    assert balance() == BALANCE
    assert ledger(order) == [("payment", PRICE), ("reversal", -PRICE)]


# --- cash: the money is in the store's till --------------------------------------------------------------


def test_cash_sale_the_smp_refuses_fails_then_cash_paid_back_reverses_the_crm_activity(demo, frozen):
    clerk = sign_in()
    order = new_order(clerk, "13800000001")
    smp_stops_selling()

    assert pay(clerk, order, "cash", cash_received="yes").status_code == 302
    settle()

    order.refresh_from_db()
    assert (order.status, order.failure_code) == ("failed", "provisioning_failed")
    activity = SimCrmActivity.objects.get(order_no=order.order_no)
    assert activity.reversed_at is None
    assert ledger(order) == [("payment", PRICE)]
    assert ledger_keys(order) == [f"crm:cash:{order.order_no}"]
    item = WorkItem.objects.get()
    assert (item.order_id, item.kind, item.resolved_at) == (order.pk, "cash_payback", None)
    assert not SimSmpSubscription.objects.exists() and not Entitlement.objects.exists()
    assert not Refund.objects.exists()

    manual.work_item_resolve(
        item_id=item.pk, note="store paid 25.00 back at the counter", actor=OPS, cash_paid_back=True
    )
    settle()

    assert ledger(order) == [("payment", PRICE), ("cash_payback", -PRICE)]
    assert ledger_keys(order) == [f"crm:cash:{order.order_no}", f"crm:payback:{order.order_no}"]
    activity.refresh_from_db()
    assert activity.reversed_at is not None
    item.refresh_from_db()
    assert item.resolved_at is not None and item.resolution.startswith("cash_paid_back:")
    order.refresh_from_db()
    assert (order.status, order.failure_code) == ("failed", "provisioning_failed")  # it failed; not a refund
    event = order.events.get(action="work_cash_paid_back")
    assert (event.actor_kind, event.actor_id) == ("admin", "ops-lead")

    with pytest.raises(InvalidState):
        manual.work_item_resolve(item_id=item.pk, note="again", actor=OPS, cash_paid_back=True)
    assert ledger(order) == [("payment", PRICE), ("cash_payback", -PRICE)]
