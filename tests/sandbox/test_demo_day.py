"""The demo day that ``python3 dev.py up`` lives before the worker starts (sandbox/demo_day.py)."""

from __future__ import annotations

import pytest

from ipvas import outbox
from ipvas.models import OutboxMessage
from lifecycle.stalled import FOLLOW_UPS
from sandbox.demo_day import build_demo_day

pytestmark = pytest.mark.django_db


def test_the_demo_days_follow_ups_are_finished_so_the_worker_does_not_do_them_again(demo):
    """The day's follow-ups (a refund's revoke on the SMP among them) ran in the past: none is left unfinished
    for the stalled sweep to send again when the worker starts (it did, and the demo revoked twice)."""
    day = build_demo_day()

    assert day.built and day.run is not None
    assert OutboxMessage.objects.filter(task_name__in=[task.name for task in FOLLOW_UPS]).exists()
    assert not OutboxMessage.objects.filter(awaits_finish=True).exists()
    assert outbox.republish_unfinished() == []
