"""What happens to an order when its ``deadline_at`` comes: one table, status by status.

Every non-terminal order has ``deadline_at``. At each transition the order's
due task is scheduled for that time (lifecycle.transitions.schedule_due); if
the task is late or was lost, the beat sweep below finds the order. Either
runs the handler of the order's status, which re-reads the order under its
lock and acts only if it is still due (lifecycle.claims).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from celery import Task
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from ipvas import outbox
from ipvas.actors import Actor
from ipvas.models import OutboxMessage
from lifecycle import deductions, paying, payment_code, payment_due, precheck, provisioning, tasks
from lifecycle.claims import MAX_BACKOFF_SECONDS, claim, claim_many
from lifecycle.transitions import transit_many
from orders.constants import DEDUCTION_METHODS, Channel, FailureCode, OrderStatus, PaymentMethod
from orders.models import Order

logger = logging.getLogger(__name__)

# The sweep leaves orders this much overdue to their own due tasks.
SWEEP_GRACE = timedelta(seconds=2)


@dataclass(frozen=True)
class Step:
    handler: Callable[[int, datetime | None], str]  # (order id, the deadline it was scheduled for) -> what it did
    task: Task  # the due task that runs the handler at the deadline (its queue: settings.CELERY_TASK_ROUTES)
    inline: bool  # no outside call: the sweep may run it itself instead of queueing the task
    # The same for a renewal order, when ``task``'s queue is for what a person waits for (the pre-check).
    unattended: Task | None = None

    def task_for(self, channel: str) -> Task:
        return self.unattended if self.unattended is not None and channel == Channel.RENEWAL else self.task


def payment_pending_due(order_id: int, due_at: datetime | None) -> str:
    """payment_pending: a scanned payment code is charged, queried or reversed (lifecycle.payment_code); a
    renewal's deduction under the contract is sent, queried or closed (lifecycle.deductions); a QR or SMS
    window ends, or a cash sale's CRM activity runs (lifecycle.payment_due)."""
    method, channel = Order.objects.filter(pk=order_id).values_list("payment_method", "channel").first() or ("", "")
    if method == PaymentMethod.PAYMENT_CODE:
        return payment_code.payment_code_due(order_id, due_at)
    if channel == Channel.RENEWAL and method in DEDUCTION_METHODS:
        return deductions.deduction_due(order_id, due_at)
    return payment_due.payment_due(order_id, due_at)


STEPS: dict[str, Step] = {
    # The SMP's pre-check; retried until PRECHECK_DEADLINE_SECONDS, then rejected.
    OrderStatus.PRECHECKING: Step(
        precheck.precheck_due, tasks.precheck_order, inline=False, unattended=tasks.precheck_renewal
    ),
    # No payment method chosen in ORDER_IDLE_SECONDS: expired.
    OrderStatus.AWAITING_PAYMENT: Step(paying.idle_due, tasks.order_deadline, inline=True),
    # The QR or SMS window ended (close at the provider, expire); a cash sale's CRM activity; a payment
    # code's next step at its provider (charge, query every 5 s, reverse after PAYMENT_CODE_QUERY_SECONDS).
    OrderStatus.PAYMENT_PENDING: Step(payment_pending_due, tasks.order_deadline, inline=False),
    # Subscribe on the SMP, retried until PROVISIONING_DEADLINE_SECONDS; then the money goes back.
    OrderStatus.PROVISIONING: Step(provisioning.provisioning_due, tasks.provision_order, inline=False),
}


def deadlines_passed(messages: list[OutboxMessage]) -> set[int]:
    """Of these due tasks' messages waiting in the outbox, those whose order has ended, or has a later
    deadline since they were written (its own message, or a claim's lease the sweep watches): their task
    would find nothing due. ipvas.outbox's beat relay leaves them unpublished (lifecycle.apps)."""
    deadlines = dict(
        Order.objects.filter(pk__in={m.kwargs.get("order_id") for m in messages}).values_list("pk", "deadline_at")
    )
    unneeded = set()
    for message in messages:
        due_at = message.kwargs.get("due_at")
        if not due_at or message.kwargs.get("order_id") not in deadlines:
            continue  # not a deadline of ours to judge: published as written
        deadline = deadlines[message.kwargs["order_id"]]
        if deadline is None or deadline > datetime.fromisoformat(due_at):
            unneeded.add(message.pk)
    return unneeded


