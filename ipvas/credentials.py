"""Keys and secrets of the partner systems, from settings or, in the sandbox, from SANDBOX_DIR.

A setting ``X`` holds the value itself, ``X_FILE`` a path to it; with neither
set, the sandbox's generated key is used when IPVAS_SANDBOX is on, and
production refuses to start the feature (ImproperlyConfigured).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from ipvas.keyfiles import sandbox_private_key_pem, sandbox_public_key_pem, sandbox_secret


def _configured(name: str) -> str:
    value = getattr(settings, name, "") or ""
    if value:
        return str(value)
    path = getattr(settings, f"{name}_FILE", "") or ""
    if path:
        return Path(path).read_text()
    return ""


def secret(name: str, *, sandbox_file: str) -> str:
    value = _configured(name)
    if value:
        return value.strip()
    if settings.SANDBOX:
        return sandbox_secret(sandbox_file)
    raise ImproperlyConfigured(f"{name} (or {name}_FILE) must be set.")


def public_key_pem(name: str, *, sandbox_private_file: str) -> str:
    value = _configured(name)
    if value:
        return value
    if settings.SANDBOX:
        return sandbox_public_key_pem(sandbox_private_file)
    raise ImproperlyConfigured(f"{name} (or {name}_FILE) must be set.")


def private_key_pem(name: str, *, sandbox_file: str) -> str:
    value = _configured(name)
    if value:
        return value
    if settings.SANDBOX:
        return sandbox_private_key_pem(sandbox_file)
    raise ImproperlyConfigured(f"{name} (or {name}_FILE) must be set.")


@lru_cache(maxsize=32)
def load_public_key(pem: str) -> RSAPublicKey:
    key = serialization.load_pem_public_key(pem.encode())
    if not isinstance(key, RSAPublicKey):
        raise ImproperlyConfigured("an RSA public key is needed")
    return key


@lru_cache(maxsize=32)
def load_private_key(pem: str) -> RSAPrivateKey:
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    if not isinstance(key, RSAPrivateKey):
        raise ImproperlyConfigured("an RSA private key is needed")
    return key
