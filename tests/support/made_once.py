"""Data a fixture makes through the real services, made once per test process and then put back.

A fixture that lives through a day of orders (the reconciliation audit's) or runs ``seed_demo`` does the same
work for every test that asks for it. ``made_once`` runs its ``build`` the first time a process asks, in an empty
database, keeps every row the build left, and for the later tests puts those rows back in one transaction: the
database is then as the build left it, to the row. What is not in the database (the cache, which every test
starts empty, and the clock, which the fixture sets) is the fixture's to set each time.

Where the database is not empty when the fixture is asked for (a fixture before it made a row), ``build`` runs
as it always did and nothing is kept or put back.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from django.apps import apps
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Field, Model
from django.utils import timezone

T = TypeVar("T")

# Tables migrate fills, which a committed test's flush keeps (tests/conftest.py, django_db_setup).
MADE_BY_MIGRATE = frozenset({"django_content_type", "auth_permission"})


@dataclass(frozen=True)
class Kept:
    rows: list[tuple[type[Model], list[Model]]]
    result: Any


# What each build made, by its name and whether the sandbox was on (the build made different rows).
_kept: dict[tuple[str, bool], Kept] = {}


def made_once(name: str, build: Callable[[], T], *, times_now: bool = False) -> T:
    """``build()``'s result; its rows made by it the first time, put back after.

    ``build``'s result must not hold model instances (their rows are put back, not the objects): return keys
    and look the rows up. ``times_now``: a column that says when its row was made or changed is set to now
    when the rows are put back, as if they were made now (for a build that does not set the clock).
    """
    kept = _kept.get((name, settings.SANDBOX))
    if kept is not None:
        if any(model._base_manager.exists() for model, _ in kept.rows):  # a fixture made some of them first
            return build()
        _put_back(kept.rows, times_now=times_now)
        return kept.result
    ours = _our_models()
    empty = not any(model._base_manager.exists() for model in ours)
    result = build()
    if empty:  # what the build made, and nothing else
        rows = [(model, made) for model in ours if (made := list(model._base_manager.all()))]
        _kept[(name, settings.SANDBOX)] = Kept(rows=rows, result=result)
    return result


def _our_models() -> list[type[Model]]:
    models = apps.get_models(include_auto_created=True)
    return [model for model in models if not model._meta.proxy and model._meta.db_table not in MADE_BY_MIGRATE]


def _put_back(rows: list[tuple[type[Model], list[Model]]], *, times_now: bool) -> None:
    """The rows again, in one transaction (the foreign keys are checked at its commit, whatever the order), as
    they were: inserted raw, as ``loaddata`` does, so that no ``auto_now`` column takes the time of the insert."""
    now = timezone.now()
    with transaction.atomic():
        for model, made in rows:
            fields = model._meta.concrete_fields
            if times_now:
                made = [_made_at(row, now) for row in made]
            batch = max(connection.ops.bulk_batch_size(fields, made), 1)
            for start in range(0, len(made), batch):
                model._base_manager._insert(made[start : start + batch], fields=fields, raw=True)


def _made_at(row: Model, now: datetime) -> Model:
    row = copy.copy(row)
    for field in row._meta.concrete_fields:
        if _made_now(field):
            setattr(row, field.attname, now)
    return row


def _made_now(field: Field) -> bool:
    """A column that says when its row was made or changed (auto_now, auto_now_add, default=timezone.now)."""
    return getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False) or field.default is timezone.now
