"""Keys and secrets of the partner systems, from settings or, in the sandbox, from SANDBOX_DIR.

A setting ``X`` holds the value itself, ``X_FILE`` a path to it; with neither
set, the sandbox's generated key is used when IPVAS_SANDBOX is on, and
production refuses to start the feature (ImproperlyConfigured). A key ring
(``WECHATPAY_PLATFORM_PUBLIC_KEYS``) holds several public keys by id:
``id=path`` entries or a directory of ``<id>.pem`` files. Files are read at
each use (a new one is taken without a restart); a key is parsed once per
process (``load_public_key``, cached by its PEM).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from ipvas.keycheck import KEY_ID, ring_entries
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


@lru_cache(maxsize=8)
def _ring(name: str, value: str) -> dict[str, Path] | Path:
    return ring_entries(name, value)


def ring_public_key_pem(name: str, key_id: str) -> str | None:
    """The PEM of the key ``key_id`` in the key ring setting ``name``; None when the ring has no such id (or is
    not set). Only the named key's file is read; an id that could not name a file is nobody's."""
    value = getattr(settings, name, "") or ""
    if not value.strip() or not KEY_ID.fullmatch(key_id):
        return None
    entries = _ring(name, value)
    if isinstance(entries, Path):
        try:
            return (entries / f"{key_id}.pem").read_text()
        except FileNotFoundError:
            return None
    path = entries.get(key_id)
    return None if path is None else path.read_text()


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
