"""The transactional outbox: the only way a service asks for work after a commit.

``enqueue`` writes a message in the caller's transaction. When that commits,
the message is published to Celery at once (``OUTBOX_RELAY_ON_COMMIT``); a
message that was not (the process died after COMMIT, the broker was down) is
published by the beat task ``relay_outbox``. Messages due far ahead stay here
until they are close, so that no Celery ETA outlives the broker's visibility
timeout.

A message is published under the task id ``outbox-<its id>``. Most work is found again without its message
when a broker loses one (an order's deadline by the deadline sweep, a refund by lifecycle.stalled); a
follow-up that has no row of its own (``must_finish``) is found by its message: it awaits its task's
success, and one relayed ``OUTBOX_UNFINISHED_SECONDS`` ago whose task has not succeeded is enqueued again
(``republish_unfinished``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from celery import Task
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from ipvas.broker import prepare_rabbitmq_delays
from ipvas.models import OutboxMessage
from ipvas.purge import purge_in_batches

logger = logging.getLogger(__name__)

# Messages due within this many seconds are published with an ETA; later ones wait here.
RELAY_HORIZON_SECONDS = 60

# By task name: which of its messages, waiting here until they are due, nobody needs any more (an order's
# deadline when the order has ended: lifecycle.apps registers it). The beat relay marks those relayed
# without publishing them (issue #17: most orders leave such a message behind, a task that would do nothing).
Unneeded = Callable[[list[OutboxMessage]], set[int]]
_unneeded_checks: dict[str, Unneeded] = {}
# Task names whose messages await their task's success (must_finish).
_must_finish: set[str] = set()
TASK_ID_PREFIX = "outbox-"


def skip_unneeded(task_names: Iterable[str], check: Unneeded) -> None:
    """``check(messages)`` gives the ids of those of ``task_names``' messages that need not be published."""
    for name in task_names:
        _unneeded_checks[name] = check


def must_finish(task_names: Iterable[str]) -> None:
    """These tasks' messages are their work's only record: each is enqueued again until its task succeeds."""
    _must_finish.update(task_names)


def enqueue(task: Task, *, kwargs: dict[str, Any], due_at: datetime | None = None) -> OutboxMessage:
    """Ask for ``task(**kwargs)`` to run at ``due_at`` (now by default) once this commits.

    The task is named by reference (the task object); its registered name is what the outbox keeps.
    """
    message = OutboxMessage.objects.create(
        task_name=task.name,
        kwargs=kwargs,
        due_at=due_at or timezone.now(),
        awaits_finish=task.name in _must_finish,
    )
    if settings.OUTBOX_RELAY_ON_COMMIT:
        transaction.on_commit(lambda: relay_committed([message]))
    return message


def enqueue_many(task: Task, *, kwargs_list: list[dict[str, Any]], due_at: datetime | None = None) -> int:
    """``enqueue`` for a batch: one INSERT for all the messages, relayed together once this commits."""
    due_at = due_at or timezone.now()
    awaits_finish = task.name in _must_finish
    return len(
        _write(
            [
                OutboxMessage(task_name=task.name, kwargs=kwargs, due_at=due_at, awaits_finish=awaits_finish)
                for kwargs in kwargs_list
            ]
        )
    )


def _write(messages: list[OutboxMessage]) -> list[OutboxMessage]:
    """One INSERT for them all, relayed together once this commits."""
    messages = OutboxMessage.objects.bulk_create(messages)
    if messages and settings.OUTBOX_RELAY_ON_COMMIT:
        transaction.on_commit(lambda: relay_committed(messages))
    return messages


