"""Writing many rows at once without a model instance per row.

A day's reconciliation writes a row per statement line and per item: 200,000
for a day of 100,000 orders. ``bulk_create`` builds and prepares a model
instance for each, which costs more than the database does; here the values
go straight to one ``COPY`` (PostgreSQL) or ``executemany`` (SQLite) per
batch. Only plain values are written
(text, integers, None, aware datetimes prepared for the database): no
signals, no defaults, so callers pass every column.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from django.db import connection, models


def insert_rows(model: type[models.Model], fields: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    meta = model._meta
    concrete = [meta.get_field(name) for name in fields]
    datetimes = [i for i, field in enumerate(concrete) if isinstance(field, models.DateTimeField)]
    quote = connection.ops.quote_name
    table, columns = quote(meta.db_table), ", ".join(quote(field.column) for field in concrete)
    if datetimes:
        rows = [_prepared(row, datetimes, concrete) for row in rows]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # psycopg's executemany sends one INSERT per row; COPY streams them all in one statement.
            with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            placeholders = ", ".join(["%s"] * len(concrete))
            cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({placeholders})", rows)  # noqa: S608


def _prepared(row: Sequence[object], datetimes: list[int], fields: list) -> list[object]:
    values = list(row)
    for i in datetimes:
        values[i] = fields[i].get_db_prep_save(values[i], connection)
    return values
