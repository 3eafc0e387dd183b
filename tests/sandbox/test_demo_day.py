"""The demo day that ``python3 dev.py up`` lives before the worker starts (sandbox/demo_day.py)."""

from __future__ import annotations

import pytest

from epg_api.models import EpgClient
from ipvas import outbox
from ipvas.models import OutboxMessage
from lifecycle.stalled import FOLLOW_UPS
from sandbox.demo_day import DEMO_EPG_CLIENT, build_demo_day

pytestmark = pytest.mark.django_db


def test_the_demo_days_follow_ups_are_finished_so_the_worker_does_not_do_them_again(demo):
    """The day's follow-ups (a refund's revoke on the SMP among them) ran in the past: none is left unfinished
    for the stalled sweep to send again when the worker starts (it did, and the demo revoked twice)."""
    day = build_demo_day()

    assert day.built and day.run is not None
    assert OutboxMessage.objects.filter(task_name__in=[task.name for task in FOLLOW_UPS]).exists()
    assert not OutboxMessage.objects.filter(awaits_finish=True).exists()
    assert outbox.republish_unfinished() == []


def test_the_demo_day_is_lived_once_after_the_demo_key_was_rotated_and_revoked(demo):
    """`dev.py up` started again after someone tried *Issue a new key…* on the demo EPG client in admin: the day
    is found under the client's first key, not lived again under the newest key's id (its per-view order was
    then refused as bought already, and `up` stopped)."""
    assert build_demo_day().built
    first = EpgClient.objects.get(name=DEMO_EPG_CLIENT, acts_for=None)
    first.issue_key()
    first.revoked = True
    first.save()

    again = build_demo_day()

    assert not again.built
