"""Discrepancies as a person's work: opened by a run, kept across re-runs, closed by a later match or a person.

``discrepancies_sync`` runs inside the transaction that writes a run: every
item of the run that is not ``matched`` opens its ``Discrepancy`` (or
refreshes it, or reopens one that a run had closed), every open discrepancy
of the day and a compared source that the run no longer finds is closed as
matched, and every item paired across midnight closes the one-sided
discrepancy that the other day left open for the same key. A source the run
could not compare is a discrepancy of its own when ``report`` says so (the
morning job's last attempt, or a run by hand). Items are read a batch at a
time: memory stays flat whatever the day.

A person annotates or resolves a discrepancy with a reason
(``discrepancy_annotate``, ``discrepancy_resolve``); each change is a
``DiscrepancyEvent``: who, when, what, why.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Collection
from datetime import date, datetime, timedelta
from itertools import islice
from typing import Any

from django.db import transaction
from django.db.models import Count, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from billing.models import Discrepancy, DiscrepancyEvent, ReconciliationRun
from billing.models.reconciliation import NOT_COMPARED, DiscrepancyAction, DiscrepancyStatus, Outcome
from billing.reconciliation import compare
from billing.reconciliation.details import note
from ipvas.actors import Actor
from ipvas.errors import InvalidInput, InvalidState

logger = logging.getLogger(__name__)

RUN_ACTOR = Actor.system("reconciliation")
# What one side alone leaves open on its day; a line paired across midnight closes it there.
ONE_SIDED = (
    Outcome.MISSING_AT_PROVIDER,
    Outcome.MISSING_HERE,
    Outcome.PAID_NOT_PROVISIONED,
    Outcome.REVOKED_NOT_UNSUBSCRIBED,
)
FACTS = ("our_amount_fen", "their_amount_fen", "statement_line_no", "explanation")
Identity = tuple[str, str, str, str, str]  # source, kind, outcome, order_no, reference


def _event(discrepancy: Discrepancy, action: str, *, actor: Actor, at: datetime, note: str = "") -> DiscrepancyEvent:
    return DiscrepancyEvent(
        discrepancy=discrepancy, at=at, action=action, actor_kind=actor.kind.value, actor_id=actor.id, note=note[:255]
    )


def _key(source: str, order_no: str, reference: str) -> str:
    """What a discrepancy is about across days: the SMP's by order, the providers' by out_trade_no/out_refund_no."""
    return order_no if source == "smp" else reference


def discrepancies_sync(run: ReconciliationRun, *, compared: Collection[str], report: Collection[str]) -> Counter[str]:
    """Bring the day's discrepancies in line with ``run`` (in its transaction); counts what changed.

    ``compared`` are the sources the run compared; ``report`` the sources it
    could not compare that must be reported as discrepancies of their own.
    """
    now = timezone.now()
    changes: Counter[str] = Counter()
    found = (
        run.items.exclude(outcome=Outcome.MATCHED)
        .order_by("pk")
        .values_list("source", "kind", "outcome", "order_no", "reference", *FACTS, "paired_day")
    )
    owned = _differences_owned_next_door(run)
    rows = found.iterator(chunk_size=compare.BATCH)
    while chunk := list(islice(rows, compare.BATCH)):
        batch: dict[Identity, dict[str, Any]] = {}
        for row in chunk:
            if (row[0], row[1], row[4], row[-1]) in owned:
                continue  # the pair's difference is the other day's discrepancy already: one, not two
            # A key listed three times is one discrepancy: the first item of an identity speaks for it.
            batch.setdefault(row[:5], dict(zip(FACTS, row[5:-1], strict=True)))
        _upsert(run, batch, now, changes)
    for source in report:
        facts = dict.fromkeys(FACTS)
        refusal = (run.refusals or {}).get(source)
        if refusal is not None:  # a fetched file refused: why, for the person who looks at it
            facts["explanation"] = [note("refused", refusal=refusal)]
        _upsert(run, {(source, "", NOT_COMPARED, "", ""): facts}, now, changes)
    stale = Discrepancy.objects.filter(day=run.day, source__in=compared, status=DiscrepancyStatus.OPEN).exclude(
        seen_in_run=run.pk
    )
    changes["matched"] += _close(
        stale, DiscrepancyAction.MATCHED, now, note=f"{run.day} run by {run.triggered_by}: not found again"
    )
    paired = (
        run.items.filter(paired_day__isnull=False)
        .order_by("pk")
        .values_list("source", "kind", "order_no", "reference", "paired_day", "statement_line_no")
    )
    rows = paired.iterator(chunk_size=compare.BATCH)
    while chunk := list(islice(rows, compare.BATCH)):
        changes["paired"] += _close_paired(run, chunk, now)
    return changes


def _upsert(
    run: ReconciliationRun, found: dict[Identity, dict[str, Any]], now: datetime, changes: Counter[str]
) -> None:
    existing = {
        (d.source, d.kind, d.outcome, d.order_no, d.reference): d
        for d in Discrepancy.objects.filter(day=run.day, reference__in={identity[4] for identity in found})
    }
    new: list[Discrepancy] = []
    seen: list[int] = []
    events: list[DiscrepancyEvent] = []
    for identity, facts in found.items():
        discrepancy = existing.get(identity)
        if discrepancy is None:
            source, kind, outcome, order_no, reference = identity
            new.append(
                Discrepancy(
                    day=run.day,
                    source=source,
                    kind=kind,
                    outcome=outcome,
                    order_no=order_no,
                    reference=reference,
                    opened_at=now,
                    last_seen_at=now,
                    seen_in_run=run.pk,
                    **facts,
                )
            )
            changes[outcome] += 1
            continue
        seen.append(discrepancy.pk)
        fields = [name for name, value in facts.items() if getattr(discrepancy, name) != value]
        for name in fields:
            setattr(discrepancy, name, facts[name])
        if discrepancy.status == DiscrepancyStatus.MATCHED_LATER:
            # Closed by an earlier run, found again (a statement replaced, the ledger changed): open it again.
            discrepancy.status = DiscrepancyStatus.OPEN
            discrepancy.closed_at, discrepancy.closed_by, discrepancy.resolution = None, "", ""
            fields += ["status", "closed_at", "closed_by", "resolution"]
            events.append(
                _event(discrepancy, DiscrepancyAction.REOPENED, actor=RUN_ACTOR, at=now, note=run.triggered_by)
            )
            changes["reopened"] += 1
        if fields:  # rare: the same run finds the same thing again, as a rule
            discrepancy.save(update_fields=fields)
    Discrepancy.objects.bulk_create(new)
    events += [_event(d, DiscrepancyAction.OPENED, actor=RUN_ACTOR, at=now, note=run.triggered_by) for d in new]
    # One statement for all that were found again (bulk_update would build a CASE per row and field).
    Discrepancy.objects.filter(pk__in=seen).update(last_seen_at=now, seen_in_run=run.pk)
    DiscrepancyEvent.objects.bulk_create(events)


def _close(discrepancies: QuerySet[Discrepancy], action: str, now: datetime, *, note: str) -> int:
    # Locked and read open again: a person's resolve committed meanwhile stays theirs.
    open_ = discrepancies.filter(status=DiscrepancyStatus.OPEN).select_for_update().order_by("pk")
    closed = list(open_.values_list("pk", flat=True))
    Discrepancy.objects.filter(pk__in=closed).update(
        status=DiscrepancyStatus.MATCHED_LATER, closed_at=now, closed_by=str(RUN_ACTOR), resolution=note[:255]
    )
    DiscrepancyEvent.objects.bulk_create(
        DiscrepancyEvent(
            discrepancy_id=pk, at=now, action=action, actor_kind=RUN_ACTOR.kind.value, actor_id=RUN_ACTOR.id,
            note=note[:255],
        )
        for pk in closed
    )  # fmt: skip
    return len(closed)


def _differences_owned_next_door(run: ReconciliationRun) -> set[tuple[str, str, str, date]]:
    """(source, kind, reference, day) of the amount differences that a pair across midnight opened on the day
    before or after: both days compare the pair, and the day that found the difference first keeps it."""
    days = [run.day - timedelta(days=1), run.day + timedelta(days=1)]
    return set(
        Discrepancy.objects.filter(day__in=days, outcome=Outcome.AMOUNT_DIFFERS).values_list(
            "source", "kind", "reference", "day"
        )
    )


def _close_paired(run: ReconciliationRun, chunk: list[tuple], now: datetime) -> int:
    """Close the one-sided discrepancies of other days that these items paired across midnight."""
    wanted: dict[tuple[date, str, str, str], int | None] = {
        (day, source, kind, _key(source, order_no, reference)): line_no
        for source, kind, order_no, reference, day, line_no in chunk
    }
    keys = {key for _, _, _, key in wanted}
    candidates = Discrepancy.objects.filter(
        Q(reference__in=keys) | Q(order_no__in=keys),
        status=DiscrepancyStatus.OPEN,
        outcome__in=ONE_SIDED,
        day__in={day for day, _, _, _ in wanted},
    )
    closed = 0
    for discrepancy in candidates:
        identity = (
            discrepancy.day,
            discrepancy.source,
            discrepancy.kind,
            _key(discrepancy.source, discrepancy.order_no, discrepancy.reference),
        )
        if identity in wanted:
            line = wanted[identity]
            where = f", line {line}" if line else ""
            note = f"paired across midnight with the {discrepancy.source} of {run.day}{where}"
            closed += _close(Discrepancy.objects.filter(pk=discrepancy.pk), DiscrepancyAction.PAIRED, now, note=note)
    return closed


# --- what a person does ----------------------------------------------------------------------------


def _reason(note: str) -> str:
    note = (note or "").strip()
    if not note:
        raise InvalidInput(fields={"note": [_("Say why: the reason is kept with the discrepancy.")]})
    return note[:255]


def _locked(discrepancy_id: int) -> Discrepancy:
    return Discrepancy.objects.select_for_update().get(pk=discrepancy_id)


@transaction.atomic
def discrepancy_annotate(*, discrepancy_id: int, note: str, actor: Actor) -> Discrepancy:
    """Add a note to a discrepancy, open or closed; it stays as it is."""
    note = _reason(note)
    discrepancy = _locked(discrepancy_id)
    discrepancy.last_note = note
    discrepancy.save(update_fields=["last_note"])
    DiscrepancyEvent.objects.bulk_create(
        [_event(discrepancy, DiscrepancyAction.ANNOTATED, actor=actor, at=timezone.now(), note=note)]
    )
    return discrepancy


@transaction.atomic
def discrepancy_resolve(*, discrepancy_id: int, note: str, actor: Actor) -> Discrepancy:
    """Close an open discrepancy with the reason a person gives; runs that find it again leave it closed."""
    note = _reason(note)
    discrepancy = _locked(discrepancy_id)
    if discrepancy.status != DiscrepancyStatus.OPEN:
        raise InvalidState(_("This discrepancy is closed already."))
    now = timezone.now()
    discrepancy.status = DiscrepancyStatus.RESOLVED
    discrepancy.closed_at, discrepancy.closed_by = now, str(actor)[:150]
    discrepancy.resolution = discrepancy.last_note = note
    discrepancy.save(update_fields=["status", "closed_at", "closed_by", "resolution", "last_note"])
    DiscrepancyEvent.objects.bulk_create(
        [_event(discrepancy, DiscrepancyAction.RESOLVED, actor=actor, at=now, note=note)]
    )
    return discrepancy


def open_counts(day: date | None = None) -> dict[str, int]:
    """{outcome: open discrepancies}, of one day or of all days."""
    query = Discrepancy.objects.filter(status=DiscrepancyStatus.OPEN)
    if day is not None:
        query = query.filter(day=day)
    return dict(query.order_by().values_list("outcome").annotate(n=Count("pk")).values_list("outcome", "n"))
