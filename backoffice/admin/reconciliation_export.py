"""A run's items (or any selection of items) as CSV, streamed row by row."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

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
    return csv_lines(HEADER, (_item_row(row) for row in rows.iterator(chunk_size=CHUNK)))


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
