"""Database locks on things that have no row of their own (a phone number, say)."""

from __future__ import annotations

from django.db import connection


def lock_name(name: str) -> None:
    """Hold a lock on ``name`` until the current transaction ends.

    PostgreSQL: a transaction-scoped advisory lock. SQLite: nothing to do,
    its transactions (BEGIN IMMEDIATE) already run one writer at a time.
    """
    assert connection.in_atomic_block, "lock_name() needs a transaction"
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [name])
