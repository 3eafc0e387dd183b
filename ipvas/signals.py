"""Celery signal handlers: a clean log context per task, the database connections' lifecycle, retry counts,
and a follow-up's outbox message marked finished when its task succeeds."""

from __future__ import annotations

from typing import Any

from celery.signals import task_postrun, task_prerun, task_retry, task_success
from django.db import close_old_connections

from ipvas import logs, outbox
from ipvas.metrics import TASK_RETRIES


@task_prerun.connect(dispatch_uid="ipvas-task-log-context")
def _task_log_context(
    task_id: str | None = None, task: Any = None, kwargs: dict[str, Any] | None = None, **_: Any
) -> None:
    logs.clear()
    kwargs = kwargs or {}
    logs.bind(task=getattr(task, "name", ""), task_id=task_id, order_id=kwargs.get("order_id"))


@task_prerun.connect(dispatch_uid="ipvas-task-db-start")
@task_postrun.connect(dispatch_uid="ipvas-task-db-end")
def _task_db_connections(task: Any = None, **_: Any) -> None:
    """A task's database connections live as a request's do: kept between tasks up to ``DB_CONN_MAX_AGE``,
    closed before and after a task when broken or older, and health-checked on first use
    (``CONN_HEALTH_CHECKS``). Celery's own closing after every task is put off (settings.CELERY_DB_REUSE_MAX).
    Not for a task run in the caller's process (``apply()``, eager): its connection is the caller's."""
    if not getattr(getattr(task, "request", None), "is_eager", False):
        close_old_connections()


@task_retry.connect(dispatch_uid="ipvas-task-retry-count")
def _task_retry(sender: Any = None, **_: Any) -> None:
    TASK_RETRIES.labels(task=getattr(sender, "name", "unknown")).inc()


@task_success.connect(dispatch_uid="ipvas-task-outbox-finished")
def _task_finished(sender: Any = None, **_: Any) -> None:
    """Its message awaits no more (outbox.must_finish). A failure to mark it only publishes it again later."""
    outbox.task_succeeded(getattr(sender, "name", ""), getattr(getattr(sender, "request", None), "id", None))
