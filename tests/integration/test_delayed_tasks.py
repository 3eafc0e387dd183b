"""A task due later runs when it is due, not before, on every production broker (issue #17).

The outbox publishes a message due within a minute at once, with an ETA. On Redis the worker holds
it until then; on RabbitMQ's quorum queues it waits in the broker's delay queues (kombu's native
delayed delivery, which needs the topic exchange of ipvas/settings.py). Here an order's idle
deadline is a few seconds ahead and no beat runs: only the delayed due task can expire it.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from ipvas.actors import Actor, ActorKind
from lifecycle.placing import order_create
from orders.constants import FailureCode, OrderStatus
from orders.models import Order
from tests.integration.conftest import start_worker, stop_session_worker, stop_worker, wait_for

EPG = Actor(ActorKind.EPG_CLIENT, "integration")
IDLE_SECONDS = 4


@pytest.mark.django_db(transaction=True)
def test_a_due_task_published_ahead_runs_at_its_time_not_before(demo):
    worker = start_worker(extra_env={"ORDER_IDLE_SECONDS": str(IDLE_SECONDS)})
    try:
        order = order_create(channel="epg", product_code="VIP-MONTH", tv_account="tv1001", actor=EPG)
        wait_for(lambda: Order.objects.get(pk=order.pk).status == OrderStatus.AWAITING_PAYMENT, what="the pre-check")
        order.refresh_from_db()
        assert order.deadline_at <= timezone.now() + timedelta(seconds=IDLE_SECONDS)
        if settings.BROKER_IS_RABBITMQ:
            wait_for(waiting_in_the_brokers_delay_queues, timeout=IDLE_SECONDS - 1, what="the task in a delay queue")

        wait_for(
            lambda: Order.objects.get(pk=order.pk).status == OrderStatus.EXPIRED,
            timeout=IDLE_SECONDS + 15,
            what="the idle deadline's due task",
        )
        order.refresh_from_db()
        expired = order.events.get(action="expire")
        assert order.failure_code == FailureCode.PAYMENT_TIMEOUT
        assert (expired.actor_kind, expired.actor_id) == (ActorKind.TASK, "deadline")
        # Not before its time (the handler would accept the task it was scheduled for even early:
        # lifecycle.claims.lock_if_due), and not long after it.
        deadline = order.events.get(action="precheck_passed").at + timedelta(seconds=IDLE_SECONDS)
        assert deadline - timedelta(milliseconds=100) <= expired.at <= deadline + timedelta(seconds=5), (
            deadline,
            expired.at,
        )
    finally:
        stop_worker(worker)


def waiting_in_the_brokers_delay_queues() -> int:
    """Messages in kombu's delay queues (celery_delayed_0…27): not handed to a worker yet."""
    from ipvas.celery import app

    with app.connection_for_read() as connection:
        channel = connection.default_channel
        return sum(channel.queue_declare(f"celery_delayed_{level}", passive=True).message_count for level in range(28))


@pytest.mark.django_db(transaction=True)
def test_metrics_show_how_many_messages_wait_in_each_queue(demo):
    """ipvas_queue_depth, read from the broker itself (a Redis list's length, a RabbitMQ queue's count)."""
    from ipvas.celery import app
    from ipvas.metrics import QueueCollector

    def depths() -> dict[str, float]:
        (family,) = QueueCollector().collect()
        return {sample.labels["queue"]: sample.value for sample in family.samples}

    stop_session_worker()
    app.control.purge()
    # No worker runs: the pre-checks of three new orders wait in their queue.
    for account in ("tv1001", "tv1002", "tv1003"):
        order_create(channel="epg", product_code="VIP-MONTH", tv_account=account, actor=EPG)

    assert wait_for(lambda: depths().get("interactive") == 3, timeout=10, what="3 messages in interactive")
    assert set(depths()) == {"interactive", "default", "deadlines", "provisioning", "sms"}
    app.control.purge()


@pytest.mark.django_db(transaction=True)
def test_a_task_due_later_reaches_a_queue_no_worker_has_bound_yet(demo):
    """RabbitMQ: the route from the delay exchanges back to a queue is bound by a worker that consumes it.
    Before one has started (a fresh deployment, a queue whose own worker is not up yet) a delayed task would
    be confirmed and dropped as unroutable; the outbox binds every declared queue before its first delayed
    publish (ipvas.broker.prepare_rabbitmq_delays)."""
    if not settings.BROKER_IS_RABBITMQ:
        pytest.skip("RabbitMQ's delay exchanges: the integration tier's RabbitMQ pass runs this")
    from django.db import transaction
    from kombu.transport.native_delayed_delivery import declare_native_delayed_delivery_exchanges_and_queues

    from ipvas import broker, outbox
    from ipvas.celery import app
    from lifecycle import tasks

    with app.connection_for_write() as connection:
        declare_native_delayed_delivery_exchanges_and_queues(connection, "quorum")  # as some worker did
        channel = connection.default_channel
        # As if no worker consuming ``deadlines`` had ever started on this virtual host.
        channel.exchange_unbind(destination="ipvas", source="celery_delayed_delivery", routing_key="#.deadlines")
        channel.queue_unbind("deadlines", "ipvas", routing_key="#.deadlines")
    broker._delays_ready.clear()  # this process has not published a delayed task yet
    app.control.purge()

    with transaction.atomic():
        outbox.enqueue(tasks.sweep_deadlines, kwargs={}, due_at=timezone.now() + timedelta(seconds=2))

    def waiting_in_deadlines() -> int:
        with app.connection_for_read() as connection:
            return connection.default_channel.queue_declare("deadlines", passive=True).message_count

    assert wait_for(waiting_in_deadlines, timeout=15, what="the delayed task in its queue")
    app.control.purge()