def due_task_names() -> set[str]:
    return {task.name for step in STEPS.values() for task in (step.task, step.unattended) if task is not None}


# Before its deadline an order moves on what arrives: a payment (lifecycle.paid), an SMS reply
# (lifecycle.confirmations), the customer's choice or cancel (lifecycle.paying), a refund (lifecycle.refunds).


def order_process_due(*, order_id: int, due_at: datetime | None = None) -> str:
    """Do what is due for this order now; returns what happened, in a word, for logs."""
    status = Order.objects.filter(pk=order_id).values_list("status", flat=True).first()
    step = STEPS.get(status or "")
    if step is None:
        return "nothing_due"
    return step.handler(order_id, due_at)


def deadlines_sweep(*, batch_size: int | None = None) -> int:
    """Move on every order whose due task is late or was lost; one bounded batch.

    Set-based (issue #17): the batch is locked in one statement (``SKIP LOCKED``: a second sweep
    at the same time takes other orders, a handler holding an order keeps it); orders that only
    expire are expired in one UPDATE with their events in one INSERT; orders whose next step
    calls an outside system are claimed in one UPDATE and handed to their due tasks in one
    INSERT into the outbox. What is left (an auto-renewing order's or a subscription's order,
    whose end has follow-ups) goes through its handler one by one, as the due task would.
    Returns how many overdue orders it moved on.
    """
    batch_size = batch_size or settings.DEADLINE_SWEEP_BATCH
    now = timezone.now()
    overdue: list[tuple[int, str, datetime, str]] = []
    try:
        with transaction.atomic():
            overdue = list(
                Order.objects.select_for_update(skip_locked=True, of=("self",))
                .filter(deadline_at__lte=now - SWEEP_GRACE, status__in=list(STEPS))
                .order_by("deadline_at")
                .values_list("pk", "status", "deadline_at", "channel")[:batch_size]
            )
            one_by_one = _move_in_sets(overdue, now)
    except Exception:
        # A statement of the set failed: the batch goes one order at a time, so that one
        # broken order neither stops the others nor stays at the head of every batch.
        logger.exception("sweep: the batch failed as a set; moving its orders one by one")
        one_by_one = overdue
    for order_id, status, deadline_at, _channel in one_by_one:
        try:
            if STEPS[status].inline:
                order_process_due(order_id=order_id, due_at=deadline_at)
            else:
                _requeue(order_id, status, deadline_at)
        except Exception:
            logger.exception("sweep: order %s (%s) failed", order_id, status)
            Order.objects.filter(pk=order_id, deadline_at=deadline_at).update(
                deadline_at=timezone.now() + timedelta(seconds=MAX_BACKOFF_SECONDS)
            )
    if overdue:
        logger.info("sweep: %d overdue order(s) moved on", len(overdue))
    return len(overdue)


def _move_in_sets(overdue: list[tuple[int, str, datetime, str]], now: datetime) -> list[tuple[int, str, datetime, str]]:
    """Expire the idle orders and hand the others to their due tasks, a statement each; returns the rest."""
    idle = [pk for pk, status, _, _ in overdue if status == OrderStatus.AWAITING_PAYMENT]
    expired = set(
        transit_many(
            idle,
            OrderStatus.AWAITING_PAYMENT,
            "expire",
            code=FailureCode.PAYMENT_TIMEOUT,
            actor=Actor.task("deadline"),
            reason=paying.IDLE_REASON % {"seconds": settings.ORDER_IDLE_SECONDS},
            now=now,
        )
    )
    by_step: dict[tuple[str, Task], list[int]] = {}
    for pk, status, _, channel in overdue:
        if not STEPS[status].inline:
            by_step.setdefault((status, STEPS[status].task_for(channel)), []).append(pk)
    for (status, task), order_ids in by_step.items():
        claimed = claim_many(order_ids, status)
        outbox.enqueue_many(task, kwargs_list=[{"order_id": pk, "due_at": claimed.isoformat()} for pk in order_ids])
    return [row for row in overdue if STEPS[row[1]].inline and row[0] not in expired]


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
        task = STEPS[status].task_for(order.channel)
        outbox.enqueue(task, kwargs={"order_id": order.pk, "due_at": claimed.isoformat()})
