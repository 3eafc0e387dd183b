"""The real WeChat Pay and Alipay clients, through their SDKs, against the sandbox's HTTP fakes.

The fakes (sandbox/views/provider_fakes_*.py) check the clients' signatures,
answer from the simulated providers and sign their answers with the sandbox
keys, so that the SDKs verify them. The live server runs in a thread of this
process and reads settings at request time, so the ``settings`` fixture
reaches both sides. Every test needs a committed database flushed after it
(slow on PostgreSQL): each covers one behaviour fully, for both providers.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
import requests
from django.utils import timezone

from adapters.alipay.client import AlipayClient
from adapters.providers.types import (
    CloseResult,
    ProviderRefused,
    ProviderUnavailable,
    QrOrderRequest,
    RefundRequest,
    RefundState,
    TradeState,
)
from adapters.wechatpay.client import WechatPayClient
from ipvas.keyfiles import sandbox_private_key_pem, sandbox_public_key_pem
from sandbox import faults, payments
from sandbox.models import SimRefund, SimTrade
from sandbox.views import provider_fakes_wechatpay as wechat_fake
from tests.support.keys import made_key, private_pem, public_pem

PROVIDERS = ["wechatpay", "alipay"]
KEY_SETTINGS = [
    "WECHATPAY_MERCHANT_PRIVATE_KEY",
    "WECHATPAY_PLATFORM_PUBLIC_KEY",
    "WECHATPAY_APIV3_KEY",
    "ALIPAY_APP_PRIVATE_KEY",
    "ALIPAY_PUBLIC_KEY",
]


@pytest.fixture(scope="session")
def sandbox_keys(tmp_path_factory):
    """A SANDBOX_DIR for this run: the fakes' and the clients' keys are made here on first use."""
    return tmp_path_factory.mktemp("sandbox-keys")


@pytest.fixture(scope="session")
def stranger_key() -> tuple[str, str]:
    """Another RSA key pair (private, public PEM), nobody's in the sandbox."""
    key = made_key("a stranger to the sandbox")
    return private_pem(key), public_pem(key)


@pytest.fixture
def gateways(live_server, settings, sandbox_keys) -> str:
    settings.SANDBOX_DIR = sandbox_keys
    for name in KEY_SETTINGS:  # the sandbox's keys on both sides, whatever the environment says
        setattr(settings, name, "")
        setattr(settings, f"{name}_FILE", "")
    settings.WECHATPAY_GATEWAY = f"{live_server.url}/sandbox/wechatpay/fake"
    settings.ALIPAY_GATEWAY = f"{live_server.url}/sandbox/alipay/fake/gateway.do"
    return live_server.url


def make_client(provider: str) -> WechatPayClient | AlipayClient:
    return WechatPayClient() if provider == "wechatpay" else AlipayClient()


@pytest.fixture(params=PROVIDERS)
def provider(request, gateways) -> str:
    return request.param


@pytest.fixture
def client(provider) -> WechatPayClient | AlipayClient:
    return make_client(provider)


def out_no() -> str:
    return "T" + uuid.uuid4().hex[:20].upper()


def qr_order(amount_fen: int = 2500, *, out_trade_no: str | None = None) -> QrOrderRequest:
    return QrOrderRequest(
        out_trade_no=out_trade_no or out_no(),
        amount_fen=amount_fen,
        description="VIP 月卡",
        expires_at=(timezone.now() + timedelta(minutes=3)).replace(microsecond=0),
    )


def refund_of(order: QrOrderRequest, *, amount_fen: int | None = None, out_refund_no: str = "") -> RefundRequest:
    return RefundRequest(
        out_trade_no=order.out_trade_no,
        out_refund_no=out_refund_no or "R" + order.out_trade_no[1:],
        amount_fen=order.amount_fen if amount_fen is None else amount_fen,
        total_fen=order.amount_fen,
        reason="开通失败，退款",
    )


def paid_order(provider: str, client: Any, amount_fen: int = 2500) -> QrOrderRequest:
    order = qr_order(amount_fen)
    client.create(order)
    payments.pay_trade(provider, order.out_trade_no)
    return order


def to_second(value: datetime | None) -> datetime:
    assert value is not None and value.tzinfo is not None
    return value.replace(microsecond=0)


# --- the operations -----------------------------------------------------------------------


