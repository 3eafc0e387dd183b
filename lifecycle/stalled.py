"""Follow-ups whose own retry chain was lost, found by a beat sweep and started again.

A refund and a subscriber's SMS are driven by their own task: each run that cannot finish enqueues the next
(through the outbox, after its commit). The outbox publishes every message at least once, but a broker can
still lose one it accepted (Redis restarted without persistence, a failover), and a task can die for good
(out of its database retries during an outage). An order's due work is found again by the deadline sweep;
these are found here: a refund under way, or a notice neither sent nor given up, that nothing has touched
for longer than its longest wait between two runs. Each is touched and enqueued again under its row lock,
so that two sweeps (or a late link of the old chain) do not start two chains; the provider refunds an
``out_refund_no`` once and the SMS gateway sends a reference once, so a chain that was only slow does no
harm when it goes on beside the new one.

The follow-ups that have no row of their own (a reversal, a close, an unsubscribe, a contract's end: the
tasks of ``FOLLOW_UPS``) are found by their outbox message, which awaits its task's success
(``outbox.must_finish``); the same sweep publishes again those that never finished.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from billing.models import Refund, RefundStatus, WorkItemKind
from billing.services.refunds import ACTIVE
from billing.services.work import work_item_open
from ipvas import outbox
from lifecycle import notices, refunds, tasks
from orders.models import Order, SubscriptionNotice

logger = logging.getLogger(__name__)

# Longer than any wait between two runs of a live chain (its backoff's cap: 5 minutes between tries while a
# refund is not answered, an hour between questions while the provider processes it), and two minutes more.
REFUND_REQUESTED_LOST = timedelta(seconds=refunds.REFUND_BACKOFF_CAP_SECONDS + 120)
REFUND_PROCESSING_LOST = timedelta(seconds=refunds.PROCESSING_CHECK_CAP_SECONDS + 120)
NOTICE_LOST = timedelta(seconds=max(notices.SEND_BACKOFF_SECONDS) + 300)
BATCH = 200
# A follow-up enqueued again this many times (about an hour and a quarter after its first try) has a person told.
FOLLOW_UP_TELL_A_PERSON = 3
# Tasks whose message is their work's only record: nothing else would find a lost one again.
FOLLOW_UPS = (
    tasks.close_provider_order,
    tasks.reverse_payment_code,
    tasks.reverse_phone_bill,
    tasks.reverse_crm_activity,
    tasks.reschedule_on_smp,
    tasks.revoke_on_smp,
    tasks.unsign_contract,
    tasks.end_subscription_on_smp,
    tasks.announce_deduction,
)


def stalled_sweep(*, batch_size: int = BATCH) -> int:
    """Start again the refunds, notices and follow-ups whose chain was lost; one bounded batch of each.
    Returns how many."""
    return _refunds(batch_size) + _notices(batch_size) + _follow_ups(batch_size)


def _follow_ups(batch_size: int) -> int:
    """The follow-ups whose task never succeeded, enqueued again; a person is told of one enqueued again
    ``FOLLOW_UP_TELL_A_PERSON`` times or more (and again each time after, as its waits grow to a day), on its
    order's work item: what the task fails on needs mending."""
    copies = outbox.republish_unfinished(batch_size=batch_size)
    for copy in copies:
        if copy.again < FOLLOW_UP_TELL_A_PERSON:
            continue
        order = _order_of(copy.kwargs)
        if order is None:
            logger.error("follow-up %s %s keeps failing, and names no order", copy.task_name, copy.kwargs)
            continue
        work_item_open(
            order=order,
            kind=WorkItemKind.FOLLOW_UP_FAILING,
            detail=f"{copy.task_name.rsplit('.', 1)[-1]} has not succeeded after {copy.again} tries: see the "
            "worker's log for why",
        )
    return len(copies)


def _order_of(kwargs: dict[str, object]) -> Order | None:
    """The order a follow-up's arguments are about (an order, a payment, a subscription or a contract)."""
    orders = Order.objects.all()
    if "order_id" in kwargs:
        return orders.filter(pk=kwargs["order_id"]).first()
    if "payment_id" in kwargs:
        return orders.filter(payments__pk=kwargs["payment_id"]).first()
    if "contract_id" in kwargs:
        return orders.filter(contracts__pk=kwargs["contract_id"]).first()
    if "subscription_id" in kwargs:
        return orders.filter(subscription_id=kwargs["subscription_id"]).order_by("-pk").first()
    return None


def refund_stalled(refund: Refund, now: datetime) -> bool:
    lost = REFUND_PROCESSING_LOST if refund.status == RefundStatus.PROCESSING else REFUND_REQUESTED_LOST
    return refund.status in ACTIVE and refund.updated_at < now - lost


def _refunds(batch_size: int) -> int:
    now = timezone.now()
    candidates = Refund.objects.filter(
        status__in=list(ACTIVE), updated_at__lt=now - min(REFUND_REQUESTED_LOST, REFUND_PROCESSING_LOST)
    ).order_by("updated_at")
    started = 0
    for refund_id in candidates.values_list("pk", flat=True)[:batch_size]:
        with transaction.atomic():
            refund = Refund.objects.select_for_update(skip_locked=True).filter(pk=refund_id).first()
            if refund is None or not refund_stalled(refund, now):
                continue  # its chain has it now, or it ended
            refund.save(update_fields=["updated_at"])
            outbox.enqueue(tasks.process_refund, kwargs={"refund_id": refund.pk})
            started += 1
        logger.warning("refund %s: its retry chain was lost; asked again", refund.out_refund_no)
    return started


def _notices(batch_size: int) -> int:
    now = timezone.now()
    candidates = SubscriptionNotice.objects.filter(
        sent_at__isnull=True, gave_up_at__isnull=True, tried_at__lt=now - NOTICE_LOST
    ).order_by("tried_at")
    started = 0
    for notice_id in candidates.values_list("pk", flat=True)[:batch_size]:
        with transaction.atomic():
            notice = SubscriptionNotice.objects.select_for_update(skip_locked=True).filter(pk=notice_id).first()
            if notice is None or notice.sent_at or notice.gave_up_at or notice.tried_at >= now - NOTICE_LOST:
                continue
            notice.tried_at = now
            notice.save(update_fields=["tried_at"])
            outbox.enqueue(tasks.send_notice, kwargs={"notice_id": notice.pk, "attempt": notice.attempts})
            started += 1
        logger.warning("notice %s (%s): its send chain was lost; sent again", notice.pk, notice.kind)
    return started
