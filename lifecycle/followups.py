"""Clean-up calls that follow a decision: close a stray QR order, reverse a phone-bill charge,
take a subscription back on the SMP, reverse a CRM activity.

Each is retried through the outbox with backoff; when it still fails, a
person is asked (billing.models.WorkItem).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import Task
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from adapters.crm import CrmUnavailable, get_crm
from adapters.providers import get_provider
from adapters.providers.types import ProviderUnavailable
from adapters.smp import SmpUnavailable, get_smp
from billing.models import LedgerKind, Payment, PaymentStatus, Provider, WorkItemKind
from billing.services.ledger import ledger_record
from billing.services.work import work_item_open
from ipvas import outbox
from ipvas.actors import Actor
from lifecycle import paid, refunds, renewals, subscriptions, tasks
from lifecycle.transitions import lock_order
from orders.constants import OrderStatus
from orders.models import Order, Subscription

logger = logging.getLogger(__name__)
MAX_ATTEMPTS = 10
# A failed renewal try's reversal waits this long for another try of the period that is at the SMP.
PERIOD_WAIT = timedelta(minutes=1)


def _again_or_ask(task: Task, kwargs: dict[str, int], attempt: int, *, order: Order, kind: str, detail: str) -> str:
    """The outside system did not answer: try again later, or, after MAX_ATTEMPTS, ask a person."""
    if attempt + 1 >= MAX_ATTEMPTS:
        work_item_open(order=order, kind=kind, detail=detail)
        return "gave_up"
    with transaction.atomic():
        outbox.enqueue(
            task,
            kwargs={**kwargs, "attempt": attempt + 1},
            due_at=timezone.now() + timedelta(seconds=min(2**attempt * 5, 300)),
        )
    return "retry"


def provider_order_close(*, payment_id: int, attempt: int = 0) -> str:
    payment = Payment.objects.get(pk=payment_id)
    provider = get_provider(payment.provider)
    try:
        result = provider.close(payment.out_trade_no)
        trade = provider.query(payment.out_trade_no) if result.already_paid else None
    except ProviderUnavailable as exc:
        return _again_or_ask(
            tasks.close_provider_order, {"payment_id": payment_id}, attempt,
            order=payment.order, kind=WorkItemKind.PROVIDER_DISAGREES,
            detail=f"could not close {payment.provider} order {payment.out_trade_no}: {exc}",
        )  # fmt: skip
    if trade is not None:
        # It was paid after all: that money is dealt with like any other payment.
        return paid.payment_succeeded(
            provider=payment.provider,
            out_trade_no=payment.out_trade_no,
            transaction_id=trade.transaction_id,
            amount_fen=trade.amount_fen,
            paid_at=trade.paid_at,
            actor=Actor.task("close-provider-order"),
        )
    Payment.objects.filter(pk=payment_id, status__in=[PaymentStatus.CREATING, PaymentStatus.PENDING]).update(
        status=PaymentStatus.CLOSED
    )
    return "closed"


def phone_bill_reverse(*, order_id: int, attempt: int = 0) -> str:
    order = Order.objects.get(pk=order_id)
    if order.status != OrderStatus.COMPLETED:
        # A renewal try that failed. The SMP keeps one charge per period: another try of the period that was
        # answered with it owns it now, or reversed it already; one still at the SMP may be answered with it
        # (waited for, without counting tries: its provisioning deadline ends the wait).
        others = renewals.same_period(order)
        if others.filter(Q(entitlement__isnull=False) | Q(ledger__kind=LedgerKind.REVERSAL)).exists():
            return "settled_by_another_try"
        if others.filter(status=OrderStatus.PROVISIONING).exists():
            with transaction.atomic():
                outbox.enqueue(
                    tasks.reverse_phone_bill,
                    kwargs={"order_id": order_id, "attempt": attempt},
                    due_at=timezone.now() + PERIOD_WAIT,
                )
            return "waiting_for_another_try"
    try:
        result = get_smp().unsubscribe(order_no=order.order_no)
    except SmpUnavailable as exc:
        return _again_or_ask(
            tasks.reverse_phone_bill, {"order_id": order_id}, attempt,
            order=order, kind=WorkItemKind.PROVISIONING_UNCERTAIN, detail=f"SMP reversal not confirmed: {exc}",
        )  # fmt: skip
    if not result.reversed_fen and order.status == OrderStatus.COMPLETED:
        # Refunded by an admin: our ledger says the SMP charged it, the SMP gave nothing back.
        work_item_open(
            order=order, kind=WorkItemKind.PROVIDER_DISAGREES,
            detail=f"the SMP gave nothing back for {order.order_no}, charged {order.amount_fen} fen to the phone "
            "bill: refund it at the SMP by hand",
        )  # fmt: skip
        return "nothing_given_back"
    if result.reversed_fen:
        with transaction.atomic():
            order = lock_order(order_id)
            if order.subscription_id:
                subscriptions.lock_subscription(order.subscription_id)  # what its period's tries decide, one at a time
                settled = _settled_by_another_try(order, result.reversed_fen)
                if settled:
                    return settled
            # A charge we never heard of (the SMP answered too late) is in the
            # ledger too, so that charge and reversal both show.
            ledger_record(
                order=order,
                kind=LedgerKind.PAYMENT,
                amount_fen=result.reversed_fen,
                method=order.payment_method,
                provider=Provider.SMP,
                provider_ref=order.order_no,
                idempotency_key=f"smp:charge:{order.order_no}",
                actor=Actor.task("reverse-phone-bill"),
                note="charge learned from the SMP's reversal",
            )
            ledger_record(
                order=order,
                kind=LedgerKind.REVERSAL,
                amount_fen=-result.reversed_fen,
                method=order.payment_method,
                provider=Provider.SMP,
                provider_ref=order.order_no,
                idempotency_key=f"smp:reversal:{order.order_no}",
                actor=Actor.task("reverse-phone-bill"),
                note="phone-bill charge reversed by the SMP",
            )
            refunds.order_money_returned(
                order, actor=Actor.task("reverse-phone-bill"), reason="phone-bill charge reversed", smp_cancelled=True
            )
    return "reversed" if result.reversed_fen else "nothing_to_reverse"


def _settled_by_another_try(order: Order, reversed_fen: int) -> str:
    """The SMP reversed the period's one charge for a renewal try (its subscription locked): already booked by
    another try of the period, or held by one that completed meanwhile (a person sees whose it was)."""
    if order.status == OrderStatus.COMPLETED:
        return ""
    others = renewals.same_period(order)
    if others.filter(ledger__kind=LedgerKind.REVERSAL).exists():
        return "reversed_by_another_try"  # the same reversal, answered again: booked once
    holder = others.filter(entitlement__isnull=False, entitlement__revoked_at__isnull=True).first()
    if holder is None:
        return ""
    work_item_open(
        order=holder, kind=WorkItemKind.PROVIDER_DISAGREES,
        detail=f"the SMP reversed {reversed_fen} fen for {order.order_no}, a failed try of the period that "
        f"{holder.order_no} was answered with: check at the SMP whether this order's period is still paid",
    )  # fmt: skip
    return "reversed_under_another_try"


def smp_revoke(*, order_id: int, attempt: int = 0) -> str:
    """Take a refunded order's subscription back on the SMP (our own entitlement is revoked already)."""
    order = Order.objects.get(pk=order_id)
    try:
        result = get_smp().unsubscribe(order_no=order.order_no)
    except SmpUnavailable as exc:
        return _again_or_ask(
            tasks.revoke_on_smp, {"order_id": order_id}, attempt,
            order=order, kind=WorkItemKind.PROVIDER_DISAGREES, detail=f"SMP unsubscribe failed: {exc}",
        )  # fmt: skip
    if not result.ok and hasattr(order, "entitlement"):
        # The SMP would not end what it provisioned for an order whose money went back: the customer may still
        # be watching it.
        work_item_open(
            order=order, kind=WorkItemKind.PROVIDER_DISAGREES,
            detail=f"the SMP refused to end the subscription of {order.order_no}, whose money went back: end it "
            "there by hand",
        )  # fmt: skip
    return "revoked" if result.ok else "refused"


