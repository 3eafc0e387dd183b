"""Acting on orders whose next action is due: deadlines, and retries of outside calls.

Every non-terminal order has ``deadline_at``. When it passes, the order's due
task (scheduled through the outbox at each transition) or, if that task was
lost, the beat sweep calls ``order_process_due``. Handlers re-read the order
under its lock and act only if it is still due, so any number of them may
run at once: one acts, the others see it moved on.

A handler that must call an outside system first *claims* the order by
pushing ``deadline_at`` a lease ahead (so the sweep leaves it alone), makes
the call with no transaction open, then applies the answer only if its claim
still stands.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from adapters.smp import PrecheckRequest, PrecheckResult, SmpUnavailable, get_smp
from ipvas import outbox
from ipvas.actors import Actor
from ipvas.metrics import RETRIES
from orders.constants import PRECHECK_FAILURES, FailureCode, OrderStatus
from orders.models import Order
from orders.services.transitions import DUE_TASKS, lock_order, record_event, schedule_due, transit

logger = logging.getLogger(__name__)


def claim_lease() -> timedelta:
    """How long a claimed order is left alone while its handler talks to an outside system."""
    return timedelta(seconds=settings.ORDER_CLAIM_LEASE_SECONDS)


# The sweep leaves orders this much overdue to their own due tasks.
SWEEP_GRACE = timedelta(seconds=2)
MAX_BACKOFF_SECONDS = 30

Handler = Callable[[int, "datetime | None"], str]
_HANDLERS: dict[str, Handler] = {}
# Statuses whose handler acts without an outside call: the sweep runs them inline.
_LOCAL_STATUSES: set[str] = set()


def due_handler(status: str, *, local: bool) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        _HANDLERS[status] = handler
        if local:
            _LOCAL_STATUSES.add(status)
        return handler

    return register


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


def lock_claimed(order_id: int, claimed: datetime, status: str) -> Order | None:
    order = lock_order(order_id)
    if order.status != status or order.deadline_at != claimed:
        return None  # someone else acted meanwhile: their answer stands
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


def order_process_due(*, order_id: int, due_at: datetime | None = None) -> str:
    """Do what is due for this order now; returns what happened, in a word, for logs."""
    status = Order.objects.filter(pk=order_id).values_list("status", flat=True).first()
    handler = _HANDLERS.get(status or "")
    if handler is None:
        return "nothing_due"
    return handler(order_id, due_at)


def deadlines_sweep(*, batch_size: int | None = None) -> int:
    """Move on every order whose due task is late or was lost; one bounded batch.

    Safe to run twice at once: each order is handled under its own lock.
    Returns how many overdue orders it found.
    """
    batch_size = batch_size or settings.DEADLINE_SWEEP_BATCH
    cutoff = timezone.now() - SWEEP_GRACE
    overdue = list(
        Order.objects.filter(deadline_at__lte=cutoff, status__in=list(_HANDLERS))
        .order_by("deadline_at")
        .values_list("pk", "status", "deadline_at")[:batch_size]
    )
    for order_id, status, deadline_at in overdue:
        try:
            if status in _LOCAL_STATUSES:
                order_process_due(order_id=order_id, due_at=deadline_at)
            else:
                _requeue(order_id, status, deadline_at)
        except Exception:
            # One broken order must not stop the sweep of the others, nor stay at the
            # head of every batch: it is looked at again after a while, and logged.
            logger.exception("sweep: order %s (%s) failed", order_id, status)
            Order.objects.filter(pk=order_id, deadline_at=deadline_at).update(
                deadline_at=timezone.now() + timedelta(seconds=MAX_BACKOFF_SECONDS)
            )
    return len(overdue)


def _requeue(order_id: int, status: str, deadline_at: datetime) -> None:
    """Hand an overdue order that needs an outside call to its due task, once per lease."""
    with transaction.atomic():
        order = (
            Order.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(pk=order_id, status=status, deadline_at=deadline_at)
            .first()
        )
        if order is None:
            return  # moved on, or being handled right now
        claimed = claim(order)
        outbox.enqueue(DUE_TASKS[status], kwargs={"order_id": order.pk, "due_at": claimed.isoformat()})


# --- prechecking --------------------------------------------------------------------


def precheck_cutoff(order: Order) -> datetime:
    return order.created_at + timedelta(seconds=settings.PRECHECK_DEADLINE_SECONDS)


@due_handler(OrderStatus.PRECHECKING, local=False)
def _precheck(order_id: int, due_at: datetime | None) -> str:
    actor = Actor.task("precheck")
    with transaction.atomic():
        order = lock_if_due(order_id, due_at, OrderStatus.PRECHECKING)
        if order is None:
            return "not_due"
        if timezone.now() >= precheck_cutoff(order):
            transit(
                order,
                "reject",
                code=FailureCode.SMP_UNAVAILABLE,
                actor=actor,
                reason="the SMP did not answer before the pre-check deadline",
            )
            return "rejected"
        claimed = claim(order)
        request = PrecheckRequest(
            product_code=order.product.smp_product_code,
            kind=order.product.kind,
            tv_account=order.tv_account,
            phone=order.phone,
            content_id=order.content_id,
        )
    try:
        result: PrecheckResult | None = get_smp().precheck(request)
        error = ""
    except SmpUnavailable as exc:
        result, error = None, str(exc)
    with transaction.atomic():
        order = lock_claimed(order_id, claimed, OrderStatus.PRECHECKING)
        if order is None:
            return "superseded"
        if result is None:
            retry_later(order, actor=actor, why=error, cutoff=precheck_cutoff(order))
            return "retry"
        if result.ok:
            now = timezone.now()
            transit(
                order,
                "precheck_passed",
                tv_account=result.tv_account or order.tv_account,
                phone=result.phone,
                deadline_at=now + timedelta(seconds=settings.ORDER_IDLE_SECONDS),
                now=now,
                actor=actor,
                reason="the SMP's pre-check passed",
            )
            return "passed"
        code = result.reason if result.reason in PRECHECK_FAILURES else FailureCode.PRODUCT_NOT_AVAILABLE
        transit(order, "reject", code=code, detail=result.message or result.reason, actor=actor, reason=result.reason)
        return "rejected"


# --- awaiting_payment ---------------------------------------------------------------


@due_handler(OrderStatus.AWAITING_PAYMENT, local=True)
def _idle(order_id: int, due_at: datetime | None) -> str:
    with transaction.atomic():
        order = lock_if_due(order_id, due_at, OrderStatus.AWAITING_PAYMENT)
        if order is None:
            return "not_due"
        transit(
            order,
            "expire",
            code=FailureCode.PAYMENT_TIMEOUT,
            actor=Actor.task("deadline"),
            reason=f"no payment method chosen in {settings.ORDER_IDLE_SECONDS} s",
        )
        return "expired"
