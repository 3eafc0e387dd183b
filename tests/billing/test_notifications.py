"""What the providers and the SMS gateway call: /billing/notify/wechatpay/, /billing/notify/alipay/, /sms/inbound/.

Notifications are the sandbox's (signed with its keys, as the real providers
sign) or made here with this module's own implementation of each provider's
algorithm, with the sandbox keys or with keys of our own where a forger's
are needed. Every refusal is checked to change nothing.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import secrets
import time
from datetime import timedelta
from functools import cache
from typing import Any
from urllib.parse import urlencode

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from django.conf import settings
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from adapters.providers.types import PaidNotice
from billing.models import LedgerEntry, Payment, PaymentNotification, Refund, SmsInbound
from ipvas.keyfiles import sandbox_private_key_pem, sandbox_secret
from ipvas.models import OutboxMessage
from lifecycle.paid import notification_accept
from orders.models import Order, OrderEvent
from sandbox import faults
from sandbox import payments as sandbox_payments
from sandbox import sms as sandbox_sms
from sandbox.models import SimRefund, SimSmpSubscription, SimTrade, SimTradeStatus
from tests.epg_api.support import Api, new_api_key, provider_pay, settle, when
from tests.support.keys import made_key, public_pem

NOW = "2026-11-25 12:00:20+08:00"
WECHAT_URL = "/billing/notify/wechatpay/"
ALIPAY_URL = "/billing/notify/alipay/"
PROVIDER = {"wechat_qr": "wechatpay", "alipay_qr": "alipay"}


@pytest.fixture
def api(demo) -> Api:
    return Api(new_api_key("EPG test vendor"))


@pytest.fixture
def frozen(time_machine):
    time_machine.move_to(NOW, tick=False)
    return time_machine


@pytest.fixture(autouse=True)
def _providers_public_keys_configured(settings):
    """Configure the providers' public keys as production does (here: the sandbox's), instead of
    deriving them from the sandbox's private keys on every notification, which is slow."""
    for setting, private in (
        ("WECHATPAY_PLATFORM_PUBLIC_KEY", "wechatpay_platform_private_key.pem"),
        ("ALIPAY_PUBLIC_KEY", "alipay_private_key.pem"),
    ):
        setattr(settings, setting, public_pem(sandbox_key(private)))


# --- the providers' algorithms, written here independently of billing/providers -------


def forger_key() -> rsa.RSAPrivateKey:
    return made_key("a forger of notifications")


@cache
def sandbox_key(name: str) -> rsa.RSAPrivateKey:
    return serialization.load_pem_private_key(sandbox_private_key_pem(name).encode(), password=None)


def rsa2(key: rsa.RSAPrivateKey, message: bytes) -> str:
    return base64.b64encode(key.sign(message, padding.PKCS1v15(), SHA256())).decode()


def wechat_notification(
    resource: dict[str, Any] | None,
    *,
    key: rsa.RSAPrivateKey | None = None,
    apiv3_key: str | None = None,
    serial: str | None = None,
    timestamp: int | None = None,
    nonce: str | None = None,
    event_type: str = "TRANSACTION.SUCCESS",
    body: bytes | None = None,
) -> tuple[bytes, dict[str, str]]:
    """A WeChat Pay API v3 notification: the resource sealed with AEAD_AES_256_GCM, the message signed."""
    if body is None:
        resource_nonce = secrets.token_hex(6)
        sealed = AESGCM((apiv3_key or sandbox_secret("wechatpay_apiv3_key.txt")).encode()).encrypt(
            resource_nonce.encode(), json.dumps(resource).encode(), b"transaction"
        )
        envelope = {
            "id": f"EV-{secrets.token_hex(10)}",
            "create_time": timezone.localtime().replace(microsecond=0).isoformat(),
            "resource_type": "encrypt-resource",
            "event_type": event_type,
            "summary": "支付成功",
            "resource": {
                "original_type": "transaction",
                "algorithm": "AEAD_AES_256_GCM",
                "ciphertext": base64.b64encode(sealed).decode(),
                "associated_data": "transaction",
                "nonce": resource_nonce,
            },
        }
        body = json.dumps(envelope, separators=(",", ":")).encode()
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    nonce = nonce or secrets.token_hex(16)
    signature = rsa2(
        key or sandbox_key("wechatpay_platform_private_key.pem"), f"{stamp}\n{nonce}\n".encode() + body + b"\n"
    )
    return body, {
        "Wechatpay-Timestamp": stamp,
        "Wechatpay-Nonce": nonce,
        "Wechatpay-Signature": signature,
        "Wechatpay-Serial": settings.WECHATPAY_PLATFORM_PUBLIC_KEY_ID if serial is None else serial,
        "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
    }


