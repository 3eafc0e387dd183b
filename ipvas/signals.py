"""Celery signal handlers: a clean log context per task, and retry counts."""

from __future__ import annotations

from typing import Any

from celery.signals import task_prerun, task_retry

from ipvas import logs
from ipvas.metrics import TASK_RETRIES


@task_prerun.connect(dispatch_uid="ipvas-task-log-context")
def _task_log_context(
    task_id: str | None = None, task: Any = None, kwargs: dict[str, Any] | None = None, **_: Any
) -> None:
    logs.clear()
    kwargs = kwargs or {}
    logs.bind(task=getattr(task, "name", ""), task_id=task_id, order_id=kwargs.get("order_id"))


@task_retry.connect(dispatch_uid="ipvas-task-retry-count")
def _task_retry(sender: Any = None, **_: Any) -> None:
    TASK_RETRIES.labels(task=getattr(sender, "name", "unknown")).inc()
