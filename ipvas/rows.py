"""Reading the one row a unique lookup finds."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet


def the_row(queryset: QuerySet[Any]) -> Any | None:
    """What ``queryset.first()`` gives for a lookup that finds at most one row (by a unique column), without the
    ORDER BY that ``first()`` adds: compiling the model's ordering was a fifth of reading a product by its
    code, and ~50 µs of an order's read by its number (issue #17)."""
    for row in queryset.order_by()[:1]:
        return row
    return None
