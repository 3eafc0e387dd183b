"""awaiting_payment → payment_pending → provisioning, failed or expired: the clerk scans the customer's
payment code (付款码, docs/interfaces.md §10).

The scan is checked at once (whose code it is, never used before) and written as the payment's intent;
the order then waits in ``payment_pending`` while its due work (lifecycle.due) takes the payment through
the provider, one outside call per run, with the order claimed (lifecycle.claims) and no transaction open:

1. **charge** the code (WeChat Pay 付款码支付, Alipay ``trade.pay``): paid → ``provisioning`` through
   lifecycle.paid, as a QR payment; declined → ``failed``/``payment_declined``; the customer confirming in
   the app, or no clear answer → 2. The payment is marked sent before the call, so a run that dies in it
   is followed by queries, never by a second charge.
2. **query** every ``PAYMENT_CODE_QUERY_INTERVAL_SECONDS`` until ``PAYMENT_CODE_QUERY_SECONDS`` after the
   scan: paid → ``provisioning``; declined or closed → ``failed``/``payment_declined``.
3. **reverse** what is still unknown (WeChat reverse, Alipay cancel: an unpaid trade can no longer be
   paid, a paid one's money goes back) → ``expired``/``payment_timeout``. A reverse that does not go
   through is retried (``tasks.reverse_payment_code``), then handed to a person (a work item).

The clerk may cancel while the customer confirms: the order ends ``cancelled`` and its trade is reversed
the same way. Money that still arrives for an ended order (a late notification, a query) is refunded
(lifecycle.paid), never kept without the product; a reversed trade's paid notification is only noted, since
a paid trade's reverse is the provider's own refund.
"""

from __future__ import annotations

import enum
import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from adapters.providers import get_provider
from adapters.providers.types import CodePaymentRequest, CodeState, ProviderUnavailable, Trade, TradeState
from billing.models import Payment, PaymentStatus, Provider, WorkItemKind
from billing.services.payment_codes import (
    payment_code_normalize,
    payment_code_provider,
    payment_code_use_record,
    payment_code_used,
    used_already,
)
from billing.services.payments import OPEN_STATUSES, next_out_trade_no
from billing.services.work import work_item_open
from ipvas import outbox
from ipvas.actors import Actor
from lifecycle import paid, tasks
from lifecycle.claims import claim, lock_claimed, lock_if_due
from lifecycle.transitions import lock_order, lock_to_pay, record_event, schedule_due, transit
from orders.constants import FailureCode, OrderStatus, PaymentMethod
from orders.models import Order

logger = logging.getLogger(__name__)

MAX_REVERSE_BACKOFF_SECONDS = 300
# Beyond a provider call's timeout, for the clocks of two workers and the provider's own processing.
CALL_MARGIN_SECONDS = 5


class Step(enum.StrEnum):
    CHARGE = "charge"
    QUERY = "query"
    REVERSE = "reverse"


def payment_code_pay(*, order_id: int, code: str, actor: Actor) -> Order:
    """The clerk scanned ``code``: refuse it at once if it is nobody's or was used, else start charging it.

    Refused, the order stays ``awaiting_payment`` and nothing is written.
    """
    code = payment_code_normalize(code)
    provider = payment_code_provider(code)  # whose it is, or InvalidInput
    if payment_code_used(code):
        raise used_already()
    now = timezone.now()
    with transaction.atomic():
        order = lock_to_pay(order_id, PaymentMethod.PAYMENT_CODE)
        payment = Payment.objects.create(
            order=order,
            method=PaymentMethod.PAYMENT_CODE,
            provider=provider,
            out_trade_no=next_out_trade_no(order, provider),
            amount_fen=order.amount_fen,
            status=PaymentStatus.CREATING,
            expires_at=now + timedelta(seconds=settings.PAYMENT_CODE_QUERY_SECONDS),
        )
        payment_code_use_record(code=code, payment=payment)  # the unique table: a second use is refused
        # Due now: the due task charges the code (and the sweep finds the order if that task is lost).
        transit(
            order,
            order.start_payment,
            payment_method=PaymentMethod.PAYMENT_CODE,
            deadline_at=now,
            now=now,
            actor=actor,
            reason=f"payment code scanned ({provider} {payment.out_trade_no})",
            data={"method": PaymentMethod.PAYMENT_CODE, "provider": provider},
        )
    return order


