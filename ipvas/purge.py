"""Deleting what is kept only for a while, in bounded batches (each its own short transaction)."""

from __future__ import annotations

from django.db.models import QuerySet

BATCH = 5000


def purge_in_batches(rows: QuerySet, *, batch_size: int = BATCH, max_batches: int = 200) -> int:
    """Delete ``rows`` a batch at a time, so that no transaction holds many locks; returns how many.

    At most ``max_batches`` per call: what is left goes at the next scheduled run.
    """
    deleted = 0
    for _ in range(max_batches):
        ids = list(rows.values_list("pk", flat=True)[:batch_size])
        if not ids:
            break
        deleted += rows.model.objects.filter(pk__in=ids).delete()[0]
        if len(ids) < batch_size:
            break
    return deleted
