"""Taking the money: the customer's choice of payment method, and what the providers say.

Network calls to providers happen with no transaction open: a payment is
written first as an intent (``creating``), the provider is called, then the
answer is recorded under the order's lock (orders.services.transitions).
Locks are always taken order first, then its payment.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from adapters.providers import get_provider
from adapters.providers.types import NotificationRejected, ProviderRefused, ProviderUnavailable, QrOrderRequest
from billing.models import LedgerKind, Payment, PaymentStatus, Provider
from billing.services import sms
from billing.services.ledger import ledger_record
from ipvas import outbox
from ipvas.actors import Actor
from ipvas.errors import ExternalServiceError, InvalidInput, InvalidState
from orders.constants import QR_METHODS, OrderStatus, PaymentMethod
from orders.models import Order
from orders.services.transitions import lock_order, transit

logger = logging.getLogger(__name__)

PROVIDER_FOR_METHOD = {PaymentMethod.WECHAT_QR: "wechatpay", PaymentMethod.ALIPAY_QR: "alipay"}
# A payment being created at the provider by another request blocks a second one for this long.
CREATING_GUARD = timedelta(seconds=30)
OPEN_STATUSES = (PaymentStatus.CREATING, PaymentStatus.PENDING)


def payment_window_end(now: datetime) -> datetime:
    return now + timedelta(seconds=settings.PAYMENT_WINDOW_SECONDS)


def open_payment(order: Order) -> Payment | None:
    """The payment the customer is expected to complete now, if any."""
    return (
        Payment.objects.filter(order=order, method=order.payment_method, status__in=OPEN_STATUSES)
        .order_by("-created_at", "-pk")
        .first()
    )


def _lock_payment(payment_id: int) -> Payment:
    return Payment.objects.select_for_update().get(pk=payment_id)


def _not_now(order: Order) -> InvalidState:
    return InvalidState(
        _("A payment method cannot be chosen for an order that is %(status)s.")
        % {"status": OrderStatus(order.status).label},
        extra={"status": order.status},
    )


def payment_choose(*, order_id: int, method: str, actor: Actor) -> Order:
    """The customer (on the TV) or the clerk chose how to pay.

    ``awaiting_payment`` accepts any method the product allows on the order's
    channel; ``payment_pending`` accepts a switch between the two QR methods.
    """
    order = Order.objects.select_related("product").get(pk=order_id)
    allowed = order.product.methods_on(order.channel)
    if method not in allowed:
        raise InvalidInput(
            fields={"method": [_("This product can be paid with: %(methods)s.") % {"methods": ", ".join(allowed)}]}
        )
    if method in QR_METHODS:
        return _qr_start(order_id=order_id, method=method, actor=actor)
    if method == PaymentMethod.PHONE_BILL_SMS:
        return sms.sms_confirmation_start(order_id=order_id, actor=actor)
    if method == PaymentMethod.PHONE_BILL:
        return _phone_bill_start(order_id=order_id, actor=actor)
    if method == PaymentMethod.CASH:
        from billing.services.cash import cash_received

        return cash_received(order_id=order_id, actor=actor)
    raise InvalidInput(fields={"method": [_("Unknown payment method.")]})


def _phone_bill_start(*, order_id: int, actor: Actor) -> Order:
    """Phone bill without confirmation: the SMP charges as it subscribes, at once."""
    with transaction.atomic():
        order = lock_order(order_id)
        if order.status != OrderStatus.AWAITING_PAYMENT:
            raise _not_now(order)
        Payment.objects.create(
            order=order,
            method=PaymentMethod.PHONE_BILL,
            provider=Provider.SMP,
            out_trade_no=order.order_no,
            amount_fen=order.amount_fen,
            status=PaymentStatus.PENDING,
        )
        transit(order, "payment_confirmed", payment_method=PaymentMethod.PHONE_BILL, actor=actor, reason="phone bill")
    return order


def _next_out_trade_no(order: Order, provider: str) -> str:
    """The order number at first; a provider refuses to reopen a closed trade, so later ones get a suffix."""
    earlier = Payment.objects.filter(order=order, provider=provider).count()
    return order.order_no if earlier == 0 else f"{order.order_no}R{earlier}"


def _qr_start(*, order_id: int, method: str, actor: Actor) -> Order:
    provider_name = PROVIDER_FOR_METHOD[method]
    now = timezone.now()
    with transaction.atomic():
        order = lock_order(order_id)
        previous = None
        if order.status == OrderStatus.PAYMENT_PENDING and order.payment_method in QR_METHODS:
            previous = open_payment(order)
            if order.payment_method == method and previous and previous.status == PaymentStatus.PENDING:
                return order  # the same QR code again: nothing to do
        elif order.status != OrderStatus.AWAITING_PAYMENT:
            raise _not_now(order)
        if Payment.objects.filter(
            order=order, status=PaymentStatus.CREATING, created_at__gt=now - CREATING_GUARD
        ).exists():
            raise InvalidState(_("A payment for this order is being created; try again in a moment."))
        payment = Payment.objects.create(
            order=order,
            method=method,
            provider=provider_name,
            out_trade_no=_next_out_trade_no(order, provider_name),
            amount_fen=order.amount_fen,
            status=PaymentStatus.CREATING,
            expires_at=payment_window_end(now),
        )
        description = order.product.name

    if previous is not None:
        _close_before_switch(previous, new_payment=payment, actor=actor)

    try:
        code_url = get_provider(provider_name).create(
            QrOrderRequest(
                out_trade_no=payment.out_trade_no,
                amount_fen=payment.amount_fen,
                description=description,
                expires_at=payment.expires_at,
            )
        )
    except (ProviderUnavailable, ProviderRefused) as exc:
        logger.warning("order %s: %s refused or failed to create a QR order: %s", order.order_no, provider_name, exc)
        Payment.objects.filter(pk=payment.pk).update(status=PaymentStatus.FAILED, failure_reason=str(exc)[:255])
        raise ExternalServiceError(_("The payment provider is not answering; please try again.")) from exc

    with transaction.atomic():
        order = lock_order(order_id)
        payment = _lock_payment(payment.pk)
        if payment.status != PaymentStatus.CREATING:
            return order  # paid before we got here: the notification already moved the order on
        payment.status = PaymentStatus.PENDING
        payment.qr_code_url = code_url
        payment.save(update_fields=["status", "qr_code_url", "updated_at"])
        if order.status == OrderStatus.AWAITING_PAYMENT:
            transit(
                order,
                "start_payment",
                payment_method=method,
                deadline_at=payment.expires_at,
                actor=actor,
                reason=f"QR code shown ({payment.provider} {payment.out_trade_no})",
                data={"method": method},
            )
        elif order.status == OrderStatus.PAYMENT_PENDING and order.payment_method in QR_METHODS:
            transit(
                order,
                "switch_payment",
                payment_method=method,
                deadline_at=payment.expires_at,
                actor=actor,
                reason=f"switched to {payment.provider} ({payment.out_trade_no})",
                data={"method": method},
            )
        else:
            # Cancelled or expired while the provider answered: that QR code must not be payable.
            payment_close_later(payment)
            raise _not_now(order)
    return order


def _close_before_switch(previous: Payment, *, new_payment: Payment, actor: Actor) -> None:
    """Close the QR order the customer is switching away from, before showing another."""
    provider = get_provider(previous.provider)
    try:
        result = provider.close(previous.out_trade_no)
        trade = provider.query(previous.out_trade_no) if result.already_paid else None
    except ProviderUnavailable as exc:
        Payment.objects.filter(pk=new_payment.pk).update(status=PaymentStatus.FAILED, failure_reason="switch aborted")
        raise ExternalServiceError(_("The payment provider is not answering; please try again.")) from exc
    if trade is not None:
        # Paid just before the switch: that payment stands, the switch does not happen.
        Payment.objects.filter(pk=new_payment.pk).update(status=PaymentStatus.FAILED, failure_reason="already paid")
        payment_succeeded(
            provider=previous.provider,
            out_trade_no=previous.out_trade_no,
            transaction_id=trade.transaction_id,
            amount_fen=trade.amount_fen,
            paid_at=trade.paid_at,
            actor=actor,
        )
        raise InvalidState(_("This order has just been paid."))
    with transaction.atomic():
        lock_order(previous.order_id)
        payment = _lock_payment(previous.pk)
        if payment.status in OPEN_STATUSES:
            payment.status = PaymentStatus.CLOSED
            payment.save(update_fields=["status", "updated_at"])


def payment_close_later(payment: Payment) -> None:
    """Close a stray QR order at its provider after this transaction commits (billing.tasks)."""
    outbox.enqueue("billing.tasks.close_provider_order", kwargs={"payment_id": payment.pk})


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
    ref = Payment.objects.filter(provider=provider, out_trade_no=out_trade_no).values("pk", "order_id").first()
    if ref is None:
        raise NotificationRejected(f"unknown out_trade_no {out_trade_no}")
    with transaction.atomic():
        order = lock_order(ref["order_id"])
        payment = _lock_payment(ref["pk"])
        if amount_fen != payment.amount_fen:
            raise NotificationRejected(f"amount {amount_fen} differs from the order's {payment.amount_fen}")
        if payment.status == PaymentStatus.PAID:
            return "duplicate"
        payment.status = PaymentStatus.PAID
        payment.provider_txn_id = transaction_id
        payment.paid_at = paid_at or timezone.now()
        payment.save(update_fields=["status", "provider_txn_id", "paid_at", "updated_at"])
        ledger_record(
            order=order,
            payment=payment,
            kind=LedgerKind.PAYMENT,
            amount_fen=payment.amount_fen,
            method=payment.method,
            provider=provider,
            provider_ref=transaction_id or out_trade_no,
            idempotency_key=f"{provider}:payment:{transaction_id or out_trade_no}",
            actor=actor,
        )
        if order.status in (OrderStatus.AWAITING_PAYMENT, OrderStatus.PAYMENT_PENDING):
            # The current QR code, or an earlier one paid before it was closed:
            # either pays the order, and whatever else is open is closed.
            for other in Payment.objects.filter(order=order, status__in=OPEN_STATUSES).exclude(pk=payment.pk):
                other.status = PaymentStatus.CLOSED
                other.save(update_fields=["status", "updated_at"])
                payment_close_later(other)
            transit(
                order, "payment_confirmed", payment_method=payment.method, actor=actor, reason=f"paid at {provider}"
            )
            return "confirmed"
        from billing.services.refunds import refund_request

        why = "paid twice" if order.status in (OrderStatus.PROVISIONING, OrderStatus.COMPLETED) else "paid late"
        refund_request(order=order, payment=payment, reason=f"{why}: order was {order.status}", actor=actor)
        logger.warning(
            "order %s: %s payment %s arrived when the order was %s; refunding",
            order.order_no,
            provider,
            out_trade_no,
            order.status,
        )
        return "refunding"


def order_cancel(*, order_id: int, actor: Actor) -> Order:
    """The customer or the clerk gives up before paying. An open QR order is closed at its
    provider afterwards; money that still arrives for it is refunded."""
    with transaction.atomic():
        order = lock_order(order_id)
        open_payments = list(Payment.objects.filter(order=order, status__in=OPEN_STATUSES))
        transit(order, "cancel", actor=actor, reason="cancelled before payment")
        for payment in open_payments:
            if payment.method in QR_METHODS:
                payment_close_later(payment)
        sms.sms_confirmation_expire(order)
    return order
