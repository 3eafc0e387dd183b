"""A release's migrations keep the release before working (docs/operations.md, "Upgrading").

Operators upgrade node by node: the migrations run first, and for a while web and worker nodes of the
release before write to the migrated database. A column added NOT NULL without a default in the database
makes every INSERT of theirs fail (Django sets a model field's ``default`` in Python, and drops the one a
migration used to fill the existing rows): found when the previous release's benchmark ran on a database
with the outbox's ``awaits_finish`` column, and every order answered 500. So a column is added nullable or
with ``db_default``. The migrations written before this rule are listed: they are applied everywhere.
"""

from __future__ import annotations

from django.db.migrations.loader import MigrationLoader
from django.db.migrations.operations import AddField
from django.db.models.fields import NOT_PROVIDED

OURS = {
    "backoffice", "billing", "callbacks", "channels_crm", "epg_api", "ipvas", "lifecycle", "orders", "sandbox", "tv"
}  # fmt: skip
BEFORE_THE_RULE = {
    ("billing", "0005_reconciliation_discrepancies_and_sources"),
    ("epg_api", "0002_tv_sessions"),
    ("orders", "0001_initial"),
    ("orders", "0003_subscriptions"),
    ("orders", "0006_stalled_followups"),
    ("orders", "0007_order_pin_pending"),
    ("orders", "0008_order_virtual_staff_id"),
    ("sandbox", "0002_smp_idempotency_key"),
    ("sandbox", "0003_sim_trade_payment_codes"),
    ("sandbox", "0004_deduction_contracts"),
}


def test_every_column_added_since_the_rule_has_a_database_default_or_may_be_null():
    loader = MigrationLoader(None, ignore_no_migrations=True)
    breaking = [
        f"{app}.{name}: {operation.model_name}.{operation.name}"
        for (app, name), migration in sorted(loader.disk_migrations.items())
        if app in OURS and (app, name) not in BEFORE_THE_RULE
        for operation in migration.operations
        if isinstance(operation, AddField)
        and not (operation.field.null or operation.field.db_default is not NOT_PROVIDED)
    ]
    assert not breaking, f"columns the release before cannot insert without (give them db_default): {breaking}"


def test_the_rule_sees_a_column_added_without_one():
    """The check itself: the outbox's column as it was first written is caught."""
    from django.db import models

    operation = AddField("outboxmessage", "awaits_finish", models.BooleanField(default=False))
    assert not (operation.field.null or operation.field.db_default is not NOT_PROVIDED)
    fixed = AddField("outboxmessage", "awaits_finish", models.BooleanField(default=False, db_default=False))
    assert fixed.field.db_default is not NOT_PROVIDED