def _publish(message: OutboxMessage, now: datetime) -> None:
    from ipvas.celery import app

    eta = message.due_at if message.due_at > now else None
    if eta is not None and settings.BROKER_IS_RABBITMQ:
        # RabbitMQ's delay queues count whole seconds and Celery rounds the countdown down: a second
        # more makes the task never early (at most a second late).
        eta += timedelta(seconds=1)
        prepare_rabbitmq_delays(app)  # routable even before a worker has started (ipvas/broker.py)
    # The representations the worker logs, made here: Celery's own (saferepr, written for any object of any
    # size) cost a fifth of a publish's instructions (issue #17); these kwargs are ids and timestamps.
    app.send_task(
        message.task_name,
        kwargs=message.kwargs,
        eta=eta,
        task_id=task_id(message),
        argsrepr="()",
        kwargsrepr=repr(message.kwargs),
    )


def task_id(message: OutboxMessage) -> str:
    """The Celery task id a message is published under, every time: a worker's log names the message."""
    return f"{TASK_ID_PREFIX}{message.pk}"


def task_succeeded(task_name: str, celery_task_id: str | None) -> None:
    """A task has succeeded: if its message awaited that (must_finish), it awaits no more."""
    if task_name not in _must_finish or not celery_task_id or not celery_task_id.startswith(TASK_ID_PREFIX):
        return
    message_id = celery_task_id.removeprefix(TASK_ID_PREFIX)
    if message_id.isdigit():
        OutboxMessage.objects.filter(pk=int(message_id), awaits_finish=True).update(awaits_finish=False)


def republish_unfinished(*, batch_size: int = 200) -> list[OutboxMessage]:
    """Enqueue again the must_finish messages relayed ``OUTBOX_UNFINISHED_SECONDS`` ago whose task has not
    succeeded: the broker lost them, or the task failed for good (beat, with lifecycle.stalled's sweep, which
    tells a person of those enqueued again more than a few times). Returns the new messages.

    Each is written again as a new message and the old one awaits no more, under its row lock, so two sweeps
    do not both do it; a task only slow runs twice, which every task allows (the outside systems take each
    follow-up's reference once). The first time at once, then after 2, 4, 8… times ``OUTBOX_UNFINISHED_SECONDS``,
    up to a day: a task that fails every time is not run every quarter of an hour for ever.
    """
    now = timezone.now()
    lost_before = now - timedelta(seconds=settings.OUTBOX_UNFINISHED_SECONDS)
    with transaction.atomic():
        lost = list(
            OutboxMessage.objects.select_for_update(skip_locked=True)
            .filter(awaits_finish=True, relayed_at__lt=lost_before)
            .order_by("relayed_at")[:batch_size]
        )
        if not lost:
            return []
        OutboxMessage.objects.filter(pk__in=[m.pk for m in lost]).update(awaits_finish=False)
        copies = _write(
            [
                OutboxMessage(
                    task_name=m.task_name,
                    kwargs=m.kwargs,
                    due_at=now + _again_after(m.again + 1),
                    awaits_finish=True,
                    again=m.again + 1,
                )
                for m in lost
            ]
        )
    for message in lost:
        logger.warning(
            "outbox: %s %s (message %d, relayed %s) has not finished; enqueued again (%d)",
            message.task_name,
            message.kwargs,
            message.pk,
            message.relayed_at.isoformat() if message.relayed_at else "-",
            message.again + 1,
        )
    return copies


def _again_after(again: int) -> timedelta:
    """How long the ``again``-th copy of an unfinished message waits before it is published."""
    if again <= 1:
        return timedelta(0)
    # The exponent capped: past a day the wait stays a day (an uncapped one would overflow timedelta in weeks).
    return min(timedelta(seconds=settings.OUTBOX_UNFINISHED_SECONDS * 2 ** min(again - 1, 16)), timedelta(days=1))


