"""The demo data of docs/interfaces.md §7 for a test, as ``manage.py seed_demo`` makes it, quickly.

``seed_demo`` runs in an empty database the first time a process asks for the demo; after that the rows it made
there are put back (their times set to now, as if made now), in one transaction. Sixty queries and 50 ms a test
were the set-up of the 1,082 tests that use the demo; putting rows back takes 10 ms. Where a fixture made some of
those rows first, ``seed_demo`` runs as before: it leaves what is there.
"""

from __future__ import annotations

import copy
import os

from django.apps import apps
from django.conf import settings
from django.core.management import call_command
from django.db import transaction
from django.db.models import Field, Model
from django.utils import timezone

from orders.models import Product

# Tables migrate fills, which a committed test's flush keeps (tests/conftest.py, django_db_setup).
MADE_BY_MIGRATE = frozenset({"django_content_type", "auth_permission"})

# The rows seed_demo made in an empty database, by model; one set with the sandbox, one without.
_made: dict[bool, list[tuple[type[Model], list[Model]]]] = {}


def demo_data() -> dict[str, Product]:
    """The demo in the test's database; its products by code."""
    rows = _made.get(settings.SANDBOX)
    if rows is not None and not any(model._base_manager.exists() for model, _ in rows):
        _put_back(rows)
    elif rows is not None:  # a fixture made some of them first
        _seed()
    else:
        models = [model for model in apps.get_models(include_auto_created=True) if not model._meta.proxy]
        ours = [model for model in models if model._meta.db_table not in MADE_BY_MIGRATE]
        empty = not any(model._base_manager.exists() for model in ours)
        _seed()
        if empty:  # what seed_demo makes, and nothing else
            _made[settings.SANDBOX] = [(model, made) for model in ours if (made := list(model._base_manager.all()))]
    return {product.code: product for product in Product.objects.all()}


def _seed() -> None:
    with open(os.devnull, "w") as quiet:
        call_command("seed_demo", stdout=quiet)


def _put_back(rows: list[tuple[type[Model], list[Model]]]) -> None:
    """The rows again, in one transaction (the foreign keys are checked at its commit, whatever the order)."""
    now = timezone.now()
    with transaction.atomic():
        for model, made in rows:
            fresh = []
            for row in made:
                row = copy.copy(row)
                row._state = copy.copy(row._state)
                row._state.adding, row._state.db = True, None
                for field in model._meta.concrete_fields:
                    if _made_now(field):
                        setattr(row, field.attname, now)
                fresh.append(row)
            model._base_manager.bulk_create(fresh)


def _made_now(field: Field) -> bool:
    """A column that says when its row was made or changed (auto_now, auto_now_add, default=timezone.now)."""
    return getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False) or field.default is timezone.now
