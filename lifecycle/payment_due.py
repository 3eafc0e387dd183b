"""payment_pending when its time comes: the window ended, or a cash sale's CRM activity is to be handled.

QR: the provider order is closed first, so that a payment made at the last
second is kept; SMS: the confirmation expires; cash: the CRM handles the
marketing activity (idempotent on the order number), then the SMP subscribes.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from adapters.crm import ActivityRequest, CrmUnavailable, get_crm
from adapters.providers import get_provider
from adapters.providers.types import ProviderUnavailable
from billing.models import (
    LedgerKind,
    Payment,
    PaymentStatus,
    Provider,
    SmsConfirmation,
    SmsConfirmationStatus,
    WorkItemKind,
)
from billing.services.ledger import ledger_record
from billing.services.payments import OPEN_STATUSES, open_payment
from billing.services.sms import sms_confirmation_expire
from billing.services.work import work_item_open
from ipvas import outbox
from ipvas.actors import Actor
from lifecycle import paid, tasks
from lifecycle.claims import claim, lock_claimed, lock_if_due, retry_later
from lifecycle.transitions import transit
from orders.constants import QR_METHODS, FailureCode, OrderStatus, PaymentMethod
from orders.models import Order
from orders.models.order import CRM_NO_ANSWER, SMS_REPLACED

logger = logging.getLogger(__name__)

# After the payment window, how long a provider that does not answer our close
# is waited for before the order expires anyway (late money is then refunded).
CLOSE_GRACE = timedelta(minutes=10)


def virtual_staff_id_of(order: Order) -> str:
    """The CRM bills a cash sale under the virtual staff id of the session that took the cash (else, for a
    sale confirmed elsewhere, of the clerk's latest ticket)."""
    if order.virtual_staff_id:
        return order.virtual_staff_id
    clerk = getattr(order.clerk, "clerk", None) if order.clerk_id else None
    return clerk.virtual_staff_id if clerk else ""


def payment_due(order_id: int, due_at: datetime | None) -> str:
    with transaction.atomic():
        order = lock_if_due(order_id, due_at, OrderStatus.PAYMENT_PENDING)
        if order is None:
            return "not_due"
        if order.payment_method == PaymentMethod.PHONE_BILL_SMS:
            replaced = (
                SmsConfirmation.objects.filter(order=order, status=SmsConfirmationStatus.SUPERSEDED).exists()
                and not SmsConfirmation.objects.filter(order=order, status=SmsConfirmationStatus.PENDING).exists()
            )
            sms_confirmation_expire(order)
            transit(
                order,
                order.expire,
                code=FailureCode.SMS_TIMEOUT,
                detail=SMS_REPLACED if replaced else "",
                actor=Actor.task("payment-deadline"),
                reason="a newer confirmation to the number replaced it" if replaced else "no reply Y in time",
            )
            return "expired"
        if order.payment_method == PaymentMethod.CASH:
            payment = open_payment(order)
            claimed = claim(order)
            request = ActivityRequest(
                activity_code=order.product.crm_activity_code,
                phone=order.phone,
                virtual_staff_id=virtual_staff_id_of(order),
                order_no=order.order_no,
                amount_fen=order.amount_fen,
            )
        else:
            payment = open_payment(order)
            if payment is None or payment.status == PaymentStatus.CREATING:
                # Nothing the customer can pay now: the QR order was never created, or the one shown was closed
                # for a switch whose new code is still being made (that one is closed when it comes back).
                if payment is not None:
                    payment.status = PaymentStatus.FAILED
                    payment.save(update_fields=["status", "updated_at"])
                shown = Payment.objects.filter(order=order, method__in=QR_METHODS).exclude(qr_code_url="").exists()
                transit(
                    order,
                    order.expire,
                    code=FailureCode.PAYMENT_TIMEOUT,
                    actor=Actor.task("payment-deadline"),
                    reason="the payment window ended while the QR code was being switched"
                    if shown
                    else "no QR code was ever shown for this order",
                )
                return "expired"
            claimed = claim(order)
    if order.payment_method == PaymentMethod.CASH:
        return _cash_activity(order_id, claimed, payment, request)
    return _close_unpaid_qr(order_id, claimed, payment)


def _close_unpaid_qr(order_id: int, claimed: datetime, payment: Payment) -> str:
    actor = Actor.task("payment-deadline")
    provider = get_provider(payment.provider)
    try:
        result = provider.close(payment.out_trade_no)
        trade = provider.query(payment.out_trade_no) if result.already_paid else None
    except ProviderUnavailable as exc:
        with transaction.atomic():
            order = lock_claimed(order_id, claimed, OrderStatus.PAYMENT_PENDING)
            if order is None:
                return "superseded"
            cutoff = order.status_changed_at + timedelta(seconds=settings.PAYMENT_WINDOW_SECONDS) + CLOSE_GRACE
            if timezone.now() < cutoff:
                retry_later(order, actor=actor, why=f"closing at {payment.provider}: {exc}", cutoff=cutoff)
                return "retry"
            # The provider's own time_expire stops payment at the window's end;
            # money that still arrives later is refunded (payments.payment_succeeded).
            transit(
                order,
                order.expire,
                code=FailureCode.PAYMENT_TIMEOUT,
                actor=actor,
                reason=f"{payment.provider} did not confirm the close: {exc}",
            )
            return "expired"
    if trade is not None:
        return paid.payment_succeeded(
            provider=payment.provider,
            out_trade_no=payment.out_trade_no,
            transaction_id=trade.transaction_id,
            amount_fen=trade.amount_fen,
            paid_at=trade.paid_at,
            actor=actor,
        )
    with transaction.atomic():
        order = lock_claimed(order_id, claimed, OrderStatus.PAYMENT_PENDING)
        if order is None:
            return "superseded"
        Payment.objects.filter(pk=payment.pk, status__in=OPEN_STATUSES).update(status=PaymentStatus.CLOSED)
        transit(
            order, order.expire, code=FailureCode.PAYMENT_TIMEOUT, actor=actor, reason=f"closed at {payment.provider}"
        )
        return "expired"


# How long after giving up on the CRM's answer its activity is reversed (lifecycle.followups.crm_reverse).
CRM_REVERSE_DELAY = timedelta(minutes=1)


def _cash_activity(order_id: int, claimed: datetime, payment: Payment | None, request: ActivityRequest) -> str:
    actor = Actor.task("crm-activity")
    try:
        result = get_crm().handle_activity(request)
    except CrmUnavailable as exc:
        with transaction.atomic():
            order = lock_claimed(order_id, claimed, OrderStatus.PAYMENT_PENDING)
            if order is None:
                return "superseded"
            cutoff = order.status_changed_at + timedelta(seconds=settings.CRM_ACTIVITY_DEADLINE_SECONDS)
            if timezone.now() < cutoff:
                retry_later(order, actor=actor, why=f"CRM: {exc}", cutoff=cutoff)
                return "retry"
            Payment.objects.filter(order=order, method=PaymentMethod.CASH, status=PaymentStatus.PENDING).update(
                status=PaymentStatus.FAILED, failure_reason="CRM did not answer"
            )
            transit(
                order,
                order.fail,
                code=FailureCode.CRM_ACTIVITY_FAILED,
                detail=CRM_NO_ANSWER,
                actor=actor,
                reason=str(exc),
            )
            # It may have been handled without our hearing it: reversed (harmless if it was not), and a person
            # checks. A minute later, so that a call of ours still on its way there is not overtaken.
            outbox.enqueue(
                tasks.reverse_crm_activity, kwargs={"order_id": order.pk}, due_at=timezone.now() + CRM_REVERSE_DELAY
            )
            work_item_open(order=order, kind=WorkItemKind.CRM_UNCERTAIN, detail=f"CRM did not answer: {exc}")
            return "failed"
    with transaction.atomic():
        order = lock_claimed(order_id, claimed, OrderStatus.PAYMENT_PENDING)
        if order is None:
            return "superseded"
        if not result.ok:
            Payment.objects.filter(order=order, method=PaymentMethod.CASH, status=PaymentStatus.PENDING).update(
                status=PaymentStatus.FAILED, failure_reason=result.reason[:255]
            )
            transit(
                order,
                order.fail,
                code=FailureCode.CRM_ACTIVITY_FAILED,
                detail=result.reason,
                actor=actor,
                reason=f"the CRM refused the marketing activity: {result.reason}",
            )
            return "failed"
        cash = Payment.objects.select_for_update().get(pk=payment.pk) if payment else None
        if cash is not None:
            cash.status = PaymentStatus.PAID
            cash.provider_txn_id = result.activity_id
            cash.paid_at = timezone.now()
            cash.save(update_fields=["status", "provider_txn_id", "paid_at", "updated_at"])
        ledger_record(
            order=order,
            payment=cash,
            kind=LedgerKind.PAYMENT,
            amount_fen=order.amount_fen,
            method=PaymentMethod.CASH,
            provider=Provider.CRM,
            provider_ref=result.activity_id,
            idempotency_key=f"crm:cash:{order.order_no}",
            actor=actor,
        )
        transit(
            order,
            order.payment_confirmed,
            payment_method=PaymentMethod.CASH,
            actor=actor,
            reason=f"CRM {result.activity_id}",
        )
        return "confirmed"
