"""Deleting what is kept only for a while, in bounded batches (each its own short transaction)."""

from __future__ import annotations

from importlib import import_module

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

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


def purge_expired_sessions() -> int:
    """Delete the sessions that have expired (Django leaves them to ``clearsessions``, which nothing ran): a
    clerk's or a staff member's sign-in, kept no longer than it lasts. Returns how many (0 for a store that
    expires its own, as the cache does)."""
    store = import_module(settings.SESSION_ENGINE).SessionStore
    if not hasattr(store, "get_model_class"):
        store.clear_expired()
        return 0
    return purge_in_batches(store.get_model_class().objects.filter(expire_date__lt=timezone.now()))
