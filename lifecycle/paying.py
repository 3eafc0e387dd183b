"""awaiting_payment → payment_pending or provisioning: the customer (or the clerk) chooses how to pay.

Network calls to providers happen with no transaction open: a payment is
written first as an intent (``creating``), the provider is called, then the
answer is recorded under the order's lock. Locks are always taken order
first, then its payment.
"""

from __future__ import annotations

import logging
import math
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Count, Min, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from adapters.providers import get_provider
from adapters.providers.types import ProviderRefused, ProviderUnavailable, QrOrderRequest
from billing.models import Payment, PaymentStatus, Provider
from billing.services.payments import (
    CREATING_GUARD,
    OPEN_STATUSES,
    PROVIDER_FOR_METHOD,
    lock_payment,
    next_out_trade_no,
    open_payment,
    payment_shown,
    payment_window_end,
)
from billing.services.sms import sms_confirmation_expire
from ipvas import outbox
from ipvas.actors import Actor
from ipvas.errors import ExternalServiceError, InvalidState, RateLimited
from lifecycle import confirmations, contracts, paid, payment_code, tasks
from lifecycle.claims import lock_if_due
from lifecycle.transitions import lock_order, lock_to_pay, method_refused, transit
from orders.constants import QR_METHODS, Channel, FailureCode, OrderStatus, PaymentMethod
from orders.models import Order

logger = logging.getLogger(__name__)

# QR tries that failed at the provider (down, refusing, no answer): at most this many per order and provider in a
# window, then 429.
QR_FAILED_TRIES_PER_WINDOW = 5
QR_FAILED_TRIES_WINDOW = timedelta(minutes=1)


def not_now(order: Order) -> InvalidState:
    return InvalidState(
        _("A payment method cannot be chosen for an order that is %(status)s.")
        % {"status": OrderStatus(order.status).label},
        extra={"status": order.status},
    )


def payment_choose(
    *,
    order_id: int,
    method: str,
    actor: Actor,
    code: str = "",
    clerk: AbstractBaseUser | None = None,
    virtual_staff_id: str = "",
) -> Order:
    """The customer (on the TV) or the clerk chose how to pay.

    ``awaiting_payment`` accepts any method the product allows on the order's
    channel; ``payment_pending`` accepts a switch between the two QR methods.
    ``payment_code`` comes with the ``code`` the clerk scanned (lifecycle.payment_code). ``clerk``: who takes
    the payment at the counter; cash taken by another than the clerk who made the sale (their store's manager)
    is theirs: the sale becomes theirs (the CRM bills it under their virtual staff id, their shift counts it).
    ``virtual_staff_id``: the one of the clerk's session at the counter, which the CRM bills cash under.
    """
    # Each way locks the order and checks there that the product may be paid with ``method`` (lock_to_pay):
    # not read once more before (issue #17).
    if method in QR_METHODS:
        return _qr_start(order_id=order_id, method=method, actor=actor)
    if method == PaymentMethod.PHONE_BILL_SMS:
        return confirmations.sms_confirmation_start(order_id=order_id, actor=actor)
    if method == PaymentMethod.PHONE_BILL:
        return _phone_bill_start(order_id=order_id, actor=actor)
    if method == PaymentMethod.CASH:
        return _cash_received(order_id=order_id, actor=actor, clerk=clerk, virtual_staff_id=virtual_staff_id)
    if method == PaymentMethod.PAYMENT_CODE:
        return payment_code.payment_code_pay(order_id=order_id, code=code, actor=actor)
    # No method of ours: the answer names this order's (read for it, on this error path only).
    raise method_refused(Order.objects.select_related("product").get(pk=order_id).methods_allowed())


def _phone_bill_start(*, order_id: int, actor: Actor) -> Order:
    """Phone bill without confirmation: the SMP charges as it subscribes, at once."""
    with transaction.atomic():
        order = lock_to_pay(order_id, PaymentMethod.PHONE_BILL)
        if order.status != OrderStatus.AWAITING_PAYMENT:
            raise not_now(order)
        payment = Payment.objects.create(
            order=order,
            method=PaymentMethod.PHONE_BILL,
            provider=Provider.SMP,
            out_trade_no=order.order_no,
            amount_fen=order.amount_fen,
            status=PaymentStatus.PENDING,
        )
        transit(
            order, order.payment_confirmed, payment_method=PaymentMethod.PHONE_BILL, actor=actor, reason="phone bill"
        )
        payment_shown(order, payment)
    return order


