"""Our WeChat Pay and Alipay algorithms agree with the providers' Python SDKs, both ways.

billing/providers/*/crypto.py verify notifications and the sandbox signs
with them; the SDKs (wechatpayv3, python-alipay-sdk) are independent
implementations of the same protocols. Keys are made here, for this run.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from alipay import AliPay
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.utils import timezone
from wechatpayv3 import WeChatPay, WeChatPayType
from wechatpayv3.utils import aes_decrypt, rsa_sign, rsa_verify

from adapters.alipay import crypto as alipay_crypto
from adapters.wechatpay import crypto as wechat_crypto
from ipvas.credentials import load_public_key
from ipvas.keyfiles import sandbox_public_key_pem, sandbox_secret
from sandbox import payments
from sandbox.models import SimTrade, SimTradeStatus

BODY = '{"code_url":"weixin://wxpay/bizpayurl?pr=abc","description":"VIP 月卡 ¥25"}'


def _key_pair() -> tuple[rsa.RSAPrivateKey, str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return key, private, public


@pytest.fixture(scope="module")
def ours():
    return _key_pair()


@pytest.fixture(scope="module")
def theirs():
    return _key_pair()


def _paid_trade(provider: str) -> SimTrade:
    """A paid trade as the simulated provider holds it, never saved: notifications need no database."""
    now = timezone.now()
    return SimTrade(
        provider=provider,
        out_trade_no="T20261125ABCDEF",
        transaction_id="4200000000202611251234567890",
        amount_fen=2500,
        description="VIP 月卡",
        code_url="weixin://wxpay/bizpayurl?pr=abc",
        status=SimTradeStatus.PAID,
        expires_at=now + timedelta(minutes=3),
        paid_at=now,
        created_at=now,
    )


# --- WeChat Pay API v3 ----------------------------------------------------------------------


def test_wechat_signatures_agree_with_the_sdk_both_ways(ours):
    key, _, _ = ours

    signature = wechat_crypto.sign(key, timestamp="1764000000", nonce="N0NCE", body=BODY.encode())
    assert rsa_verify("1764000000", "N0NCE", BODY, signature, key.public_key())
    assert not rsa_verify("1764000001", "N0NCE", BODY, signature, key.public_key())

    by_sdk = rsa_sign(key, f"1764000000\nN0NCE\n{BODY}\n")
    assert wechat_crypto.verify(key.public_key(), timestamp="1764000000", nonce="N0NCE", body=BODY, signature=by_sdk)
    assert not wechat_crypto.verify(
        key.public_key(), timestamp="1764000000", nonce="N0NCE", body=BODY + " ", signature=by_sdk
    )


def test_wechat_signature_over_an_empty_body_agrees_with_the_sdk(ours):
    # The SDK verifies a 204's empty body too: "ts\nnonce\n\n".
    key, _, _ = ours
    signature = wechat_crypto.sign(key, timestamp="1764000000", nonce="N0NCE", body=b"")
    assert rsa_verify("1764000000", "N0NCE", "", signature, key.public_key())


def test_wechat_resources_we_encrypt_the_sdk_decrypts():
    apiv3_key = "0123456789abcdefABCDEF0123456789"
    plaintext = json.dumps({"out_trade_no": "T1", "trade_state": "SUCCESS", "desc": "支付成功"}, ensure_ascii=False)

    ciphertext = wechat_crypto.encrypt_resource(
        apiv3_key, nonce="abcdefABCDEF", associated_data="transaction", plaintext=plaintext
    )

    assert aes_decrypt("abcdefABCDEF", ciphertext, "transaction", apiv3_key) == plaintext
    assert aes_decrypt("abcdefABCDEF", ciphertext, "certificate", apiv3_key) is None
    assert (
        wechat_crypto.decrypt_resource(
            apiv3_key, nonce="abcdefABCDEF", associated_data="transaction", ciphertext=ciphertext
        )
        == plaintext
    )
    assert (
        wechat_crypto.decrypt_resource(
            "X" * 32, nonce="abcdefABCDEF", associated_data="transaction", ciphertext=ciphertext
        )
        is None
    )


def test_the_sandbox_wechat_notification_passes_the_sdks_own_callback_check(settings, tmp_path, ours):
    settings.SANDBOX_DIR = tmp_path
    _, merchant_private, _ = ours
    sdk = WeChatPay(
        wechatpay_type=WeChatPayType.NATIVE,
        mchid=settings.WECHATPAY_MCHID,
        private_key=merchant_private,
        cert_serial_no="SERIAL",
        appid=settings.WECHATPAY_APPID,
        apiv3_key=sandbox_secret("wechatpay_apiv3_key.txt"),
        notify_url="https://example.com/notify",
        public_key=sandbox_public_key_pem("wechatpay_platform_private_key.pem"),
        public_key_id=settings.WECHATPAY_PLATFORM_PUBLIC_KEY_ID,
    )
    body, headers = payments.wechatpay_notification(_paid_trade(payments.WECHATPAY))

    event = sdk.callback(headers, body)

    assert event is not None
    assert event["event_type"] == "TRANSACTION.SUCCESS"
    resource = event["resource"]
    assert (resource["out_trade_no"], resource["trade_state"], resource["amount"]["total"]) == (
        "T20261125ABCDEF",
        "SUCCESS",
        2500,
    )
    assert sdk.callback(headers, body.replace(b"SUCCESS", b"CLOSED", 1)) is None  # tampered


# --- Alipay RSA2 ------------------------------------------------------------------------------


def _alipay(app_private: str, alipay_public: str) -> AliPay:
    return AliPay(
        appid="2021000000000001",
        app_notify_url=None,
        app_private_key_string=app_private,
        alipay_public_key_string=alipay_public,
        sign_type="RSA2",
    )


NOTIFICATION = {
    "app_id": "2021000000000001",
    "out_trade_no": "T20261125ABCDEF",
    "subject": "VIP 月卡",
    "total_amount": "25.00",
    "trade_status": "TRADE_SUCCESS",
    "gmt_payment": "2026-11-25 12:00:00",
    "fund_bill_list": '[{"amount":"25.00","fundChannel":"ALIPAYACCOUNT"}]',
}


def test_alipay_parameters_we_sign_the_sdk_verifies(ours, theirs):
    alipay_key, _, alipay_public = theirs
    sdk = _alipay(ours[1], alipay_public)  # the SDK as a merchant: it verifies what Alipay signs

    signature = alipay_crypto.sign(alipay_key, NOTIFICATION)

    assert sdk.verify({**NOTIFICATION, "sign_type": "RSA2"}, signature)
    assert not sdk.verify({**NOTIFICATION, "total_amount": "2500.00", "sign_type": "RSA2"}, signature)


def test_alipay_parameters_the_sdk_signs_we_verify(ours, theirs):
    app_key, app_private, _ = ours
    sdk = _alipay(app_private, theirs[2])

    signature = sdk._sign("&".join(f"{k}={NOTIFICATION[k]}" for k in sorted(NOTIFICATION)))

    assert alipay_crypto.verify(app_key.public_key(), NOTIFICATION, signature)
    assert alipay_crypto.verify(app_key.public_key(), {**NOTIFICATION, "sign_type": "RSA2"}, signature)
    assert not alipay_crypto.verify(app_key.public_key(), {**NOTIFICATION, "subject": "VIP 年卡"}, signature)


def test_alipay_answers_we_sign_the_sdk_verifies(ours, theirs):
    # Synchronous answers are signed over the exact text of the inner JSON object.
    alipay_key, _, alipay_public = theirs
    sdk = _alipay(ours[1], alipay_public)
    inner = '{"code":"10000","msg":"Success","out_trade_no":"T1","qr_code":"https://qr.alipay.com/bax0abc","subject":"月卡"}'

    signature = alipay_crypto.sign_string(alipay_key, inner)

    assert sdk._verify(inner, signature)
    raw = f'{{"alipay_trade_precreate_response":{inner},"sign":"{signature}"}}'
    assert sdk._verify_and_return_sync_response(raw, "alipay_trade_precreate_response")["qr_code"] == (
        "https://qr.alipay.com/bax0abc"
    )


def test_the_sandbox_alipay_notification_passes_the_sdks_check(settings, tmp_path, ours):
    settings.SANDBOX_DIR = tmp_path
    sdk = _alipay(ours[1], sandbox_public_key_pem("alipay_private_key.pem"))
    params = payments.alipay_notification(_paid_trade(payments.ALIPAY))
    signature = params.pop("sign")

    assert sdk.verify(dict(params), signature)
    assert alipay_crypto.verify(
        load_public_key(sandbox_public_key_pem("alipay_private_key.pem")), {**params, "sign": signature}, signature
    )
