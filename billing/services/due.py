"""What is due for orders in payment_pending and provisioning (registered in BillingConfig.ready).

payment_pending: the payment window ended (QR: close at the provider first,
so that a payment made at the last second is kept; SMS: the confirmation
expires), or a cash sale's CRM activity is to be handled.
provisioning: subscribe on the SMP, with retries; when it finally cannot,
the money goes back (provider refund, SMP reversal, or cash paid back by
the store).
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
from adapters.smp import SmpCharge, SmpUnavailable, SubscribeRequest, get_smp
from billing.models import LedgerKind, Payment, PaymentStatus, Provider, Refund, RefundStatus, WorkItemKind
from billing.services import payments, sms
from billing.services.cash import virtual_staff_id_of
from billing.services.ledger import ledger_record, order_totals
from billing.services.refunds import REFUND_BACKOFF_CAP_SECONDS, active_refund, refund_request
from billing.services.work import work_item_open
from ipvas import outbox
from ipvas.actors import Actor
from orders.constants import QR_METHODS, FailureCode, OrderStatus, PaymentMethod
from orders.models import Order
from orders.services.due import claim, due_handler, lock_claimed, lock_if_due, retry_later
from orders.services.entitlements import entitlement_grant
from orders.services.transitions import schedule_due, transit

logger = logging.getLogger(__name__)

# How the SMP is told to charge, by how the customer paid.
CHARGE_FOR_METHOD: dict[str, str] = {
    PaymentMethod.WECHAT_QR: SmpCharge.PREPAID,
    PaymentMethod.ALIPAY_QR: SmpCharge.PREPAID,
    PaymentMethod.PHONE_BILL: SmpCharge.PHONE_BILL,
    PaymentMethod.PHONE_BILL_SMS: SmpCharge.PHONE_BILL,
    PaymentMethod.CASH: SmpCharge.MARKETING_ACCOUNT,
}

# After the payment window, how long a provider that does not answer our close
# is waited for before the order expires anyway (late money is then refunded).
CLOSE_GRACE = timedelta(minutes=10)
# While a refund is under way, how often the order looks at it.
REFUND_WATCH = timedelta(seconds=60)
# A refund not touched for this long has lost its retry chain (its backoff is at most 5 minutes).
REFUND_CHAIN_LOST = timedelta(seconds=REFUND_BACKOFF_CAP_SECONDS + 120)
# While a person must decide, how often the order is looked at again.
NEEDS_PERSON_WATCH = timedelta(hours=1)


# --- payment_pending ---------------------------------------------------------------


@due_handler(OrderStatus.PAYMENT_PENDING, local=False)
def payment_due(order_id: int, due_at: datetime | None) -> str:
    with transaction.atomic():
        order = lock_if_due(order_id, due_at, OrderStatus.PAYMENT_PENDING)
        if order is None:
            return "not_due"
        if order.payment_method == PaymentMethod.PHONE_BILL_SMS:
            sms.sms_confirmation_expire(order)
            transit(
                order,
                "expire",
                code=FailureCode.SMS_TIMEOUT,
                actor=Actor.task("payment-deadline"),
                reason="no reply Y to the confirmation SMS in time, or a newer confirmation replaced it",
            )
            return "expired"
        if order.payment_method == PaymentMethod.CASH:
            payment = payments.open_payment(order)
            claimed = claim(order)
            request = ActivityRequest(
                activity_code=order.product.crm_activity_code,
                phone=order.phone,
                virtual_staff_id=virtual_staff_id_of(order),
                order_no=order.order_no,
                amount_fen=order.amount_fen,
            )
        else:
            payment = payments.open_payment(order)
            if payment is None or payment.status == PaymentStatus.CREATING:
                # Nothing the customer could have paid (the QR order was never created).
                if payment is not None:
                    payment.status = PaymentStatus.FAILED
                    payment.save(update_fields=["status", "updated_at"])
                transit(
                    order,
                    "expire",
                    code=FailureCode.PAYMENT_TIMEOUT,
                    actor=Actor.task("payment-deadline"),
                    reason="no QR code was ever shown for this order",
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
                "expire",
                code=FailureCode.PAYMENT_TIMEOUT,
                actor=actor,
                reason=f"{payment.provider} did not confirm the close: {exc}",
            )
            return "expired"
    if trade is not None:
        return payments.payment_succeeded(
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
        Payment.objects.filter(pk=payment.pk, status__in=payments.OPEN_STATUSES).update(status=PaymentStatus.CLOSED)
        transit(order, "expire", code=FailureCode.PAYMENT_TIMEOUT, actor=actor, reason=f"closed at {payment.provider}")
        return "expired"


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
            transit(order, "fail", code=FailureCode.CRM_ACTIVITY_FAILED, actor=actor, reason=str(exc))
            # It may have been handled without our hearing it: someone must check and reverse it.
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
                "fail",
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
            "payment_confirmed",
            payment_method=PaymentMethod.CASH,
            actor=actor,
            reason=f"CRM {result.activity_id}",
        )
        return "confirmed"


# --- provisioning ------------------------------------------------------------------


def provisioning_cutoff(order: Order) -> datetime:
    return order.status_changed_at + timedelta(seconds=settings.PROVISIONING_DEADLINE_SECONDS)


def _paid_payment(order: Order) -> Payment | None:
    return (
        Payment.objects.filter(order=order, method=order.payment_method)
        .exclude(status__in=[PaymentStatus.FAILED, PaymentStatus.CLOSED])
        .order_by("-created_at", "-pk")
        .first()
    )


@due_handler(OrderStatus.PROVISIONING, local=False)
def provisioning_due(order_id: int, due_at: datetime | None) -> str:
    actor = Actor.task("provision")
    with transaction.atomic():
        order = lock_if_due(order_id, due_at, OrderStatus.PROVISIONING)
        if order is None:
            return "not_due"
        refund = active_refund(order)
        if refund is not None and _left_after_refunds(order) <= 0:
            # The money is on its way back and the refund drives itself (its own
            # retries); the order only keeps an eye on it, and restarts a refund
            # whose retry chain was lost (nothing moved for longer than any backoff).
            _watch_refund(order)
            if refund.updated_at < timezone.now() - REFUND_CHAIN_LOST:
                outbox.enqueue("billing.tasks.process_refund", kwargs={"refund_id": refund.pk})
            return "refunding"
        if timezone.now() >= provisioning_cutoff(order):
            return _give_up(order, why="the SMP did not subscribe before the provisioning deadline", actor=actor)
        product = order.product
        charge = CHARGE_FOR_METHOD[order.payment_method]
        request = SubscribeRequest(
            order_no=order.order_no,
            tv_account=order.tv_account,
            product_code=product.smp_product_code,
            package_code=product.smp_zero_price_package_code
            if charge == SmpCharge.PREPAID
            else product.smp_product_code,
            charge=charge,
            amount_fen=order.amount_fen,
            kind=product.kind,
            period_months=product.period_months,
            view_hours=product.view_hours,
            content_id=order.content_id,
        )
        claimed = claim(order)
    try:
        result = get_smp().subscribe(request)
    except SmpUnavailable as exc:
        with transaction.atomic():
            order = lock_claimed(order_id, claimed, OrderStatus.PROVISIONING)
            if order is None:
                return "superseded"
            retry_later(order, actor=actor, why=str(exc), cutoff=provisioning_cutoff(order))
            return "retry"
    with transaction.atomic():
        order = lock_claimed(order_id, claimed, OrderStatus.PROVISIONING)
        if order is None:
            return "superseded"
        if result.ok:
            entitlement_grant(
                order=order, subscription_id=result.subscription_id, starts_at=result.starts_at, ends_at=result.ends_at
            )
            if charge == SmpCharge.PHONE_BILL:
                _phone_bill_charged(order, result.subscription_id, actor)
            transit(order, "complete", actor=actor, reason=f"SMP subscription {result.subscription_id}")
            return "completed"
        if result.reason == FailureCode.INSUFFICIENT_BALANCE and charge == SmpCharge.PHONE_BILL:
            Payment.objects.filter(order=order, method=order.payment_method, status=PaymentStatus.PENDING).update(
                status=PaymentStatus.FAILED, failure_reason="insufficient balance"
            )
            transit(
                order,
                "fail",
                code=FailureCode.INSUFFICIENT_BALANCE,
                detail=result.message,
                actor=actor,
                reason="the SMP refused the phone-bill charge: insufficient balance",
            )
            return "failed"
        return _give_up(order, why=f"the SMP refused: {result.reason} {result.message}".strip(), actor=actor)


def _left_after_refunds(order: Order) -> int:
    """What stays paid for the order once every refund under way has gone through.

    A duplicate payment being refunded does not hold the order back: the
    payment that pays for it still stands.
    """
    under_way = Refund.objects.filter(order=order, status__in=[RefundStatus.REQUESTED, RefundStatus.PROCESSING])
    return order_totals(order)["net_fen"] - sum(under_way.values_list("amount_fen", flat=True))


def _watch_refund(order: Order, *, every: timedelta = REFUND_WATCH) -> None:
    """The order waits in provisioning while its money goes back; look again in a while."""
    order.retry_later(deadline_at=timezone.now() + every)
    order.save(update_fields=["deadline_at", "attempts", "updated_at"])
    schedule_due(order)


def _phone_bill_charged(order: Order, subscription_id: str, actor: Actor) -> None:
    payment = _paid_payment(order)
    if payment is not None:
        payment.status = PaymentStatus.PAID
        payment.provider_txn_id = subscription_id
        payment.paid_at = timezone.now()
        payment.save(update_fields=["status", "provider_txn_id", "paid_at", "updated_at"])
    ledger_record(
        order=order,
        payment=payment,
        kind=LedgerKind.PAYMENT,
        amount_fen=order.amount_fen,
        method=order.payment_method,
        provider=Provider.SMP,
        provider_ref=subscription_id,
        idempotency_key=f"smp:charge:{order.order_no}",
        actor=actor,
    )


def _give_up(order: Order, *, why: str, actor: Actor) -> str:
    """The product cannot be provisioned: return the money the way it came (order locked)."""
    payment = _paid_payment(order)
    method = order.payment_method
    if method in QR_METHODS and payment is not None and payment.status == PaymentStatus.PAID:
        if Refund.objects.filter(
            order=order, status=RefundStatus.FAILED, created_at__gte=order.status_changed_at
        ).exists():
            # The provider refused to give it back: a person decides (retry the refund or
            # the provisioning, billing.services.work); the order waits for them.
            work_item_open(order=order, kind=WorkItemKind.REFUND_FAILED, detail=why)
            _watch_refund(order, every=NEEDS_PERSON_WATCH)
            return "needs_person"
        refund_request(order=order, payment=payment, reason=f"not provisioned: {why}", actor=actor)
        # The SMP may have subscribed without our hearing it: take that back too (idempotent).
        outbox.enqueue("billing.tasks.revoke_on_smp", kwargs={"order_id": order.pk})
        _watch_refund(order)
        return "refunding"
    if payment is not None and payment.status == PaymentStatus.PENDING:
        payment.status = PaymentStatus.FAILED
        payment.failure_reason = why[:255]
        payment.save(update_fields=["status", "failure_reason", "updated_at"])
    transit(order, "fail", code=FailureCode.PROVISIONING_FAILED, detail=why, actor=actor, reason=why)
    if method in (PaymentMethod.PHONE_BILL, PaymentMethod.PHONE_BILL_SMS):
        # The SMP may have charged without our hearing it: reversing is harmless if it did not.
        outbox.enqueue("billing.tasks.reverse_phone_bill", kwargs={"order_id": order.pk})
    elif method == PaymentMethod.CASH:
        outbox.enqueue("billing.tasks.revoke_on_smp", kwargs={"order_id": order.pk})
        work_item_open(order=order, kind=WorkItemKind.CASH_PAYBACK, detail=why)
    return "gave_up"
