"""A run's items (or any selection of items) as CSV, streamed row by row."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import nullcontext
from typing import Any

from django.db import connection, transaction
from django.db.models import QuerySet
from django.http import StreamingHttpResponse

from backoffice.spreadsheet import csv_lines
from billing.models import ReconciliationItem
from billing.reconciliation.details import render
from ipvas.money import fen_to_yuan

CHUNK = 2000
HEADER = [
    "day",
    "outcome",
    "source",
    "kind",
    "order_no",
    "reference",
    "our_amount_fen",
    "their_amount_fen",
    "our_amount_yuan",
    "their_amount_yuan",
    "statement_line",
    "paired_day",
    "detail",
]


def _yuan(fen: int | None) -> str:
    return "" if fen is None else fen_to_yuan(fen)


def item_rows(items: QuerySet[ReconciliationItem]) -> Iterator[str]:
    """The CSV text, one line at a time: a BOM (spreadsheets then read UTF-8), the header, the items.

    Codes stay codes (outcome, source, kind: what a spreadsheet filters on); the detail is
    written in the language of the request.
    """
    rows = items.order_by("run__day", "pk").values_list(
        "run__day",
        "outcome",
        "source",
        "kind",
        "order_no",
        "reference",
        "our_amount_fen",
        "their_amount_fen",
        "statement_line_no",
        "paired_day",
        "explanation",
    )
    return csv_lines(HEADER, _in_one_transaction(rows))


def _in_one_transaction(rows: QuerySet) -> Iterator[list[object]]:
    """The rows through one server-side cursor, in a transaction of its own for as long as they are read.

    Outside a transaction Django declares the cursor WITH HOLD and fetches each chunk in a statement of its own:
    behind PgBouncer in transaction pooling (docs/capacity.md) each fetch may reach another server connection,
    where the cursor does not exist. Inside one, the pooler keeps the connection until the last row. (SQLite has
    no such cursors, and its transactions here take the write lock at BEGIN: none there.)"""
    with transaction.atomic() if connection.vendor == "postgresql" else nullcontext():
        for row in rows.iterator(chunk_size=CHUNK):
            yield _item_row(row)


def _item_row(row: tuple[Any, ...]) -> list[object]:
    day, outcome, source, kind, order_no, reference, ours, theirs, line_no, paired, explanation = row
    return [
        day.isoformat(),
        outcome,
        source,
        kind,
        order_no,
        reference,
        "" if ours is None else ours,
        "" if theirs is None else theirs,
        _yuan(ours),
        _yuan(theirs),
        "" if line_no is None else line_no,
        paired.isoformat() if paired else "",
        render(explanation),
    ]


def items_csv_response(items: QuerySet[ReconciliationItem], *, filename: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(item_rows(items), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
