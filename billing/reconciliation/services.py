"""Reconciling a day: get the statements that are missing, then compare, replacing the day's previous run."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import date, timedelta
from typing import BinaryIO

from django.db import IntegrityError, transaction
from django.utils import timezone

from adapters.statements import StatementUnavailable
from billing import tasks
from billing.models import ReconciliationRun, Statement
from billing.models.reconciliation import Outcome, StatementSource
from billing.reconciliation.compare import ItemWriter, compare_provider, compare_smp
from billing.reconciliation.days import day_bounds
from billing.reconciliation.fetch import fetch_statement
from billing.reconciliation.importer import statement_import
from billing.reconciliation.parsers import StatementError
from ipvas import outbox

logger = logging.getLogger(__name__)

SOURCES = (StatementSource.WECHATPAY, StatementSource.ALIPAY, StatementSource.SMP)
# WeChat Pay makes the bill from 09:00 and advises fetching it after 10:00: the morning job looks
# again this long after a statement it could not get, up to MAX_ATTEMPTS times.
RETRY_AFTER = timedelta(minutes=30)
MAX_ATTEMPTS = 8
# What the comparison of a source is made against: an imported statement, or None when the
# source says it has nothing for the day. A source missing from the mapping is not compared.
Compared = dict[str, Statement | None]


class ReconciliationBusy(Exception):
    """The same day is being reconciled by someone else right now."""


def statements_import(
    *, day: date, files: Mapping[str, tuple[str, BinaryIO]], imported_by: str, replace: bool = True
) -> list[Statement]:
    """Import several statement files of ``day`` ({source: (file name, stream)}): all of them or none.

    The ``StatementError`` of a refused file has its ``source`` set.
    """
    imported = []
    with transaction.atomic():
        for source, (name, stream) in files.items():
            try:
                imported.append(
                    statement_import(
                        source=source, day=day, stream=stream, file_name=name, imported_by=imported_by, replace=replace
                    )
                )
            except StatementError as exc:
                exc.source = source
                raise
    return imported


def _gather(day: date, *, fetch: bool, by: str) -> tuple[Compared, list[str]]:
    """The statement of each source for ``day``, fetching and importing the missing ones; and what went wrong."""
    compared: Compared = {}
    notes: list[str] = []
    for source in SOURCES:
        label = StatementSource(source).label
        statement = Statement.objects.filter(source=source, day=day).first()
        if statement is not None:
            compared[source] = statement
            continue
        if not fetch:
            notes.append(f"{label}: not imported, not compared")
            continue
        try:
            fetched = fetch_statement(source, day)
        except StatementUnavailable as exc:
            logger.warning("reconciliation %s: %s could not be fetched: %s", day, source, exc)
            notes.append(f"{label}: could not be fetched ({exc}), not compared")
            continue
        if fetched.file is None:
            compared[source] = None
            notes.append(f"{label}: {fetched.note}; compared with nothing")
            continue
        try:
            with fetched.file:
                compared[source] = statement_import(
                    source=source, day=day, stream=fetched.file, file_name=fetched.file_name, imported_by=by
                )
        except StatementError as exc:
            logger.error("reconciliation %s: the fetched %s was refused: %s", day, source, exc)
            notes.append(f"{label}: the fetched file was refused ({exc}), not compared")
    return compared, notes


def reconcile_day(day: date, *, fetch: bool = True, triggered_by: str = "task") -> ReconciliationRun:
    """Reconcile ``day``: our ledger against WeChat Pay's, Alipay's and the SMP's statements of that day.

    Statements already imported for the day are used as they are; with
    ``fetch`` the missing ones are downloaded (or made by the simulators) and
    imported first, outside the comparison's transaction. The day's previous
    run is replaced in the same transaction that writes the new one, so the
    same statements and ledger give the same items, and a failure leaves the
    previous run in place.
    """
    compared, notes = _gather(day, fetch=fetch, by=triggered_by)
    start, end = day_bounds(day)
    try:
        with transaction.atomic():
            ReconciliationRun.objects.filter(day=day).delete()
            run = ReconciliationRun.objects.create(day=day, started_at=timezone.now(), triggered_by=triggered_by[:150])
            writer = ItemWriter(run)
            for provider in (StatementSource.WECHATPAY, StatementSource.ALIPAY):
                if provider in compared:
                    compare_provider(writer, provider=provider, statement=compared[provider], start=start, end=end)
            if StatementSource.SMP in compared:
                compare_smp(writer, statement=compared[StatementSource.SMP], start=start, end=end)
            writer.flush()
            for outcome in Outcome.values:
                setattr(run, outcome, writer.counts[outcome])
            run.notes = "\n".join(notes)
            run.finished_at = timezone.now()
            run.save()
            run.statements.set([statement for statement in compared.values() if statement is not None])
            run.uncompared = [source for source in SOURCES if source not in compared]  # type: ignore[attr-defined]
    except IntegrityError as exc:
        raise ReconciliationBusy(f"{day} is being reconciled by someone else; try again in a moment") from exc
    logger.info(
        "reconciliation %s: %s matched, %s discrepancies%s",
        day,
        run.matched,
        run.discrepancies,
        f" ({'; '.join(notes)})" if notes else "",
    )
    return run


def reconcile_scheduled(*, day: str | None = None, attempt: int = 0) -> str:
    """The morning job: reconcile yesterday (or ``day``, ISO); while a statement cannot be had, look again later."""
    target = date.fromisoformat(day) if day else timezone.localdate() - timedelta(days=1)
    run = reconcile_day(target, fetch=True, triggered_by="beat" if attempt == 0 else f"beat, attempt {attempt + 1}")
    uncompared = run.uncompared  # type: ignore[attr-defined]
    if uncompared and attempt + 1 < MAX_ATTEMPTS:
        outbox.enqueue(
            tasks.reconcile_yesterday,
            kwargs={"day": target.isoformat(), "attempt": attempt + 1},
            due_at=timezone.now() + RETRY_AFTER,
        )
        return f"{target}: {run.discrepancies} discrepancies; {', '.join(uncompared)} again later"
    return f"{target}: {run.matched} matched, {run.discrepancies} discrepancies"
