"""The merchant's WeChat Pay configuration, resolved once per use from settings."""

from __future__ import annotations

from django.conf import settings

from ipvas.credentials import load_public_key, private_key_pem, public_key_pem, secret


def apiv3_key() -> str:
    return secret("WECHATPAY_APIV3_KEY", sandbox_file="wechatpay_apiv3_key.txt")


def platform_public_key_pem() -> str:
    return public_key_pem("WECHATPAY_PLATFORM_PUBLIC_KEY", sandbox_private_file="wechatpay_platform_private_key.pem")


def platform_public_key():  # type: ignore[no-untyped-def]
    return load_public_key(platform_public_key_pem())


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
