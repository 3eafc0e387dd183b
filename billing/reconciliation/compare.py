"""What comparing a day shares: the item writer, the merge-join, the sort order, the neighbouring days.

Both sides are streamed from the database in key order (``.iterator()``,
byte order of the key on every database) and merge-joined: memory holds one
key's rows at a time, whatever the size of the day. Items are written in
batches (bulk.insert_rows). The caller holds the transaction.

Lines are compared, not sums: a key's rows on both sides are paired one by
one, and a line left over is a ``duplicate`` of its own. A line that one side
has on the day and the other on the day before or after (near midnight) is
paired across the two days: the day of the statement line compares the pair,
the other day's item says where it was paired (``paired_day``), and neither
stays a discrepancy. ``providers`` compares WeChat Pay and Alipay, ``smp``
the SMP's subscriptions and unsubscriptions.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import date, datetime, timedelta
from itertools import groupby
from operator import itemgetter
from typing import Any

from django.db import connection
from django.db.models import Expression, F
from django.db.models.functions import Collate
from django.utils import timezone

from billing.models import ReconciliationItem, ReconciliationRun, Statement
from billing.reconciliation.bulk import insert_rows

CHUNK = 2000
BATCH = 2000

ITEM_FIELDS = (
    "run",
    "outcome",
    "source",
    "kind",
    "order_no",
    "reference",
    "our_amount_fen",
    "their_amount_fen",
    "statement_line_no",
    "explanation",
    "paired_day",
)


class ItemWriter:
    """Buffers items and writes them ``BATCH`` at a time (bulk.insert_rows); counts them per outcome."""

    def __init__(self, run: ReconciliationRun) -> None:
        self.run = run
        self.buffer: list[tuple] = []
        self.counts: Counter[str] = Counter()

    def add(
        self,
        *,
        outcome: str,
        source: str,
        kind: str,
        order_no: str = "",
        reference: str = "",
        our_amount_fen: int | None = None,
        their_amount_fen: int | None = None,
        statement_line_no: int | None = None,
        explanation: list[list[Any]] | None = None,
        paired_day: date | None = None,
    ) -> None:
        outcome = str(outcome)  # the value, whether a plain str or an Outcome member
        self.buffer.append(
            (
                self.run.pk,
                outcome,
                str(source),
                str(kind),
                order_no[:64],
                reference[:64],
                our_amount_fen,
                their_amount_fen,
                statement_line_no,
                json.dumps(explanation, ensure_ascii=False) if explanation else None,
                paired_day.isoformat() if paired_day else None,
            )
        )
        self.counts[outcome] += 1
        if len(self.buffer) >= BATCH:
            self.flush()

    def flush(self) -> None:
        if self.buffer:
            insert_rows(ReconciliationItem, ITEM_FIELDS, self.buffer)
            self.buffer = []


def ordered(expression: Expression | str) -> Expression:
    """Sort by the key's bytes (= code points, as Python compares str): PostgreSQL's default collation does not."""
    expression = F(expression) if isinstance(expression, str) else expression
    return Collate(expression, "C") if connection.vendor == "postgresql" else expression


def _groups(rows: Iterable[tuple], what: str) -> Iterator[tuple[str, list[tuple]]]:
    previous: str | None = None
    for key, group in groupby(rows, key=itemgetter(0)):
        if previous is not None and key <= previous:
            raise RuntimeError(f"{what} is not in key order ({previous!r} then {key!r}): the merge would be wrong")
        previous = key
        yield key, list(group)


def merge_join(ours: Iterable[tuple], theirs: Iterable[tuple]) -> Iterator[tuple[str, list[tuple], list[tuple]]]:
    """Walk two streams sorted by their first field together: (key, our rows, their rows), either may be []."""
    mine, listed = _groups(ours, "our side"), _groups(theirs, "the statement")
    a, b = next(mine, None), next(listed, None)
    while a is not None or b is not None:
        if b is None or (a is not None and a[0] < b[0]):
            yield a[0], a[1], []  # type: ignore[index]
            a = next(mine, None)
        elif a is None or b[0] < a[0]:
            yield b[0], [], b[1]
            b = next(listed, None)
        else:
            yield a[0], a[1], b[1]
            a, b = next(mine, None), next(listed, None)


class Batched:
    """Collects rows and hands them to ``settle`` ``BATCH`` at a time: one lookup per batch, not per key."""

    def __init__(self, settle: Any) -> None:
        self.settle = settle
        self.rows: list[Any] = []

    def add(self, row: Any) -> None:
        self.rows.append(row)
        if len(self.rows) >= BATCH:
            self.flush()

    def flush(self) -> None:
        if self.rows:
            rows, self.rows = self.rows, []
            self.settle(rows)


def local_day(moment: datetime) -> date:
    return timezone.localtime(moment).date()


def neighbours(source: str, day: date) -> dict[int, date]:
    """{statement id: day} of ``source``'s statements of the day before and the day after, those imported."""
    days = [day - timedelta(days=1), day + timedelta(days=1)]
    return dict(Statement.objects.filter(source=source, day__in=days).values_list("pk", "day"))


def adjacent(one: date, other: date) -> bool:
    return abs((one - other).days) <= 1
