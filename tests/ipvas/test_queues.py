"""Every routed Celery queue is declared, so that a plain worker consumes it; a queue no worker consumes is named."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from django.conf import settings

from ipvas.celery import app
from ipvas.queues import routed_queues, unconsumed
from tests.support.tasks import import_tasks


def test_every_route_goes_to_a_declared_queue():
    import_tasks()
    declared = routed_queues()
    assert settings.CELERY_TASK_DEFAULT_QUEUE in declared
    for task, route in settings.CELERY_TASK_ROUTES.items():
        assert route["queue"] in declared, f"{task} is routed to {route['queue']}, which no plain worker consumes"
    # Celery itself resolves each of our tasks to a declared queue.
    for name in app.tasks:
        if name.startswith("celery."):
            continue
        queue = app.amqp.router.route({}, name)["queue"].name
        assert queue in declared, f"{name} goes to {queue}"


def test_a_queue_no_worker_consumes_is_named():
    routed = {"default", "deadlines", "provisioning", "sms"}
    assert unconsumed(routed, {"a@h": {"default"}, "b@h": {"sms", "deadlines"}}) == ["provisioning"]
    assert unconsumed(routed, {"a@h": routed}) == []
    assert unconsumed(routed, {}) == sorted(routed)


def test_check_queues_fails_when_no_worker_answers(tmp_path):
    """Against a broker no worker listens on: the suite's own broker may have a real worker on it, started
    at the same moment by an integration test in the other test process (seen once: "DID NOT RAISE")."""
    env = dict(os.environ, IPVAS_VAR_DIR=str(tmp_path))  # the embedded broker: a folder of its own
    if settings.CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
        env["CELERY_BROKER_URL"] = re.sub(r"(/\d+)?$", "/15", settings.CELERY_BROKER_URL, count=1)
    done = subprocess.run(
        [sys.executable, "manage.py", "check_queues", "--timeout", "0.2"],
        cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode != 0 and "no Celery worker answered" in done.stderr, (done.returncode, done.stderr)
