"""The QR payment choice while the order moves on: something happens while the provider opens the trade.

The choice locks the order, writes the payment, calls the provider outside any transaction, then shows the
code. Whatever ended the order meanwhile (a cancel, the idle deadline, the payment window during a switch),
the trade the provider has just opened must not stay payable, the answer is the contract's 409 for an order
in another status (docs/interfaces.md §2), and no payment is left "being created" for ever. A switch whose
close of the earlier trade got no answer must not show that code again.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from billing.models import Payment
from lifecycle import paying
from orders.models import OrderEvent
from sandbox import faults
from sandbox.models import SimTrade
from tests.epg_api.support import provider_pay, settle, when

NOW = "2026-11-25 12:00:20+08:00"


@pytest.fixture
def frozen(time_machine):
    time_machine.move_to(NOW, tick=False)
    return time_machine


@pytest.fixture
def while_creating(monkeypatch):
    """``while_creating(hook)``: the next QR create at a provider runs ``hook`` first, then goes through."""

    def install(hook) -> None:
        real = paying.get_provider
        pending = [hook]

        class Hooked:
            def __init__(self, provider):
                self.provider = provider

            def create(self, request):
                if pending:
                    pending.pop()()
                return self.provider.create(request)

            def __getattr__(self, name):
                return getattr(self.provider, name)

        monkeypatch.setattr(paying, "get_provider", lambda name: Hooked(real(name)))

    return install


def trade_of(payment: Payment) -> SimTrade:
    return SimTrade.objects.get(provider=payment.provider, out_trade_no=payment.out_trade_no)


def test_a_cancel_while_the_qr_is_created_answers_409_and_closes_the_trade(api, frozen, while_creating):
    no = api.place("tv1001", "VIP-MONTH")["order_no"]

    def the_customer_cancels():
        assert api.cancel(no).status_code == 200
        settle()  # the cancel's close runs before the provider has the trade: it closes nothing

    while_creating(the_customer_cancels)
    answer = api.choose(no, "wechat_qr")
    settle()

    assert answer.status_code == 409 and answer.json()["error"]["code"] == "invalid_state", answer.content
    payment = Payment.objects.get(order__order_no=no)
    assert payment.status == "closed"
    assert trade_of(payment).status == "CLOSED"  # the trade opened after the cancel is not payable
    assert provider_pay("wechat_qr", payment.out_trade_no)["delivered"] is False


def test_the_idle_deadline_while_the_qr_is_created_leaves_nothing_open(api, frozen, while_creating):
    no = api.place("tv1001", "VIP-MONTH")["order_no"]
    frozen.shift(timedelta(seconds=899))

    def the_idle_deadline_passes():
        frozen.shift(timedelta(seconds=1))
        settle()

    while_creating(the_idle_deadline_passes)
    answer = api.choose(no, "wechat_qr")
    settle()

    assert answer.status_code == 409, answer.content
    assert api.order(no)["status"] == "expired"
    payment = Payment.objects.get(order__order_no=no)
    assert payment.status == "closed"  # not "being created" for ever
    assert trade_of(payment).status == "CLOSED"


def test_the_window_ending_during_a_switch_closes_the_new_trade_and_says_why(api, frozen, while_creating):
    no = api.place("tv1001", "VIP-MONTH")["order_no"]
    wechat = api.pay_with(no, "wechat_qr")["payment"]
    end = when(wechat["expires_at"])
    frozen.move_to(end - timedelta(seconds=1))

    def the_window_ends():
        frozen.move_to(end)
        settle()

    while_creating(the_window_ends)
    answer = api.choose(no, "alipay_qr")
    settle()

    assert answer.status_code == 409, answer.content
    assert (api.order(no)["status"], api.order(no)["failure"]["code"]) == ("expired", "payment_timeout")
    alipay = Payment.objects.get(order__order_no=no, provider="alipay")
    assert alipay.status in ("closed", "failed") and trade_of(alipay).status == "CLOSED"
    expired = OrderEvent.objects.get(order__order_no=no, to_status="expired")
    assert expired.reason == "the payment window ended while the QR code was being switched"


def test_a_switch_whose_close_got_no_answer_never_shows_that_code_again(api, frozen, settings):
    settings.SIMULATOR_SLOW_SECONDS = 0.2
    settings.WECHATPAY_TIMEOUT_SECONDS = 0.1
    no = api.place("tv1001", "VIP-MONTH")["order_no"]
    wechat = api.pay_with(no, "wechat_qr")["payment"]
    faults.set_mode("wechatpay", "slow")  # WeChat Pay closes the trade; its answer comes too late
    assert api.choose(no, "alipay_qr").status_code == 503
    faults.set_mode("wechatpay", "ok")

    again = api.choose(no, "wechat_qr")

    assert again.status_code == 200, again.content
    shown = again.json()["payment"]
    assert shown["out_trade_no"] != wechat["out_trade_no"]  # a new trade, not the closed one
    assert provider_pay("wechat_qr", shown["out_trade_no"])["delivered"] is True
    settle()
    assert api.order(no)["status"] == "completed"
    assert trade_of(Payment.objects.get(provider="wechatpay", out_trade_no=wechat["out_trade_no"])).status == "CLOSED"