def test_create_query_and_pay(provider, client):
    order = qr_order(2500)

    code = client.create(order)

    expected_prefix = "weixin://wxpay/bizpayurl?pr=" if provider == "wechatpay" else "https://qr.alipay.com/"
    assert code.startswith(expected_prefix)
    trade = SimTrade.objects.get(provider=provider, out_trade_no=order.out_trade_no)
    assert (trade.amount_fen, trade.expires_at, trade.code_url) == (2500, order.expires_at, code)
    assert client.create(order) == code  # the same order again: the same QR code
    assert SimTrade.objects.filter(provider=provider, out_trade_no=order.out_trade_no).count() == 1

    waiting = client.query(order.out_trade_no)
    assert (waiting.state, waiting.out_trade_no, waiting.amount_fen) == (TradeState.NOT_PAID, order.out_trade_no, 2500)
    assert waiting.paid_at is None

    paid_trade = payments.pay_trade(provider, order.out_trade_no)
    paid = client.query(order.out_trade_no)

    assert (paid.state, paid.transaction_id, paid.amount_fen) == (TradeState.PAID, paid_trade.transaction_id, 2500)
    assert to_second(paid.paid_at) == to_second(paid_trade.paid_at)
    with pytest.raises(ProviderRefused):  # a paid order is not created again
        client.create(order)

    unknown = client.query(out_no())
    assert (unknown.state, unknown.transaction_id, unknown.amount_fen) == (TradeState.NOT_FOUND, "", 0)


def test_amounts_cross_as_yuan_and_fen_exactly(provider, client):
    for amount_fen in (1, 10, 99, 24800, 123456):
        order = qr_order(amount_fen)
        client.create(order)
        assert SimTrade.objects.get(provider=provider, out_trade_no=order.out_trade_no).amount_fen == amount_fen
        assert client.query(order.out_trade_no).amount_fen == amount_fen


def test_close(provider, client):
    unpaid = qr_order()
    client.create(unpaid)

    assert client.close(unpaid.out_trade_no) == CloseResult(closed=True)
    assert client.close(unpaid.out_trade_no) == CloseResult(closed=True)  # closing twice is harmless
    assert client.query(unpaid.out_trade_no).state == TradeState.CLOSED
    with pytest.raises(payments.SandboxRefusal):
        payments.pay_trade(provider, unpaid.out_trade_no)
    with pytest.raises(ProviderRefused):  # a closed order is not opened again
        client.create(unpaid)

    paid = paid_order(provider, client)
    assert client.close(paid.out_trade_no) == CloseResult(closed=False, already_paid=True)
    assert client.query(paid.out_trade_no).state == TradeState.PAID

    assert client.close(out_no()).closed is True  # nothing to close: nothing can be paid


def test_refund_once_under_its_number(provider, client):
    order = paid_order(provider, client, 2500)
    request = refund_of(order)

    first = client.refund(request)
    again = client.refund(request)

    assert (first.state, first.out_refund_no) == (RefundState.SUCCEEDED, request.out_refund_no)
    made = SimRefund.objects.get(provider=provider, out_refund_no=request.out_refund_no)
    assert made.amount_fen == 2500
    assert SimTrade.objects.get(provider=provider, out_trade_no=order.out_trade_no).refunded_fen == 2500
    if provider == "wechatpay":
        assert (first.refund_id, again.state, again.refund_id) == (
            made.refund_id,
            RefundState.SUCCEEDED,
            made.refund_id,
        )
    else:
        # Alipay answers a repeated request with fund_change "N": no money moved this time, so the
        # client cannot tell it from a pending refund and leaves it to the refund query.
        assert again.state == RefundState.PROCESSING
    assert SimRefund.objects.filter(provider=provider, trade__out_trade_no=order.out_trade_no).count() == 1

    queried = client.query_refund(request.out_refund_no, out_trade_no=order.out_trade_no)
    assert (queried.state, queried.out_refund_no) == (RefundState.SUCCEEDED, request.out_refund_no)
    if provider == "wechatpay":
        assert queried.refund_id == made.refund_id


def test_partial_refunds_add_up_and_no_more_than_was_paid(provider, client):
    order = paid_order(provider, client, 2500)

    assert client.refund(refund_of(order, amount_fen=1000, out_refund_no=out_no())).state == RefundState.SUCCEEDED
    assert client.refund(refund_of(order, amount_fen=1500, out_refund_no=out_no())).state == RefundState.SUCCEEDED
    with pytest.raises(ProviderRefused):
        client.refund(refund_of(order, amount_fen=1, out_refund_no=out_no()))

    assert SimTrade.objects.get(provider=provider, out_trade_no=order.out_trade_no).refunded_fen == 2500


