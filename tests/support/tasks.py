"""Running the outbox's due work in the test process, the way the worker would."""

from __future__ import annotations

import functools

from django.utils import timezone

from ipvas import outbox
from ipvas.celery import app
from ipvas.models import OutboxMessage


@functools.cache
def import_tasks() -> None:
    """Register every app's tasks with the Celery app, once a process: Celery's Django fix-up runs Django's
    system checks each time its modules are imported (70 ms), which was a third of a lifecycle test's time."""
    app.loader.import_default_modules()


def run_due_tasks(*, max_rounds: int = 100, holding: tuple[str, ...] = ()) -> list[tuple[str, object]]:
    """Run every outbox message that is due now, and what they enqueue, until none is due.

    Returns (task name, result) in the order they ran. Messages due later
    (deadlines, retries) stay until time travel makes them due; so do those of the tasks named in
    ``holding`` (a step held back, to act between two steps of an order).
    """
    import_tasks()
    ran: list[tuple[str, object]] = []
    for _ in range(max_rounds):
        due = list(
            OutboxMessage.objects.filter(relayed_at__isnull=True, due_at__lte=timezone.now())
            .exclude(task_name__in=holding)
            .order_by("due_at", "pk")
        )
        if not due:
            return ran
        for message in due:
            OutboxMessage.objects.filter(pk=message.pk).update(relayed_at=timezone.now())
            task = app.tasks[message.task_name]
            result = task.apply(kwargs=message.kwargs, task_id=outbox.task_id(message), throw=True).get()
            ran.append((message.task_name, result))
    raise AssertionError(f"tasks still due after {max_rounds} rounds: a loop? ran {ran[-10:]}")


def pending_tasks() -> list[tuple[str, dict]]:
    return [
        (m.task_name, m.kwargs) for m in OutboxMessage.objects.filter(relayed_at__isnull=True).order_by("due_at", "pk")
    ]
