"""The real WeChat Pay and Alipay clients charging payment codes (docs/interfaces.md §10) through their SDKs,
against the sandbox's HTTP fakes: WeChat Pay APIv3 付款码支付 (``/v3/pay/transactions/codepay``, query,
``…/reverse``) and Alipay's ``alipay.trade.pay`` (scene ``bar_code``), ``.query`` and ``.cancel``.

The fakes verify the clients' signatures (SHA256withRSA with the merchant key; RSA2 with the app key) and
sign their answers as the providers do (the platform key; the Alipay key), with keys made for this run
in a temporary SANDBOX_DIR; the SDKs verify them. Fixtures are tests/billing/test_provider_clients.py's.
"""

from __future__ import annotations

import itertools
import random
import time
import uuid
from datetime import timedelta

import pytest
import requests

from adapters.providers.types import CodePaymentRequest, CodeState, ProviderUnavailable, TradeState
from sandbox import faults, payments
from sandbox.models import SimTrade, SimTradeStatus
from tests.billing import test_provider_clients as clients

# The served fakes and the clients of test_provider_clients.py, as fixtures here too.
sandbox_keys, stranger_key, gateways = clients.sandbox_keys, clients.stranger_key, clients.gateways
provider, client, make_client = clients.provider, clients.client, clients.make_client

pytestmark = pytest.mark.django_db(transaction=True)

HEAD = {"wechatpay": "134567890123", "alipay": "281234567890"}
# Two digits of a code in turn from a random start: codes made one after another never repeat (drawn at random,
# two of them were the same one time in a hundred, and a test of "another code" charged the same one twice).
_MIDDLE = itertools.count(random.randrange(100))


def sandbox_code(provider: str, ending: str) -> str:
    """A fresh 18-digit sandbox code of ``provider`` ending ``ending`` (a real code is never reused)."""
    return f"{HEAD[provider]}{next(_MIDDLE) % 100:02d}{ending}"


def charge(provider: str, ending: str, amount_fen: int = 2500, *, out_trade_no: str = "") -> CodePaymentRequest:
    return CodePaymentRequest(
        out_trade_no=out_trade_no or "T" + uuid.uuid4().hex[:20].upper(),
        auth_code=sandbox_code(provider, ending),
        amount_fen=amount_fen,
        description="VIP 影视会员 · 包月",
        store_code="NX-YC-001",
    )


def test_paid_at_once(provider, client):
    request = charge(provider, "0000", 6800)

    result = client.pay_code(request)

    trade = SimTrade.objects.get(provider=provider, out_trade_no=request.out_trade_no)
    assert (result.state, result.out_trade_no, result.amount_fen) == (CodeState.PAID, request.out_trade_no, 6800)
    assert result.transaction_id == trade.transaction_id and result.paid_at is not None
    assert abs(result.paid_at - trade.paid_at) < timedelta(seconds=1)
    assert (trade.auth_code, trade.amount_fen, trade.status) == (request.auth_code, 6800, SimTradeStatus.PAID)
    queried = client.query(request.out_trade_no)
    assert (queried.state, queried.transaction_id, queried.amount_fen) == (TradeState.PAID, trade.transaction_id, 6800)
    assert client.pay_code(request).state == CodeState.PAID  # the same request again: the same answer
    assert SimTrade.objects.filter(provider=provider).count() == 1


def test_confirming_then_paid_10_s_later(provider, client, time_machine):
    request = charge(provider, "0001")

    result = client.pay_code(request)

    assert result.state == CodeState.CONFIRMING
    assert client.query(request.out_trade_no).state == TradeState.NOT_PAID
    time_machine.move_to(time.time() + 10.5, tick=True)  # the live server's clock moves too
    paid = client.query(request.out_trade_no)
    assert (paid.state, paid.amount_fen) == (TradeState.PAID, 2500)


@pytest.mark.parametrize(
    ("ending", "codes"),
    [("0002", {"wechatpay": "TRADE_ERROR", "alipay": "ACQ.PAYMENT_FAIL"}),
     ("0004", {"wechatpay": "NOT_ENOUGH", "alipay": "ACQ.BUYER_BALANCE_NOT_ENOUGH"}),
     ("9999", {"wechatpay": "AUTH_CODE_INVALID", "alipay": "ACQ.PAYMENT_AUTH_CODE_INVALID"})],
)  # fmt: skip
def test_declined(provider, client, ending, codes):
    result = client.pay_code(charge(provider, ending))

    assert (result.state, result.code) == (CodeState.DECLINED, codes[provider])
    assert result.message


