"""Claiming an order while its handler talks to an outside system, and looking again later.

Every non-terminal order has ``deadline_at``. When it passes, the order's due
task (scheduled through the outbox at each transition) or, if that task was
lost, the beat sweep runs the handler of its status (lifecycle.due). Handlers
re-read the order under its lock and act only if it is still due, so any
number of them may run at once: one acts, the others see it moved on.

A handler that must call an outside system first *claims* the order by
pushing ``deadline_at`` a lease ahead (so the sweep leaves it alone), makes
the call with no transaction open, then applies the answer only if its claim
still stands.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from ipvas.actors import Actor
from ipvas.metrics import RETRIES
from lifecycle.transitions import lock_order, record_event, schedule_due
from orders.models import Order, Product

MAX_BACKOFF_SECONDS = 30


def claim_lease() -> timedelta:
    """How long a claimed order is left alone while its handler talks to an outside system."""
    return timedelta(seconds=settings.ORDER_CLAIM_LEASE_SECONDS)


def backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(2**attempts, MAX_BACKOFF_SECONDS))


def lock_if_due(order_id: int, due_at: datetime | None, status: str) -> Order | None:
    """Lock the order; return it if it is still in ``status`` and due (inside a transaction)."""
    order = lock_order(order_id)
    if order.status != status or order.deadline_at is None:
        return None
    if order.deadline_at <= timezone.now() or order.deadline_at == due_at:
        return order
    return None


def claim(order: Order) -> datetime:
    order.deadline_at = timezone.now() + claim_lease()
    order.save(update_fields=["deadline_at", "updated_at"])
    return order.deadline_at


def claim_many(order_ids: list[int], status: str) -> datetime:
    """``claim`` for a batch of locked orders in ``status``: one UPDATE; returns the lease's end."""
    claimed = timezone.now() + claim_lease()
    Order.objects.filter(pk__in=order_ids, status=status).update(deadline_at=claimed, updated_at=timezone.now())
    return claimed


def lock_claimed(order_id: int, claimed: datetime, status: str, *, product: Product | None = None) -> Order | None:
    """The order locked again after the outside call, if the claim still stands (None: someone else acted).

    ``product``: the order's product as read at the claim, not read again (an order's product does not
    change, and the step goes on with what it sent; the join costs ~0.3 ms of CPU per task, issue #17).
    """
    order = lock_order(order_id, product=product is None)
    if order.status != status or order.deadline_at != claimed:
        return None  # someone else acted meanwhile: their answer stands
    if product is not None:
        order.product = product
    return order


def retry_later(order: Order, *, actor: Actor, why: str, cutoff: datetime | None = None) -> None:
    """The outside call failed: look again after a backoff (never after ``cutoff``)."""
    at = timezone.now() + backoff(order.attempts)
    if cutoff is not None:
        at = min(at, cutoff)
    order.retry_later(deadline_at=at)
    order.save(update_fields=["deadline_at", "attempts", "updated_at"])
    RETRIES.labels(what=order.status).inc()
    record_event(order, "retry", actor=actor, from_status=order.status, reason=why, data={"attempt": order.attempts})
    schedule_due(order)


def look_again(order: Order, *, after: timedelta) -> None:
    """Nothing to do now (a refund is under way, a person must decide): look at the order again later."""
    order.retry_later(deadline_at=timezone.now() + after)
    order.save(update_fields=["deadline_at", "attempts", "updated_at"])
    schedule_due(order)