def open_code_payment(order: Order) -> Payment | None:
    return (
        Payment.objects.filter(order=order, method=PaymentMethod.PAYMENT_CODE, status__in=OPEN_STATUSES)
        .select_related("code_use")
        .order_by("-created_at", "-pk")
        .first()
    )


def payment_code_due(order_id: int, due_at: datetime | None) -> str:
    """The order's due work while a payment code is at its provider: charge, query or reverse."""
    with transaction.atomic():
        order = lock_if_due(order_id, due_at, OrderStatus.PAYMENT_PENDING)
        if order is None or order.payment_method != PaymentMethod.PAYMENT_CODE:
            return "not_due"
        payment = open_code_payment(order)
        if payment is None:
            transit(
                order,
                order.expire,
                code=FailureCode.PAYMENT_TIMEOUT,
                actor=Actor.task("payment-code"),
                reason="no payment code left to charge",
            )
            return "expired"
        if payment.status == PaymentStatus.CREATING and timezone.now() >= payment.expires_at:
            # The worker comes to the charge after the scan's window (a backlog): nothing is sent. The customer
            # waited a minute with nothing asked of them, and a charge sent now could not be followed.
            payment.status, payment.failure_reason = PaymentStatus.CLOSED, "not sent: the scan's window was over"
            payment.save(update_fields=["status", "failure_reason", "updated_at"])
            transit(
                order,
                order.expire,
                code=FailureCode.PAYMENT_TIMEOUT,
                actor=Actor.task("payment-code"),
                reason=f"the charge was not sent within {settings.PAYMENT_CODE_QUERY_SECONDS} s of the scan",
            )
            return "expired"
        if payment.status == PaymentStatus.CREATING:
            step = Step.CHARGE
            # Sent from now on: a run that dies in the call is followed by queries, never a second charge.
            payment.status = PaymentStatus.PENDING
            payment.save(update_fields=["status", "updated_at"])
            request = CodePaymentRequest(
                out_trade_no=payment.out_trade_no,
                auth_code=payment.code_use.code,
                amount_fen=payment.amount_fen,
                description=order.product.name,
                store_code=order.store_code,
            )
        else:
            step = Step.QUERY if timezone.now() < payment.expires_at else Step.REVERSE
        claimed = claim(order)
    if step == Step.CHARGE:
        return _charge(order_id, claimed, payment, request)
    if step == Step.QUERY:
        return _query(order_id, claimed, payment)
    return _reverse_at_the_end(order_id, claimed, payment)


def _actor() -> Actor:
    return Actor.task("payment-code")


def _charge(order_id: int, claimed: datetime, payment: Payment, request: CodePaymentRequest) -> str:
    try:
        result = get_provider(payment.provider).pay_code(request)
    except ProviderUnavailable as exc:
        # The answer never came: the charge may have happened. Ask again in a moment.
        return _wait(order_id, claimed, payment, why=f"no answer to the charge: {exc}", first=True)
    if result.state == CodeState.PAID:
        return _paid(payment, transaction_id=result.transaction_id, amount_fen=result.amount_fen, at=result.paid_at)
    if result.state == CodeState.DECLINED:
        return _declined(order_id, claimed, payment, detail=f"{result.code} {result.message}".strip())
    why = "the customer is confirming in the app" if result.state == CodeState.CONFIRMING else "outcome unknown"
    return _wait(order_id, claimed, payment, why=f"{why} {result.code}".strip(), first=True)