def test_a_refunded_trade_is_queried_as_the_provider_answers_it(provider, client):
    """WeChat Pay queries a paid trade refunded in part or whole as 转入退款 (REFUND): paid, money gone back.
    Alipay keeps TRADE_SUCCESS after a partial refund and closes the trade (TRADE_CLOSED) after a full one."""
    order = paid_order(provider, client, 2500)
    assert (client.query(order.out_trade_no).state, client.query(order.out_trade_no).refunded) == (
        TradeState.PAID,
        False,
    )

    client.refund(refund_of(order, amount_fen=1000, out_refund_no=out_no()))
    part = client.query(order.out_trade_no)
    client.refund(refund_of(order, amount_fen=1500, out_refund_no=out_no()))
    whole = client.query(order.out_trade_no)

    if provider == "wechatpay":
        assert (part.state, part.refunded, part.raw["trade_state"]) == (TradeState.PAID, True, "REFUND")
        assert (whole.state, whole.refunded, whole.raw["trade_state"]) == (TradeState.PAID, True, "REFUND")
    else:
        assert (part.state, part.refunded, part.raw["trade_status"]) == (TradeState.PAID, False, "TRADE_SUCCESS")
        assert (whole.state, whole.raw["trade_status"]) == (TradeState.CLOSED, "TRADE_CLOSED")


def test_refunds_the_provider_refuses(provider, client):
    unpaid = qr_order()
    client.create(unpaid)
    with pytest.raises(ProviderRefused):
        client.refund(refund_of(unpaid))
    with pytest.raises(ProviderRefused):
        client.refund(refund_of(qr_order()))  # no such trade
    assert not SimRefund.objects.filter(provider=provider).exists()

    paid = paid_order(provider, client)
    never_asked = "R" + uuid.uuid4().hex[:20].upper()
    if provider == "wechatpay":
        with pytest.raises(ProviderRefused) as refused:
            client.query_refund(never_asked, out_trade_no=paid.out_trade_no)
        assert refused.value.code == "RESOURCE_NOT_EXISTS"
    else:
        # Alipay answers success with no refund in it, which the client reads as not done yet.
        assert client.query_refund(never_asked, out_trade_no=paid.out_trade_no).state == RefundState.PROCESSING


# --- faults -------------------------------------------------------------------------------


def test_a_provider_that_is_down_is_unavailable(provider, client):
    order = qr_order()
    client.create(order)
    faults.set_mode(provider, "down")

    for call in (
        lambda: client.create(qr_order()),
        lambda: client.query(order.out_trade_no),
        lambda: client.close(order.out_trade_no),
        lambda: client.refund(refund_of(order)),
        lambda: client.query_refund("R1", out_trade_no=order.out_trade_no),
    ):
        with pytest.raises(ProviderUnavailable):
            call()

    faults.set_mode(provider, "flaky")  # fails every other call, the first included
    with pytest.raises(ProviderUnavailable):
        client.query(order.out_trade_no)
    assert client.query(order.out_trade_no).state == TradeState.NOT_PAID

    faults.set_mode(provider, "ok")
    assert client.close(order.out_trade_no).closed is True


def test_a_gateway_that_refuses_connections_is_unavailable(provider, settings):
    settings.WECHATPAY_GATEWAY = "http://127.0.0.1:9"
    settings.ALIPAY_GATEWAY = "http://127.0.0.1:9/gateway.do"
    client = make_client(provider)

    with pytest.raises(ProviderUnavailable):
        client.create(qr_order())
    with pytest.raises(ProviderUnavailable):
        client.query(out_no())


def test_an_answer_signed_with_another_key_is_not_believed(provider, settings, stranger_key):
    order = qr_order()
    make_client(provider).create(order)
    payments.pay_trade(provider, order.out_trade_no)
    if provider == "wechatpay":
        settings.WECHATPAY_PLATFORM_PUBLIC_KEY = stranger_key[1]
    else:
        settings.ALIPAY_PUBLIC_KEY = stranger_key[1]
    fooled = make_client(provider)

    with pytest.raises(ProviderUnavailable):
        fooled.query(order.out_trade_no)
    with pytest.raises(ProviderUnavailable):
        fooled.create(qr_order())
    # Nothing the client did not believe is taken for an answer: the refund is retried, not failed.
    with pytest.raises(ProviderUnavailable):
        fooled.refund(refund_of(order))


