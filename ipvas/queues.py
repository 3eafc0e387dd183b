"""Which Celery queues the workers consume, and which routed queue no worker consumes.

A task routed to a queue that no worker consumes waits forever: its order
stops at that step until its deadline gives up. ``manage.py check_queues``
and ``/healthz/workers/`` ask the running workers (a broadcast, answered
within ``timeout``) and name such a queue.
"""

from __future__ import annotations

from collections.abc import Mapping, Set

from django.conf import settings


def routed_queues() -> set[str]:
    """Every queue a task may be sent to: the declared ones (settings.CELERY_TASK_QUEUES)."""
    return {queue.name for queue in settings.CELERY_TASK_QUEUES}


def consumed_queues(*, timeout: float = 1.0) -> dict[str, set[str]]:
    """Worker name -> the queues it consumes, from the workers that answered in ``timeout`` seconds."""
    from ipvas.celery import app

    answers = app.control.inspect(timeout=timeout).active_queues() or {}
    return {worker: {queue["name"] for queue in queues} for worker, queues in answers.items()}


def unconsumed(routed: Set[str], consumed: Mapping[str, Set[str]]) -> list[str]:
    """The routed queues no worker consumes, sorted."""
    taken = set().union(*consumed.values()) if consumed else set()
    return sorted(routed - taken)
