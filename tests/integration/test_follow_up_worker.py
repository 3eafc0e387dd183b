"""A follow-up through the real Celery worker: its outbox message awaits the task's success, which the worker
marks under the message's task id; one the broker lost is enqueued again by the stalled sweep and done."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from ipvas.actors import Actor, ActorKind
from ipvas.models import OutboxMessage
from lifecycle.manual import refund_by_admin
from lifecycle.paying import payment_choose
from lifecycle.placing import order_create
from lifecycle.stalled import stalled_sweep
from orders.constants import OrderStatus
from orders.models import Order
from sandbox.models import SimSmpSubscription
from tests.integration.conftest import wait_for

EPG = Actor(ActorKind.EPG_CLIENT, "integration")
ADMIN = Actor(ActorKind.ADMIN, "ops")
REVERSAL = "lifecycle.tasks.reverse_phone_bill"


def completed_by_phone_bill(tv_account: str) -> Order:
    order = order_create(channel="epg", product_code="VIP-MONTH", tv_account=tv_account, actor=EPG)
    wait_for(lambda: Order.objects.get(pk=order.pk).status == OrderStatus.AWAITING_PAYMENT, what="pre-check")
    payment_choose(order_id=order.pk, method="phone_bill", actor=EPG)
    wait_for(lambda: Order.objects.get(pk=order.pk).status == OrderStatus.COMPLETED, timeout=30, what="completed")
    return Order.objects.get(pk=order.pk)


def reversed_at_the_smp(order: Order) -> bool:
    return SimSmpSubscription.objects.get(order_no=order.order_no).reversed_fen == order.amount_fen


@pytest.mark.django_db(transaction=True)
def test_a_reversal_is_marked_finished_by_the_worker_and_a_lost_one_is_done_again(
    demo, celery_worker_process, settings
):
    order = completed_by_phone_bill("tv1001")
    refund_by_admin(order_id=order.pk, reason="the customer asked", actor=ADMIN)
    wait_for(lambda: reversed_at_the_smp(order), timeout=30, what="the SMP's reversal")
    wait_for(
        lambda: not OutboxMessage.objects.filter(task_name=REVERSAL, awaits_finish=True).exists(),
        what="the reversal's message marked finished by the worker",
    )

    # The same for another sale, whose reversal the broker took and lost.
    other = completed_by_phone_bill("tv1001")
    settings.OUTBOX_RELAY_ON_COMMIT = False
    refund_by_admin(order_id=other.pk, reason="the customer asked", actor=ADMIN)
    settings.OUTBOX_RELAY_ON_COMMIT = True
    lost_at = timezone.now() - timedelta(seconds=settings.OUTBOX_UNFINISHED_SECONDS + 1)
    assert OutboxMessage.objects.filter(task_name=REVERSAL, relayed_at__isnull=True).update(relayed_at=lost_at) == 1
    assert not reversed_at_the_smp(other)

    assert stalled_sweep() == 1
    wait_for(lambda: reversed_at_the_smp(other), timeout=30, what="the lost reversal done again")
    wait_for(lambda: Order.objects.get(pk=other.pk).status == OrderStatus.REFUNDED, what="the order refunded")
    wait_for(
        lambda: not OutboxMessage.objects.filter(task_name=REVERSAL, awaits_finish=True).exists(),
        what="the new message marked finished",
    )
