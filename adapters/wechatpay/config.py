"""The merchant's WeChat Pay configuration, resolved once per use from settings."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from ipvas.credentials import load_public_key, private_key_pem, public_key_pem, ring_public_key_pem, secret


def apiv3_key() -> str:
    return secret("WECHATPAY_APIV3_KEY", sandbox_file="wechatpay_apiv3_key.txt")


def platform_public_key_pem() -> str:
    return public_key_pem("WECHATPAY_PLATFORM_PUBLIC_KEY", sandbox_private_file="wechatpay_platform_private_key.pem")


def platform_public_key_pem_for(key_id: str) -> str | None:
    """The PEM of WeChat Pay's key ``key_id`` (a Wechatpay-Serial: PUB_KEY_ID_..., or a platform certificate's
    serial number) among those configured: WECHATPAY_PLATFORM_PUBLIC_KEYS, then the single
    WECHATPAY_PLATFORM_PUBLIC_KEY[_FILE] under WECHATPAY_PLATFORM_PUBLIC_KEY_ID. None for any other id."""
    pem = ring_public_key_pem("WECHATPAY_PLATFORM_PUBLIC_KEYS", key_id)
    if pem is None and key_id and key_id == settings.WECHATPAY_PLATFORM_PUBLIC_KEY_ID:
        try:
            pem = platform_public_key_pem()
        except ImproperlyConfigured:  # production, with the key in the ring only, and not there any more
            return None
    return pem


def platform_public_key_for(key_id: str) -> RSAPublicKey | None:
    pem = platform_public_key_pem_for(key_id)
    return None if pem is None else load_public_key(pem)


def merchant_private_key_pem() -> str:
    return private_key_pem("WECHATPAY_MERCHANT_PRIVATE_KEY", sandbox_file="wechatpay_merchant_private_key.pem")


def notify_url() -> str:
    return f"{settings.PUBLIC_BASE_URL}/billing/notify/wechatpay/"


def v2_key() -> str:
    """The APIv2 key (32 characters) that signs the APIv2 calls of 委托代扣 and their notifications."""
    return secret("WECHATPAY_V2_KEY", sandbox_file="wechatpay_apiv2_key.txt")


def v2_notify_url() -> str:
    """Where the APIv2 payment notification of a pay-and-sign order arrives (its ``notify_url``)."""
    return f"{settings.PUBLIC_BASE_URL}/billing/notify/wechatpay/v2/"


def contract_notify_url() -> str:
    """Where the APIv2 signing notification arrives (``contract_notify_url``); configure the template's
    termination callback (解约回调地址) in the merchant platform to the same URL."""
    return f"{settings.PUBLIC_BASE_URL}/billing/notify/wechatpay/contract/"