def alipay_sign(params: dict[str, str], key: rsa.RSAPrivateKey | None = None) -> dict[str, str]:
    """Alipay RSA2: sorted key=value pairs joined by '&', without sign and sign_type."""
    unsigned = {k: v for k, v in params.items() if k not in ("sign", "sign_type")}
    content = "&".join(f"{k}={unsigned[k]}" for k in sorted(unsigned))
    return {
        **unsigned,
        "sign": rsa2(key or sandbox_key("alipay_private_key.pem"), content.encode()),
        "sign_type": "RSA2",
    }


def post_wechat(body: bytes, headers: dict[str, str]):
    meta = {"HTTP_" + name.upper().replace("-", "_"): value for name, value in headers.items()}
    return Client().post(WECHAT_URL, data=body, content_type="application/json", **meta)


def post_alipay(params: dict[str, str] | str):
    form = params if isinstance(params, str) else urlencode(params)
    return Client().post(ALIPAY_URL, data=form, content_type="application/x-www-form-urlencoded")


def wechat_accepted(response) -> None:
    assert response.status_code in (200, 204), response.content
    assert response.content == b""


def wechat_refused(response) -> None:
    assert 400 <= response.status_code < 500, response.status_code
    body = response.json()
    assert set(body) == {"code", "message"}
    assert body["code"] == "FAIL"
    assert isinstance(body["message"], str) and body["message"]


def alipay_accepted(response) -> None:
    assert response.status_code == 200
    assert response.content == b"success"


def alipay_refused(response) -> None:
    assert response.content != b"success", response.status_code


# --- the state that must not move -----------------------------------------------------------


def state() -> dict[str, Any]:
    return {
        "orders": sorted(Order.objects.values_list("order_no", "status", "failure_code")),
        "events": OrderEvent.objects.count(),
        "payments": sorted(Payment.objects.values_list("out_trade_no", "provider", "status")),
        "ledger": LedgerEntry.objects.count(),
        "notifications": PaymentNotification.objects.count(),
        "refunds": Refund.objects.count(),
        "subscriptions": SimSmpSubscription.objects.count(),
        "outbox": OutboxMessage.objects.count(),
        "sms": sorted(SmsInbound.objects.values_list("digest", flat=True)),
    }


@pytest.fixture
def pending(api: Api, frozen):
    """An order showing a QR code, its trade paid at the (simulated) provider: (method) -> SimTrade."""

    def make(method: str = "wechat_qr", tv_account: str = "tv1001") -> SimTrade:
        order = api.place(tv_account, "VIP-MONTH")
        order = api.pay_with(order["order_no"], method)
        return sandbox_payments.pay_trade(PROVIDER[method], order["payment"]["out_trade_no"])

    return make


def order_of(trade: SimTrade) -> Order:
    return Payment.objects.get(provider=trade.provider, out_trade_no=trade.out_trade_no).order


# --- valid, once and again --------------------------------------------------------------------


def test_wechat_notification_moves_the_order_on_once(pending):
    trade = pending("wechat_qr")
    body, headers = sandbox_payments.wechatpay_notification(trade)

    wechat_accepted(post_wechat(body, headers))
    assert order_of(trade).status == "provisioning"
    settle()
    after_first = state()
    wechat_accepted(post_wechat(body, headers))
    settle()

    assert state() == after_first
    order = order_of(trade)
    assert order.status == "completed"
    assert PaymentNotification.objects.count() == 1
    assert list(LedgerEntry.objects.values_list("kind", "amount_fen", "provider")) == [("payment", 2500, "wechatpay")]
    assert SimSmpSubscription.objects.get().order_no == order.order_no
    payment = Payment.objects.get(order=order)
    assert (payment.status, payment.provider_txn_id) == ("paid", trade.transaction_id)


def test_a_payment_notification_is_stored_and_applied_in_few_statements(pending, django_assert_num_queries):
    """Issue #17 (docs/performance.md): in one transaction the order found by its payment's trade and locked,
    all its payments locked, the payment paid, its ledger entry written (one INSERT … ON CONFLICT DO NOTHING),
    the order moved on (its row, its event, its outbox message), the notification stored with its outcome (one
    INSERT … ON CONFLICT DO NOTHING)."""
    trade = pending("wechat_qr")
    body, headers = sandbox_payments.wechatpay_notification(trade)

    with django_assert_num_queries(10):
        wechat_accepted(post_wechat(body, headers))

    assert order_of(trade).status == "provisioning"


def test_alipay_notification_moves_the_order_on_once(pending):
    trade = pending("alipay_qr")
    params = sandbox_payments.alipay_notification(trade)

    alipay_accepted(post_alipay(params))
    assert order_of(trade).status == "provisioning"
    settle()
    after_first = state()
    alipay_accepted(post_alipay(params))
    settle()

    assert state() == after_first
    assert order_of(trade).status == "completed"
    assert PaymentNotification.objects.count() == 1
    assert list(LedgerEntry.objects.values_list("kind", "amount_fen", "provider")) == [("payment", 2500, "alipay")]
    assert SimSmpSubscription.objects.count() == 1


