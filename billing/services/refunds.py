"""Refunds: giving back money a provider took, by the provider's own refund (``out_refund_no`` is
its idempotency key: asking twice refunds once). The lifecycle decides and drives them
(lifecycle.refunds); these write the refund rows and the ledger, with the order locked.
"""

from __future__ import annotations

from django.utils import timezone

from adapters.providers.types import RefundResult, RefundState
from billing.models import LedgerKind, Payment, Provider, Refund, RefundStatus
from billing.services.ledger import ledger_record, payment_refundable_fen
from ipvas.actors import Actor
from ipvas.errors import InvalidInput
from orders.models import Order

ACTIVE = (RefundStatus.REQUESTED, RefundStatus.PROCESSING)


def active_refund(order: Order) -> Refund | None:
    return Refund.objects.filter(order=order, status__in=ACTIVE).order_by("pk").first()


def refund_create(
    *, order: Order, payment: Payment, reason: str, actor: Actor, amount_fen: int | None = None
) -> tuple[Refund, bool]:
    """A refund of ``payment`` (or part of it); (the refund, whether it is new).

    A refund already under way for the payment is returned instead of a second one.
    """
    if payment.provider not in (Provider.WECHATPAY, Provider.ALIPAY):
        raise InvalidInput(f"{payment.provider} payments are not refunded through a provider")
    under_way = Refund.objects.filter(payment=payment, status__in=ACTIVE).first()
    if under_way is not None:
        return under_way, False
    refundable = payment_refundable_fen(payment)
    amount = refundable if amount_fen is None else amount_fen
    if amount <= 0 or amount > refundable:
        raise InvalidInput(f"refund of {amount} fen refused: {refundable} fen of this payment can be refunded")
    number = Refund.objects.filter(payment=payment).count() + 1
    refund = Refund.objects.create(
        order=order,
        payment=payment,
        provider=payment.provider,
        out_refund_no=f"{payment.out_trade_no}F{number}",
        amount_fen=amount,
        reason=reason[:255],
        requested_by_kind=actor.kind,
        requested_by_id=actor.id[:150],
    )
    return refund, True


def refund_record_result(refund: Refund, result: RefundResult) -> str:
    """Record the provider's answer on a locked refund: processing, failed, or succeeded (into the ledger).

    Returns the refund's new state, or "duplicate" when it had succeeded already.
    """
    if refund.status == RefundStatus.SUCCEEDED:
        return "duplicate"
    if result.state == RefundState.PROCESSING:
        refund.status = RefundStatus.PROCESSING
        refund.provider_refund_id = result.refund_id or refund.provider_refund_id
        refund.save(update_fields=["status", "provider_refund_id", "updated_at"])
        return "processing"
    if result.state == RefundState.FAILED:
        refund.status = RefundStatus.FAILED
        refund.last_error = (result.message or "the provider closed the refund")[:255]
        refund.save(update_fields=["status", "last_error", "updated_at"])
        return "failed"
    refund.status = RefundStatus.SUCCEEDED
    refund.provider_refund_id = result.refund_id or refund.provider_refund_id
    refund.completed_at = timezone.now()
    refund.save(update_fields=["status", "provider_refund_id", "completed_at", "updated_at"])
    ledger_record(
        order=refund.order,
        payment=refund.payment,
        kind=LedgerKind.REFUND,
        amount_fen=-refund.amount_fen,
        method=refund.payment.method,
        provider=refund.provider,
        provider_ref=refund.provider_refund_id or refund.out_refund_no,
        idempotency_key=f"{refund.provider}:refund:{refund.out_refund_no}",
        actor=Actor(refund.requested_by_kind, refund.requested_by_id),  # type: ignore[arg-type]
        note=refund.reason,
    )
    return "succeeded"