def relay_committed(messages: list[OutboxMessage]) -> int:
    """Publish messages whose transaction has just committed (due soon), then mark them relayed.

    Publish, then one UPDATE for them all, outside any transaction: the messages are in memory, so
    nothing is read back (issue #17: one round trip for the relay instead of four). A crash between
    the publish and the mark leaves them unmarked, and the beat relay publishes them again once they
    are ``OUTBOX_STALE_SECONDS`` old: a task may run twice, which every task allows, and none is lost.
    The beat relay leaves younger messages to this one, so that the two do not both publish them.
    """
    now = timezone.now()
    horizon = now + timedelta(seconds=RELAY_HORIZON_SECONDS)
    published: list[int] = []
    try:
        for message in messages:
            if message.due_at <= horizon:
                _publish(message, now)
                published.append(message.pk)
    except Exception:
        # The beat relay will publish the rest; the caller's change is committed already.
        logger.exception("outbox: relay on commit failed, leaving it to the beat relay")
    if published:
        try:
            OutboxMessage.objects.filter(pk__in=published, relayed_at__isnull=True).update(relayed_at=now)
        except Exception:
            logger.exception("outbox: published but not marked relayed; the beat relay will publish them again")
    return len(published)


def relay_pending(*, batch_size: int = 500) -> int:
    """Publish messages that are due soon and were not relayed on commit (beat task)."""
    now = timezone.now()
    stale_before = now - timedelta(seconds=settings.OUTBOX_STALE_SECONDS)
    horizon = now + timedelta(seconds=RELAY_HORIZON_SECONDS)
    with transaction.atomic():
        messages = list(
            OutboxMessage.objects.select_for_update(skip_locked=True)
            .filter(relayed_at__isnull=True, due_at__lte=horizon)
            # Messages younger than that are the on-commit relay's (relay_committed).
            .exclude(created_at__gt=stale_before)
            .order_by("due_at", "pk")[:batch_size]
        )
        unneeded = _unneeded(messages)
        for message in messages:
            if message.pk not in unneeded:
                _publish(message, now)
        if messages:
            OutboxMessage.objects.filter(pk__in=[m.pk for m in messages]).update(relayed_at=now)
    if messages:
        logger.info(
            "outbox: relayed %d pending message(s), and marked %d no longer needed",
            len(messages) - len(unneeded),
            len(unneeded),
        )
    return len(messages) - len(unneeded)


def _unneeded(messages: list[OutboxMessage]) -> set[int]:
    by_task: dict[str, list[OutboxMessage]] = {}
    for message in messages:
        if message.task_name in _unneeded_checks:
            by_task.setdefault(message.task_name, []).append(message)
    unneeded: set[int] = set()
    for name, waiting in by_task.items():
        try:
            with transaction.atomic():  # a savepoint: the relay's transaction goes on if the check fails
                unneeded |= _unneeded_checks[name](waiting)
        except Exception:
            # Leaving a message out only saves a task: a check that fails publishes them all, as before.
            logger.exception("outbox: could not tell which %s messages are still needed; publishing them", name)
    return unneeded


def purge_relayed(*, older_than: timedelta | None = None, batch_size: int = 5000) -> int:
    """Forget messages relayed more than ``OUTBOX_RETENTION_DAYS`` ago (beat, hourly).

    Among the messages written before the cutoff only: a message is relayed after it is written, and ids
    grow as messages are written, so none from the first id written since can be due. Without that bound,
    ``relayed_at`` having no index of its own (one would cost every relay a write), the last batch of every
    run read the whole table to find it had nothing more: hundreds of millions of rows a week at a national
    platform's rate. Now a run reads what it deletes and what is still waiting among the old (a handful); a
    message whose node's clock ran behind goes at the next run.
    """
    older_than = older_than or timedelta(days=settings.OUTBOX_RETENTION_DAYS)
    cutoff = timezone.now() - older_than
    old = OutboxMessage.objects.filter(relayed_at__lt=cutoff).order_by("pk")
    first_since = OutboxMessage.objects.filter(created_at__gte=cutoff).order_by("pk").values_list("pk", flat=True)
    bound = first_since.first()
    if bound is not None:
        old = old.filter(pk__lt=bound)
    return purge_in_batches(old, batch_size=batch_size)
