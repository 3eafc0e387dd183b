"""An order's deadline message that waited in the outbox is not published once the order has ended.

When the pre-check passes, the order's idle deadline (ORDER_IDLE_SECONDS ahead) waits in the outbox
(ipvas.outbox keeps messages due beyond its horizon). Most orders are paid and completed long before:
the beat relay then marks that message relayed without publishing it, since its task would find
nothing due (issue #17: a publish and a task per order for nothing). An order still waiting gets its
deadline as before, and its task expires it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from celery.signals import after_task_publish
from django.utils import timezone

from ipvas import outbox
from ipvas.models import OutboxMessage
from lifecycle.due import due_task_names
from lifecycle.tasks import order_deadline
from orders.models import Order
from tests.epg_api.support import Api, api, settle

__all__ = ["api"]

pytestmark = pytest.mark.django_db


@pytest.fixture
def published() -> Iterator[list[tuple[str, dict]]]:
    sent: list[tuple[str, dict]] = []

    def record(sender: str | None = None, body=None, **_: object) -> None:
        sent.append((sender, body[1]))

    after_task_publish.connect(record, weak=False)
    yield sent
    after_task_publish.disconnect(record)


def idle_deadline(order_no: str) -> OutboxMessage:
    """The first deadline message of the order: the idle one its pre-check wrote."""
    order_id = Order.objects.get(order_no=order_no).pk
    return OutboxMessage.objects.filter(task_name=order_deadline.name, kwargs__order_id=order_id).earliest("pk")


def test_the_idle_deadline_of_a_completed_order_is_not_published_and_a_waiting_ones_is(
    api: Api, published, time_machine
):
    completed = api.place()["order_no"]
    waiting = api.place()["order_no"]
    api.pay_with(completed, "phone_bill")
    settle()
    assert api.order(completed)["status"] == "completed"
    assert idle_deadline(completed).relayed_at is None  # still waiting in the outbox, due in 15 minutes

    time_machine.move_to(idle_deadline(waiting).due_at + timedelta(seconds=1), tick=False)
    published.clear()
    assert outbox.relay_pending() == 1

    assert published == [(order_deadline.name, idle_deadline(waiting).kwargs)]
    assert idle_deadline(completed).relayed_at == timezone.now()  # done with, not published
    assert idle_deadline(waiting).relayed_at == timezone.now()
    assert outbox.relay_pending() == 0
    # The waiting order's task does what its deadline says.
    assert order_deadline.apply(kwargs=idle_deadline(waiting).kwargs).get() == "expired"


def test_a_deadline_message_is_kept_while_it_is_the_orders_deadline_or_an_earlier_one_is(api: Api, time_machine):
    """The check marks only what a later deadline or the order's end replaced; an order whose deadline came
    earlier than the message (a QR window shorter than the idle time) still gets it: its task acts."""
    from lifecycle.due import deadlines_passed

    qr = api.place()["order_no"]
    api.pay_with(qr, "wechat_qr")  # payment_pending until the QR window ends, before the idle deadline
    idle = idle_deadline(qr)
    assert Order.objects.get(order_no=qr).deadline_at < idle.due_at
    assert deadlines_passed([idle]) == set()

    Order.objects.filter(order_no=qr).update(deadline_at=idle.due_at + timedelta(seconds=5))
    assert deadlines_passed([idle]) == {idle.pk}
    Order.objects.filter(order_no=qr).update(deadline_at=idle.due_at)
    assert deadlines_passed([idle]) == set()


def test_every_due_task_is_checked_and_no_other():
    from lifecycle import tasks

    assert due_task_names() == {
        tasks.precheck_order.name,
        tasks.precheck_renewal.name,
        tasks.order_deadline.name,
        tasks.provision_order.name,
    }
    assert set(outbox._unneeded_checks) == due_task_names()
