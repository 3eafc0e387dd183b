"""provisioning → completed, failed or refunded: subscribe on the SMP, with retries until its deadline;
when it finally cannot, the money goes back the way it came (provider refund, SMP reversal, or cash
paid back by the store).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from adapters.smp import SmpCharge, SmpUnavailable, SubscribeRequest, get_smp
from billing.models import LedgerKind, Payment, PaymentStatus, Provider, Refund, RefundStatus, WorkItemKind
from billing.services.ledger import ledger_record, order_totals, payment_refundable_fen
from billing.services.payments import lock_payments
from billing.services.refunds import active_refund
from billing.services.work import work_item_open
from ipvas import outbox
from ipvas.actors import Actor
from lifecycle import refunds, renewals, tasks
from lifecycle.claims import claim, lock_claimed, lock_if_due, look_again, retry_later
from lifecycle.transitions import transit
from orders import selectors
from orders.constants import (
    PHONE_BILL_METHODS,
    PRECHECK_FAILURES,
    PROVIDER_METHODS,
    Channel,
    FailureCode,
    OrderStatus,
    PaymentMethod,
)
from orders.models import Order
from orders.services import entitlement_grant

logger = logging.getLogger(__name__)

# How the SMP is told to charge, by how the customer paid.
CHARGE_FOR_METHOD: dict[str, str] = {
    PaymentMethod.WECHAT_QR: SmpCharge.PREPAID,
    PaymentMethod.ALIPAY_QR: SmpCharge.PREPAID,
    PaymentMethod.PHONE_BILL: SmpCharge.PHONE_BILL,
    PaymentMethod.PHONE_BILL_SMS: SmpCharge.PHONE_BILL,
    PaymentMethod.CASH: SmpCharge.MARKETING_ACCOUNT,
    PaymentMethod.PAYMENT_CODE: SmpCharge.PREPAID,
}
# While a refund is under way, how often the order looks at it.
REFUND_WATCH = timedelta(seconds=60)
# While a person must decide, how often the order is looked at again.
NEEDS_PERSON_WATCH = timedelta(hours=1)


def provisioning_cutoff(order: Order) -> datetime:
    return order.status_changed_at + timedelta(seconds=settings.PROVISIONING_DEADLINE_SECONDS)


def _paid_payment(order: Order) -> Payment | None:
    """The latest payment of the order's method that did not fail, close or reverse, locked (the order is)."""
    ended = (PaymentStatus.FAILED, PaymentStatus.CLOSED, PaymentStatus.REVERSED)
    payments = [
        payment
        for payment in lock_payments(order).values()
        if payment.method == order.payment_method and payment.status not in ended
    ]
    return max(payments, key=lambda payment: (payment.created_at, payment.pk), default=None)


def provisioning_due(order_id: int, due_at: datetime | None) -> str:
    actor = Actor.task("provision")
    with transaction.atomic():
        order = lock_if_due(order_id, due_at, OrderStatus.PROVISIONING)
        if order is None:
            return "not_due"
        refund = active_refund(order)
        if refund is not None and _left_after_refunds(order) <= 0:
            # The money is on its way back and the refund drives itself (its own retries; a chain that was
            # lost is started again by lifecycle.stalled); the order only keeps an eye on it.
            look_again(order, after=REFUND_WATCH)
            return "refunding"
        unsent_charge = _unsent_renewal_charge(order)
        if unsent_charge is not None:
            if renewals.renewal_stopped(order):
                # Cancelled before its phone-bill charge was sent: that charge never happens. (A deduction was
                # taken already: its period is provisioned, and the cancel stops the next one.)
                unsent_charge.status = PaymentStatus.CLOSED
                unsent_charge.save(update_fields=["status", "updated_at"])
                transit(order, order.cancel_renewal, actor=actor, reason="the subscription was cancelled")
                return "cancelled"
        if timezone.now() >= provisioning_cutoff(order):
            return _give_up(order, why="the SMP did not subscribe before the provisioning deadline", actor=actor)
        taken = selectors.per_view_taken(order)
        if taken and order.payment_method in (PaymentMethod.PHONE_BILL, PaymentMethod.PHONE_BILL_SMS):
            # Checked again before the phone bill is charged: nothing is taken for what is owned already.
            Payment.objects.filter(order=order, method=order.payment_method, status=PaymentStatus.PENDING).update(
                status=PaymentStatus.FAILED, failure_reason="already subscribed"
            )
            transit(order, order.fail, code=FailureCode.ALREADY_SUBSCRIBED, actor=actor, reason=taken)
            return "failed"
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
            idempotency_key=order.smp_idempotency_key,
        )
        if unsent_charge is not None:
            # Sent from now on, with the claim: a cancel that comes later, or a run after this one dies in the
            # call or loses its answer, no longer stops it; the idempotent subscribe is retried until it
            # completes (docs/interfaces.md §8: a charge already sent completes).
            unsent_charge.status = PaymentStatus.PENDING
            unsent_charge.save(update_fields=["status", "updated_at"])
        claimed = claim(order)
    try:
        result = get_smp().subscribe(request)
    except SmpUnavailable as exc:
        with transaction.atomic():
            order = lock_claimed(order_id, claimed, OrderStatus.PROVISIONING, product=product)
            if order is None:
                return "superseded"
            retry_later(order, actor=actor, why=str(exc), cutoff=provisioning_cutoff(order))
            return "retry"
    with transaction.atomic():
        order = lock_claimed(order_id, claimed, OrderStatus.PROVISIONING, product=product)
        if order is None:
            return "superseded"
        if result.ok:
            entitlement_grant(
                order=order, subscription_id=result.subscription_id, starts_at=result.starts_at, ends_at=result.ends_at
            )
            if charge == SmpCharge.PHONE_BILL:
                _phone_bill_charged(order, result.subscription_id, actor)
            transit(order, order.complete, actor=actor, reason=f"SMP subscription {result.subscription_id}")
            return "completed"
        if charge == SmpCharge.PHONE_BILL and _refused_without_charge(order, result.reason):
            # The SMP refused the phone-bill charge (nothing was deducted): the order fails with its reason.
            Payment.objects.filter(order=order, method=order.payment_method, status=PaymentStatus.PENDING).update(
                status=PaymentStatus.FAILED, failure_reason=result.reason[:255]
            )
            transit(
                order,
                order.fail,
                code=result.reason,
                detail=result.message,
                actor=actor,
                reason=f"the SMP refused the phone-bill charge: {result.reason}",
            )
            return "failed"
        return _give_up(order, why=f"the SMP refused: {result.reason} {result.message}".strip(), actor=actor)