def _query(order_id: int, claimed: datetime, payment: Payment) -> str:
    try:
        trade = get_provider(payment.provider).query(payment.out_trade_no)
    except ProviderUnavailable as exc:
        return _wait(order_id, claimed, payment, why=f"query: {exc}")
    return _settle_by_query(order_id, claimed, payment, trade) or _wait(
        order_id, claimed, payment, why=f"still {trade.state}"
    )


def _settle_by_query(order_id: int, claimed: datetime, payment: Payment, trade: Trade) -> str | None:
    """What a query settles: paid or declined; None while it is still open or unknown."""
    if trade.state == TradeState.PAID:
        return _paid(payment, transaction_id=trade.transaction_id, amount_fen=trade.amount_fen, at=trade.paid_at)
    if trade.state in (TradeState.FAILED, TradeState.CLOSED):
        detail = str(trade.raw.get("trade_state_desc") or trade.raw.get("trade_status") or trade.state)
        return _declined(order_id, claimed, payment, detail=detail)
    return None


def _reverse_at_the_end(order_id: int, claimed: datetime, payment: Payment) -> str:
    """The query window is over: a last look (paid at the last second is kept), then reverse."""
    provider = get_provider(payment.provider)
    try:
        trade = provider.query(payment.out_trade_no)
    except ProviderUnavailable:
        trade = None
    # Closed, or paid with its money gone back, after a reverse was sent is our own reverse (its run died
    # before recording it): reversed again.
    ours = trade is not None and (
        _our_reverse(payment, trade) or (payment.reverse_sent_at is not None and trade.state == TradeState.CLOSED)
    )
    settled = _settle_by_query(order_id, claimed, payment, trade) if trade is not None and not ours else None
    if settled is not None:
        return settled
    if _paid_meanwhile(payment):
        return "paid"  # a notification came between the last look and now: the order is provisioned
    try:
        _reverse_sent(payment)
        result = provider.reverse(payment.out_trade_no)
        reversed_, why, not_found = result.reversed, result.message, result.not_found
    except ProviderUnavailable as exc:
        reversed_, why, not_found = False, str(exc), False
    if reversed_ and _paid_meanwhile(payment):
        _reversed_while_paid(payment)
        return "paid"
    actor = _actor()
    with transaction.atomic():
        order = lock_claimed(order_id, claimed, OrderStatus.PAYMENT_PENDING)
        if reversed_ and _paid_meanwhile(payment):
            # Recorded paid after the look above, before this lock (a notification applies under the order's
            # lock, so now it is settled): the order went on while the reverse gave the money back.
            _reversed_while_paid(payment)
            return "paid"
        if reversed_:
            _settle_reversed(payment, not_found=not_found)
        else:
            payment_code_reverse_later(payment, attempt=1)
        if order is None:
            return "superseded"
        seconds = settings.PAYMENT_CODE_QUERY_SECONDS
        transit(
            order,
            order.expire,
            code=FailureCode.PAYMENT_TIMEOUT,
            actor=actor,
            reason=f"not paid in {seconds} s; reversed at {payment.provider}"
            if reversed_
            else f"not paid in {seconds} s; the reverse at {payment.provider} is retried: {why}",
        )
        return "expired"


def _our_reverse(payment: Payment, trade: Trade) -> bool:
    """A trade paid with its money gone back after a reverse was sent is that reverse (WeChat Pay's REFUND):
    nothing of ours refunds a payment not recorded paid, so it is a charge paid at the last moment and given
    back by our reverse, however the provider names it. Not a payment to record."""
    return payment.reverse_sent_at is not None and trade.state == TradeState.PAID and trade.refunded


def _paid(payment: Payment, *, transaction_id: str, amount_fen: int, at: datetime | None) -> str:
    """The provider took the money: the order is provisioned, or the money goes back if the order ended."""
    return paid.payment_succeeded(
        provider=payment.provider,
        out_trade_no=payment.out_trade_no,
        transaction_id=transaction_id,
        amount_fen=amount_fen or payment.amount_fen,
        paid_at=at,
        actor=_actor(),
    )


