"""The partners' keys and ids, checked when the settings load: a process that could not sign a payment or
verify a notification refuses to start, naming the setting, instead of failing at the first customer.

Read from the environment directly (the settings are not loaded yet). ``ipvas/credentials.py`` reads the
same ``X`` / ``X_FILE`` pairs at use; this only proves they are there and are what they claim to be.
"""

from __future__ import annotations

import os
import re
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
    "SMS_WEBHOOK_SECRET_PREVIOUS",
    "CRM_SSO_PUBLIC_KEY",
    "CRM_SSO_PUBLIC_KEY_PREVIOUS",
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


# Settings that hold several public keys by id (``id=path`` entries, or a directory of ``<id>.pem`` files).
KEY_RING_SETTINGS = ("WECHATPAY_PLATFORM_PUBLIC_KEYS",)
# A key's id as the provider names it (WeChat Pay: PUB_KEY_ID_..., or a platform certificate's hex serial number);
# it names a file, so nothing else is taken.
KEY_ID = re.compile(r"[A-Za-z0-9_]{1,64}")


def ring_entries(name: str, value: str) -> dict[str, Path] | Path:
    """What a key ring setting says: ``{id: path}`` from ``id=path`` entries (separated by commas or white
    space), or the directory holding ``<id>.pem`` files when the value has no ``=``."""
    value = value.strip()
    if "=" not in value:
        return Path(value)
    entries: dict[str, Path] = {}
    for entry in re.split(r"[,\s]+", value):
        if not entry:
            continue
        key_id, _, path = entry.partition("=")
        if not KEY_ID.fullmatch(key_id) or not path:
            raise ImproperlyConfigured(f"{name}: {entry[:80]!r} is not id=path (the id: letters, digits and _).")
        if key_id in entries:
            raise ImproperlyConfigured(f"{name}: {key_id} is given twice.")
        entries[key_id] = Path(path)
    return entries


def key_ring(name: str) -> dict[str, str]:
    """The keys of the key ring setting ``name`` by id, each file read; empty when it is not set. A file that
    cannot be read, a directory that cannot be listed or holds no ``<id>.pem`` refuses the start, naming it."""
    value = os.environ.get(name, "")
    if not value.strip():
        return {}
    entries = ring_entries(name, value)
    if isinstance(entries, Path):
        try:
            files = sorted(entries.glob("*.pem")) if entries.is_dir() else None
        except OSError:
            files = None
        if files is None:
            raise ImproperlyConfigured(f"{name}={entries} is neither id=path entries nor a directory.")
        entries = {path.stem: path for path in files}
        strangers = [key_id for key_id in entries if not KEY_ID.fullmatch(key_id)]
        if strangers:
            raise ImproperlyConfigured(f"{name}: {strangers[0][:80]}.pem is not named <id>.pem.")
        if not entries:
            raise ImproperlyConfigured(f"{name}={value.strip()} holds no <id>.pem file.")
    keys = {}
    for key_id, path in entries.items():
        try:
            keys[key_id] = path.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc.__class__.__name__
            raise ImproperlyConfigured(f"{name}: {key_id}={path} cannot be read: {reason}.") from None
    return keys


def _required(name: str) -> str:
    value = configured(name)
    if not value.strip():
        raise ImproperlyConfigured(f"{name} (or {name}_FILE) must be set when IPVAS_PRODUCTION=1.")
    return value


def check_given() -> None:
    """In any set-up, each key or secret given is read once: every ``X_FILE`` and every file of a key ring can be
    read (a typo in a path is never a generated key), and every PEM key is a key of its kind. The sandbox
    generates the keys not given, but one given is the operator's, and a wrong one (a certificate for a public
    key, a private key for a public one) would fail only at the first payment, notification or sign-in."""
    for name in KEY_SETTINGS:
        value = configured(name)
        if not value.strip():
            continue
        check = PEM_CHECKS.get(name)
        if check is not None:
            check(name, value)
    for name in KEY_RING_SETTINGS:
        for each, pem in key_ring(name).items():
            _check_public_key(f"{name}: {each}", pem)


def require_key(name: str) -> None:
    """Production's key or secret ``name`` is given (its kind and its file are checked in any set-up:
    ``check_given``)."""
    _required(name)


def _check_private_key(name: str, pem: str) -> None:
    try:
        # The structure only: the full RSA check costs ~0.1 s per start, and the provider refuses a bad key.
        key = serialization.load_pem_private_key(pem.encode(), password=None, unsafe_skip_rsa_key_validation=True)
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured(f"{name} is not an unencrypted PEM private key: {exc}") from None
    if not isinstance(key, RSAPrivateKey):
        raise ImproperlyConfigured(f"{name} is not an RSA private key.")


def _check_public_key(name: str, pem: str) -> None:
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


# The PEM keys among KEY_SETTINGS, and the check of their kind: one given is checked in any set-up (``check_given``).
PEM_CHECKS = {
    "WECHATPAY_MERCHANT_PRIVATE_KEY": _check_private_key,
    "ALIPAY_APP_PRIVATE_KEY": _check_private_key,
    "WECHATPAY_PLATFORM_PUBLIC_KEY": _check_public_key,
    "ALIPAY_PUBLIC_KEY": _check_public_key,
    "CRM_SSO_PUBLIC_KEY": _check_public_key,
    "CRM_SSO_PUBLIC_KEY_PREVIOUS": _check_public_key,
}


def require_public_key_by_id(ring: str, single: str, key_id: str) -> None:
    """The id ``key_id`` has a key: in the ring ``ring``, or else the single key ``single`` (or ``single_FILE``).
    Every key of either is checked for its kind in any set-up (``check_given``)."""
    keys = key_ring(ring)
    if key_id in keys:
        return
    if keys and not configured(single).strip():
        raise ImproperlyConfigured(f"{single}_ID={key_id} has no key: give it in {ring} or in {single}[_FILE].")
    _required(single)


def require_secret(name: str, *, length: int | None = None) -> None:
    secret = _required(name).strip()
    if length is not None and len(secret.encode()) != length:
        raise ImproperlyConfigured(f"{name} must be {length} characters, not {len(secret.encode())}.")


def require_set(name: str, value: str) -> None:
    if not value.strip():
        raise ImproperlyConfigured(f"{name} must be set when IPVAS_PRODUCTION=1.")
