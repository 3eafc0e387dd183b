"""Payment notifications from the providers: store under the provider's id, then apply once."""

from __future__ import annotations

import logging
from typing import Any

from django.db import IntegrityError, transaction

from adapters.providers.types import NotificationRejected, PaidNotice, RefundResult
from billing.models import Payment, PaymentNotification, Refund
from billing.services.payments import payment_succeeded
from billing.services.refunds import refund_settled
from ipvas.actors import Actor, ActorKind

logger = logging.getLogger(__name__)


def notification_accept(*, notice: PaidNotice, headers: dict[str, str], body: str) -> str:
    """Apply a verified notification; returns what happened. Raises NotificationRejected when
    it does not match our payment (unknown trade, other amount)."""
    payment = Payment.objects.filter(provider=notice.provider, out_trade_no=notice.out_trade_no).first()
    if payment is None:
        raise NotificationRejected(f"unknown out_trade_no {notice.out_trade_no}")
    if notice.paid and notice.amount_fen != payment.amount_fen:
        raise NotificationRejected(f"amount {notice.amount_fen} is not the order's {payment.amount_fen}")
    with transaction.atomic():
        try:
            with transaction.atomic():
                stored = PaymentNotification.objects.create(
                    provider=notice.provider,
                    notification_id=notice.notification_id[:128],
                    out_trade_no=notice.out_trade_no,
                    payment=payment,
                    headers=headers,
                    body=body,
                    decoded=_jsonable(notice.decoded),
                    outcome="received",
                )
        except IntegrityError:
            return "duplicate"
        if not notice.paid:
            outcome = "not a payment"
        else:
            outcome = payment_succeeded(
                provider=notice.provider,
                out_trade_no=notice.out_trade_no,
                transaction_id=notice.transaction_id,
                amount_fen=notice.amount_fen,
                paid_at=notice.paid_at,
                actor=Actor(ActorKind.PROVIDER, notice.provider),
            )
        stored.outcome = outcome
        stored.save(update_fields=["outcome"])
    return outcome


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def refund_notification_accept(
    *,
    provider: str,
    notification_id: str,
    out_refund_no: str,
    result: RefundResult,
    headers: dict[str, str],
    body: str,
    decoded: dict[str, Any],
) -> str:
    """A provider's word on a refund (WeChat Pay's REFUND.* events): stored once, then settled."""
    refund = Refund.objects.filter(provider=provider, out_refund_no=out_refund_no).first()
    if refund is None:
        raise NotificationRejected(f"unknown out_refund_no {out_refund_no}")
    with transaction.atomic():
        try:
            with transaction.atomic():
                stored = PaymentNotification.objects.create(
                    provider=provider,
                    notification_id=notification_id[:128],
                    out_trade_no=refund.payment.out_trade_no,
                    payment=refund.payment,
                    headers=headers,
                    body=body,
                    decoded=_jsonable(decoded),
                    outcome="received",
                )
        except IntegrityError:
            return "duplicate"
        outcome = refund_settled(refund_id=refund.pk, result=result)
        stored.outcome = f"refund {outcome}"
        stored.save(update_fields=["outcome"])
    return outcome