def test_a_notification_id_seen_before_answers_duplicate_and_what_it_did_goes_back(pending):
    """A notification is applied, then stored under the provider's id: one whose id is there already is a
    duplicate, and what applying it did is rolled back, whatever it would have done (here: paid another order,
    as a notification replayed with another trade in it would)."""
    first, second = pending("wechat_qr", "tv1001"), pending("wechat_qr", "tv1002")
    notice = PaidNotice(
        provider="wechatpay",
        notification_id="EV-SAME",
        out_trade_no=first.out_trade_no,
        paid=True,
        transaction_id=first.transaction_id,
        amount_fen=first.amount_fen,
        paid_at=timezone.now(),
    )
    assert notification_accept(notice=notice, headers={}, body="{}") == "confirmed"
    before = state()

    replayed = dataclasses.replace(
        notice, out_trade_no=second.out_trade_no, transaction_id=second.transaction_id, amount_fen=second.amount_fen
    )
    assert notification_accept(notice=replayed, headers={}, body="{}") == "duplicate"

    assert state() == before
    assert order_of(second).status == "payment_pending"
    assert PaymentNotification.objects.get().outcome == "confirmed"


@pytest.mark.parametrize("method", ["wechat_qr", "alipay_qr"])
def test_another_notification_of_the_same_payment_changes_nothing(api, pending, method):
    trade = pending(method)
    assert provider_pay(method, trade.out_trade_no)["delivered"] is True
    settle()
    before = state()

    # The provider notifies again under a new id (or the customer's app asks it to).
    assert provider_pay(method, trade.out_trade_no)["delivered"] is True
    settle()

    after = state()
    assert after["notifications"] == before["notifications"] + 1  # kept for audit
    assert {k: v for k, v in after.items() if k != "notifications"} == {
        k: v for k, v in before.items() if k != "notifications"
    }
    assert LedgerEntry.objects.count() == 1 and SimSmpSubscription.objects.count() == 1


def test_a_notification_with_our_own_implementation_of_the_algorithms_is_accepted(pending):
    """The verification follows WeChat Pay's documented algorithm, not only the sandbox's code."""
    trade = pending("wechat_qr")

    wechat_accepted(post_wechat(*wechat_notification(sandbox_payments.wechatpay_transaction(trade))))
    alipay_trade = pending("alipay_qr")
    alipay_accepted(post_alipay(alipay_sign(sandbox_payments.alipay_notification(alipay_trade))))

    assert order_of(trade).status in ("provisioning", "completed")
    assert order_of(alipay_trade).status == "provisioning"


def test_wechat_timestamp_just_within_5_minutes_is_accepted(pending):
    trade = pending("wechat_qr")

    body, headers = sandbox_payments.wechatpay_notification(trade, timestamp=int(time.time()) - 299)

    wechat_accepted(post_wechat(body, headers))


# --- WeChat Pay: forged, stale, replayed, not ours ------------------------------------------


def _resource(trade: SimTrade, **changes: Any) -> dict[str, Any]:
    resource = sandbox_payments.wechatpay_transaction(trade)
    for name, value in changes.items():
        resource[name] = value
    return resource


WECHAT_FORGERIES = {
    "signed-with-another-key": lambda t: wechat_notification(_resource(t), key=forger_key()),
    "unknown-serial": lambda t: wechat_notification(_resource(t), serial="PUB_KEY_ID_0119999999992026112500000000009"),
    "stale-timestamp": lambda t: sandbox_payments.wechatpay_notification(t, timestamp=int(time.time()) - 301),
    "future-timestamp": lambda t: sandbox_payments.wechatpay_notification(t, timestamp=int(time.time()) + 301),
    "sealed-with-another-apiv3-key": lambda t: wechat_notification(_resource(t), apiv3_key="k" * 32),
    "other-amount": lambda t: wechat_notification(_resource(t, amount={"total": 1, "currency": "CNY"})),
    "amount-as-text": lambda t: wechat_notification(_resource(t, amount={"total": "2500", "currency": "CNY"})),
    "other-mchid": lambda t: wechat_notification(_resource(t, mchid="1900000099")),
    "other-appid": lambda t: wechat_notification(_resource(t, appid="wx0000000000000099")),
    "unknown-out-trade-no": lambda t: wechat_notification(_resource(t, out_trade_no="20261125NOSUCHTRADE")),
    "garbled-body": lambda t: wechat_notification(None, body=b'{"id": "EV-1", "resource": '),
    "not-json-at-all": lambda t: wechat_notification(None, body=b"\xff\xfe garbage"),
    "json-list": lambda t: wechat_notification(None, body=b"[1, 2, 3]"),
    "resource-not-an-object": lambda t: wechat_notification(None, body=b'{"id":"EV-1","resource":"x"}'),
}


def _tampered(trade: SimTrade) -> tuple[bytes, dict[str, str]]:
    body, headers = sandbox_payments.wechatpay_notification(trade)
    return body.replace(b'"event_type":"TRANSACTION.SUCCESS"', b'"event_type":"TRANSACTION.SUCCESS" '), headers


