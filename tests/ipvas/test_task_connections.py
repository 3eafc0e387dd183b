"""A Celery task's database connection lives as a request's does (ipvas/signals.py, docs/decisions.md).

Workers keep their PostgreSQL connections between tasks. What Celery's own closing after every task
protected against (celery/celery#9824) is a query cut short by the task's time limit, whose signal
leaves the connection in the middle of a command: the next task must not inherit it broken. Django's
``close_old_connections`` around each task, with ``CONN_HEALTH_CHECKS``, gives it a working one.
"""

from __future__ import annotations

import signal
from types import SimpleNamespace

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.db import connection

from ipvas.signals import _task_db_connections
from tests.support.concurrency import require_postgresql

A_WORKER_TASK = SimpleNamespace(request=SimpleNamespace(is_eager=False))


def backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("select pg_backend_pid()")
        return int(cursor.fetchone()[0])


@pytest.mark.django_db(transaction=True)
def test_a_task_cut_short_mid_query_by_its_time_limit_leaves_the_next_task_a_working_connection(settings):
    require_postgresql()
    assert settings.DATABASES["default"]["CONN_HEALTH_CHECKS"]  # what the workers rely on

    def time_limit(signum: int, frame: object) -> None:
        raise SoftTimeLimitExceeded()  # as billiard's soft time limit does, from a signal

    first = backend_pid()
    previous = signal.signal(signal.SIGALRM, time_limit)
    signal.setitimer(signal.ITIMER_REAL, 0.3)
    try:
        with pytest.raises(SoftTimeLimitExceeded), connection.cursor() as cursor:
            cursor.execute("select pg_sleep(5)")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)

    _task_db_connections(task=A_WORKER_TASK)  # the task's end (task_postrun)
    _task_db_connections(task=A_WORKER_TASK)  # the next task's start (task_prerun)
    with connection.cursor() as cursor:
        cursor.execute("select 1")
        assert cursor.fetchone() == (1,)
    assert backend_pid() != first  # a new connection, not the interrupted one


@pytest.mark.django_db(transaction=True)
def test_a_healthy_connection_is_kept_from_one_task_to_the_next():
    require_postgresql()
    first = backend_pid()
    _task_db_connections(task=A_WORKER_TASK)
    _task_db_connections(task=A_WORKER_TASK)
    assert backend_pid() == first