def crm_reverse(*, order_id: int, attempt: int = 0) -> str:
    """Reverse the CRM marketing activity of a cash sale whose cash went back."""
    order = Order.objects.get(pk=order_id)
    try:
        result = get_crm().reverse_activity(order_no=order.order_no)
    except CrmUnavailable as exc:
        return _again_or_ask(
            tasks.reverse_crm_activity, {"order_id": order_id}, attempt,
            order=order, kind=WorkItemKind.CRM_UNCERTAIN, detail=f"CRM reversal failed: {exc}",
        )  # fmt: skip
    if not result.ok:
        work_item_open(
            order=order, kind=WorkItemKind.CRM_UNCERTAIN,
            detail=f"the CRM refused to reverse the activity of {order.order_no}: reverse it there by hand",
        )  # fmt: skip
        return "refused"
    return "reversed"


def smp_subscription_end(*, subscription_id: int, attempt: int = 0) -> str:
    """An ended subscription: the SMP is told, so that it renews nothing more (no money moves)."""
    subscription = Subscription.objects.get(pk=subscription_id)
    if subscription.smp_unsubscribed_at is not None:
        return "done"
    last = (
        Order.objects.filter(subscription=subscription, status=OrderStatus.COMPLETED)
        .order_by("-entitlement__ends_at", "-pk")
        .first()
    )
    if last is None:
        return "nothing_subscribed"
    try:
        result = get_smp().unsubscribe(order_no=last.order_no, reverse=False)
    except SmpUnavailable as exc:
        return _again_or_ask(
            tasks.end_subscription_on_smp, {"subscription_id": subscription_id}, attempt,
            order=last, kind=WorkItemKind.PROVIDER_DISAGREES,
            detail=f"SMP unsubscribe at the end of subscription {subscription.subscription_no} failed: {exc}",
        )  # fmt: skip
    if result.ok:
        Subscription.objects.filter(pk=subscription_id, smp_unsubscribed_at__isnull=True).update(
            smp_unsubscribed_at=timezone.now()
        )
    return "unsubscribed" if result.ok else "refused"


def smp_reschedule(*, order_id: int, attempt: int = 0) -> str:
    """An earlier period of the account was refunded and this order's period moved: the SMP moves it too."""
    order = Order.objects.select_related("entitlement").get(pk=order_id)
    entitlement = getattr(order, "entitlement", None)
    if entitlement is None or entitlement.revoked_at is not None:
        return "nothing_to_move"
    try:
        moved = get_smp().reschedule(
            order_no=order.order_no, starts_at=entitlement.starts_at, ends_at=entitlement.ends_at
        )
    except SmpUnavailable as exc:
        return _again_or_ask(
            tasks.reschedule_on_smp, {"order_id": order_id}, attempt,
            order=order, kind=WorkItemKind.PROVIDER_DISAGREES, detail=f"SMP period not moved: {exc}",
        )  # fmt: skip
    return "moved" if moved else "refused"