def _no_signature(trade: SimTrade) -> tuple[bytes, dict[str, str]]:
    body, headers = sandbox_payments.wechatpay_notification(trade)
    return body, {k: v for k, v in headers.items() if k != "Wechatpay-Signature"}


WECHAT_FORGERIES["body-changed-after-signing"] = _tampered
WECHAT_FORGERIES["no-signature-header"] = _no_signature


def test_wechat_refuses_every_forgery_and_nothing_changes(pending):
    trade = pending("wechat_qr")
    before = state()
    accepted = []

    for forgery, forge in WECHAT_FORGERIES.items():
        response = post_wechat(*forge(trade))
        try:
            wechat_refused(response)
        except (AssertionError, ValueError):
            accepted.append((forgery, response.status_code, response.content[:100]))
    settle()

    assert accepted == []
    assert state() == before
    assert order_of(trade).status == "payment_pending"


def test_wechat_refuses_a_notification_delivered_over_5_minutes_after_it_was_signed(pending, frozen):
    trade = pending("wechat_qr")
    body, headers = sandbox_payments.wechatpay_notification(trade)
    before = state()

    frozen.shift(301)
    wechat_refused(post_wechat(body, headers))

    assert state() == before


def test_wechat_refuses_a_reused_nonce_with_another_message(pending):
    first = pending("wechat_qr")
    body, headers = sandbox_payments.wechatpay_notification(first)
    wechat_accepted(post_wechat(body, headers))
    second = pending("wechat_qr")
    before = state()

    replay = wechat_notification(_resource(second), nonce=headers["Wechatpay-Nonce"])
    wechat_refused(post_wechat(*replay))

    assert state() == before
    assert order_of(second).status == "payment_pending"
    # The genuine one, with a nonce of its own, still goes through.
    wechat_accepted(post_wechat(*sandbox_payments.wechatpay_notification(second)))
    assert order_of(second).status == "provisioning"


def test_wechat_notification_that_is_not_a_payment_changes_nothing(pending):
    trade = pending("wechat_qr")
    before = state()

    post_wechat(*wechat_notification(_resource(trade), event_type="REFUND.SUCCESS"))
    post_wechat(*wechat_notification(_resource(trade, trade_state="NOTPAY"), event_type="TRANSACTION.SUCCESS"))
    settle()

    assert {k: v for k, v in state().items() if k != "notifications"} == {
        k: v for k, v in before.items() if k != "notifications"
    }


# --- WeChat Pay switching platform keys: each notification verified with the key its Wechatpay-Serial names ----

NEW_KEY_ID = "PUB_KEY_ID_0119000000012027010100000000000002"
UNKNOWN_KEY_ID = "PUB_KEY_ID_0119999999992026112500000000009"


def new_platform_key() -> rsa.RSAPrivateKey:
    """The key WeChat Pay switches to: made here, as the real one is made at WeChat Pay."""
    return made_key("WeChat Pay's next platform key")


def test_while_wechat_pay_switches_keys_notifications_under_either_configured_key_are_accepted(
    pending, settings, tmp_path
):
    """The old key as it was configured (WECHATPAY_PLATFORM_PUBLIC_KEY and _ID: here the sandbox's), the new one
    dropped into the directory WECHATPAY_PLATFORM_PUBLIC_KEYS names (taken at once, no restart). WeChat Pay signs
    under either while it switches; a key id not configured, or a key that is not the one its id names, is
    refused and pays nothing."""
    old, new = sandbox_key("wechatpay_platform_private_key.pem"), new_platform_key()
    settings.WECHATPAY_PLATFORM_PUBLIC_KEYS = str(tmp_path)
    under_old, under_new = pending("wechat_qr"), pending("wechat_qr")
    before = state()

    wechat_refused(post_wechat(*wechat_notification(_resource(under_new), key=new, serial=UNKNOWN_KEY_ID)))
    wechat_refused(post_wechat(*wechat_notification(_resource(under_new), key=new, serial=NEW_KEY_ID)))  # not yet
    (tmp_path / f"{NEW_KEY_ID}.pem").write_text(public_pem(new))
    wechat_refused(post_wechat(*wechat_notification(_resource(under_new), key=old, serial=NEW_KEY_ID)))
    wechat_refused(post_wechat(*wechat_notification(_resource(under_old), key=new)))  # under the old id
    settle()
    assert state() == before

    wechat_accepted(post_wechat(*wechat_notification(_resource(under_old), key=old)))
    wechat_accepted(post_wechat(*wechat_notification(_resource(under_new), key=new, serial=NEW_KEY_ID)))
    assert order_of(under_old).status == "provisioning"
    assert order_of(under_new).status == "provisioning"


