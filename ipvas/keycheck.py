"""The partners' keys and ids, checked when the settings load: a process that could not sign a payment or
verify a notification refuses to start, naming the setting, instead of failing at the first customer.

Read from the environment directly (the settings are not loaded yet). ``ipvas/credentials.py`` reads the
same ``X`` / ``X_FILE`` pairs at use; this only proves they are there and are what they claim to be.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from django.core.exceptions import ImproperlyConfigured

# Every key or secret that may be given as X or X_FILE (docs/configuration.md).
KEY_SETTINGS = (
    "WECHATPAY_MERCHANT_PRIVATE_KEY",
    "WECHATPAY_APIV3_KEY",
    "WECHATPAY_PLATFORM_PUBLIC_KEY",
    "WECHATPAY_V2_KEY",
    "ALIPAY_APP_PRIVATE_KEY",
    "ALIPAY_PUBLIC_KEY",
    "SMS_WEBHOOK_SECRET",
    "CRM_SSO_PUBLIC_KEY",
)


def configured(name: str) -> str:
    """The value of ``name``, or the content of the file ``name_FILE`` names; empty when neither is set.

    A file that is named but cannot be read, or is empty, refuses the start with the setting's name."""
    value = os.environ.get(name, "")
    if value:
        return value
    path = os.environ.get(f"{name}_FILE", "")
    if not path:
        return ""
    try:
        content = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc.__class__.__name__
        raise ImproperlyConfigured(f"{name}_FILE={path} cannot be read: {reason}.") from None
    if not content.strip():
        raise ImproperlyConfigured(f"{name}_FILE={path} is empty.")
    return content


def check_files() -> None:
    """Every ``X_FILE`` given can be read (in any set-up: a typo in a path is never a generated key)."""
    for name in KEY_SETTINGS:
        configured(name)


def _required(name: str) -> str:
    value = configured(name)
    if not value.strip():
        raise ImproperlyConfigured(f"{name} (or {name}_FILE) must be set when IPVAS_PRODUCTION=1.")
    return value


def require_private_key(name: str) -> None:
    pem = _required(name)
    try:
        # The structure only: the full RSA check costs ~0.1 s per start, and the provider refuses a bad key.
        key = serialization.load_pem_private_key(pem.encode(), password=None, unsafe_skip_rsa_key_validation=True)
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured(f"{name} is not an unencrypted PEM private key: {exc}") from None
    if not isinstance(key, RSAPrivateKey):
        raise ImproperlyConfigured(f"{name} is not an RSA private key.")


def require_public_key(name: str) -> None:
    pem = _required(name)
    if "BEGIN CERTIFICATE" in pem:
        raise ImproperlyConfigured(
            f"{name} holds a certificate; give the public key (openssl x509 -in cert.pem -pubkey -noout)."
        )
    try:
        key = serialization.load_pem_public_key(pem.encode())
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} is not a PEM public key: {exc}") from None
    if not isinstance(key, RSAPublicKey):
        raise ImproperlyConfigured(f"{name} is not an RSA public key.")


def require_secret(name: str, *, length: int | None = None) -> None:
    secret = _required(name).strip()
    if length is not None and len(secret.encode()) != length:
        raise ImproperlyConfigured(f"{name} must be {length} characters, not {len(secret.encode())}.")


def require_set(name: str, value: str) -> None:
    if not value.strip():
        raise ImproperlyConfigured(f"{name} must be set when IPVAS_PRODUCTION=1.")
