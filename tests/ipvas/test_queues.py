"""Every routed Celery queue is declared, so that a plain worker consumes it; a queue no worker consumes is named."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from ipvas.celery import app
from ipvas.queues import routed_queues, unconsumed


def test_every_route_goes_to_a_declared_queue():
    app.loader.import_default_modules()
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


def test_check_queues_fails_when_no_worker_answers():
    with pytest.raises(CommandError, match="no Celery worker answered"):
        call_command("check_queues", "--timeout", "0.2")
