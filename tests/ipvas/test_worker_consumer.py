"""The worker's main process lets go of a task due later once it is done (ipvas/worker.py).

Celery 5.7 kept each such request in a reference cycle with its timer entry, freed only by a full run of
Python's cyclic collector: a soak run's main process grew from 122 to 142 MiB before it levelled off
(docs/performance.md). Here tasks published with a countdown run through Celery's own worker (in a thread of
this process, so that its objects can be counted) with the cyclic collector off, as it is in effect for the
oldest generation between its rare full runs; afterwards no request of theirs may be left in a cycle.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator

import pytest
from celery.contrib.testing.worker import start_worker
from celery.worker.request import Request

from ipvas.celery import app

TASKS = 20
QUEUE = "tests-worker-consumer"  # its own: a worker another test left running takes none of these tasks


@pytest.fixture
def noted() -> Iterator[tuple[object, list[int]]]:
    """A task of the project's Celery application that notes it ran (unregistered afterwards)."""
    ran: list[int] = []

    @app.task(name="tests.ipvas.noted", shared=False)
    def note(n: int) -> None:
        ran.append(n)

    yield note, ran
    app.tasks.pop("tests.ipvas.noted", None)


def requests_left_in_cycles(name: str) -> int:
    """The requests of task ``name`` that only the cyclic collector would free (it frees them here)."""
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        gc.collect()
        found = sum(1 for o in gc.garbage if issubclass(type(o), Request) and o.name == name)  # type(): proxies too
        gc.garbage.clear()
    finally:
        gc.set_debug(0)
    return found


def test_a_task_due_later_leaves_nothing_in_the_workers_main_process_once_done(noted):
    task, ran = noted
    gc.collect()
    gc.disable()
    try:
        with start_worker(app, pool="solo", perform_ping_check=False, loglevel="WARNING", queues=[QUEUE]):
            for n in range(TASKS):
                task.apply_async((n,), countdown=0.2, queue=QUEUE)
            deadline = time.monotonic() + 30
            while len(ran) < TASKS and time.monotonic() < deadline:
                time.sleep(0.05)
            assert sorted(ran) == list(range(TASKS))
        left = requests_left_in_cycles(task.name)
    finally:
        gc.enable()
    assert left == 0, f"{left} of {TASKS} requests due later were left for the cyclic collector"
