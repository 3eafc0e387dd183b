"""Property 3, the outbox: no work is lost, and none done twice, when the process dies after COMMIT.

A change and the work it asks for are written in one transaction: if the
process dies right after COMMIT, before publishing, the beat relay publishes
it, once, however many relays run at once; if the transaction rolls back,
nothing was asked for and nothing happens. A real Celery worker does the work.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from celery.signals import after_task_publish
from django.conf import settings as django_settings
from django.db import transaction
from django.utils import timezone

from billing.models import Payment
from ipvas import outbox
from ipvas.models import OutboxMessage
from orders.constants import OrderStatus
from orders.models import Order
from sandbox.models import SimSmpSubscription
from tests.integration.conftest import start_worker, stop_worker, wait_for
from tests.reliability.support import (
    balance,
    choose,
    make_rich,
    new_order,
    once,
    provisioned_once,
    race,
    record,
    run_due,
)
from tests.support.concurrency import require_postgresql

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def worker(django_db_setup, django_db_blocker):
    """A real Celery worker on the test database and Redis, for this module's tests (and no other)."""
    process = start_worker(concurrency=2)
    yield process
    stop_worker(process)


def test_work_committed_just_before_a_crash_is_relayed_once_after_it(demo, worker, settings):
    require_postgresql()
    make_rich()
    # The process dies right after COMMIT: what was committed is never published on commit.
    settings.OUTBOX_RELAY_ON_COMMIT = False
    order = new_order()
    run_due()  # the pre-check
    before = balance()
    choose(order, "phone_bill")  # provisioning, and its task in the outbox, in one transaction
    message = OutboxMessage.objects.get(relayed_at__isnull=True, task_name="lifecycle.tasks.provision_order")
    time.sleep(1.5)
    assert SimSmpSubscription.objects.count() == 0, "the worker got work that was never published"

    published: list[str] = []

    def count(sender: str | None = None, body=None, **_: object) -> None:
        if sender == message.task_name and body and body[1].get("order_id") == order.pk:
            published.append(sender)

    after_task_publish.connect(count, weak=False)
    try:
        # The crash was a while ago: the beat relay no longer waits for the on-commit relay.
        stale = timedelta(seconds=django_settings.OUTBOX_STALE_SECONDS + 1)
        OutboxMessage.objects.filter(pk=message.pk).update(created_at=timezone.now() - stale)
        run = race(outbox.relay_pending, outbox.relay_pending)  # two beat relays at once
        assert run.errors == []
        again = outbox.relay_pending()
        wait_for(
            lambda: Order.objects.filter(pk=order.pk, status=OrderStatus.COMPLETED).exists(),
            timeout=30,
            what="the worker provisions the relayed order",
        )
        time.sleep(1)  # anything published twice would have run by now
    finally:
        after_task_publish.disconnect(count)

    got = provisioned_once(order, charged=before - balance())
    record(
        "crash-relay_after_commit",
        kind="crash after COMMIT, relayed by beat",
        relays=3,
        published=len(published),
        effects=got,
        ok=got == once(order) and len(published) == 1,
    )
    assert (sorted(run.results), again, len(published)) == ([0, 1], 0, 1)
    assert got == once(order)
    assert not OutboxMessage.objects.filter(relayed_at__isnull=True, due_at__lte=timezone.now()).exists()


def test_a_rolled_back_change_leaves_no_message_and_no_effect(demo, worker, settings):
    require_postgresql()
    make_rich()
    settings.OUTBOX_RELAY_ON_COMMIT = True
    order = new_order()
    wait_for(
        lambda: Order.objects.filter(pk=order.pk, status=OrderStatus.AWAITING_PAYMENT).exists(),
        what="the worker's pre-check",
    )
    before = balance()
    messages = OutboxMessage.objects.count()

    with pytest.raises(RuntimeError), transaction.atomic():
        choose(order, "phone_bill")
        new_order(account="tv1001")
        assert OutboxMessage.objects.count() == messages + 2  # written in the transaction...
        raise RuntimeError("the change failed after it asked for its side effects")
    time.sleep(3)  # ...and a worker that got them would have subscribed by now

    order.refresh_from_db()
    left = {
        "status": order.status,
        "outbox messages": OutboxMessage.objects.count() - messages,
        "orders": Order.objects.count(),
        "payments": Payment.objects.count(),
        "SMP subscriptions": SimSmpSubscription.objects.count(),
        "phone bill charged": before - balance(),
    }
    nothing = {
        "status": OrderStatus.AWAITING_PAYMENT,
        "outbox messages": 0,
        "orders": 1,
        "payments": 0,
        "SMP subscriptions": 0,
        "phone bill charged": 0,
    }
    # The same change committed does reach the worker: the silence above was the rollback's.
    choose(order, "phone_bill")
    wait_for(
        lambda: Order.objects.filter(pk=order.pk, status=OrderStatus.COMPLETED).exists(),
        timeout=30,
        what="the committed change provisioned by the worker",
    )
    record("crash-rollback", kind="rolled-back transaction", effects=left, ok=left == nothing)
    assert left == nothing
