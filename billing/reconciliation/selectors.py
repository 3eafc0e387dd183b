"""Reading the reconciliation for people: what a run amounts to, and the latest run for the dashboard."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from django.utils.translation import gettext, ngettext

from billing.models import Discrepancy, ReconciliationRun
from billing.models.reconciliation import COMPARED_STATES, DiscrepancyStatus, Outcome, SourceState, StatementSource


def verdict(run: ReconciliationRun) -> str:
    """What the day's run amounts to, in words: never clean while a source was not compared."""
    if not run.complete:
        missing = ", ".join(
            f"{StatementSource(source).label} ({SourceState(run.source_states()[source]).label})"
            for source in run.uncompared
        )
        return gettext("Incomplete: not compared: %(sources)s") % {"sources": missing}
    if run.discrepancies:
        return discrepancies_text(run)
    return gettext("Clean: every source compared, nothing differs")


def discrepancies_text(run: ReconciliationRun) -> str:
    """The run's discrepancies counted in words ("3 discrepancies")."""
    return ngettext("%(count)s discrepancy", "%(count)s discrepancies", run.discrepancies) % {
        "count": run.discrepancies
    }


def found_text(run: ReconciliationRun) -> str:
    """The run's discrepancies per category, in words ("" when there are none)."""
    return "; ".join(f"{Outcome(outcome).label}: {count}" for outcome, count in run.counts().items())


@dataclass(frozen=True)
class SourceLine:
    source: str
    label: str
    state: str
    state_label: str
    compared: bool


@dataclass(frozen=True)
class CountLine:
    outcome: str
    label: str
    count: int


@dataclass(frozen=True)
class RunSummary:
    day: date
    finished_at: datetime | None
    triggered_by: str
    clean: bool
    verdict: str
    sources: list[SourceLine]
    matched: int
    discrepancies: int
    counts: list[CountLine]
    open_that_day: int
    open_all_days: int


def latest_run_summary() -> RunSummary | None:
    """The latest day reconciled: its sources, its counts per category, what is still open; None before any."""
    run = ReconciliationRun.objects.order_by("-day").first()
    if run is None:
        return None
    still_open = Discrepancy.objects.filter(status=DiscrepancyStatus.OPEN)
    return RunSummary(
        day=run.day,
        finished_at=run.finished_at,
        triggered_by=run.triggered_by,
        clean=run.clean,
        verdict=verdict(run),
        sources=[
            SourceLine(
                source,
                str(StatementSource(source).label),
                state,
                str(SourceState(state).label),
                state in COMPARED_STATES,
            )
            for source, state in run.source_states().items()
        ],
        matched=run.matched,
        discrepancies=run.discrepancies,
        counts=[CountLine(outcome, str(Outcome(outcome).label), count) for outcome, count in run.counts().items()],
        open_that_day=still_open.filter(day=run.day).count(),
        open_all_days=still_open.count(),
    )
