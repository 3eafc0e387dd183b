"""The one way an order changes: lock it, call a transition, save, write the event, schedule what is next."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone
from django_fsm import TransitionNotAllowed

from ipvas import logs, outbox
from ipvas.actors import Actor
from ipvas.errors import InvalidState
from orders.constants import OrderStatus
from orders.models import Order, OrderEvent

# The task that acts when an order in this status falls due (orders.tasks).
DUE_TASKS: dict[str, str] = {
    OrderStatus.PRECHECKING: "orders.tasks.precheck_order",
    OrderStatus.AWAITING_PAYMENT: "orders.tasks.order_deadline",
    OrderStatus.PAYMENT_PENDING: "orders.tasks.order_deadline",
    OrderStatus.PROVISIONING: "orders.tasks.provision_order",
}


def lock_order(order_id: int) -> Order:
    """Re-read an order under a row lock; call inside ``transaction.atomic``.

    Always lock an order before anything else that belongs to it (payments,
    confirmations), so that two paths never wait for each other crosswise.
    """
    order = Order.objects.select_for_update(of=("self",)).select_related("product").get(pk=order_id)
    logs.bind(order_no=order.order_no)
    return order


def lock_order_no(order_no: str) -> Order:
    return Order.objects.select_for_update(of=("self",)).select_related("product").get(order_no=order_no)


def record_event(
    order: Order,
    action: str,
    *,
    actor: Actor,
    from_status: str,
    reason: str = "",
    data: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> OrderEvent:
    return OrderEvent.objects.create(
        order=order,
        at=now or timezone.now(),
        from_status=from_status,
        to_status=order.status,
        action=action,
        actor_kind=actor.kind,
        actor_id=actor.id[:150],
        reason=reason[:255],
        data=data or {},
    )


def schedule_due(order: Order) -> None:
    """Ask for the order's due task at ``deadline_at`` (it does nothing if the order moved on)."""
    if order.deadline_at is None or order.status not in DUE_TASKS:
        return
    outbox.enqueue(
        DUE_TASKS[order.status],
        kwargs={"order_id": order.pk, "due_at": order.deadline_at.isoformat()},
        due_at=order.deadline_at,
    )


def transit(
    order: Order,
    transition: str,
    *,
    actor: Actor,
    reason: str = "",
    data: dict[str, Any] | None = None,
    now: datetime | None = None,
    **kwargs: Any,
) -> OrderEvent:
    """Apply the transition method named ``transition`` to a locked order.

    Raises ``InvalidState`` (and changes nothing) when the lifecycle does not
    allow it from the order's status.
    """
    assert transaction.get_connection().in_atomic_block, "transit() needs a transaction and a locked order"
    now = now or timezone.now()
    source = order.status
    try:
        getattr(order, transition)(now=now, **kwargs)
    except TransitionNotAllowed as exc:
        raise InvalidState(
            f"An order that is {source} cannot {transition.replace('_', ' ')}.",
            extra={"status": source},
        ) from exc
    order.save()
    event = record_event(order, transition, actor=actor, from_status=source, reason=reason, data=data, now=now)
    schedule_due(order)
    return event
