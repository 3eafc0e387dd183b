"""Keys and secrets of the partner systems, from settings or, in the sandbox, from SANDBOX_DIR.

A setting ``X`` holds the value itself, ``X_FILE`` a path to it; with neither
set, the sandbox's generated key is used when IPVAS_SANDBOX is on, and
production refuses to start the feature (ImproperlyConfigured). A key ring
(``WECHATPAY_PLATFORM_PUBLIC_KEYS``) holds several public keys by id:
``id=path`` entries or a directory of ``<id>.pem`` files. Files are read at
each use (a new one is taken without a restart); a key is parsed once per
process (``load_public_key``, cached by its PEM). Where a partner names no
key, ``X_PREVIOUS`` (or ``X_PREVIOUS_FILE``) holds the other key or secret
accepted beside ``X`` while the partner switches (``accepted_secrets``,
``accepted_public_key_pems``).
"""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from ipvas.keycheck import KEY_ID, ring_entries
from ipvas.keyfiles import sandbox_private_key_pem, sandbox_public_key_pem, sandbox_secret

logger = logging.getLogger(__name__)


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


def _previous(name: str) -> str:
    """``name_PREVIOUS`` (or its file's content), "" when not set. No sandbox default. A file removed before the
    restart that unsets it (a leaked secret withdrawn at once) counts as not set, and is logged: the current key
    or secret goes on being accepted, where an error would refuse every reply or ticket."""
    try:
        return _configured(f"{name}_PREVIOUS")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc.__class__.__name__
        logger.warning("%s_PREVIOUS_FILE cannot be read (%s): it is not accepted (unset it)", name, reason)
        return ""


def accepted_secrets(name: str, *, sandbox_file: str) -> list[str]:
    """The secret ``name``, then ``name_PREVIOUS`` when one is configured: while the partner switches, what is
    signed with either is accepted."""
    accepted = [secret(name, sandbox_file=sandbox_file)]
    other = _previous(name).strip()
    if other:
        accepted.append(other)
    return accepted


def accepted_public_key_pems(name: str, *, sandbox_private_file: str) -> list[str]:
    """The public key ``name``, then ``name_PREVIOUS`` when one is configured (as ``accepted_secrets``)."""
    accepted = [public_key_pem(name, sandbox_private_file=sandbox_private_file)]
    other = _previous(name)
    if other.strip():
        accepted.append(other)
    return accepted


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
