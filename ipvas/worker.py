"""The Celery worker's consumer (settings: ``CELERY_WORKER_CONSUMER``), in the worker's main process.

Celery 5.7 keeps a task due later (an ETA or a countdown: the outbox publishes what is due within a minute with
one) as a request whose ``_eta_timer_entry`` is the timer's entry for it, and that entry's arguments hold the
request: a reference cycle. Python's reference counting never frees a cycle; only the cyclic collector does,
and the request lives long enough (until its time) to reach the oldest generation, which is collected only
after the number of long-lived objects has grown by a quarter. Until then every such task done left its
request, its message (with the body) and their promises behind: some 1,300 of them at two orders a second, and
the main process grew from 122 to 142 MiB before it levelled off, the allocator keeping what each full collection
freed (docs/performance.md, "The worker's main process over a long run (2026-12-07)"). Celery needs the entry only
until it fires (to cancel it when the connection closes first), so here it is let go when it fires, and the
request is freed as soon as its task is done, like any other.
"""

from __future__ import annotations

from typing import Any

from celery.worker.consumer import Consumer as CeleryConsumer


class Consumer(CeleryConsumer):
    def apply_eta_task(self, task: Any) -> None:
        task._eta_timer_entry = None  # the entry has fired; it holds the request (a cycle, see above)
        super().apply_eta_task(task)
