"""Importing a statement file for a day: the whole file in one transaction, or nothing.

The file is read twice: once to hash it (a file imported before is refused,
whatever day it was imported for), once to parse it, line by line, into
``StatementLine`` rows written in batches. Any line the parser refuses
rolls the whole import back, with the error naming the line.
"""

from __future__ import annotations

import hashlib
from datetime import date
from itertools import islice
from typing import BinaryIO

from django.db import IntegrityError, transaction

from billing.models import Statement, StatementLine
from billing.models.reconciliation import StatementSource
from billing.reconciliation.bulk import insert_rows
from billing.reconciliation.parsers import PARSERS, StatementError

BATCH = 2000
LINE_FIELDS = (
    "statement",
    "line_no",
    "kind",
    "match_key",
    "out_trade_no",
    "transaction_id",
    "out_refund_no",
    "refund_id",
    "amount_fen",
    "charge",
    "tv_account",
    "product_code",
    "occurred_at",
    "raw",
)
HASH_CHUNK = 1 << 20


def file_sha256(stream: BinaryIO) -> tuple[str, int]:
    """The file's SHA-256 and size, read in chunks; the stream is left at its start."""
    digest = hashlib.sha256()
    size = 0
    stream.seek(0)
    while chunk := stream.read(HASH_CHUNK):
        digest.update(chunk)
        size += len(chunk)
    stream.seek(0)
    return digest.hexdigest(), size


def statement_import(
    *,
    source: str,
    day: date,
    stream: BinaryIO,
    file_name: str = "",
    imported_by: str = "",
    replace: bool = False,
) -> Statement:
    """Import ``stream`` (a seekable binary file) as the ``source`` statement of ``day``.

    Refuses (``StatementError``) a file with rows imported before, a statement of
    another day, a file in another format and any row that cannot be read.
    With ``replace`` a statement already imported for that source and day is
    replaced in the same transaction; without it, it is refused.
    """
    if source not in StatementSource.values:
        raise StatementError(None, "unknown_source", value=repr(source))
    sha256, size = file_sha256(stream)
    parse = PARSERS[source]
    try:
        with transaction.atomic():
            # Refused when it has rows: the same bytes with none are every quiet day's statement.
            seen = Statement.objects.filter(source=source, sha256=sha256, row_count__gt=0).first()
            if seen is not None:
                raise StatementError(
                    None,
                    "imported_file" if seen.file_name else "imported_file_unnamed",
                    statement_source=source,
                    day=seen.day.isoformat(),
                    statement_id=seen.pk,
                    file_name=seen.file_name,
                )
            existing = Statement.objects.select_for_update().filter(source=source, day=day).first()
            if existing is not None:
                if not replace:
                    raise StatementError(
                        None, "imported_day", statement_source=source, day=day.isoformat(), statement_id=existing.pk
                    )
                existing.delete()
            statement = Statement.objects.create(
                source=source,
                day=day,
                sha256=sha256,
                file_name=file_name[:255],
                size_bytes=size,
                imported_by=imported_by[:150],
            )
            rows = 0
            parsed = parse(stream, day)
            while batch := list(islice(parsed, BATCH)):
                insert_rows(
                    StatementLine,
                    LINE_FIELDS,
                    [
                        (
                            statement.pk,
                            line.line_no,
                            line.kind,
                            line.match_key,
                            line.out_trade_no,
                            line.transaction_id,
                            line.out_refund_no,
                            line.refund_id,
                            line.amount_fen,
                            line.charge,
                            line.tv_account,
                            line.product_code,
                            line.occurred_at,
                            line.raw,
                        )
                        for line in batch
                    ],
                )
                rows += len(batch)
            statement.row_count = rows
            statement.save(update_fields=["row_count"])
            return statement
    except IntegrityError as exc:
        # Another import of the same file or day committed first.
        raise StatementError(None, "imported_meanwhile", statement_source=source, day=day.isoformat()) from exc
