"""The app's Alipay configuration, resolved once per use from settings."""

from __future__ import annotations

from django.conf import settings

from ipvas.credentials import load_public_key, private_key_pem, public_key_pem


def alipay_public_key_pem() -> str:
    return public_key_pem("ALIPAY_PUBLIC_KEY", sandbox_private_file="alipay_private_key.pem")


def alipay_public_key():  # type: ignore[no-untyped-def]
    return load_public_key(alipay_public_key_pem())


def app_private_key_pem() -> str:
    return private_key_pem("ALIPAY_APP_PRIVATE_KEY", sandbox_file="alipay_app_private_key.pem")


def notify_url() -> str:
    return f"{settings.PUBLIC_BASE_URL}/billing/notify/alipay/"
