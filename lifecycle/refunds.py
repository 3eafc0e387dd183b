"""… → refunded: money goes back through the provider that took it, tracked to the provider's final answer.

A refund is requested inside the transaction that decides it (the order is
locked) and carried out by ``tasks.process_refund`` after commit; when the
money is back and nothing of the order stays paid, the order ends ``refunded``.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from adapters.providers import get_provider
from adapters.providers.types import ProviderRefused, ProviderUnavailable, RefundRequest, RefundResult, RefundState
from billing.models import Payment, Refund, RefundStatus, WorkItem, WorkItemKind
from billing.services.ledger import order_totals
from billing.services.refunds import ACTIVE, refund_create, refund_record_result
from billing.services.work import work_item_open
from ipvas import outbox
from ipvas.actors import Actor
from lifecycle import renewals, tasks
from lifecycle.transitions import lock_order, transit
from orders.constants import FailureCode, OrderStatus
from orders.models import Order
from orders.services import entitlement_revoke

logger = logging.getLogger(__name__)

MAX_REFUND_ATTEMPTS = 12  # tries without an answer before a person is told (the refund is still asked after)
REFUND_BACKOFF_CAP_SECONDS = 300
PROCESSING_CHECK_SECONDS = 30
# A refund the provider is still processing (a bank card's refund takes days) is asked about less and less often,
# at most every hour; after this long a person is told, and it is still asked.
PROCESSING_CHECK_CAP_SECONDS = 3600
PROCESSING_TELL_A_PERSON = timedelta(days=3)
# Orders whose money may go back; from the others the refund never changes the status.
REFUNDABLE_ORDER_STATUSES = {
    OrderStatus.PROVISIONING,
    OrderStatus.EXPIRED,
    OrderStatus.CANCELLED,
    OrderStatus.COMPLETED,
}


def refund_request(
    *, order: Order, payment: Payment, reason: str, actor: Actor, amount_fen: int | None = None
) -> Refund:
    """Ask for ``payment`` (or part of it) to be given back; call with the order locked.

    A refund already under way for the payment is returned instead of a second one.
    """
    refund, new = refund_create(order=order, payment=payment, reason=reason, actor=actor, amount_fen=amount_fen)
    if new:
        outbox.enqueue(tasks.process_refund, kwargs={"refund_id": refund.pk})
    return refund


def refund_process(*, refund_id: int) -> str:
    """Ask the provider (or ask it again how it went). Safe to run twice at once: the
    provider refunds an ``out_refund_no`` once, and the answer is recorded once."""
    with transaction.atomic():
        refund = Refund.objects.select_for_update().filter(pk=refund_id).select_related("payment").first()
        if refund is None or refund.status not in ACTIVE:
            return "done"
        refund.attempts += 1
        refund.save(update_fields=["attempts", "updated_at"])
    payment = refund.payment
    provider = get_provider(refund.provider)
    try:
        if refund.status == RefundStatus.PROCESSING:
            result = provider.query_refund(refund.out_refund_no, out_trade_no=payment.out_trade_no)
        else:
            result = provider.refund(
                RefundRequest(
                    out_trade_no=payment.out_trade_no,
                    out_refund_no=refund.out_refund_no,
                    amount_fen=refund.amount_fen,
                    total_fen=payment.amount_fen,
                    reason=refund.reason,
                )
            )
    except ProviderUnavailable as exc:
        return _retry(refund_id, str(exc))
    except ProviderRefused as exc:
        logger.error("refund %s refused by %s: %s", refund.out_refund_no, refund.provider, exc)
        return refund_settled(
            refund_id=refund_id,
            result=RefundResult(RefundState.FAILED, refund.out_refund_no, message=str(exc)),
        )
    return refund_settled(refund_id=refund_id, result=result)


def _retry(refund_id: int, error: str) -> str:
    with transaction.atomic():
        lock_order(Refund.objects.values_list("order_id", flat=True).get(pk=refund_id))
        refund = Refund.objects.select_for_update().get(pk=refund_id)
        if refund.status not in ACTIVE:
            return "done"
        refund.last_error = error[:255]
        if refund.attempts == MAX_REFUND_ATTEMPTS:
            # No answer is not a refusal: each call may have reached the provider and given the money back.
            # Marked failed, the refund would let another be started on top of it (an admin's, a retry of
            # the provisioning); it stays under way, asked again at the longest backoff (the provider refunds
            # an out_refund_no once), and a person is told.
            work_item_open(
                order=refund.order,
                kind=WorkItemKind.REFUND_FAILED,
                detail=f"{refund.out_refund_no}: no answer from {refund.provider} after {refund.attempts} tries; "
                f"asked again every {REFUND_BACKOFF_CAP_SECONDS // 60} minutes until it answers",
            )
            logger.error("refund %s: no answer after %d attempts: %s", refund.out_refund_no, refund.attempts, error)
        refund.save(update_fields=["last_error", "updated_at"])
        delay = min(2**refund.attempts, REFUND_BACKOFF_CAP_SECONDS)
        outbox.enqueue(
            tasks.process_refund,
            kwargs={"refund_id": refund.pk},
            due_at=timezone.now() + timedelta(seconds=delay),
        )
    return "retry"


def _processing_wait(refund: Refund) -> timedelta:
    """How long after its last question a refund the provider is processing is asked again."""
    seconds = PROCESSING_CHECK_SECONDS * 2 ** max(refund.attempts - 1, 0)
    return timedelta(seconds=min(seconds, PROCESSING_CHECK_CAP_SECONDS))


def refund_settled(*, refund_id: int, result: RefundResult, ask_again: bool = True) -> str:
    """Record the provider's answer (from our call, a query, or a refund notification). A refund the provider
    is processing is asked about again later (``ask_again``): not when a notification says so, since the
    refund's own chain of questions (refund_process, _retry) is under way already."""
    with transaction.atomic():
        order_id = Refund.objects.values_list("order_id", flat=True).get(pk=refund_id)
        order = lock_order(order_id)
        refund = Refund.objects.select_for_update().select_related("payment").get(pk=refund_id)
        outcome = refund_record_result(refund, result)
        if outcome == "processing" and ask_again:
            outbox.enqueue(
                tasks.process_refund, kwargs={"refund_id": refund.pk}, due_at=timezone.now() + _processing_wait(refund)
            )
            told = WorkItem.objects.filter(
                order=order, kind=WorkItemKind.REFUND_FAILED, detail__contains=f"{refund.out_refund_no}: still"
            )
            if timezone.now() - refund.created_at >= PROCESSING_TELL_A_PERSON and not told.exists():
                # Once: an item a person resolved is not opened again at the next question.
                work_item_open(
                    order=order,
                    kind=WorkItemKind.REFUND_FAILED,
                    detail=f"{refund.out_refund_no}: still processing at {refund.provider} after "
                    f"{PROCESSING_TELL_A_PERSON.days} days; asked again every hour",
                )
        elif outcome == "failed":
            work_item_open(
                order=order, kind=WorkItemKind.REFUND_FAILED, detail=f"{refund.out_refund_no}: {refund.last_error}"
            )
        elif outcome == "succeeded":
            order_money_returned(order, actor=Actor.task("refund"), reason=refund.reason)
        return outcome


