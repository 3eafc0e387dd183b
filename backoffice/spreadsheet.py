"""CSV for spreadsheets, streamed a line at a time: UTF-8 behind a byte-order mark (Excel then reads the
Chinese right), and no cell that a spreadsheet would run as a formula.

What the back office exports holds text from outside: a provider's statement line, a product's or a clerk's
name from the CRM's ticket. A cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is a
formula to Excel (``=HYPERLINK(...)``, ``@SUM(...)``: OWASP's "CSV injection"); such text goes out behind a
``'``, which spreadsheets show as text. Numbers, negative ones too, and a lone ``-`` (nothing) stay as they are.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
NUMBER = re.compile(r"-?\d+(\.\d+)?\Z")


class _Echo:
    """A file-like object whose write() hands the line back, for csv.writer in a stream."""

    def write(self, value: str) -> str:
        return value


def cell(value: object) -> object:
    """``value`` as a spreadsheet takes it for text, not a formula."""
    if isinstance(value, str) and len(value) > 1 and value.startswith(FORMULA_STARTS) and not NUMBER.match(value):
        return "'" + value
    return value


def csv_lines(header: Iterable[object], rows: Iterable[Iterable[object]]) -> Iterator[str]:
    """The byte-order mark and the header, then each row."""
    writer = csv.writer(_Echo())
    yield "\ufeff" + writer.writerow([cell(value) for value in header])
    for row in rows:
        yield writer.writerow([cell(value) for value in row])
