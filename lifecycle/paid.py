"""payment_pending → provisioning: a provider says a trade is paid (its notification, or our query).

Money that arrives for an order that was paid already, or has ended, goes back.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime

from django.db import transaction

from adapters.providers.types import NotificationRejected, PaidNotice, RefundResult
from billing.models import Payment, PaymentStatus, Refund
from billing.services.notifications import notification_store
from billing.services.payments import (
    OPEN_STATUSES,
    lock_payments,
    payment_paid_before_its_reverse,
    payment_record_paid,
)
from ipvas.actors import Actor, ActorKind
from lifecycle import deductions, paying, refunds
from lifecycle.transitions import lock_order_of_trade, transit
from orders import selectors
from orders.constants import Channel, FailureCode, OrderStatus
from orders.models import Order

logger = logging.getLogger(__name__)

# A WeChat Pay payment notification of a deduction that did not go through (扣款结果通知: APIv2 PAY_FAIL, or
# result_code FAIL with no trade_state at all, as for CONTRACT_NOT_EXIST).
DEDUCTION_FAILED_STATES = {"PAYERROR", "PAY_FAIL", "CLOSED", "REVOKED"}


def payment_succeeded(
    *,
    provider: str,
    out_trade_no: str,
    transaction_id: str,
    amount_fen: int,
    paid_at: datetime | None,
    actor: Actor,
) -> str:
    """A provider says this trade is paid (notification or query). Safe to call any number of times.

    The order is provisioned if it was waiting for this money; money that
    arrives for an order that was paid already or has ended goes back.
    """
    with transaction.atomic():
        order, payments, payment = _lock_trade(provider, out_trade_no, product=True)
        return _paid(
            order,
            payment,
            payments.values(),
            transaction_id=transaction_id,
            amount_fen=amount_fen,
            paid_at=paid_at,
            actor=actor,
        )


def _lock_trade(provider: str, out_trade_no: str, *, product: bool) -> tuple[Order, dict[int, Payment], Payment]:
    """The order our payment of this trade belongs to and all its payments, locked (order first), and that
    payment: two statements."""
    try:
        order = lock_order_of_trade(provider, out_trade_no, product=product)
    except Order.DoesNotExist:
        raise NotificationRejected(f"unknown out_trade_no {out_trade_no}") from None
    payments = lock_payments(order)
    (payment,) = [p for p in payments.values() if p.provider == provider and p.out_trade_no == out_trade_no]
    return order, payments, payment


def _paid(
    order: Order,
    payment: Payment,
    payments: Iterable[Payment],
    *,
    transaction_id: str,
    amount_fen: int,
    paid_at: datetime | None,
    actor: Actor,
) -> str:
    """``payment`` is paid (payment_succeeded), with the order and all its ``payments`` locked."""
    if amount_fen != payment.amount_fen:
        raise NotificationRejected(f"amount {amount_fen} differs from the order's {payment.amount_fen}")
    if payment.status == PaymentStatus.PAID:
        return "duplicate"
    if payment.status == PaymentStatus.REVERSED:
        # A payment code's trade, paid a moment before we reversed it (the order ended then): the reverse
        # gave this money back already. A refund now would be refused by the provider.
        payment_paid_before_its_reverse(payment, transaction_id=transaction_id, paid_at=paid_at)
        return "given back by the reverse"
    provider = payment.provider
    payment_record_paid(order, payment, transaction_id=transaction_id, paid_at=paid_at, actor=actor)
    if deductions.is_deduction(order):
        deductions.deduction_paid(order)
    taken = selectors.per_view_taken(order)
    if taken and order.status == OrderStatus.PAYMENT_PENDING:
        # Paid for content the account owns already (or is buying in another order): the order
        # fails and this money goes back, automatically.
        _close_the_others(payments, payment)
        transit(order, order.fail, code=FailureCode.ALREADY_SUBSCRIBED, detail=taken, actor=actor, reason=taken)
        refunds.refund_request(order=order, payment=payment, reason=f"already subscribed: {taken}", actor=actor)
        return "refunding"
    if order.status in (OrderStatus.AWAITING_PAYMENT, OrderStatus.PAYMENT_PENDING):
        # The current QR code, or an earlier one paid before it was closed:
        # either pays the order, and whatever else is open is closed.
        _close_the_others(payments, payment)
        transit(
            order,
            order.payment_confirmed,
            payment_method=payment.method,
            actor=actor,
            reason=f"paid at {provider}",
        )
        return "confirmed"
    why = "paid twice" if order.status in (OrderStatus.PROVISIONING, OrderStatus.COMPLETED) else "paid late"
    refunds.refund_request(order=order, payment=payment, reason=f"{why}: order was {order.status}", actor=actor)
    logger.warning(
        "order %s: %s payment %s arrived when the order was %s; refunding",
        order.order_no,
        provider,
        payment.out_trade_no,
        order.status,
    )
    return "refunding"


def _close_the_others(payments: Iterable[Payment], paid: Payment) -> None:
    for other in payments:
        if other.pk == paid.pk or other.status not in OPEN_STATUSES:
            continue
        other.status = PaymentStatus.CLOSED
        other.save(update_fields=["status", "updated_at"])
        paying.payment_close_later(other)


def notification_accept(*, notice: PaidNotice, headers: dict[str, str], body: str) -> str:
    """Apply a verified payment notification; returns what happened.

    Applied, then stored under the provider's id with what it did, in one
    transaction with the order and its payments locked: when applying fails
    the provider's retry finds nothing stored. One the provider sent before
    (stored already) is an answer, not an error: what it did is rolled back
    and it is a "duplicate". Raises NotificationRejected when it does not
    match our payment (unknown trade, other amount).
    """
    with transaction.atomic():
        order, payments, payment = _lock_trade(notice.provider, notice.out_trade_no, product=False)
        if notice.paid:
            outcome = _paid(
                order,
                payment,
                payments.values(),
                transaction_id=notice.transaction_id,
                amount_fen=notice.amount_fen,
                paid_at=notice.paid_at,
                actor=Actor(ActorKind.PROVIDER, notice.provider),
            )
        else:
            outcome = "not a payment"
            state = str(notice.decoded.get("trade_state") or "")
            if not state and notice.decoded.get("result_code") == "FAIL":
                state = "PAY_FAIL"
            if state in DEDUCTION_FAILED_STATES and order.channel == Channel.RENEWAL:
                # A deduction the provider reports as failed: the renewal order fails and is retried.
                why = notice.decoded.get("trade_state_desc") or notice.decoded.get("err_code") or ""
                detail = f"{state} {why}".strip()
                outcome = deductions.deduction_declined_by_notification(
                    payment, detail=detail, contract_gone=notice.contract_gone
                )
        if not notification_store(
            provider=notice.provider,
            notification_id=notice.notification_id,
            payment=payment,
            headers=headers,
            body=body,
            decoded=notice.decoded,
            outcome=outcome,
        ):
            return "duplicate"
    return outcome


def refund_notification_accept(
    *,
    provider: str,
    notification_id: str,
    out_refund_no: str,
    result: RefundResult,
    headers: dict[str, str],
    body: str,
    decoded: dict[str, object],
) -> str:
    """A provider's word on a refund (WeChat Pay's REFUND.* events): settled, then stored once (as above)."""
    refund = Refund.objects.filter(provider=provider, out_refund_no=out_refund_no).select_related("payment").first()
    if refund is None:
        raise NotificationRejected(f"unknown out_refund_no {out_refund_no}")
    with transaction.atomic():
        outcome = refunds.refund_settled(refund_id=refund.pk, result=result, ask_again=False)
        if not notification_store(
            provider=provider,
            notification_id=notification_id,
            payment=refund.payment,
            headers=headers,
            body=body,
            decoded=decoded,
            outcome=f"refund {outcome}",
        ):
            return "duplicate"
    return outcome
