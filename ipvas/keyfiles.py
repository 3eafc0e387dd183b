"""Keys the simulated outside systems sign with, made on first use in SANDBOX_DIR (the platform's key store).

An integrator signs a notification, an SMS reply or an SSO ticket with these
files exactly as the real system would, and IPVAS verifies with the matching
public key or secret (docs/interfaces.md §7). Nothing here is ever committed.
"""

from __future__ import annotations

import os
import secrets
import string
from functools import lru_cache
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings

RSA_KEYS = {
    "wechatpay_platform_private_key.pem",  # simulated WeChat Pay signs notifications and answers
    "alipay_private_key.pem",  # simulated Alipay signs notifications and answers
    "crm_sso_private_key.pem",  # simulated CRM signs SSO tickets
    "wechatpay_merchant_private_key.pem",  # our merchant key, for the SDK client against the fake
    "alipay_app_private_key.pem",  # our app key, for the SDK client against the fake
}
SECRETS = {
    "wechatpay_apiv3_key.txt": 32,  # AES-256-GCM key of WeChat Pay API v3: 32 ASCII characters
    "wechatpay_apiv2_key.txt": 32,  # WeChat Pay's APIv2 key (MD5 / HMAC-SHA256 signatures of 委托代扣)
    "sms_webhook_secret.txt": 48,
}


def sandbox_dir() -> Path:
    path = Path(settings.SANDBOX_DIR)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _write_once(path: Path, content: bytes) -> None:
    """Create ``path`` with ``content`` unless another process made it first."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "wb") as fh:
        fh.write(content)


def sandbox_file(name: str) -> bytes:
    """The content of a sandbox key file, generating it on first use."""
    if name not in RSA_KEYS and name not in SECRETS:
        raise KeyError(name)
    path = sandbox_dir() / name
    if not path.exists():
        if name in RSA_KEYS:
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            content = key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        else:
            alphabet = string.ascii_letters + string.digits
            content = "".join(secrets.choice(alphabet) for _ in range(SECRETS[name])).encode()
        _write_once(path, content)
    # A file being written by another process is complete once it has content.
    for _ in range(50):
        data = path.read_bytes()
        if data:
            return data
        import time

        time.sleep(0.01)
    raise RuntimeError(f"sandbox key {path} stays empty")


def sandbox_private_key_pem(name: str) -> str:
    return sandbox_file(name).decode()


def sandbox_public_key_pem(name: str) -> str:
    return _public_half(sandbox_file(name))


@lru_cache(maxsize=16)
def _public_half(private_pem: bytes) -> str:
    """Parsing an RSA private key costs ~0.1 s of CPU: done once per key file content."""
    key = serialization.load_pem_private_key(private_pem, password=None)
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def sandbox_secret(name: str) -> str:
    return sandbox_file(name).decode().strip()
