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
