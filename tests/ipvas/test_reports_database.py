"""Which database a report's failure is logged against (ipvas.reports_database.read_reports).

A report made from the replica reads from the primary too (what the router leaves there, what a page names):
an error of the primary must not send the operator to look at a healthy replica. The "replica" here is a second
connection to the test database under the alias ``reports``, as ``REPORTS_DATABASE_URL`` configures it; the
replica's whole behaviour, with a real standby, is tests/reliability/test_reports_replica.py's.
"""

from __future__ import annotations

import logging
import warnings

import pytest
from django.conf import settings as django_settings
from django.db import connections, router, transaction
from django.db.utils import load_backend

from ipvas.reports_database import PRIMARY, REPORTS, Source, read_reports
from orders.models import Order

ON_POSTGRESQL = "postgresql" in django_settings.DATABASES["default"]["ENGINE"]
LOGGER = "ipvas.reports_database"


def _with_reports_alias(settings, **changes):
    """``REPORTS_DATABASE_URL`` configured: the alias in the settings, its router installed. Its connection is
    made here rather than from ``connections.settings``, as Django's tests allow a connection made during a
    test; one configured before would be refused to a test that did not declare it at its start."""
    conf = {**connections["default"].settings_dict, **changes}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Django's warning that connections do not follow DATABASES: known
        settings.DATABASES = {**django_settings.DATABASES, REPORTS: conf}
    settings.DATABASE_ROUTERS = ["ipvas.reports_database.ReportsRouter"]
    connections[REPORTS] = load_backend(conf["ENGINE"]).DatabaseWrapper(conf, REPORTS)


def _without_reports_alias():
    connections[REPORTS].close()
    del connections[REPORTS]


@pytest.fixture
def replica(db, settings):
    """``reports``: the test database again, through a connection of its own."""
    _with_reports_alias(settings)
    yield
    _without_reports_alias()


@pytest.fixture
def replica_down(db, settings):
    """``reports``: a database that does not answer."""
    if ON_POSTGRESQL:
        _with_reports_alias(settings, HOST="127.0.0.1", PORT="18299")  # nothing listens there
    else:
        _with_reports_alias(settings, NAME="/nonexistent/ipvas-reports.sqlite3")
    yield
    _without_reports_alias()


def _fail_on(alias: str) -> None:
    # In a savepoint: the test's transaction on the primary goes on after the error, as a request's would.
    with transaction.atomic(using=alias), connections[alias].cursor() as cursor:
        cursor.execute("SELECT * FROM no_such_table")


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING]


@pytest.mark.skipif(not ON_POSTGRESQL, reason="the replica's state is asked with PostgreSQL's functions")
def test_a_failure_of_the_primary_during_a_replica_report_is_not_logged_as_the_replicas(replica, caplog):
    sources: list[Source] = []

    def build(source: Source | None) -> str:
        sources.append(source)
        if source is not PRIMARY:
            _fail_on("default")
        return "made"

    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert read_reports(build) == "made"
    assert sources == [Source(replica=True), PRIMARY]  # made once more, on the primary, as before
    (message,) = _warnings(caplog)
    assert "'default'" in message
    assert "the replica did not fail" in message
    assert "did not answer" not in message


def test_a_failing_query_on_the_replica_is_logged_as_the_replicas(replica, caplog):
    sources: list[Source | None] = []

    def build(source: Source | None) -> str:
        sources.append(source)
        if source is not PRIMARY:
            assert router.db_for_read(Order) == REPORTS
            _fail_on(REPORTS)
        return "made"

    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert read_reports(build) == "made"
    assert sources[-1] is PRIMARY
    (message,) = _warnings(caplog)
    assert message.startswith("reports: the replica (REPORTS_DATABASE_URL) did not answer, or a query on it failed")


def test_a_replica_that_does_not_answer_is_logged_as_the_replica(replica_down, caplog):
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert read_reports(lambda source: source) is PRIMARY
    (message,) = _warnings(caplog)
    assert message.startswith("reports: the replica (REPORTS_DATABASE_URL) did not answer, or a query on it failed")
