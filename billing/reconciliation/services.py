"""Reconciling a day: get the statements that are missing, compare, replace the day's previous run, tell people."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from datetime import date, timedelta
from typing import BinaryIO

from django.db import IntegrityError, transaction
from django.utils import timezone, translation

from adapters.statements import StatementUnavailable
from billing import tasks
from billing.models import ReconciliationRun, Statement
from billing.models.reconciliation import (
    DISCREPANCY_OUTCOMES,
    SOURCE_STATE_FIELDS,
    Outcome,
    SourceState,
    StatementSource,
)
from billing.reconciliation.compare import ItemWriter
from billing.reconciliation.days import day_bounds
from billing.reconciliation.discrepancies import discrepancies_sync
from billing.reconciliation.fetch import fetch_statement
from billing.reconciliation.importer import statement_import
from billing.reconciliation.parsers import StatementError
from billing.reconciliation.providers import compare_provider
from billing.reconciliation.refusals import Record, refused_note
from billing.reconciliation.smp import compare_smp
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


def _gather(day: date, *, fetch: bool, by: str) -> tuple[Compared, dict[str, str], list[str], dict[str, Record]]:
    """The statement of each source for ``day``, fetching and importing the missing ones; each source's
    state (SourceState); what went wrong, for the run's notes; and why each refused file was refused."""
    compared: Compared = {}
    states: dict[str, str] = {}
    notes: list[str] = []
    refusals: dict[str, Record] = {}
    for source in SOURCES:
        statement = Statement.objects.filter(source=source, day=day).first()
        if statement is not None:
            compared[source], states[source] = statement, SourceState.COMPARED
            continue
        states[source] = SourceState.MISSING
        if not fetch:
            notes.append(f"{source}: not imported, not fetched")
            continue
        try:
            fetched = fetch_statement(source, day)
        except StatementUnavailable as exc:
            logger.warning("reconciliation %s: %s could not be fetched: %s", day, source, exc)
            notes.append(f"{source}: could not be fetched ({exc})")
            continue
        if fetched.file is None:
            compared[source], states[source] = None, SourceState.NO_STATEMENT
            notes.append(f"{source}: {fetched.note}; compared with nothing")
            continue
        try:
            with fetched.file:
                compared[source] = statement_import(
                    source=source, day=day, stream=fetched.file, file_name=fetched.file_name, imported_by=by
                )
            states[source] = SourceState.COMPARED
        except StatementError as exc:
            # Kept as its code and facts, for each reader's language; the log and the notes say it in English.
            with translation.override("en"):
                logger.error("reconciliation %s: the fetched %s was refused: %s", day, source, str(exc))
            refusals[source] = exc.record()
            notes.append(refused_note(source, refusals[source]))
            states[source] = SourceState.REFUSED
    return compared, states, notes, refusals


def reconcile_day(
    day: date, *, fetch: bool = True, triggered_by: str = "task", report_missing: bool = True
) -> ReconciliationRun:
    """Reconcile ``day``: our ledger against WeChat Pay's, Alipay's and the SMP's statements of that day.

    Statements already imported for the day are used as they are; with
    ``fetch`` the missing ones are downloaded (or made by the simulators) and
    imported first, outside the comparison's transaction. The day's previous
    run is replaced in the same transaction that writes the new one, so the
    same statements and ledger give the same items, and a failure leaves the
    previous run in place. The same transaction opens, refreshes and closes
    the day's discrepancies (billing.reconciliation.discrepancies); a source
    that could not be compared is one of them unless ``report_missing`` is off
    (the morning job that will look again later).
    """
    compared, states, notes, refusals = _gather(day, fetch=fetch, by=triggered_by)
    start, end = day_bounds(day)
    try:
        with transaction.atomic():
            ReconciliationRun.objects.filter(day=day).delete()
            run = ReconciliationRun.objects.create(
                day=day,
                started_at=timezone.now(),
                triggered_by=triggered_by[:150],
                **{SOURCE_STATE_FIELDS[source]: state for source, state in states.items()},
            )
            writer = ItemWriter(run)
            for provider in (StatementSource.WECHATPAY, StatementSource.ALIPAY):
                if provider in compared:
                    compare_provider(
                        writer, provider=provider, statement=compared[provider], day=day, start=start, end=end
                    )
            if StatementSource.SMP in compared:
                compare_smp(writer, statement=compared[StatementSource.SMP], day=day, start=start, end=end)
            writer.flush()
            run.matched = writer.counts[Outcome.MATCHED]
            for outcome in DISCREPANCY_OUTCOMES:
                setattr(run, outcome, writer.counts[outcome])
            run.notes = "\n".join(notes)
            run.refusals = refusals or None
            run.finished_at = timezone.now()
            run.save()
            run.statements.set([statement for statement in compared.values() if statement is not None])
            changes = discrepancies_sync(
                run, compared=set(compared), report=set(run.uncompared) if report_missing else set()
            )
    except IntegrityError as exc:
        raise ReconciliationBusy(f"{day} is being reconciled by someone else; try again in a moment") from exc
    _log(run, changes)
    return run


def _log(run: ReconciliationRun, changes: Counter[str]) -> None:
    sources = " ".join(f"{source}={state}" for source, state in run.source_states().items())
    counts = ", ".join(f"{outcome}={n}" for outcome, n in run.counts().items()) or "none"
    opened = sum(n for what, n in changes.items() if what not in ("matched", "paired", "reopened"))
    level = logging.INFO if run.clean else logging.WARNING
    logger.log(
        level,
        "reconciliation %s: %s; sources %s; %s matched, %s discrepancies (%s); work: %s opened, %s reopened, "
        "%s closed as matched, %s paired across midnight%s",
        run.day,
        "clean" if run.clean else ("incomplete" if not run.complete else "discrepancies"),
        sources,
        run.matched,
        run.discrepancies,
        counts,
        opened,
        changes["reopened"],
        changes["matched"],
        changes["paired"],
        f" ({'; '.join(run.notes.splitlines())})" if run.notes else "",
    )


def summary(run: ReconciliationRun) -> str:
    """One line for the task's result and the command: counts, and what was not compared."""
    text = f"{run.day}: {run.matched} matched, {run.discrepancies} discrepancies"
    if run.uncompared:
        text += f"; not compared: {', '.join(run.uncompared)}"
    return text


def reconcile_scheduled(*, day: str | None = None, attempt: int = 0) -> str:
    """The morning job: reconcile yesterday (or ``day``, ISO); while a statement cannot be had, look again later.

    A source still missing after the last attempt becomes a discrepancy of its own, for a person.
    """
    target = date.fromisoformat(day) if day else timezone.localdate() - timedelta(days=1)
    last = attempt + 1 >= MAX_ATTEMPTS
    run = reconcile_day(
        target,
        fetch=True,
        triggered_by="beat" if attempt == 0 else f"beat, attempt {attempt + 1}",
        report_missing=last,
    )
    if run.uncompared and not last:
        outbox.enqueue(
            tasks.reconcile_yesterday,
            kwargs={"day": target.isoformat(), "attempt": attempt + 1},
            due_at=timezone.now() + RETRY_AFTER,
        )
        return f"{summary(run)}; again later"
    return summary(run)