def _paid_meanwhile(payment: Payment) -> bool:
    return Payment.objects.filter(pk=payment.pk, status=PaymentStatus.PAID).exists()


def _reverse_sent(payment: Payment) -> None:
    """Written (committed) before the reverse is sent, as the charge's PENDING is before the charge."""
    Payment.objects.filter(pk=payment.pk).update(reverse_sent_at=timezone.now())


def _settle_reversed(payment: Payment, *, not_found: bool) -> None:
    """The provider reversed the trade: ``reversed``, so that a paid notification still on its way is booked as
    money the reverse gave back (lifecycle.paid); closed when the provider had no such trade."""
    status = PaymentStatus.CLOSED if not_found else PaymentStatus.REVERSED
    Payment.objects.filter(pk=payment.pk, status__in=OPEN_STATUSES).update(status=status)


def _reversed_while_paid(payment: Payment) -> None:
    """The payment was recorded paid (a notification) while its reverse was on the way: the provider may
    have given the money back by the reverse. A person compares the trade with the order."""
    work_item_open(
        order=payment.order,
        kind=WorkItemKind.PROVIDER_DISAGREES,
        detail=f"{payment.provider} payment code {payment.out_trade_no} was reversed while it was paid",
    )


def _declined(order_id: int, claimed: datetime, payment: Payment, *, detail: str) -> str:
    with transaction.atomic():
        order = lock_claimed(order_id, claimed, OrderStatus.PAYMENT_PENDING)
        Payment.objects.filter(pk=payment.pk, status__in=OPEN_STATUSES).update(
            status=PaymentStatus.FAILED, failure_reason=detail[:255]
        )
        if order is None:
            return "superseded"
        transit(
            order,
            order.fail,
            code=FailureCode.PAYMENT_DECLINED,
            detail=detail,
            actor=_actor(),
            reason=f"{payment.provider} declined the payment code: {detail}",
        )
        return "declined"


def _wait(order_id: int, claimed: datetime, payment: Payment, *, why: str, first: bool = False) -> str:
    """Still open or unknown: look again after the query interval (the last look is at the window's end)."""
    with transaction.atomic():
        order = lock_claimed(order_id, claimed, OrderStatus.PAYMENT_PENDING)
        if order is None:
            # The order ended meanwhile (the clerk cancelled): its trade must not stay payable. Still waiting for
            # its payment, it is another run's now (the sweep took over a claim this run outlived), and that run
            # goes on querying: reversing here would take the customer's payment away inside the window.
            ended = not Order.objects.filter(pk=order_id, status=OrderStatus.PAYMENT_PENDING).exists()
            if ended and Payment.objects.filter(pk=payment.pk, status__in=OPEN_STATUSES).exists():
                payment_code_reverse_later(payment)
            return "superseded"
        now = timezone.now()
        interval = timedelta(seconds=settings.PAYMENT_CODE_QUERY_INTERVAL_SECONDS)
        order.deadline_at = max(min(now + interval, payment.expires_at), now)
        order.save(update_fields=["deadline_at", "updated_at"])
        if first:
            record_event(order, "payment_code_waiting", actor=_actor(), from_status=order.status, reason=why)
        schedule_due(order)
        return "waiting"


# --- the reverse, when it did not go through at once (and after a cancel) --------------------------


def payment_code_reverse_later(payment: Payment, *, attempt: int = 0, after: timedelta | None = None) -> None:
    """Reverse this payment code's trade after the caller's transaction commits (retried, then a person).

    ``attempt`` counts the reverses that failed (the backoff and the budget); ``after``, a wait that is not
    one of them (the trade not there yet).
    """
    wait = after if after is not None else _reverse_backoff(attempt - 1) if attempt else timedelta(0)
    due_at = timezone.now() + wait
    outbox.enqueue(tasks.reverse_payment_code, kwargs={"payment_id": payment.pk, "attempt": attempt}, due_at=due_at)