def _unsent_renewal_charge(order: Order) -> Payment | None:
    """A renewal's phone-bill payment whose charge was not sent to the SMP yet (order locked): it is
    ``creating`` until then, ``pending`` from then on. None for a charge sent already, or any other order."""
    if order.channel != Channel.RENEWAL or order.payment_method not in PHONE_BILL_METHODS:
        return None
    payment = _paid_payment(order)
    return payment if payment is not None and payment.status == PaymentStatus.CREATING else None


def _provider_payments_holding_money(order: Order) -> list[Payment]:
    """The order's WeChat Pay and Alipay payments (locked) that took money not given back yet: the one that
    paid for it, and any that paid it twice and are not refunded yet (whichever was made last)."""
    return [
        payment
        for payment in lock_payments(order).values()
        if payment.status == PaymentStatus.PAID
        and payment.provider in (Provider.WECHATPAY, Provider.ALIPAY)
        and payment_refundable_fen(payment) > 0
    ]


def _refused_without_charge(order: Order, reason: str) -> bool:
    """An SMP refusal that is an answer about the customer, not a fault: insufficient balance; for a
    renewal also a suspended or in-arrears account (the subscription retries, docs/interfaces.md §8)."""
    if reason == FailureCode.INSUFFICIENT_BALANCE:
        return True
    return order.channel == Channel.RENEWAL and reason in PRECHECK_FAILURES


def _left_after_refunds(order: Order) -> int:
    """What stays paid for the order once every refund under way has gone through.

    A duplicate payment being refunded does not hold the order back: the
    payment that pays for it still stands.
    """
    under_way = Refund.objects.filter(order=order, status__in=[RefundStatus.REQUESTED, RefundStatus.PROCESSING])
    return order_totals(order)["net_fen"] - sum(under_way.values_list("amount_fen", flat=True))


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
    method = order.payment_method
    held = _provider_payments_holding_money(order) if method in PROVIDER_METHODS else []
    if held:
        if Refund.objects.filter(
            order=order, status=RefundStatus.FAILED, created_at__gte=order.status_changed_at
        ).exists():
            # The provider refused to give it back: a person decides (retry the refund or
            # the provisioning, billing.services.work); the order waits for them.
            work_item_open(order=order, kind=WorkItemKind.REFUND_FAILED, detail=why)
            look_again(order, after=NEEDS_PERSON_WATCH)
            return "needs_person"
        for payment in held:
            refunds.refund_request(order=order, payment=payment, reason=f"not provisioned: {why}", actor=actor)
        # The SMP may have subscribed without our hearing it: take that back too (idempotent).
        outbox.enqueue(tasks.revoke_on_smp, kwargs={"order_id": order.pk})
        look_again(order, after=REFUND_WATCH)
        return "refunding"
    payment = _paid_payment(order)
    if payment is not None and payment.status in (PaymentStatus.CREATING, PaymentStatus.PENDING):
        payment.status = PaymentStatus.FAILED
        payment.failure_reason = why[:255]
        payment.save(update_fields=["status", "failure_reason", "updated_at"])
    transit(order, order.fail, code=FailureCode.PROVISIONING_FAILED, detail=why, actor=actor, reason=why)
    if method in (PaymentMethod.PHONE_BILL, PaymentMethod.PHONE_BILL_SMS):
        # The SMP may have charged without our hearing it: reversing is harmless if it did not.
        outbox.enqueue(tasks.reverse_phone_bill, kwargs={"order_id": order.pk})
    elif method == PaymentMethod.CASH:
        outbox.enqueue(tasks.revoke_on_smp, kwargs={"order_id": order.pk})
        work_item_open(order=order, kind=WorkItemKind.CASH_PAYBACK, detail=why)
    return "gave_up"
