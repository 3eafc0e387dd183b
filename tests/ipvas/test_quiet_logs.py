"""Beat's periodic no-op rounds stay out of the log at INFO (issue #12, item 14): the records are Celery's own,
made by Celery's own code, and go through the console handler that settings.LOGGING configures."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterator

import pytest
from celery.app import trace
from celery.beat import ScheduleEntry, Scheduler

from ipvas.celery import app
from ipvas.logs import QUIET_PERIODIC_TASKS, QuietPeriodicTasksFilter
from tests.support.tasks import import_tasks


@pytest.fixture
def console_log() -> Iterator[Callable[[], str]]:
    """What the configured console handler writes, at INFO, while the test runs."""
    root = logging.getLogger()
    [console] = [h for h in root.handlers if h.get_name() == "console"]
    assert any(isinstance(f, QuietPeriodicTasksFilter) for f in console.filters), console.filters
    out = io.StringIO()
    old_stream, old_level = console.setStream(out), root.level
    root.setLevel(logging.INFO)
    try:
        yield out.getvalue
    finally:
        console.setStream(old_stream)
        root.setLevel(old_level)


def received(name: str) -> None:
    """The worker's line when a message arrives (celery.worker.strategy, Celery's format and context)."""
    context = {"id": "6f1c", "name": name, "args": "()", "kwargs": "{}", "eta": None}
    logging.getLogger("celery.worker.strategy").info(trace.LOG_RECEIVED, context, extra={"data": context})


def succeeded(name: str, returned: object) -> None:
    """The worker's line when a task returns: Celery's own trace.info."""
    trace.info(
        trace.LOG_SUCCESS,
        {"id": "6f1c", "name": name, "return_value": repr(returned), "runtime": 0.004, "args": "()", "kwargs": "{}"},
    )


def beat_sends(entry_name: str, task: str) -> None:
    """Beat's line when it sends a due task: a real scheduler applying a real entry (to the memory broker)."""
    scheduler = Scheduler(app, lazy=True)
    scheduler.apply_entry(ScheduleEntry(name=entry_name, task=task, schedule=5.0, app=app), producer=None)


@pytest.mark.parametrize("task", sorted(QUIET_PERIODIC_TASKS))
def test_a_round_that_found_nothing_leaves_no_line(console_log, task):
    beat_sends("every-few-seconds", task)
    received(task)
    succeeded(task, 0)
    assert task not in console_log()


@pytest.mark.parametrize("task", sorted(QUIET_PERIODIC_TASKS))
def test_a_round_that_did_something_says_so(console_log, task):
    received(task)
    succeeded(task, 3)
    assert f"Task {task}[6f1c] succeeded in 0.004s: 3" in console_log()
    assert "received" not in console_log()


def test_other_tasks_and_the_periodic_tasks_failures_are_logged_as_before(console_log):
    beat_sends("reconcile-yesterday", "billing.tasks.reconcile_yesterday")
    received("lifecycle.tasks.provision_order")
    succeeded("lifecycle.tasks.provision_order", "completed")
    logging.getLogger("celery.app.trace").error(
        trace.LOG_FAILURE,
        {"id": "6f1c", "name": "ipvas.tasks.relay_outbox", "description": "raised unexpected", "exc": "boom"},
    )
    lines = console_log()
    assert "Scheduler: Sending due task reconcile-yesterday (billing.tasks.reconcile_yesterday)" in lines
    assert "Task lifecycle.tasks.provision_order[6f1c] received" in lines
    assert "Task lifecycle.tasks.provision_order[6f1c] succeeded in 0.004s: 'completed'" in lines
    assert "Task ipvas.tasks.relay_outbox[6f1c] raised unexpected: boom" in lines


def test_the_real_relay_task_run_by_celery_returns_the_count_the_filter_reads(db):
    """relay_outbox, sweep_deadlines and sweep_subscriptions answer how much they did: 0 when nothing."""
    import_tasks()
    for name in QUIET_PERIODIC_TASKS:
        assert app.tasks[name].apply().get() == 0


def test_every_round_beat_runs_more_often_than_a_minute_is_quiet(settings):
    """A new sweep added to beat's schedule every few seconds must be quiet too, or it fills the log again."""
    frequent = {
        entry["task"]
        for entry in settings.CELERY_BEAT_SCHEDULE.values()
        if isinstance(entry["schedule"], (int, float)) and entry["schedule"] < 60
    }
    assert frequent and frequent <= QUIET_PERIODIC_TASKS, frequent - QUIET_PERIODIC_TASKS


def test_a_body_too_large_is_a_warning_of_one_line_not_an_error_with_a_traceback(console_log, db, settings):
    """Django logs the refusal (django.security.RequestDataTooBig) as an ERROR with its traceback; the client
    sent too much, and was answered 413."""
    from tests.epg_api.support import Api, new_api_key

    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    answer = Api(new_api_key()).post("/orders/", raw="x" * 4096)

    assert answer.status_code == 413 and answer.json()["error"]["code"] == "request_too_large"
    [line] = [line for line in console_log().splitlines() if "RequestDataTooBig" in line]
    assert " WARNING django.security.RequestDataTooBig " in line
    assert "Traceback" not in console_log()