def _charge_arrived_by(payment: Payment) -> datetime:
    """When a charge of this payment has reached its provider, if it ever will: it is sent within the scan's
    window only (payment_code_due), and its call lasts at most the provider client's timeout."""
    timeout = {Provider.WECHATPAY: settings.WECHATPAY_TIMEOUT_SECONDS, Provider.ALIPAY: settings.ALIPAY_TIMEOUT_SECONDS}
    return payment.expires_at + timedelta(seconds=timeout[payment.provider] + CALL_MARGIN_SECONDS)


def _reverse_backoff(attempt: int) -> timedelta:
    return timedelta(seconds=min(5 * 2 ** max(attempt, 0), MAX_REVERSE_BACKOFF_SECONDS))


def payment_code_reverse(*, payment_id: int, attempt: int = 0) -> str:
    """Reverse an ended order's payment-code trade. A last look first: money it took goes back by a refund
    (lifecycle.paid); a trade never sent is simply closed. Safe to run twice."""
    payment = Payment.objects.select_related("order").get(pk=payment_id)
    if Payment.objects.filter(pk=payment_id, status=PaymentStatus.CREATING).update(status=PaymentStatus.CLOSED):
        return "never_sent"  # the order ended before its due work charged the code
    if payment.status not in OPEN_STATUSES:
        return "done"  # paid (a refund follows) or closed already
    provider = get_provider(payment.provider)
    not_found = False
    try:
        trade = provider.query(payment.out_trade_no)
        # A retry after a reverse whose answer was lost: its own refund is no payment (reversed again below).
        if trade.state == TradeState.PAID and not _our_reverse(payment, trade):
            return _paid(payment, transaction_id=trade.transaction_id, amount_fen=trade.amount_fen, at=trade.paid_at)
        if _paid_meanwhile(payment):
            return "done"
        _reverse_sent(payment)
        result = provider.reverse(payment.out_trade_no)
        reversed_, again, why, not_found = result.reversed, result.again, result.message, result.not_found
    except ProviderUnavailable as exc:
        reversed_, again, why = False, True, str(exc)
    if reversed_:
        with transaction.atomic():
            lock_order(payment.order_id)  # a paid notification applies under it: before this, or it sees the end
            if _paid_meanwhile(payment):
                _reversed_while_paid(payment)
                return "reversed_while_paid"
            if not_found and payment.status == PaymentStatus.PENDING and timezone.now() < _charge_arrived_by(payment):
                # No trade yet, though the charge was sent: it may still be on its way (the clerk cancelled
                # during the call). Closed now, the trade it makes would stay payable; reversed again until
                # every charge sent in the scan's window has had its call's time to arrive.
                # A look for a trade on its way is not a failed reverse: the budget stays for the reverse.
                interval = timedelta(seconds=settings.PAYMENT_CODE_QUERY_INTERVAL_SECONDS)
                payment_code_reverse_later(payment, attempt=attempt, after=interval)
                return "not_there_yet"
            _settle_reversed(payment, not_found=not_found)
            return "reversed"
    if not again or attempt + 1 >= settings.PAYMENT_CODE_REVERSE_ATTEMPTS:
        # The provider will not reverse it, or never answered: a person checks the trade in its merchant
        # platform (money it took is refunded from admin).
        work_item_open(
            order=payment.order,
            kind=WorkItemKind.PROVIDER_DISAGREES,
            detail=f"could not reverse {payment.provider} payment code {payment.out_trade_no}: {why}",
        )
        logger.error("payment code %s: reverse at %s gave up: %s", payment.out_trade_no, payment.provider, why)
        return "gave_up"
    with transaction.atomic():
        payment_code_reverse_later(payment, attempt=attempt + 1)
    return "retry"
