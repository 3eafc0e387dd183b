"""Speed-only set-up shared by the suites that drive many orders through the sandbox.

Behaviour is unchanged: Celery's Django fix-up runs every system check each
time ``run_due_tasks`` imports the task modules (a worker does it once);
WhiteNoise scans the static finders for every new test client; and the
partners' public keys are configured as production configures them instead
of being derived from the sandbox's private keys for every notification.
"""

from __future__ import annotations

from functools import cache

from cryptography.hazmat.primitives import serialization

from ipvas.keyfiles import sandbox_private_key_pem


@cache
def public_pem(private_file: str) -> str:
    """The public key, PEM, of one of the sandbox's private keys."""
    key = serialization.load_pem_private_key(sandbox_private_key_pem(private_file).encode(), password=None)
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def speed_up(monkeypatch, settings) -> None:
    monkeypatch.setenv("CELERY_SKIP_CHECKS", "1")
    settings.WHITENOISE_USE_FINDERS = False
    settings.WECHATPAY_PLATFORM_PUBLIC_KEY = public_pem("wechatpay_platform_private_key.pem")
    settings.ALIPAY_PUBLIC_KEY = public_pem("alipay_private_key.pem")