def test_once_the_old_platform_key_is_removed_a_notification_under_its_id_is_refused(pending, settings, tmp_path):
    """After the switch the new key alone is configured (an ``id=path`` entry, named by our requests); the old id
    is refused and pays nothing, the new one is accepted."""
    old_key_id = settings.WECHATPAY_PLATFORM_PUBLIC_KEY_ID
    (tmp_path / "new.pem").write_text(public_pem(new_platform_key()))
    settings.WECHATPAY_PLATFORM_PUBLIC_KEYS = f"{NEW_KEY_ID}={tmp_path / 'new.pem'}"
    settings.WECHATPAY_PLATFORM_PUBLIC_KEY = ""
    settings.WECHATPAY_PLATFORM_PUBLIC_KEY_ID = NEW_KEY_ID
    trade = pending("wechat_qr")
    before = state()

    wechat_refused(
        post_wechat(
            *wechat_notification(
                _resource(trade), key=sandbox_key("wechatpay_platform_private_key.pem"), serial=old_key_id
            )
        )
    )
    settle()
    assert state() == before
    assert order_of(trade).status == "payment_pending"

    wechat_accepted(post_wechat(*wechat_notification(_resource(trade), key=new_platform_key(), serial=NEW_KEY_ID)))
    assert order_of(trade).status == "provisioning"


def test_an_alipay_notification_for_a_wechat_payment_is_refused(pending):
    trade = pending("wechat_qr")
    before = state()
    params = sandbox_payments.alipay_notification(trade)

    alipay_refused(post_alipay(params))

    assert state() == before


# --- Alipay: forged, not ours ---------------------------------------------------------------


def _alipay(trade: SimTrade, *, key: rsa.RSAPrivateKey | None = None, **changes: str) -> dict[str, str]:
    params = sandbox_payments.alipay_notification(trade)
    params.update(changes)
    return alipay_sign(params, key)


ALIPAY_FORGERIES = {
    "signed-with-another-key": lambda t: _alipay(t, key=forger_key()),
    "other-app-id": lambda t: _alipay(t, app_id="2021000000000099", auth_app_id="2021000000000099"),
    "other-seller-id": lambda t: _alipay(t, seller_id="2088000000000099"),
    "other-amount": lambda t: _alipay(t, total_amount="0.01", receipt_amount="0.01", buyer_pay_amount="0.01"),
    "amount-with-3-decimals": lambda t: _alipay(t, total_amount="25.001"),
    "unknown-out-trade-no": lambda t: _alipay(t, out_trade_no="20261125NOSUCHTRADE"),
    "sign-type-rsa": lambda t: {**_alipay(t), "sign_type": "RSA"},
    "no-sign": lambda t: {k: v for k, v in _alipay(t).items() if k != "sign"},
    "changed-after-signing": lambda t: {**_alipay(t), "total_amount": "0.01"},
    "garbled-body": lambda t: "%%%\xff&&=sign",
    "empty-body": lambda t: "",
}


def test_alipay_refuses_every_forgery_and_nothing_changes(pending):
    trade = pending("alipay_qr")
    before = state()
    accepted = []

    for forgery, forge in ALIPAY_FORGERIES.items():
        response = post_alipay(forge(trade))
        if response.content == b"success":
            accepted.append(forgery)
    settle()

    assert accepted == []
    assert state() == before
    assert order_of(trade).status == "payment_pending"


def test_alipay_wait_buyer_pay_does_not_pay_the_order(pending):
    trade = pending("alipay_qr")

    alipay_accepted(post_alipay(_alipay(trade, trade_status="WAIT_BUYER_PAY")))
    settle()

    assert order_of(trade).status == "payment_pending"
    assert not LedgerEntry.objects.exists()


# --- money that comes when it is not wanted goes back -------------------------------------


def deliver(trade: SimTrade):
    if trade.provider == "wechatpay":
        response = post_wechat(*sandbox_payments.wechatpay_notification(trade))
        wechat_accepted(response)
    else:
        response = post_alipay(sandbox_payments.alipay_notification(trade))
        alipay_accepted(response)
    return response


def paid_at_the_provider_after_all(trade: SimTrade) -> SimTrade:
    """The provider says the trade was paid (the sandbox refuses to pay a closed one, so it is set here)."""
    SimTrade.objects.filter(pk=trade.pk).update(status=SimTradeStatus.PAID, paid_at=timezone.now())
    trade.refresh_from_db()
    return trade


@pytest.mark.parametrize("method", ["wechat_qr", "alipay_qr"])
def test_money_after_the_order_expired_is_refunded(api, frozen, method):
    order = api.place("tv1001", "VIP-MONTH")
    payment = api.pay_with(order["order_no"], method)["payment"]
    frozen.move_to(when(payment["expires_at"]))
    settle()
    assert api.order(order["order_no"])["status"] == "expired"
    trade = SimTrade.objects.get(provider=PROVIDER[method], out_trade_no=payment["out_trade_no"])
    assert trade.status == SimTradeStatus.CLOSED

    deliver(paid_at_the_provider_after_all(trade))
    settle()
    deliver(trade)  # told again: refunded once
    settle()

    refund = SimRefund.objects.get()
    assert (refund.trade_id, refund.amount_fen) == (trade.pk, 2500)
    assert list(LedgerEntry.objects.order_by("pk").values_list("kind", "amount_fen")) == [
        ("payment", 2500),
        ("refund", -2500),
    ]
    ended = api.order(order["order_no"])
    assert ended["status"] == "refunded"
    assert ended["failure"]["code"] == "payment_timeout"
    assert ended["entitlement"] is None
    assert not SimSmpSubscription.objects.exists()
    assert Refund.objects.get().status == "succeeded"


