from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from django.conf import settings

from tests.support.tasks import run_due_tasks


def _integration_services_missing() -> str:
    """Why the integration tier cannot run here, or '' when it can."""
    db = settings.DATABASES["default"]["ENGINE"]
    broker = settings.CELERY_BROKER_URL
    missing = []
    if "postgresql" not in db:
        missing.append("DATABASE_URL is not PostgreSQL")
    if not broker.startswith(("redis", "amqp")):
        missing.append("CELERY_BROKER_URL is neither Redis nor RabbitMQ")
    if not settings.REDIS_URL:
        missing.append("REDIS_URL is not set")
    return "; ".join(missing)


# The files that take longest (seconds: their tests of 2 s or more, measured with --durations on two cores,
# 2026-12-07 14:40 UTC), run first: pytest-xdist hands out a file at a time in the order collected, and a long
# file handed out last kept one process busy for minutes after the other had finished. The rest keep their
# order. This order holds only with xdist's --no-loadscope-reorder (dev.py's PARALLEL): by default xdist hands
# out the files with the most tests first, which put these (one to four tests each, most of them) last.
LONGEST_FILES = {
    "tests/reliability/test_dependency_faults.py": 84,
    "tests/reliability/test_topology.py": 73,
    "tests/reliability/test_rabbitmq_broker.py": 53,
    "tests/backoffice/test_screens_browser.py": 50,
    "tests/tv/test_browser.py": 49,
    "tests/reliability/test_random_run.py": 45,
    "tests/channels_crm/test_screens_browser.py": 43,
    "tests/reliability/test_disk_full.py": 41,
    "tests/channels_crm/test_browser_payment_code.py": 33,
    "tests/reliability/test_pgbouncer.py": 33,
    "tests/reliability/test_beat_takeover.py": 27,
    "tests/ipvas/test_production_settings.py": 26,
    "tests/reliability/test_races.py": 24,
    "tests/ipvas/test_broker.py": 22,
    "tests/channels_crm/test_browser.py": 21,
    "tests/reliability/test_reports_replica.py": 20,  # 51 s before its kept process (19:45 UTC)
    "tests/channels_crm/test_browser_session.py": 18,
    "tests/billing/test_reports_browser.py": 14,
    "tests/backoffice/test_pages_speak_chinese.py": 14,
    "tests/reliability/test_outbox_crash.py": 11,
    "tests/billing/test_refunds.py": 11,
    "tests/reliability/test_worker_crash.py": 11,
    "tests/integration/test_plain_worker.py": 9,
    "tests/ipvas/test_web_server_logs.py": 9,
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: -LONGEST_FILES.get(item.nodeid.split("::", 1)[0], 0))


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("integration"):
        why = _integration_services_missing()
        if why:
            if os.environ.get("CI"):
                pytest.fail(f"integration tier needs its services in CI: {why}", pytrace=False)
            pytest.skip(f"integration tier: {why}")


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup):  # type: ignore[no-untyped-def]
    """The test database as pytest-django makes it; then a committed test's flush keeps what migrate made there
    (content types, permissions), instead of deleting it and making it again through post_migrate (0.23 s of
    such a test's 0.29 s teardown)."""
    from django.contrib.auth.management import create_permissions
    from django.contrib.contenttypes.management import create_contenttypes
    from django.db import connection
    from django.db.models.signals import post_migrate

    from tests.support.made_once import MADE_BY_MIGRATE

    operations = type(connection.ops)
    flush = operations.sql_flush

    def keeping(self, style, tables, **options):  # type: ignore[no-untyped-def]
        return flush(self, style, [table for table in tables if table not in MADE_BY_MIGRATE], **options)

    permissions_uid = "django.contrib.auth.management.create_permissions"
    operations.sql_flush = keeping
    post_migrate.disconnect(create_permissions, dispatch_uid=permissions_uid)
    post_migrate.disconnect(create_contenttypes)
    yield
    post_migrate.connect(create_contenttypes)
    post_migrate.connect(create_permissions, dispatch_uid=permissions_uid)
    operations.sql_flush = flush


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    from django.core.cache import cache

    cache.clear()


@pytest.fixture(autouse=True)
def _hang_up_after() -> Iterator[None]:
    """The HTTP clients keep connections open between calls (adapters.http): hang up after each test, so that a
    live server's request thread ends and closes its database connection (else PostgreSQL waits for it before
    it drops the test database)."""
    yield
    from adapters.http import hang_up

    hang_up()


@pytest.fixture
def window_start(time_machine) -> None:
    """Now is one second into an hour (and so into a minute), the clock running: a test that counts up to a rate
    limit stays in one of its fixed windows (ipvas.ratelimit), instead of failing when a minute turns mid-test."""
    now = datetime.now(tz=UTC).timestamp()
    time_machine.move_to(datetime.fromtimestamp(now - now % 3600 + 1, tz=UTC), tick=True)


@pytest.fixture
def run_tasks():
    """Run the due outbox work now, as the worker would."""
    return run_due_tasks


@pytest.fixture
def demo(db):
    """The demo data of docs/interfaces.md §7 (tests.support.demo): the products by code."""
    from tests.support.demo import demo_data

    return demo_data()
