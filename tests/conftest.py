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


# The files that take longest (seconds, measured with --durations on two cores, 2026-12-07), run first: pytest-xdist
# hands out a file at a time in the order collected, and a long file handed out last kept one process busy
# for minutes after the other had finished. The rest keep their order.
LONGEST_FILES = {
    "tests/tv/test_browser.py": 89,
    "tests/reliability/test_dependency_faults.py": 78,
    "tests/billing/test_reconciliation_audit.py": 54,
    "tests/reliability/test_rabbitmq_broker.py": 48,
    "tests/reliability/test_random_run.py": 42,
    "tests/backoffice/test_screens_browser.py": 37,
    "tests/reliability/test_disk_full.py": 35,
    "tests/reliability/test_topology.py": 34,
    "tests/channels_crm/test_browser_payment_code.py": 34,
    "tests/channels_crm/test_screens_browser.py": 28,
    "tests/channels_crm/test_browser.py": 28,
    "tests/reliability/test_beat_takeover.py": 27,
    "tests/reliability/test_races.py": 23,
    "tests/ipvas/test_broker.py": 23,
    "tests/billing/test_refunds.py": 21,
    "tests/channels_crm/test_browser_session.py": 19,
    "tests/epg_api/test_entitlement_answers.py": 18,
    "tests/lifecycle/test_contracts.py": 18,
    "tests/lifecycle/test_subscriptions.py": 15,
    "tests/reliability/test_worker_crash.py": 13,
    "tests/reliability/test_outbox_crash.py": 13,
    "tests/backoffice/test_reports_subscriptions.py": 13,
    "tests/channels_crm/test_pages.py": 13,
    "tests/billing/test_payment_code_clients.py": 12,
    "tests/channels_crm/test_browser_scan_after_ticking.py": 11,
    "tests/lifecycle/test_payment_code.py": 11,
    "tests/backoffice/test_pages_speak_chinese.py": 11,
    "tests/integration/test_plain_worker.py": 11,
    "tests/tv/test_browser_review.py": 10,
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


# Rows that migrate makes and no test changes: Django's flush after a committed test (transaction=True, the live
# servers) deleted them, then its post_migrate made them again, 0.23 s of that test's 0.29 s teardown.
MADE_BY_MIGRATE = frozenset({"django_content_type", "auth_permission"})


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup):  # type: ignore[no-untyped-def]
    """The test database as pytest-django makes it; then a committed test's flush keeps what migrate made there
    (content types, permissions), instead of deleting it and making it again."""
    from django.contrib.auth.management import create_permissions
    from django.contrib.contenttypes.management import create_contenttypes
    from django.db import connection
    from django.db.models.signals import post_migrate

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


# The rows seed_demo made the first time a process asked for the demo, by model (tests.conftest.demo).
_demo_rows: dict[bool, list[tuple[type, list]]] = {}


@pytest.fixture
def demo(db):
    """The demo data of docs/interfaces.md §7: made by ``seed_demo`` in an empty database the first time in a
    process, then put back as the rows it made there (their times set to now, as if made now): 60 queries and
    50 ms a test were 1,000 tests' set-up. Where a fixture made some of them first, seed_demo runs as before."""
    from django.conf import settings as django_settings
    from django.core.management import call_command

    from orders.models import Product

    rows = _demo_rows.get(django_settings.SANDBOX)
    if rows is not None and not any(model._base_manager.exists() for model, _ in rows):
        _put_back(rows)
    elif rows is not None:  # a fixture made some of them first: seed_demo, which leaves what is there
        call_command("seed_demo", stdout=open(os.devnull, "w"))
    else:
        models = _all_models()
        clean = not any(model._base_manager.exists() for model in models if model._meta.db_table not in MADE_BY_MIGRATE)
        call_command("seed_demo", stdout=open(os.devnull, "w"))
        if clean:  # what seed_demo makes in an empty database, and nothing else
            _demo_rows[django_settings.SANDBOX] = [
                (model, made)
                for model in models
                if model._meta.db_table not in MADE_BY_MIGRATE
                if (made := list(model._base_manager.all()))
            ]
    return {p.code: p for p in Product.objects.all()}


def _all_models() -> list[type]:
    from django.apps import apps

    return [model for model in apps.get_models(include_auto_created=True) if not model._meta.proxy]


def _put_back(rows: list[tuple[type, list]]) -> None:
    """The rows again, in one transaction (the foreign keys are checked at its commit, whatever the order)."""
    import copy

    from django.db import transaction
    from django.utils import timezone

    now = timezone.now()
    with transaction.atomic():
        for model, made in rows:
            fresh = []
            for row in made:
                row = copy.copy(row)
                row._state = copy.copy(row._state)
                row._state.adding, row._state.db = True, None
                for field in model._meta.concrete_fields:
                    if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
                        setattr(row, field.attname, now)
                    elif field.default is timezone.now:
                        setattr(row, field.attname, now)
                fresh.append(row)
            model._base_manager.bulk_create(fresh)