def _cash_received(
    *, order_id: int, actor: Actor, clerk: AbstractBaseUser | None = None, virtual_staff_id: str = ""
) -> Order:
    """The clerk confirms the cash is in hand; the CRM activity runs next (lifecycle.payment_due), billed under
    ``virtual_staff_id`` (else the clerk's)."""
    with transaction.atomic():
        order = lock_to_pay(order_id, PaymentMethod.CASH)
        if order.channel != Channel.CRM:
            raise InvalidState(_("Cash is only taken in business halls."))
        if order.status != OrderStatus.AWAITING_PAYMENT:
            raise not_now(order)
        taken_by = (clerk.pk if clerk is not None else order.clerk_id, virtual_staff_id or order.virtual_staff_id)
        if taken_by != (order.clerk_id, order.virtual_staff_id):
            # The cash is in their hands: the sale is theirs, billed under their session's virtual staff id.
            order.clerk_id, order.virtual_staff_id = taken_by
            order.save(update_fields=["clerk", "virtual_staff_id", "updated_at"])
        Payment.objects.create(
            order=order,
            method=PaymentMethod.CASH,
            provider=Provider.CRM,
            out_trade_no=order.order_no,
            amount_fen=order.amount_fen,
            status=PaymentStatus.PENDING,
        )
        now = timezone.now()
        transit(
            order,
            order.start_payment,
            payment_method=PaymentMethod.CASH,
            deadline_at=now,
            now=now,
            actor=actor,
            reason="the clerk confirmed the cash received",
            data={"method": PaymentMethod.CASH},
        )
    return order


def _qr_start(*, order_id: int, method: str, actor: Actor) -> Order:
    provider_name = PROVIDER_FOR_METHOD[method]
    now = timezone.now()
    with transaction.atomic():
        order = lock_to_pay(order_id, method)
        previous = None
        if order.status == OrderStatus.PAYMENT_PENDING and order.payment_method in QR_METHODS:
            previous = open_payment(order)
            if order.payment_method == method and previous and previous.status == PaymentStatus.PENDING:
                return order  # the same QR code again: nothing to do
        elif order.status != OrderStatus.AWAITING_PAYMENT:
            raise not_now(order)
        tries = _qr_tries(order, provider_name, now)
        if tries["being_created"]:
            raise InvalidState(_("A payment for this order is being created; try again in a moment."))
        # Every switch opens a provider trade: a bounded number per order (counted under the order's lock).
        if tries["opened"] > settings.QR_SWITCHES_PER_ORDER:
            window_left = (order.deadline_at - now).total_seconds() if order.deadline_at else 60
            raise RateLimited(
                _("The QR code was switched too often for this order; cancel it and start a new order."),
                retry_after=max(1, int(window_left)),
            )
        # Tries the provider did not take (down, refusing, no answer in time) showed no code and are not switches;
        # they are bounded per provider and minute instead, so that an order is not locked out of QR codes by an
        # outage it waited out, nor out of the other provider by this one's outage. A try whose answer was lost
        # may have opened a trade that nobody was shown: it expires at the provider with the payment's window.
        if tries["failed_lately"] >= QR_FAILED_TRIES_PER_WINDOW:
            window_left = (tries["first_failed_at"] + QR_FAILED_TRIES_WINDOW - now).total_seconds()
            raise RateLimited(
                _("The payment provider is not answering; choose another method or try again in a minute."),
                retry_after=max(1, math.ceil(window_left)),
            )
        payment = Payment.objects.create(
            order=order,
            method=method,
            provider=provider_name,
            out_trade_no=next_out_trade_no(order, provider_name),
            amount_fen=order.amount_fen,
            status=PaymentStatus.CREATING,
            expires_at=payment_window_end(now),
        )
        description = order.product.name
        # An auto-renewing order's QR code pays the first period and signs the deduction contract in one scan.
        contract = contracts.contract_offer(order, payment) if order.auto_renew else None
        signing = contracts.contract_order_request(order, payment, contract) if contract is not None else None

    if previous is not None:
        _close_before_switch(previous, new_payment=payment, actor=actor)

    try:
        if signing is not None:
            code_url = get_provider(provider_name).create_with_contract(signing)
        else:
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
        payment = lock_payment(payment.pk)
        if payment.status == PaymentStatus.PAID:
            return order  # paid before we got here: the notification already moved the order on
        if payment.status == PaymentStatus.CREATING and (
            order.status == OrderStatus.AWAITING_PAYMENT
            or (order.status == OrderStatus.PAYMENT_PENDING and order.payment_method in QR_METHODS)
        ):
            return _qr_shown(order, payment, code_url, method=method, actor=actor)
        # Cancelled or expired while the provider answered (a close that ran then found no trade yet): the
        # trade it has just opened must not stay payable. Closed here, at the provider after the commit.
        Payment.objects.filter(pk=payment.pk, status__in=OPEN_STATUSES).update(status=PaymentStatus.CLOSED)
        payment_close_later(payment)
    raise not_now(order)


