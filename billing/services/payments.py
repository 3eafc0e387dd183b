"""Payments: what the customer is expected to pay now, and the record of money taken.

The lifecycle (lifecycle.paying, lifecycle.paid) decides when; these write
the payment rows and the ledger inside its transaction, with the order locked.
Locks are always taken order first, then its payment.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from billing.models import LedgerKind, Payment, PaymentStatus
from billing.services.ledger import ledger_record
from ipvas.actors import Actor
from orders.constants import PaymentMethod
from orders.models import Order

# The provider of each QR method, as payment rows name it.
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


def shown_payments(order_id: int, method: str) -> QuerySet[Payment]:
    """The payments of an order's current method, the one its answer shows first."""
    return Payment.objects.filter(order_id=order_id, method=method).order_by("-created_at", "-pk")


def shown_payment(order: Order) -> Payment | None:
    """The payment an order's answer shows: the latest of its current method (read once per order object)."""
    if not order.payment_method:
        return None
    if not hasattr(order, "_shown_payment"):
        order._shown_payment = shown_payments(order.pk, order.payment_method).first()
    return order._shown_payment


def payment_shown(order: Order, payment: Payment) -> None:
    """``payment``, just written under the order's lock with its current method, is the one its answer shows:
    the answer is not read again for it (issue #17: a statement of the payment choice's ten)."""
    assert payment.order_id == order.pk and payment.method == order.payment_method
    order._shown_payment = payment


def lock_payment(payment_id: int) -> Payment:
    return Payment.objects.select_for_update().get(pk=payment_id)


def lock_payments(order: Order) -> dict[int, Payment]:
    """Every payment of the locked ``order``, locked, by id: one statement (in no order: the order's lock,
    taken first, keeps two of these from waiting for each other)."""
    payments = Payment.objects.select_for_update().filter(order=order).order_by()
    return {payment.pk: payment for payment in payments}


def next_out_trade_no(order: Order, provider: str) -> str:
    """The order number at first; a provider refuses to reopen a closed trade, so later ones get a suffix."""
    earlier = Payment.objects.filter(order=order, provider=provider).count()
    return order.order_no if earlier == 0 else f"{order.order_no}R{earlier}"


def payment_record_paid(
    order: Order, payment: Payment, *, transaction_id: str, paid_at: datetime | None, actor: Actor
) -> None:
    """A provider took the money of ``payment`` (locked): the payment is paid and the ledger says so, once."""
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
        provider=payment.provider,
        provider_ref=transaction_id or payment.out_trade_no,
        idempotency_key=f"{payment.provider}:payment:{transaction_id or payment.out_trade_no}",
        actor=actor,
    )


def payment_paid_before_its_reverse(payment: Payment, *, transaction_id: str, paid_at: datetime | None) -> None:
    """A provider says ``payment`` (locked, ``reversed``) was paid: paid a moment before its reverse, which gave
    the money back within the trade (WeChat Pay's reverse and Alipay's cancel refund a paid trade themselves).
    The payment keeps the provider's reference and time, and stays reversed; the ledger has nothing to say:
    no money stayed with us, no refund of ours is made, and the providers' bills (as the sandbox makes
    them) list no line for it (docs/decisions.md)."""
    payment.provider_txn_id = transaction_id
    payment.paid_at = paid_at or timezone.now()
    payment.save(update_fields=["provider_txn_id", "paid_at", "updated_at"])
