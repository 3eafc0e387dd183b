"""PostgreSQL for the test suite: Django's backend, except that emptying the database deletes its rows.

A test on a committed database (``django_db(transaction=True)``, the browser and live-server tests) is followed
by Django's ``flush``, which on PostgreSQL is one ``TRUNCATE`` of every table. ``TRUNCATE`` gives each of the 56
tables and their indexes new files, and removes the old ones at commit: 0.24–0.39 s on the machine's shared
cluster, against 0.02 s for ``DELETE FROM`` each table in one transaction, with the few rows a test leaves. The
foreign keys Django makes on PostgreSQL are ``DEFERRABLE INITIALLY DEFERRED``, so they are checked at the
commit, when every table is empty; no table of ours has a trigger. What a flush asks for beyond that
(sequences reset, ``CASCADE``) goes to Django's ``TRUNCATE`` as before. Production keeps Django's backend.
"""

from __future__ import annotations

from django.db.backends.postgresql import base, operations


class DatabaseOperations(operations.DatabaseOperations):
    def sql_flush(self, style, tables, *, reset_sequences=False, allow_cascade=False):  # type: ignore[no-untyped-def]
        if reset_sequences or allow_cascade:
            return super().sql_flush(style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade)
        return [f"{style.SQL_KEYWORD('DELETE FROM')} {style.SQL_FIELD(self.quote_name(table))};" for table in tables]


class DatabaseWrapper(base.DatabaseWrapper):
    ops_class = DatabaseOperations
