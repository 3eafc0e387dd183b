"""Subscriptions (docs/interfaces.md §8): started by the auto-renewing order that completes, cancelled
from any channel. What is due for them over time (reminders, renewals, lapse, end) is lifecycle.renewals.
"""

from __future__ import annotations

import logging
import unicodedata
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django_fsm import TransitionNotAllowed

from billing.models import Provider, SmsConfirmation, SmsConfirmationStatus
from ipvas.actors import Actor
from ipvas.errors import InvalidState
from lifecycle import contracts, notices, renewals
from lifecycle.transitions import record_event
from orders.constants import DEDUCTION_METHODS, CancelChannel, Channel, NoticeKind, SubscriptionStatus
from orders.models import Order, Subscription, SubscriptionEvent
from orders.models.order import RENEWS_ALREADY
from orders.numbers import new_order_no

logger = logging.getLogger(__name__)


def lock_subscription(subscription_id: int) -> Subscription:
    """Re-read a subscription under a row lock; when an order of it is locked too, the order comes first."""
    return Subscription.objects.select_for_update(of=("self",)).select_related("product").get(pk=subscription_id)


def record(
    subscription: Subscription,
    action: str,
    *,
    actor: Actor,
    from_status: str | None = None,
    reason: str = "",
    data: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> SubscriptionEvent:
    return SubscriptionEvent.objects.create(
        subscription=subscription,
        at=now or timezone.now(),
        from_status=subscription.status if from_status is None else from_status,
        to_status=subscription.status,
        action=action,
        actor_kind=actor.kind,
        actor_id=actor.id[:150],
        reason=reason[:255],
        data=data or {},
    )


# --- start ----------------------------------------------------------------------------------


def active_subscription_exists(*, tv_account: str, product_id: int) -> bool:
    return Subscription.objects.filter(
        tv_account=tv_account, product_id=product_id, status=SubscriptionStatus.ACTIVE
    ).exists()


def subscription_start(order: Order, *, actor: Actor, now: datetime) -> Subscription | None:
    """The auto-renewing ``order`` (locked) has just completed: its subscription starts, in the same transaction.

    None when the account renews this product already (two auto-renewing orders raced past the
    pre-check): the order stays a plain period, stacked, and its history says why.

    Paid by a QR code, it needs its deduction contract signed too: when the signing has not come yet, None,
    and the signing starts it when it comes (lifecycle.contracts, which also ends a contract that never
    comes together with its order).
    """
    contract = None
    if order.payment_method in DEDUCTION_METHODS:
        contract, why_not = contracts.contract_to_start(order)
        if contract is None:
            note = "auto_renew_waiting" if why_not == contracts.WAITING_FOR_SIGNING else "auto_renew_not_started"
            order_note(order, note, actor=actor, reason=why_not)
            return None
    if active_subscription_exists(tv_account=order.tv_account, product_id=order.product_id):
        order_note(order, "auto_renew_not_started", actor=actor, reason=RENEWS_ALREADY)
        return None
    entitlement = order.entitlement
    subscription = Subscription(
        subscription_no=new_order_no(),
        tv_account=order.tv_account,
        phone=order.phone,
        product=order.product,
        payment_method=order.payment_method,
        renewal_price_fen=order.amount_fen,
        periods=1,
        current_period_end=entitlement.ends_at,
        consent_channel=order.channel,
        consent_method=order.payment_method,
        consent_at=order.created_at,
        consent_evidence=consent_evidence(order),
        contract_id=contract.provider_contract_id if contract else "",
    )
    if contract is not None:
        subscription.consent_evidence["contract"] = {
            "provider": contract.provider,
            "contract_code": contract.contract_code,
            "contract_id": contract.provider_contract_id,
            "signed_at": contract.signed_at.isoformat() if contract.signed_at else None,
        }
    alipay = contract is not None and contract.provider == Provider.ALIPAY
    renewals.schedule_next_period(subscription, agreed=contract.plan_at if alipay else None)
    try:
        with transaction.atomic():
            subscription.save()
    except IntegrityError:
        # Another order of the account's started one since the look above (both completing at once): the
        # database keeps one active subscription per account and product, and this order stays a plain period.
        if not active_subscription_exists(tv_account=order.tv_account, product_id=order.product_id):
            raise
        order_note(order, "auto_renew_not_started", actor=actor, reason=RENEWS_ALREADY)
        return None
    order.subscription = subscription
    order.save(update_fields=["subscription", "updated_at"])
    if contract is not None:
        contracts.contract_attach(contract, subscription)
    record(subscription, "start", actor=actor, from_status="", reason=f"order {order.order_no}", now=now)
    return subscription


def consent_evidence(order: Order) -> dict[str, Any]:
    """What shows the customer chose automatic renewal: who placed the order, and how they confirmed it."""
    evidence: dict[str, Any] = {
        "order_no": order.order_no,
        "placed_by": f"{order.origin_kind}:{order.origin_id}",
        "placed_at": order.created_at.isoformat(),
    }
    if order.channel == Channel.CRM:
        evidence["clerk"] = order.origin_id
        evidence["store"] = order.store_code
    reply = (
        SmsConfirmation.objects.filter(order=order, status=SmsConfirmationStatus.CONFIRMED)
        .values("text", "reply_text", "replied_at")
        .first()
    )
    if reply is not None:
        evidence["sms"] = {
            "sent": reply["text"],
            "reply": reply["reply_text"],
            "replied_at": reply["replied_at"].isoformat() if reply["replied_at"] else None,
        }
    return evidence


def order_note(order: Order, action: str, *, actor: Actor, reason: str) -> None:
    record_event(order, action, actor=actor, from_status=order.status, reason=reason)


# --- cancel ---------------------------------------------------------------------------------


def subscription_cancel(*, subscription_id: int, channel: str, actor: Actor, reason: str = "") -> Subscription:
    """Renewal off at once, from any channel; the paid period runs to its end. A repeat changes nothing.

    Lapsed or ended subscriptions cannot be cancelled (InvalidState). A renewal whose charge was not
    sent yet is stopped (lifecycle.renewals); one already sent completes and this stops the next.
    """
    if channel not in CancelChannel.values:
        raise ValueError(f"unknown cancel channel {channel!r}")
    with transaction.atomic():
        subscription = lock_subscription(subscription_id)
        if subscription.status == SubscriptionStatus.CANCELLED:
            return subscription
        now = timezone.now()
        source = subscription.status
        try:
            subscription.cancel(channel=channel, reason=reason or str(CancelChannel(channel).label), now=now)
        except TransitionNotAllowed as exc:
            raise InvalidState(
                _("A subscription that is %(status)s cannot be cancelled.")
                % {"status": SubscriptionStatus(source).label},
                extra={"status": source},
            ) from exc
        subscription.save()
        # A renewal in flight whose charge was not sent yet stops when it next moves (lifecycle.renewals).
        in_flight = renewals.renewal_in_flight(subscription)
        data = {"channel": channel, "renewal_in_flight": in_flight.order_no if in_flight else None}
        record(subscription, "cancel", actor=actor, from_status=source, reason=reason, data=data)
        # A deduction contract ends with it at the provider (unless the user ended it there: channel provider).
        contracts.subscription_ended(subscription, channel=channel, reason=f"cancelled on {channel}")
        return subscription


def is_td(text: str) -> tuple[bool, str]:
    """(whether ``text`` is a TD reply, the product code it names or ''): 'TD', 'td', full-width, 'TD VIP-MONTH'."""
    words = unicodedata.normalize("NFKC", text or "").strip().split()
    if not words or words[0].upper() != "TD" or len(words) > 2:
        return False, ""
    return True, (words[1].upper() if len(words) == 2 else "")


def cancel_by_sms(*, phone: str, product_code: str, actor: Actor) -> list[Subscription | Order]:
    """A ``TD`` reply: cancel every active subscription of the number (or the named product's), and answer.
    An auto-renewing order whose subscription has not started yet (its deduction contract's signing, or its
    payment, still on the way) starts none (lifecycle.contracts.contracts_given_up_by_td). Returns what it
    cancelled: the subscriptions, then those orders.

    Call inside the transaction that stores the reply.
    """
    candidates = Subscription.objects.filter(phone=phone, status=SubscriptionStatus.ACTIVE).select_related("product")
    if product_code:
        candidates = [s for s in candidates if s.product.code.upper() == product_code]
    cancelled = [
        subscription_cancel(subscription_id=s.pk, channel=CancelChannel.SMS, actor=actor, reason="SMS reply TD")
        for s in candidates
    ]
    not_started = contracts.contracts_given_up_by_td(phone=phone, product_code=product_code, actor=actor)
    if cancelled or not_started:
        text = notices.cancelled_text(cancelled, not_started=[order.product for order in not_started])
        notices.notice_create(kind=NoticeKind.CANCELLED, phone=phone, text=text)
    else:
        notices.notice_create(kind=NoticeKind.NOTHING_TO_CANCEL, phone=phone, text=notices.nothing_to_cancel_text())
    return [*cancelled, *not_started]


def renewal_orders(subscription: Subscription) -> list[Order]:
    """Its renewal orders, newest first (docs/interfaces.md §8, ``renewals``)."""
    return list(
        Order.objects.filter(subscription=subscription, channel=Channel.RENEWAL)
        .select_related("entitlement")
        .order_by("-created_at", "-pk")
    )
