"""The reports' replica: the sales dashboard reads from a streaming replica of PostgreSQL when there is one.

With ``REPORTS_DATABASE_URL`` set (a hot standby of ``DATABASE_URL``), the dashboard and its CSV files, and
/metrics/' orders by status (orders.metrics), read from the ``reports`` database, so that a year's figures,
seconds of PostgreSQL's CPU, are not taken from the orders' database at a peak (docs/capacity.md). Everything
else, reads and writes, stays on ``default``: admin's lists and every order's path need what was just written.

The page says where its figures come from (``Source``): the replica, up to date or as of the last
transaction it replayed; or the primary, and why (``Fallback``): the replica did not answer or failed during
the page (a query cancelled by a conflict with recovery, the replica restarting), it is cut off from the
primary with nothing replayed, or a query on the primary failed during the page. The report is then made
again on the primary, once, and a warning logged: finance keeps its dashboard while the replica is mended,
and one person's report costs the primary what it cost before there was a replica (docs/decisions.md).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar

from django.conf import settings
from django.db import Error, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.utils import CursorWrapper
from django.db.utils import DatabaseErrorWrapper

logger = logging.getLogger(__name__)

REPORTS = "reports"  # the alias of the replica in settings.DATABASES, present only when it is configured
T = TypeVar("T")

_reading: ContextVar[str | None] = ContextVar("ipvas_reports_reading", default=None)


class ReportsRouter:
    """Reads inside ``read_reports`` go to the replica; nothing is ever written to it or migrated on it."""

    def db_for_read(self, model: Any, **hints: Any) -> str | None:
        return _reading.get()

    def db_for_write(self, model: Any, **hints: Any) -> str | None:
        return None

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool | None:
        return None

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool | None:
        return False if db == REPORTS else None


class Fallback(StrEnum):
    """Why a report made from the replica was made again on the primary: what the page tells finance
    (backoffice.reports.views.WHY_FROM_THE_PRIMARY), and so where an operator looks."""

    REPLICA_FAILED = "replica_failed"  # it did not answer, or a query on it failed
    REPLICA_CUT_OFF = "replica_cut_off"  # it does not stream from the primary and has replayed nothing
    PRIMARY_FAILED = "primary_failed"  # a query on the primary failed; the replica did not


@dataclass(frozen=True)
class Source:
    """Where a report's figures came from, for the page to say."""

    replica: bool
    as_of: datetime | None = None  # the replica was behind: the time of the last transaction it replayed
    behind_seconds: float | None = None
    fallback: Fallback | None = None  # from the primary: why

    @property
    def fell_back(self) -> bool:
        return not self.replica


def on_the_primary(why: Fallback) -> Source:
    return Source(replica=False, fallback=why)


# Caught up: streaming from the primary now (a WAL receiver connected: pg_stat_wal_receiver shows its row, pid at
# least, to any role) and everything received replayed. A standby cut off from its primary (a network cut, a
# replication password changed, restarted without reaching it) has replayed all it received too, but it is as of
# its last transaction replayed, however long ago: the primary may have written since.
_STATE = """
    SELECT pg_is_in_recovery(),
           EXISTS (SELECT 1 FROM pg_stat_wal_receiver)
           AND pg_last_wal_replay_lsn() >= pg_last_wal_receive_lsn(),
           pg_last_xact_replay_timestamp(),
           now()
"""


def configured() -> bool:
    return REPORTS in settings.DATABASES


def replica_state() -> Source | None:
    """The replica's state, read from the replica; raises a database ``Error`` when it does not answer. None
    when it is behind and cannot say since when (cut off from its primary with nothing replayed since it
    started): not a source to report from."""
    with connections[REPORTS].cursor() as cursor:
        cursor.execute(_STATE)
        in_recovery, caught_up, replayed_at, now = cursor.fetchone()
    if not in_recovery or caught_up:
        return Source(replica=True)
    if replayed_at is None:
        return None
    return Source(replica=True, as_of=replayed_at, behind_seconds=max(0.0, (now - replayed_at).total_seconds()))


@contextmanager
def _reads_on(alias: str) -> Iterator[None]:
    token = _reading.set(alias)
    try:
        yield
    finally:
        _reading.reset(token)


def read_reports(build: Callable[[Source | None], T]) -> T:
    """``build(source)`` with its reads on the replica when there is one (``source`` None when there is
    none); on the primary when the replica fails, before or during the build."""
    if not configured():
        return build(None)
    try:
        with _reads_on(REPORTS):
            source = replica_state()
            if source is not None:
                return build(source)
        logger.warning(
            "reports: the replica (REPORTS_DATABASE_URL) does not stream from the primary and has replayed "
            "nothing since it started; the report is made on the primary"
        )
        why = Fallback.REPLICA_CUT_OFF
    except Error as exc:
        alias = failed_alias(exc)
        why = Fallback.REPLICA_FAILED if alias == REPORTS else Fallback.PRIMARY_FAILED  # as the log says
        if alias == REPORTS:
            logger.warning(
                "reports: the replica (REPORTS_DATABASE_URL) did not answer, or a query on it failed; "
                "the report is made again on the primary",
                exc_info=True,
            )
        else:
            # A report reads from the primary too (what the router leaves there, what a page names), and an
            # operator sent to the replica by this line would find it healthy.
            logger.warning(
                "reports: a query on the database %s failed while a report was made from the replica (the "
                "replica did not fail); the report is made again on the primary",
                repr(alias) if alias else "(which connection is not known)",
                exc_info=True,
            )
        _forget_the_connection()
    return build(on_the_primary(why))


def failed_alias(exc: BaseException) -> str | None:
    """The alias of the connection a database error came from, None when its traceback does not say.

    Django's error carries no alias; its traceback does: the innermost of Django's frames that reached the
    driver is a method of the connection (connecting, or checking its transaction), of its cursor (a
    statement) or of the connection's error wrapper (a cursor's fetch)."""
    alias = None
    tb = exc.__traceback__
    while tb is not None:
        owner = tb.tb_frame.f_locals.get("self")
        if isinstance(owner, DatabaseErrorWrapper):
            owner = owner.wrapper
        elif isinstance(owner, CursorWrapper):
            owner = owner.db
        if isinstance(owner, BaseDatabaseWrapper):
            alias = owner.alias
        tb = tb.tb_next
    return alias


def _forget_the_connection() -> None:
    """A failed connection is not kept for the next report (it may be in the middle of a statement)."""
    try:
        connections[REPORTS].close()
    except Error:
        pass