@pytest.mark.parametrize("method", ["wechat_qr", "alipay_qr"])
def test_money_after_the_order_was_cancelled_is_refunded(api, frozen, method):
    order = api.place("tv1001", "VIP-MONTH")
    payment = api.pay_with(order["order_no"], method)["payment"]
    assert api.cancel(order["order_no"]).status_code == 200
    settle()
    trade = SimTrade.objects.get(provider=PROVIDER[method], out_trade_no=payment["out_trade_no"])

    deliver(paid_at_the_provider_after_all(trade))
    settle()

    assert SimRefund.objects.get().amount_fen == 2500
    assert sum(LedgerEntry.objects.values_list("amount_fen", flat=True)) == 0
    assert api.order(order["order_no"])["status"] == "refunded"
    assert not SimSmpSubscription.objects.exists()


def test_a_second_payment_of_a_completed_order_is_refunded(api, frozen):
    order = api.place("tv1001", "VIP-MONTH")
    no = order["order_no"]
    wechat = api.pay_with(no, "wechat_qr")["payment"]
    alipay = api.pay_with(no, "alipay_qr")["payment"]  # the WeChat trade is closed now...
    wechat_trade = SimTrade.objects.get(provider="wechatpay", out_trade_no=wechat["out_trade_no"])
    # ...but the customer had paid it just before the close reached WeChat Pay.
    deliver(paid_at_the_provider_after_all(wechat_trade))
    settle()
    completed = api.order(no)
    assert completed["status"] == "completed"
    alipay_trade = SimTrade.objects.get(provider="alipay", out_trade_no=alipay["out_trade_no"])
    assert alipay_trade.status == SimTradeStatus.CLOSED
    # Then Alipay reports the other QR code paid too.
    deliver(paid_at_the_provider_after_all(alipay_trade))
    settle()

    refund = SimRefund.objects.get()
    assert (refund.trade.provider, refund.amount_fen) == ("alipay", 2500)
    assert sorted(LedgerEntry.objects.values_list("provider", "amount_fen")) == [
        ("alipay", -2500),
        ("alipay", 2500),
        ("wechatpay", 2500),
    ]
    now = api.order(no)
    assert now["status"] == "completed"
    assert now["entitlement"] == completed["entitlement"]
    assert SimSmpSubscription.objects.count() == 1
    assert api.entitlements(tv_account="tv1001", product_code="VIP-MONTH").json()["entitled"] is True


def both_qr_codes_paid_while_provisioning(api: Api) -> str:
    """The customer paid the WeChat code just before switching to Alipay, then paid the Alipay code too."""
    no = api.place("tv1001", "VIP-MONTH")["order_no"]
    wechat = api.pay_with(no, "wechat_qr")["payment"]
    alipay = api.pay_with(no, "alipay_qr")["payment"]
    deliver(
        paid_at_the_provider_after_all(SimTrade.objects.get(provider="wechatpay", out_trade_no=wechat["out_trade_no"]))
    )
    assert api.order(no)["status"] == "provisioning"
    assert provider_pay("alipay_qr", alipay["out_trade_no"])["delivered"] is True
    return no


def test_both_qr_codes_paid_while_provisioning_completes_once_and_refunds_one(api, frozen):
    no = both_qr_codes_paid_while_provisioning(api)
    settle()
    frozen.shift(timedelta(minutes=2))
    settle()

    order = api.order(no)
    assert order["status"] == "completed"
    assert SimRefund.objects.get().trade.provider == "alipay"
    assert sum(LedgerEntry.objects.values_list("amount_fen", flat=True)) == 2500
    assert SimSmpSubscription.objects.count() == 1


def test_a_duplicate_payment_does_not_hold_back_the_paid_order(api, frozen):
    no = both_qr_codes_paid_while_provisioning(api)

    settle()

    assert api.order(no)["status"] == "completed"


def test_an_outage_of_the_duplicates_provider_does_not_cost_the_customer_the_product(api, frozen):
    no = both_qr_codes_paid_while_provisioning(api)
    faults.set_mode("alipay", "down")
    for _ in range(17):
        settle()
        frozen.shift(timedelta(seconds=60))
    faults.set_mode("alipay", "ok")
    for _ in range(6):
        settle()
        frozen.shift(timedelta(minutes=5))

    assert api.order(no)["status"] == "completed"
    assert SimSmpSubscription.objects.count() == 1
    assert [trade.provider for trade in SimTrade.objects.filter(refunds__isnull=False)] == ["alipay"]
    assert sum(LedgerEntry.objects.values_list("amount_fen", flat=True)) == 2500