def test_wechat_answers_under_either_configured_platform_key_are_believed_and_a_removed_one_is_not(
    gateways, settings, tmp_path, stranger_key, monkeypatch, caplog
):
    """While WeChat Pay switches platform keys it signs its answers under the old id or the new (Wechatpay-Serial
    says which): with both in WECHATPAY_PLATFORM_PUBLIC_KEYS the client believes both. Once the old key is
    removed (and our requests name the new id), an answer under the old id is not believed, and its id is logged."""
    old_key_id, new_key_id = settings.WECHATPAY_PLATFORM_PUBLIC_KEY_ID, "PUB_KEY_ID_0119000000012027010100000000000002"
    old_private = sandbox_private_key_pem("wechatpay_platform_private_key.pem")
    (tmp_path / f"{old_key_id}.pem").write_text(sandbox_public_key_pem("wechatpay_platform_private_key.pem"))
    (tmp_path / f"{new_key_id}.pem").write_text(stranger_key[1])
    settings.WECHATPAY_PLATFORM_PUBLIC_KEYS = str(tmp_path)
    client = WechatPayClient()
    order = qr_order()
    client.create(order)  # answered under the old key
    payments.pay_trade("wechatpay", order.out_trade_no)

    monkeypatch.setattr(wechat_fake, "_platform_key", lambda: (new_key_id, stranger_key[0]))
    assert client.query(order.out_trade_no).state == TradeState.PAID
    client.create(qr_order())

    (tmp_path / f"{old_key_id}.pem").unlink()
    settings.WECHATPAY_PLATFORM_PUBLIC_KEY_ID = new_key_id
    after = WechatPayClient()
    assert after.query(order.out_trade_no).state == TradeState.PAID
    monkeypatch.setattr(wechat_fake, "_platform_key", lambda: (old_key_id, old_private))
    with pytest.raises(ProviderUnavailable):
        after.query(order.out_trade_no)
    assert f"platform key {old_key_id}, which is not configured" in caplog.text


def test_a_request_signed_with_another_key_is_refused_by_the_provider(provider, settings, stranger_key):
    order = qr_order()
    make_client(provider).create(order)
    payments.pay_trade(provider, order.out_trade_no)
    if provider == "wechatpay":
        settings.WECHATPAY_MERCHANT_PRIVATE_KEY = stranger_key[0]
    else:
        settings.ALIPAY_APP_PRIVATE_KEY = stranger_key[0]
    impostor = make_client(provider)

    # A signature the provider rejects is our configuration's fault, not the customer's: every
    # operation reports the provider unavailable (a refund is retried, not given up).
    for call in (
        lambda: impostor.create(qr_order()),
        lambda: impostor.query(order.out_trade_no),
        lambda: impostor.close(order.out_trade_no),
        lambda: impostor.refund(refund_of(order)),
        lambda: impostor.query_refund("R1", out_trade_no=order.out_trade_no),
    ):
        with pytest.raises(ProviderUnavailable):
            call()
    assert not SimRefund.objects.exists()
    assert SimTrade.objects.filter(provider=provider).count() == 1


def test_another_merchant_is_refused(provider, settings):
    if provider == "wechatpay":
        settings.WECHATPAY_MCHID = "1900000999"
    else:
        settings.ALIPAY_APP_ID = "2021000000000999"
    stranger = make_client(provider)  # the client takes its id from settings once
    if provider == "wechatpay":
        settings.WECHATPAY_MCHID = "1900000001"
    else:
        settings.ALIPAY_APP_ID = "2021000000000001"

    with pytest.raises(ProviderUnavailable):
        stranger.create(qr_order())
    with pytest.raises(ProviderUnavailable):
        stranger.query(out_no())
    assert not SimTrade.objects.exists()


# --- the fakes' HTTP answers, as an integrator sees them ------------------------------------


def test_the_wechat_fake_refuses_an_unsigned_request_and_signs_its_answers(gateways):
    url = f"{gateways}/sandbox/wechatpay/fake/v3/pay/transactions/out-trade-no/{out_no()}?mchid=1900000001"

    response = requests.get(url, timeout=5)

    assert response.status_code == 401
    assert response.json()["code"] == "SIGN_ERROR"
    for header in ("Wechatpay-Timestamp", "Wechatpay-Nonce", "Wechatpay-Signature", "Wechatpay-Serial"):
        assert response.headers[header]


def test_the_alipay_fake_answers_an_unknown_app_unsigned_and_a_bad_signature_signed(gateways):
    params = {
        "app_id": "2021000000000999",
        "method": "alipay.trade.query",
        "charset": "utf-8",
        "sign_type": "RSA2",
        "timestamp": "2026-01-01 00:00:00",
        "version": "1.0",
        "biz_content": '{"out_trade_no":"T1"}',
        "sign": "bm90IGEgc2lnbmF0dXJl",
    }
    url = f"{gateways}/sandbox/alipay/fake/gateway.do"

    unknown_app = requests.get(f"{url}?{urlencode(params)}", timeout=5).json()
    forged = requests.post(url, data={**params, "app_id": "2021000000000001"}, timeout=5).json()

    assert "sign" not in unknown_app
    assert unknown_app["alipay_trade_query_response"]["sub_code"] == "isv.invalid-app-id"
    assert forged["sign"]
    assert forged["alipay_trade_query_response"]["sub_code"] == "isv.invalid-signature"


def test_the_fakes_are_off_without_the_sandbox(gateways, settings):
    settings.SANDBOX = False

    assert requests.post(f"{gateways}/sandbox/wechatpay/fake/v3/pay/transactions/native", timeout=5).status_code == 404
    assert requests.get(f"{gateways}/sandbox/alipay/fake/gateway.do", timeout=5).status_code == 404
