"""Infrastructure tasks, and the decorator every IPVAS task is declared with."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from celery import shared_task
from django.db import InterfaceError, OperationalError

from ipvas import outbox
from ipvas.purge import purge_expired_sessions

# Longest delay Celery itself may schedule for a retry: far below the Redis
# visibility timeout (3600 s by default), which a test checks for every task.
MAX_RETRY_DELAY_SECONDS = 300


def ipvas_task(**options: Any) -> Callable[[Callable[..., Any]], Any]:
    """``shared_task`` with the house defaults.

    Tasks take ids, call one service, and are safe to run twice: the service
    re-reads state under a lock. Acks are late and a task whose worker died is
    re-queued (settings). A database outage is retried by Celery with backoff;
    outside systems that fail are retried by the service through the outbox,
    so those retries survive a broker restart.
    """
    defaults: dict[str, Any] = {
        "autoretry_for": (OperationalError, InterfaceError),
        "retry_backoff": 2,
        "retry_backoff_max": MAX_RETRY_DELAY_SECONDS,
        "retry_jitter": True,
        "max_retries": 20,
        "acks_late": True,
        "reject_on_worker_lost": True,
    }
    defaults.update(options)
    return shared_task(**defaults)


@ipvas_task(name="ipvas.tasks.relay_outbox")
def relay_outbox() -> int:
    return outbox.relay_pending()


@ipvas_task(name="ipvas.tasks.purge_outbox")
def purge_outbox() -> int:
    return outbox.purge_relayed()


@ipvas_task(name="ipvas.tasks.purge_sessions")
def purge_sessions() -> int:
    return purge_expired_sessions()
