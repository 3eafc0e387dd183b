"""Money paid twice for one order (an earlier QR code paid just before its close, and the current one): the
second payment goes back by itself ("paid twice"), while the order completes with the first. Found by a review
of the back office (2026-12-06), each test failing on the code before:

* the duplicate's refund refused by the provider could be neither retried nor recorded paid back by hand once
  the order had completed (lifecycle.manual._standing took only refunds asked since the order's last change
  of status; it now drops only those that retrying provisioning by hand overruled);
* an admin's refund of the order while the duplicate's refund was under way answered "already under way" and
  started nothing (refund_by_admin now refunds the payments not being refunded already).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from billing.models import LedgerEntry, Refund, WorkItem
from ipvas.actors import Actor, ActorKind
from lifecycle import manual
from orders.models import Order
from sandbox import faults
from sandbox import payments as sandbox_payments
from sandbox.models import SimRefund, SimTrade, SimTradeStatus
from tests import quick
from tests.epg_api.support import Api, new_api_key, provider_pay, settle

NOW = "2026-11-25 12:00:00+08:00"
PRICE = 2500
OPS = Actor(ActorKind.ADMIN, "ops-lead")


@pytest.fixture(autouse=True)
def _quick(monkeypatch, settings):
    quick.speed_up(monkeypatch, settings)


@pytest.fixture
def frozen(time_machine):
    time_machine.move_to(NOW, tick=False)
    return time_machine


def ledger(order: Order) -> list[tuple[str, int]]:
    return list(LedgerEntry.objects.filter(order=order).order_by("pk").values_list("kind", "amount_fen"))


def paid_twice_refund_of_the_second_refused(frozen) -> tuple[Order, WorkItem, str]:
    api = Api(new_api_key("review office"))
    no = api.place("tv1001", "VIP-MONTH")["order_no"]
    first = api.pay_with(no, "wechat_qr")["payment"]
    api.pay_with(no, "alipay_qr")  # closes the first WeChat code...
    again = api.pay_with(no, "wechat_qr")["payment"]  # ...and shows a new one
    # The first code had been paid just before the close reached WeChat Pay.
    SimTrade.objects.filter(provider="wechatpay", out_trade_no=first["out_trade_no"]).update(
        status=SimTradeStatus.PAID, paid_at=timezone.now()
    )
    body, headers = sandbox_payments.wechatpay_notification(
        SimTrade.objects.get(provider="wechatpay", out_trade_no=first["out_trade_no"])
    )
    assert (
        Client().post("/billing/notify/wechatpay/", data=body, content_type="application/json", headers=headers)
    ).status_code == 204
    frozen.shift(timedelta(seconds=5))
    provider_pay("wechat_qr", again["out_trade_no"])  # the new code is paid too: "paid twice"
    # WeChat Pay refuses the refund of the second payment (as the work-queue tests make it refuse).
    SimTrade.objects.filter(provider="wechatpay", out_trade_no=again["out_trade_no"]).update(
        status=SimTradeStatus.NOT_PAID
    )
    frozen.shift(timedelta(seconds=1))  # the worker takes the provisioning a moment later
    settle()
    frozen.shift(timedelta(minutes=2))
    settle()
    order = Order.objects.get(order_no=no)
    assert order.status == "completed", (order.status, order.failure_code)
    item = WorkItem.objects.get(order=order, kind="refund_failed", resolved_at=None)
    assert Refund.objects.get(order=order).status == "failed"
    assert ledger(order) == [("payment", PRICE), ("payment", PRICE)]  # the duplicate is still held
    return order, item, again["out_trade_no"]


def test_retrying_the_failed_refund_of_a_duplicate_payment_gives_it_back(demo, frozen):
    order, item, second = paid_twice_refund_of_the_second_refused(frozen)
    # The provider takes refunds again.
    SimTrade.objects.filter(provider="wechatpay", out_trade_no=second).update(status=SimTradeStatus.PAID)

    retried = manual.work_item_retry_refund(item_id=item.pk, note="merchant account topped up", actor=OPS)
    settle()

    assert retried == 1
    assert ledger(order) == [("payment", PRICE), ("payment", PRICE), ("refund", -PRICE)]
    assert SimRefund.objects.filter(trade__out_trade_no=second).count() == 1
    order.refresh_from_db()
    assert order.status == "completed"


def test_recording_the_duplicate_paid_back_by_hand_books_it(demo, frozen):
    order, item, _ = paid_twice_refund_of_the_second_refused(frozen)

    recorded = manual.work_item_paid_back_by_hand(item_id=item.pk, note="bank transfer 123", actor=OPS)

    assert recorded == PRICE
    assert ledger(order) == [("payment", PRICE), ("payment", PRICE), ("hand_payback", -PRICE)]


def net(order: Order) -> int:
    return sum(LedgerEntry.objects.filter(order=order).values_list("amount_fen", flat=True))


def test_refund_by_hand_is_not_swallowed_by_the_refund_of_a_duplicate_payment(demo, frozen):
    api = Api(new_api_key("review office"))
    no = api.place("tv1001", "VIP-MONTH")["order_no"]
    first = api.pay_with(no, "wechat_qr")["payment"]
    api.pay_with(no, "alipay_qr")
    again = api.pay_with(no, "wechat_qr")["payment"]
    SimTrade.objects.filter(provider="wechatpay", out_trade_no=first["out_trade_no"]).update(
        status=SimTradeStatus.PAID, paid_at=timezone.now()
    )
    body, headers = sandbox_payments.wechatpay_notification(
        SimTrade.objects.get(provider="wechatpay", out_trade_no=first["out_trade_no"])
    )
    assert (
        Client().post("/billing/notify/wechatpay/", data=body, content_type="application/json", headers=headers)
    ).status_code == 204
    frozen.shift(timedelta(seconds=5))
    provider_pay("wechat_qr", again["out_trade_no"])  # paid twice: the second payment is to go back
    faults.set_mode("wechatpay", "down")  # WeChat Pay does not answer that refund for a while
    settle()
    order = Order.objects.get(order_no=no)
    assert order.status == "completed"
    duplicate = Refund.objects.get(order=order)
    assert duplicate.status == "requested" and duplicate.payment.out_trade_no == again["out_trade_no"]

    started = manual.refund_by_admin(order_id=order.pk, reason="customer does not want it", actor=OPS)

    faults.set_mode("wechatpay", "ok")
    for _ in range(4):
        frozen.shift(timedelta(minutes=6))
        settle()
    order.refresh_from_db()
    # The admin's refund must give back the money the order still holds, or be refused: not be taken for
    # the duplicate's refund and do nothing.
    assert (started, net(order), order.status) == ("provider_refund", 0, "refunded")