def test_the_refund_of_a_duplicate_payment_outlives_a_short_provider_outage(api, frozen):
    no = both_qr_codes_paid_while_provisioning(api)
    faults.set_mode("alipay", "down")
    for _ in range(5):
        settle()
        frozen.shift(timedelta(seconds=60))
    faults.set_mode("alipay", "ok")
    for _ in range(6):
        settle()
        frozen.shift(timedelta(minutes=5))

    assert api.order(no)["status"] == "completed"
    assert SimRefund.objects.get().trade.provider == "alipay"
    assert sum(LedgerEntry.objects.values_list("amount_fen", flat=True)) == 2500
    assert Refund.objects.get().status == "succeeded"


# --- SMS replies -------------------------------------------------------------------------------


@pytest.fixture
def sms_pending(api: Api, frozen) -> str:
    order = api.place("tv1001", "VIP-MONTH")
    api.pay_with(order["order_no"], "phone_bill_sms")
    settle()
    return order["order_no"]


def post_sms(body: bytes, signature: str | None):
    headers = {} if signature is None else {"HTTP_X_SIGNATURE": signature}
    return Client().post("/sms/inbound/", data=body, content_type="application/json", **headers)


def sms_body(sender: str = "13800000001", text: str = "Y") -> bytes:
    return json.dumps({"from": sender, "text": text, "received_at": timezone.now().isoformat()}).encode()