def _qr_shown(order: Order, payment: Payment, code_url: str, *, method: str, actor: Actor) -> Order:
    """The provider opened the trade of ``payment`` (locked, with its order): its QR code is the order's now."""
    payment.status = PaymentStatus.PENDING
    payment.qr_code_url = code_url
    payment.save(update_fields=["status", "qr_code_url", "updated_at"])
    if order.status == OrderStatus.AWAITING_PAYMENT:
        transit(
            order,
            order.start_payment,
            payment_method=method,
            deadline_at=payment.expires_at,
            actor=actor,
            reason=f"QR code shown ({payment.provider} {payment.out_trade_no})",
            data={"method": method},
        )
    else:
        transit(
            order,
            order.switch_payment,
            payment_method=method,
            deadline_at=payment.expires_at,
            actor=actor,
            reason=f"switched to {payment.provider} ({payment.out_trade_no})",
            data={"method": method},
        )
    payment_shown(order, payment)
    return order


def _qr_tries(order: Order, provider_name: str, now: datetime) -> dict:
    """The order's QR tries so far, in one statement: one being created now, the trades opened (shown, paid,
    closed, or being created), and the tries at ``provider_name`` that failed within ``QR_FAILED_TRIES_WINDOW``."""
    lately = Q(status=PaymentStatus.FAILED, created_at__gt=now - QR_FAILED_TRIES_WINDOW, provider=provider_name)
    return Payment.objects.filter(order=order).aggregate(
        being_created=Count("pk", filter=Q(status=PaymentStatus.CREATING, created_at__gt=now - CREATING_GUARD)),
        opened=Count("pk", filter=Q(method__in=QR_METHODS) & ~Q(status=PaymentStatus.FAILED)),
        failed_lately=Count("pk", filter=lately),
        first_failed_at=Min("created_at", filter=lately),
    )


def _close_before_switch(previous: Payment, *, new_payment: Payment, actor: Actor) -> None:
    """Close the QR order the customer is switching away from, before showing another."""
    provider = get_provider(previous.provider)
    try:
        result = provider.close(previous.out_trade_no)
        trade = provider.query(previous.out_trade_no) if result.already_paid else None
    except ProviderUnavailable as exc:
        # The close may have gone through: the code shown before is no longer offered (choosing its method
        # again opens a new trade), and the close is tried again after this. Money that still arrives on it
        # pays the order, or goes back (lifecycle.paid).
        with transaction.atomic():
            lock_order(previous.order_id)
            Payment.objects.filter(pk=new_payment.pk).update(
                status=PaymentStatus.FAILED, failure_reason="switch aborted"
            )
            if Payment.objects.filter(pk=previous.pk, status__in=OPEN_STATUSES).update(status=PaymentStatus.CLOSED):
                payment_close_later(previous)
        raise ExternalServiceError(_("The payment provider is not answering; please try again.")) from exc
    if trade is not None:
        # Paid just before the switch: that payment stands, the switch does not happen.
        Payment.objects.filter(pk=new_payment.pk).update(status=PaymentStatus.FAILED, failure_reason="already paid")
        paid.payment_succeeded(
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
        payment = lock_payment(previous.pk)
        if payment.status in OPEN_STATUSES:
            payment.status = PaymentStatus.CLOSED
            payment.save(update_fields=["status", "updated_at"])


def payment_close_later(payment: Payment) -> None:
    """Close a stray QR order at its provider after this transaction commits (lifecycle.followups)."""
    outbox.enqueue(tasks.close_provider_order, kwargs={"payment_id": payment.pk})


def order_cancel(*, order_id: int, actor: Actor) -> Order:
    """The customer or the clerk gives up before paying. An open QR order is closed at its
    provider afterwards, a payment code the customer is confirming is reversed; money that still
    arrives for either is refunded."""
    with transaction.atomic():
        order = lock_order(order_id)
        open_payments = list(Payment.objects.filter(order=order, status__in=OPEN_STATUSES))
        transit(order, order.cancel, actor=actor, reason="cancelled before payment")
        for payment in open_payments:
            if payment.method in QR_METHODS:
                payment_close_later(payment)
            elif payment.method == PaymentMethod.PAYMENT_CODE:
                payment_code.payment_code_reverse_later(payment)
        sms_confirmation_expire(order)
    return order


IDLE_REASON = "no payment method chosen in %(seconds)s s"


def idle_due(order_id: int, due_at: datetime | None) -> str:
    """awaiting_payment → expired: no payment method was chosen in ``ORDER_IDLE_SECONDS``."""
    with transaction.atomic():
        order = lock_if_due(order_id, due_at, OrderStatus.AWAITING_PAYMENT)
        if order is None:
            return "not_due"
        transit(
            order,
            order.expire,
            code=FailureCode.PAYMENT_TIMEOUT,
            actor=Actor.task("deadline"),
            reason=IDLE_REASON % {"seconds": settings.ORDER_IDLE_SECONDS},
        )
        return "expired"
