"""Which database a report's failure is logged against and the dashboard blames (ipvas.reports_database).

A report made from the replica reads from the primary too (what the router leaves there, what a page names):
an error of the primary must not send the operator, or finance, to look at a healthy replica. The "replica"
here is a second connection to the test database under the alias ``reports``, as ``REPORTS_DATABASE_URL``
configures it; the replica's whole behaviour, with a real standby, is tests/reliability/test_reports_replica.py's.
"""

from __future__ import annotations

import html
import logging
import warnings
from datetime import UTC, datetime

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.db import connections, router, transaction
from django.db.utils import load_backend

from backoffice.reports import views as report_views
from ipvas import reports_database
from ipvas.reports_database import REPORTS, Fallback, Source, on_the_primary, read_reports
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
        if source.replica:
            _fail_on("default")
        return "made"

    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert read_reports(build) == "made"
    # Made once more, on the primary, as before; the page says the primary failed.
    assert sources == [Source(replica=True), on_the_primary(Fallback.PRIMARY_FAILED)]
    (message,) = _warnings(caplog)
    assert "'default'" in message
    assert "the replica did not fail" in message
    assert "did not answer" not in message


def test_a_failing_query_on_the_replica_is_logged_as_the_replicas(replica, caplog):
    sources: list[Source | None] = []

    def build(source: Source | None) -> str:
        sources.append(source)
        if source.replica:
            assert router.db_for_read(Order) == REPORTS
            _fail_on(REPORTS)
        return "made"

    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert read_reports(build) == "made"
    assert sources[-1] == on_the_primary(Fallback.REPLICA_FAILED)
    (message,) = _warnings(caplog)
    assert message.startswith("reports: the replica (REPORTS_DATABASE_URL) did not answer, or a query on it failed")


def test_a_replica_that_does_not_answer_is_logged_as_the_replica(replica_down, caplog):
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert read_reports(lambda source: source) == on_the_primary(Fallback.REPLICA_FAILED)
    (message,) = _warnings(caplog)
    assert message.startswith("reports: the replica (REPORTS_DATABASE_URL) did not answer, or a query on it failed")


# --- what the dashboard tells finance ----------------------------------------------------------------

DASHBOARD = "/admin/reports/"


def _dashboard_note(client) -> str:
    user = get_user_model().objects.create_user("boss", password="unused-password-1", is_staff=True)
    client.force_login(user)
    response = client.get(DASHBOARD, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    note = response.content.decode().split('id="reports-source">', 1)[1].split("</p>", 1)[0]
    return " ".join(html.unescape(note).split())  # as a browser shows it


@pytest.mark.skipif(not ON_POSTGRESQL, reason="the replica's state is asked with PostgreSQL's functions")
def test_the_dashboard_does_not_blame_the_replica_for_the_primarys_failure(replica, client, monkeypatch):
    summary = report_views.latest_run_summary

    def failing_on_the_primary_from_the_replica():  # a query of the page on the primary fails, once
        if router.db_for_read(Order) == REPORTS:
            _fail_on("default")
        return summary()

    monkeypatch.setattr(report_views, "latest_run_summary", failing_on_the_primary_from_the_replica)
    assert _dashboard_note(client) == (
        "A query on the primary database failed while these figures were read from the reports' replica: "
        "they were read again, from the primary database."
    )


def test_the_dashboard_says_the_replica_did_not_answer(replica_down, client):
    assert (
        _dashboard_note(client) == "The reports' replica did not answer: these figures come from the primary database."
    )


def test_the_dashboard_says_the_replica_is_cut_off_with_nothing_replayed(replica, client, monkeypatch):
    monkeypatch.setattr(reports_database, "replica_state", lambda: None)  # what it says of such a standby
    assert _dashboard_note(client) == (
        "The reports' replica does not receive the primary database's changes and has replayed none since it "
        "started: these figures come from the primary database."
    )


def test_the_dashboard_says_why_in_chinese_too(replica, client, monkeypatch):
    monkeypatch.setattr(reports_database, "replica_state", lambda: None)
    user = get_user_model().objects.create_user("boss", password="unused-password-1", is_staff=True)
    client.force_login(user)
    page = client.get(DASHBOARD, HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "报表只读副本未接收主数据库的变更，且自启动以来未回放任何数据：以下数据来自主数据库。" in page


@pytest.mark.skipif(not ON_POSTGRESQL, reason="the page's reads go to the replica's own connection")
def test_the_dashboard_says_how_far_behind_the_replica_is_in_local_time(replica, client, monkeypatch):
    replayed = datetime(2026, 12, 7, 10, 0, 5, tzinfo=UTC)  # 18:00:05 in Beijing
    behind = Source(replica=True, as_of=replayed, behind_seconds=12.6)
    monkeypatch.setattr(reports_database, "replica_state", lambda: behind)
    assert _dashboard_note(client) == (
        "Figures from the reports' replica as of 2026-12-07 18:00:05: it is 13 s behind the primary database."
    )
    page = client.get(DASHBOARD, HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "以下数据来自报表只读副本，截至 2026-12-07 18:00:05：比主数据库落后 13 秒。" in page


@pytest.mark.skipif(not ON_POSTGRESQL, reason="the page's reads go to the replica's own connection")
def test_the_dashboard_says_the_replica_is_up_to_date(replica, client, monkeypatch):
    monkeypatch.setattr(reports_database, "replica_state", lambda: Source(replica=True))
    assert _dashboard_note(client) == "Figures from the reports' replica, up to date."


def test_without_a_replica_the_dashboard_says_nothing_of_one(db, client):
    user = get_user_model().objects.create_user("boss", password="unused-password-1", is_staff=True)
    client.force_login(user)
    page = client.get(DASHBOARD, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert 'id="reports-source"' not in page
    assert "replica" not in page
