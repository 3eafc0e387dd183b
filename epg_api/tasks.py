"""Tasks of the EPG API."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from epg_api.models import IdempotencyRecord
from epg_api.tv_sessions import purge_tv_sessions
from ipvas.purge import purge_in_batches
from ipvas.tasks import ipvas_task


@ipvas_task(name="epg_api.tasks.purge_idempotency_keys")
def purge_idempotency_keys() -> int:
    """Forget Idempotency-Keys older than ``IDEMPOTENCY_RETENTION_HOURS`` (at least their 24-hour window)."""
    cutoff = timezone.now() - timedelta(hours=settings.IDEMPOTENCY_RETENTION_HOURS)
    return purge_in_batches(IdempotencyRecord.objects.filter(created_at__lt=cutoff))


@ipvas_task(name="epg_api.tasks.purge_tv_sessions")
def purge_ended_tv_sessions() -> int:
    """Forget TV sessions a day after they ended (docs/interfaces.md §9)."""
    return purge_tv_sessions()
