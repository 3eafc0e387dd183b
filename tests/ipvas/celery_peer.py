"""A Celery application as small as can show what a broker outage does to a worker (tests/ipvas/test_broker.py).

It is configured like IPVAS's (acks late, reject on worker lost, prefetch 1, retry
the broker forever) with the broker of ``PEER_BROKER_URL`` and the transport of
``PEER_BROKER_TRANSPORT`` (empty: kombu's own), and one task that sleeps, then
leaves a file saying it ran.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from celery import Celery

app = Celery("peer", broker=os.environ.get("PEER_BROKER_URL", "redis://127.0.0.1:9/0"))
app.conf.update(
    broker_transport=os.environ.get("PEER_BROKER_TRANSPORT") or None,
    broker_connection_retry_on_startup=True,
    broker_connection_max_retries=None,
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_ignore_result=True,
    worker_hijack_root_logger=False,
)


@app.task(name="peer.nap")
def nap(seconds: float, done_file: str) -> None:
    time.sleep(seconds)
    Path(done_file).write_text("done")