def hmac_hex(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


BAD_SMS_SIGNATURES = {
    "missing": lambda body: None,
    "empty": lambda body: "",
    "zeros": lambda body: "0" * 64,
    "other-secret": lambda body: hmac_hex("not-the-secret", body),
    "other-body": lambda body: hmac_hex(sandbox_secret("sms_webhook_secret.txt"), body + b" "),
    "base64-not-hex": lambda body: base64.b64encode(
        hmac.new(sandbox_secret("sms_webhook_secret.txt").encode(), body, hashlib.sha256).digest()
    ).decode(),
}


def test_sms_reply_with_a_bad_signature_is_a_403_and_changes_nothing(sms_pending):
    body = sms_body()
    before = state()

    answers = {name: post_sms(body, sign(body)).status_code for name, sign in BAD_SMS_SIGNATURES.items()}
    settle()

    assert answers == dict.fromkeys(BAD_SMS_SIGNATURES, 403)
    assert state() == before
    assert Order.objects.get(order_no=sms_pending).status == "payment_pending"


def test_the_same_signed_reply_twice_has_one_effect(sms_pending):
    body, headers = sandbox_sms.signed_reply("13800000001", "Y")

    first = post_sms(body, headers["X-Signature"])
    settle()
    after_first = state()
    second = post_sms(body, headers["X-Signature"])
    settle()

    assert (first.status_code, second.status_code) == (200, 200)
    assert state() == after_first
    assert SmsInbound.objects.count() == 1
    assert Order.objects.get(order_no=sms_pending).status == "completed"
    assert OrderEvent.objects.filter(order__order_no=sms_pending, action="payment_confirmed").count() == 1


def test_a_reply_replayed_after_its_record_was_purged_confirms_nothing(api, frozen, sms_pending):
    """A signed reply is refused a second time by its stored digest, which is purged after
    SMS_REPLY_RETENTION_DAYS: a reply captured then and replayed later must not confirm a new order's charge."""
    from billing.tasks import purge_sms_replies

    captured, headers = sandbox_sms.signed_reply("13800000001", "Y")
    assert post_sms(captured, headers["X-Signature"]).status_code == 200
    settle()
    assert Order.objects.get(order_no=sms_pending).status == "completed"
    frozen.shift(timedelta(days=settings.SMS_REPLY_RETENTION_DAYS, hours=1))
    assert purge_sms_replies.apply().get() == 1
    later = api.place("tv1001", "VIP-MONTH")["order_no"]
    api.pay_with(later, "phone_bill_sms")
    settle()

    replayed = post_sms(captured, headers["X-Signature"])
    settle()

    assert (replayed.status_code, replayed.json()) == (200, {"outcome": "too_old"})
    assert Order.objects.get(order_no=later).status == "payment_pending"
    assert not OrderEvent.objects.filter(order__order_no=later, action="payment_confirmed").exists()


def test_signature_in_upper_case_hex_is_accepted(sms_pending):
    body = sms_body()

    response = post_sms(body, hmac_hex(sandbox_secret("sms_webhook_secret.txt"), body).upper())

    assert response.status_code == 200
    assert Order.objects.get(order_no=sms_pending).status == "provisioning"


# --- the gateway switching secrets: SMS_WEBHOOK_SECRET_PREVIOUS accepted beside SMS_WEBHOOK_SECRET -------------


def confirm_by_sms(api: Api, frozen) -> str:
    """Another order of tv1001 waiting for its Y, a few seconds later (a retried reply is told by received_at)."""
    frozen.shift(timedelta(seconds=5))
    order = api.place("tv1001", "VIP-MONTH")
    api.pay_with(order["order_no"], "phone_bill_sms")
    settle()
    return order["order_no"]


def test_while_the_gateway_switches_secrets_a_y_under_either_confirms_its_order(
    api, sms_pending, frozen, settings, tmp_path, caplog
):
    """The gateway's next secret is SMS_WEBHOOK_SECRET, the one it signs with until it switches is in
    SMS_WEBHOOK_SECRET_PREVIOUS_FILE (both made here): a Y under either confirms its order and the phone bill
    pays. A reply under neither is refused and confirms nothing."""
    old, new = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    settings.SMS_WEBHOOK_SECRET = new
    (tmp_path / "sms_webhook_secret_previous.txt").write_text(old + "\n")
    settings.SMS_WEBHOOK_SECRET_PREVIOUS_FILE = str(tmp_path / "sms_webhook_secret_previous.txt")
    body = sms_body()
    before = state()

    assert post_sms(body, hmac_hex(secrets.token_urlsafe(32), body)).status_code == 403
    assert post_sms(body, hmac_hex(sandbox_secret("sms_webhook_secret.txt"), body)).status_code == 403
    assert post_sms(body, hmac_hex(old, body + b" ")).status_code == 403
    settle()
    assert state() == before
    assert Order.objects.get(order_no=sms_pending).status == "payment_pending"

    assert post_sms(body, hmac_hex(old, body)).status_code == 200  # the gateway has not switched yet
    settle()
    assert Order.objects.get(order_no=sms_pending).status == "completed"
    assert "SMS reply signed with SMS_WEBHOOK_SECRET_PREVIOUS" in caplog.text  # what tells it has not

    second = confirm_by_sms(api, frozen)
    body = sms_body()
    assert post_sms(body, hmac_hex(new, body)).status_code == 200  # it has
    settle()
    assert Order.objects.get(order_no=second).status == "completed"
    assert SimSmpSubscription.objects.filter(order_no__in=[sms_pending, second], charge="phone_bill").count() == 2


def test_once_the_previous_sms_secret_is_removed_replies_under_it_are_refused(
    api, sms_pending, frozen, settings, tmp_path
):
    """After the switch: the previous secret's file removed before the restart that unsets it, then the setting
    unset. Either way a reply under it is refused and confirms nothing, and the current secret goes on."""
    old, new = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    previous = tmp_path / "sms_webhook_secret_previous.txt"
    previous.write_text(old)
    settings.SMS_WEBHOOK_SECRET = new
    settings.SMS_WEBHOOK_SECRET_PREVIOUS_FILE = str(previous)
    body = sms_body()
    assert post_sms(body, hmac_hex(old, body)).status_code == 200
    settle()
    assert Order.objects.get(order_no=sms_pending).status == "completed"

    second = confirm_by_sms(api, frozen)
    previous.unlink()
    body = sms_body()
    before = state()
    assert post_sms(body, hmac_hex(old, body)).status_code == 403
    settings.SMS_WEBHOOK_SECRET_PREVIOUS_FILE = ""
    assert post_sms(body, hmac_hex(old, body)).status_code == 403
    settle()
    assert state() == before
    assert Order.objects.get(order_no=second).status == "payment_pending"

    assert post_sms(body, hmac_hex(new, body)).status_code == 200
    settle()
    assert Order.objects.get(order_no=second).status == "completed"


def test_a_reply_under_the_previous_sms_secret_costs_no_more_statements(demo, settings, frozen):
    """The reply's path reads its secrets from the settings and their files, never from the database: a reply
    (with no confirmation pending) under the previous secret takes the statements one under the current does."""
    old = secrets.token_urlsafe(32)
    current = sandbox_secret("sms_webhook_secret.txt")
    body = sms_body("13800000077")
    with CaptureQueriesContext(connection) as alone:
        assert post_sms(body, hmac_hex(current, body)).json() == {"outcome": "none_pending"}
    settings.SMS_WEBHOOK_SECRET_PREVIOUS = old
    frozen.shift(timedelta(seconds=5))
    body = sms_body("13800000077")
    with CaptureQueriesContext(connection) as under_previous:
        assert post_sms(body, hmac_hex(old, body)).json() == {"outcome": "none_pending"}

    assert len(under_previous) == len(alone), [q["sql"] for q in under_previous]


MALFORMED_SMS = [
    b"not json",
    b"[]",
    b'{"text": "Y"}',
    b'{"from": 13800000001, "text": "Y"}',
    b'{"from": "1380"}',
    # Without received_at every "Y" of a number is the same bytes: the next would be taken for a retry of this one.
    b'{"from": "13800000001", "text": "Y"}',
    b'{"from": "13800000001", "text": "Y", "received_at": "yesterday"}',
]


def test_signed_but_malformed_reply_is_a_400_and_changes_nothing(sms_pending):
    before = state()

    answers = [
        post_sms(body, hmac_hex(sandbox_secret("sms_webhook_secret.txt"), body)).status_code for body in MALFORMED_SMS
    ]

    assert answers == [400] * len(MALFORMED_SMS)
    assert state() == before
