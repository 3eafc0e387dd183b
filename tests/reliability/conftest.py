"""The reliability tier (issue #6): every property under faults, races and crashes.

Everything here is in the integration tier (PostgreSQL, Redis, real Celery
workers): it skips without them and fails in CI when one is missing (see
tests/conftest.py). Each property has a short version in the default run and
a long one marked ``soak``, which runs only on demand: ``--soak`` (when
pytest is pointed at this directory), ``IPVAS_SOAK=1``, or ``-m soak``.
bench/reliability.py runs the soak versions and prints their figures.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

HERE = Path(__file__).resolve().parent


def pytest_addoption(parser: pytest.Parser) -> None:
    # Registered only when pytest is started on this directory (an "initial" conftest);
    # IPVAS_SOAK=1 and -m soak work from anywhere.
    parser.addoption("--soak", action="store_true", default=False, help="also run the long soak versions")


def soak_requested(config: pytest.Config) -> bool:
    if os.environ.get("IPVAS_SOAK", "").lower() in ("1", "true", "yes"):
        return True
    if config.getoption("--soak", default=False):
        return True
    expression = config.getoption("markexpr", default="") or ""
    return "soak" in expression and "not soak" not in expression


def _ours(item: pytest.Item) -> bool:
    return Path(str(item.fspath)).resolve().is_relative_to(HERE)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    keep_soak = soak_requested(config)
    kept, dropped = [], []
    for item in items:
        if _ours(item):
            item.add_marker(pytest.mark.integration)
            if item.get_closest_marker("soak") and not keep_soak:
                dropped.append(item)
                continue
        kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture(autouse=True)
def _providers_public_keys_configured(settings) -> None:
    """The providers' public keys configured as production does (the sandbox's), so that
    verifying a notification does not derive them from the private keys every time."""
    from ipvas.keyfiles import sandbox_private_key_pem

    for setting, private in (
        ("WECHATPAY_PLATFORM_PUBLIC_KEY", "wechatpay_platform_private_key.pem"),
        ("ALIPAY_PUBLIC_KEY", "alipay_private_key.pem"),
    ):
        key = serialization.load_pem_private_key(sandbox_private_key_pem(private).encode(), password=None)
        public = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        setattr(settings, setting, public.decode())


@pytest.fixture(autouse=True)
def _generous_abuse_limits(settings) -> None:
    """Hundreds of confirmations to the demo numbers within the hour are the point here, not abuse."""
    settings.SMS_CONFIRMATIONS_PER_NUMBER_PER_HOUR = 1_000_000
    settings.SMS_CONFIRMATIONS_PER_TV_ACCOUNT_PER_HOUR = 1_000_000
    settings.SMS_CONFIRMATIONS_PER_CLIENT_PER_MINUTE = 1_000_000