def order_money_returned(order: Order, *, actor: Actor, reason: str, smp_cancelled: bool = False) -> bool:
    """After money went back (order locked): an order with nothing left paid ends ``refunded``.

    A completed order loses its entitlement when its money is back (not when the refund is asked
    for), here and on the SMP: its period comes off the end of the account's stack, so the later
    periods move earlier, there too. ``smp_cancelled``: the money came back through the SMP's own
    reversal, which ended the order's subscription there already. An order refunded by an admin
    after completion carries no failure code: it did not fail.
    """
    if order.status not in REFUNDABLE_ORDER_STATUSES or order_totals(order)["net_fen"] > 0:
        return False
    code = order.failure_code
    if order.status == OrderStatus.COMPLETED:
        moved = entitlement_revoke(order=order)
        if not smp_cancelled:
            outbox.enqueue(tasks.revoke_on_smp, kwargs={"order_id": order.pk})
        for entitlement in moved:
            outbox.enqueue(tasks.reschedule_on_smp, kwargs={"order_id": entitlement.order_id})
        renewals.periods_moved(order, moved, actor=actor, now=timezone.now())
    elif not code:
        code = FailureCode.PROVISIONING_FAILED
    transit(order, order.refunded, code=code, actor=actor, reason=reason)
    return True