def test_no_answer_times_out_and_the_trade_is_reversed(provider, settings, gateways):
    settings.WECHATPAY_TIMEOUT_SECONDS = 1
    settings.ALIPAY_TIMEOUT_SECONDS = 1
    client = make_client(provider)
    request = charge(provider, "0003")

    started = time.monotonic()
    with pytest.raises(ProviderUnavailable):
        client.pay_code(request)
    assert time.monotonic() - started < 5

    assert client.query(request.out_trade_no).state == TradeState.NOT_PAID  # the provider has it, waiting
    reversed_ = client.reverse(request.out_trade_no)
    assert (reversed_.reversed, reversed_.again, reversed_.refunded, reversed_.not_found) == (True, False, False, False)
    assert client.query(request.out_trade_no).state == TradeState.CLOSED
    assert client.reverse(request.out_trade_no).reversed is True  # reversing twice is harmless
    with pytest.raises(payments.SandboxRefusal):
        payments.pay_trade(provider, request.out_trade_no)


def test_reversing_a_paid_trade_gives_the_money_back_and_nothing_is_harmless(provider, client):
    request = charge(provider, "0000")
    client.pay_code(request)

    result = client.reverse(request.out_trade_no)

    assert result.reversed is True
    if provider == "alipay":
        assert result.refunded is True  # Alipay says so (action "refund"); WeChat Pay does not say
    trade = SimTrade.objects.get(provider=provider, out_trade_no=request.out_trade_no)
    assert (trade.status, trade.refunded_fen) == (SimTradeStatus.REVOKED, 2500)
    nothing = client.reverse("T" + uuid.uuid4().hex[:20].upper())
    assert (nothing.reversed, nothing.not_found) == (True, True)  # nothing there (yet): nothing payable now
    assert result.not_found is False


def test_another_code_under_the_same_number_is_refused(provider, client):
    request = charge(provider, "0000")
    client.pay_code(request)
    other = CodePaymentRequest(
        out_trade_no=request.out_trade_no,
        auth_code=sandbox_code(provider, "0000"),
        amount_fen=2500,
        description="again",
    )

    assert client.pay_code(other).state == CodeState.DECLINED
    assert SimTrade.objects.get(provider=provider, out_trade_no=request.out_trade_no).auth_code == request.auth_code


def test_a_provider_that_is_down_or_flaky_is_unavailable(provider, client):
    request = charge(provider, "0001")
    client.pay_code(request)
    faults.set_mode(provider, "down")

    with pytest.raises(ProviderUnavailable):
        client.pay_code(charge(provider, "0000"))
    with pytest.raises(ProviderUnavailable):
        client.reverse(request.out_trade_no)

    faults.set_mode(provider, "flaky")
    with pytest.raises(ProviderUnavailable):
        client.reverse(request.out_trade_no)
    assert client.reverse(request.out_trade_no).reversed is True
    faults.set_mode(provider, "ok")
    assert not SimTrade.objects.filter(provider=provider, status=SimTradeStatus.PAID).exists()


def test_requests_signed_with_another_key_charge_nothing(provider, settings, stranger_key):
    if provider == "wechatpay":
        settings.WECHATPAY_MERCHANT_PRIVATE_KEY = stranger_key[0]
    else:
        settings.ALIPAY_APP_PRIVATE_KEY = stranger_key[0]
    impostor = make_client(provider)

    # The provider refuses the signature: our configuration's fault, and nothing was charged.
    with pytest.raises(ProviderUnavailable):
        impostor.pay_code(charge(provider, "0000"))
    with pytest.raises(ProviderUnavailable):
        impostor.reverse("T1234567890")
    assert not SimTrade.objects.exists()


def test_answers_signed_with_another_key_are_not_believed(provider, settings, stranger_key, gateways):
    if provider == "wechatpay":
        settings.WECHATPAY_PLATFORM_PUBLIC_KEY = stranger_key[1]
    else:
        settings.ALIPAY_PUBLIC_KEY = stranger_key[1]
    fooled = make_client(provider)
    request = charge(provider, "0000")

    # The fake charged the code, but an answer we cannot verify is no answer: the outcome is unknown
    # (the lifecycle queries, then reverses).
    with pytest.raises(ProviderUnavailable):
        fooled.pay_code(request)
    assert SimTrade.objects.get(provider=provider, out_trade_no=request.out_trade_no).status == SimTradeStatus.PAID
    with pytest.raises(ProviderUnavailable):  # done at the provider, but not believed: it is asked again
        fooled.reverse(request.out_trade_no)
    assert SimTrade.objects.get(provider=provider, out_trade_no=request.out_trade_no).status == SimTradeStatus.REVOKED


def test_the_wechat_fake_refuses_an_unsigned_payment_code(gateways):
    response = requests.post(
        f"{gateways}/sandbox/wechatpay/fake/v3/pay/transactions/codepay",
        json={"appid": "wx8888888888888888", "mchid": "1900000001", "payer": {"auth_code": "134567890123450000"}},
        timeout=5,
    )

    assert response.status_code == 401 and response.json()["code"] == "SIGN_ERROR"
    assert response.headers["Wechatpay-Signature"]
    assert not SimTrade.objects.exists()
