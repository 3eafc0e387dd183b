"""What is due for a subscription over time (docs/interfaces.md §8), period after period:

1. ``RENEWAL_REMINDER_DAYS`` before the renewal, the reminder SMS (lifecycle.notices). No renewal is
   charged unless its reminder was sent that long before: a late reminder moves the renewal later.
2. At ``current_period_end − RENEWAL_LEAD_HOURS``, a renewal order (channel ``renewal``) for the next
   period: pre-checked at the SMP, then charged by the subscription's method without a new
   confirmation, then subscribed. It goes through the order lifecycle like any order.
3. The renewal order ends: completed → the next period (its end is the subscription's new
   ``current_period_end``, in the same transaction); anything else → a new renewal order every
   ``RENEWAL_RETRY_HOURS`` until the paid period ends; then ``lapsed``.
4. ``cancelled`` or ``lapsed``, at ``current_period_end`` → ``ended``, and the SMP unsubscribed.

The beat sweep finds subscriptions whose ``due_at`` has come, in bounded batches, each under its own
lock; running it twice at once does each step once. At most one successful charge per period: one
renewal order in flight per subscription, one completed renewal order per period (both database
constraints), and the SMP de-duplicates on the key of the period.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, time, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from billing.models import Payment, PaymentStatus, Provider, WorkItemKind
from billing.services.work import work_item_add
from ipvas import outbox
from ipvas.actors import Actor
from lifecycle import contracts, deductions, notices, subscriptions, tasks
from lifecycle.transitions import record_event, schedule_due, transit
from orders.constants import (
    ACTIVE_STATUSES,
    DEDUCTION_METHODS,
    PHONE_BILL_METHODS,
    Channel,
    NoticeKind,
    OrderStatus,
    PaymentMethod,
    SubscriptionStatus,
)
from orders.models import Entitlement, Order, Subscription
from orders.models.order import mask_phone
from orders.numbers import new_order_no

logger = logging.getLogger(__name__)

# While a step of a subscription is under way elsewhere (a reminder being sent, a renewal order in
# flight), how long before the sweep looks at it again anyway.
WATCH = timedelta(minutes=30)
ACTOR = Actor.task("renewal")


# --- the timetable of a period ------------------------------------------------------------


def usual_renewal_at(subscription: Subscription) -> datetime:
    return subscription.current_period_end - timedelta(hours=settings.RENEWAL_LEAD_HOURS)


def schedule_next_period(subscription: Subscription, *, agreed: datetime | None = None) -> None:
    """The reminder and renewal times of the coming period (the subscription is active, not saved here).

    Deducted by Alipay, the renewal goes no later than the agreed day's start (``agreed``, else the signed
    contract's), so that it and its retries fall in Alipay's days even when the period ends after that day
    (on the 29th–31st)."""
    renewal_at = usual_renewal_at(subscription)
    if subscription.payment_method != PaymentMethod.ALIPAY_QR:
        agreed = None  # WeChat Pay has no agreed day; the phone bill no provider
    elif agreed is None and subscription.pk:
        contract = contracts.signed_contract(subscription)
        agreed = contract.plan_at if contract is not None else None
    if agreed is not None:
        renewal_at = min(renewal_at, agreed)
    subscription.next_renewal_at = renewal_at
    subscription.next_reminder_at = max(reminder_at(renewal_at), first_by_day(timezone.now()))
    subscription.reminder_sent_at = None
    subscription.renewal_moved = False
    subscription.attempts = 0
    subscription.due_at = subscription.next_reminder_at


def _by_day(at: datetime) -> bool:
    start, end = settings.REMINDER_HOURS_START, settings.REMINDER_HOURS_END
    return time(start) <= at.time() and (end == 24 or at.time() <= time(end))


def reminder_at(renewal_at: datetime) -> datetime:
    """``RENEWAL_REMINDER_DAYS`` before the renewal, unless that is at night: then the evening before, at
    ``REMINDER_HOURS_END`` (the latest moment of the reminder hours before it). Never later: the renewal
    waits for its reminder, and keeps its time."""
    at = timezone.localtime(renewal_at - timedelta(days=settings.RENEWAL_REMINDER_DAYS))
    if _by_day(at):
        return at
    start, end = settings.REMINDER_HOURS_START, settings.REMINDER_HOURS_END
    day = at.date() if at.hour >= start else at.date() - timedelta(days=1)
    return timezone.make_aware(datetime.combine(day, time(end % 24)) + timedelta(days=end // 24))


def first_by_day(now: datetime) -> datetime:
    """``now`` in the reminder hours, else their next start: a reminder is never planned before it could be
    sent (a period shorter than ``RENEWAL_REMINDER_DAYS``), nor, then, at night."""
    at = timezone.localtime(now)
    if _by_day(at):
        return at
    start = settings.REMINDER_HOURS_START
    day = at.date() if at.hour < start else at.date() + timedelta(days=1)
    return timezone.make_aware(datetime.combine(day, time(start)))


def renewal_key(subscription: Subscription, period: int) -> str:
    """What the SMP and the providers de-duplicate a period's charge on, whichever renewal order pays it."""
    return f"{subscription.subscription_no}P{period}"


# --- the sweep --------------------------------------------------------------------------------


def subscriptions_sweep(*, batch_size: int | None = None) -> int:
    """Act on every subscription whose ``due_at`` has come; one bounded batch. Returns how many.

    At most ``batch_size`` renewal orders are in the workers' hands at a time: a renewal is started only
    when one has moved on. On the day thousands are due, the sweep would otherwise make renewal orders
    faster than the workers pre-check them, and each not pre-checked within ``PRECHECK_DEADLINE_SECONDS``
    of being made is rejected (``smp_unavailable``) and tried again hours later (bench/renewals.py). The
    subscriptions left waiting stay due, oldest first; the sweep's other work goes on meanwhile.
    """
    batch_size = batch_size or settings.SUBSCRIPTION_SWEEP_BATCH
    now = timezone.now()
    due_now = Subscription.objects.filter(due_at__lte=now).order_by("due_at").values_list("pk", flat=True)
    # What _active turns into a renewal order (unless one is in flight already).
    renewal = Q(status=SubscriptionStatus.ACTIVE, reminder_sent_at__isnull=False, next_renewal_at__lte=now)
    room = max(0, batch_size - renewals_in_flight(now))
    due = list(due_now.filter(renewal)[:room]) if room else []
    due += list(due_now.exclude(renewal)[: batch_size - len(due)])
    for subscription_id in due:
        try:
            subscription_process_due(subscription_id=subscription_id)
        except Exception:
            # One broken subscription must not stop the others, nor stay at the head of every batch.
            logger.exception("subscription sweep: subscription %s failed", subscription_id)
            Subscription.objects.filter(pk=subscription_id).update(due_at=timezone.now() + WATCH)
    if due:
        logger.info("subscription sweep: %d subscription(s) looked at", len(due))
    return len(due)


def renewals_in_flight(now: datetime) -> int:
    """Renewal orders the workers have to move on soon, of every subscription: being pre-checked, starting
    their charge, or provisioning within its deadline. Not those in a provider's hands (a deduction sent and
    not answered) or a person's (provisioning given up, its refund failed): a provider's outage would
    otherwise fill the bound with its renewals and hold every other subscription's back, past its period."""
    provisioning_since = now - timedelta(seconds=settings.PROVISIONING_DEADLINE_SECONDS)
    busy = Q(status__in=[OrderStatus.PRECHECKING, OrderStatus.AWAITING_PAYMENT]) | Q(
        status=OrderStatus.PROVISIONING, status_changed_at__gt=provisioning_since
    )
    return Order.objects.filter(busy, channel=Channel.RENEWAL).count()


def subscription_process_due(*, subscription_id: int) -> str:
    """Do what is due for the subscription now; returns what happened, in a word, for logs."""
    with transaction.atomic():
        subscription = (
            Subscription.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("product")
            .filter(pk=subscription_id)
            .first()
        )
        if subscription is None:
            return "busy"  # another sweep has it now
        now = timezone.now()
        if subscription.due_at is None or subscription.due_at > now:
            return "not_due"
        return _STEPS[subscription.status](subscription, now)


def _active(subscription: Subscription, now: datetime) -> str:
    if renewal_in_flight(subscription) is not None:
        return _look_again(subscription, now + WATCH, "renewing")
    if subscription.reminder_sent_at is None:
        if now >= subscription.current_period_end:
            return _lapse(
                subscription,
                now,
                why="no reminder could be sent before the paid period ended",
                text=notices.not_renewed_text(subscription),
            )
        if now >= subscription.next_reminder_at:
            return _remind(subscription, now)
        return _look_again(subscription, subscription.next_reminder_at, "waiting")
    if now >= subscription.next_renewal_at:
        if subscription.payment_method in DEDUCTION_METHODS:
            # The provider's rules say when a deduction may be made (lifecycle.deductions).
            later = deductions.renewal_window_check(subscription, now)
            if later is not None:
                return _look_again(subscription, later, "waiting_for_the_provider")
        return _renew(subscription, now)
    return _look_again(subscription, subscription.next_renewal_at, "waiting")


def _winding_down(subscription: Subscription, now: datetime) -> str:
    """Cancelled or lapsed: at the end of the paid period it ends, and the SMP is told."""
    if renewal_in_flight(subscription) is not None:
        return _look_again(subscription, now + WATCH, "renewing")  # a charge already sent completes first
    if now < subscription.current_period_end:
        return _look_again(subscription, subscription.current_period_end, "waiting")
    source = subscription.status
    subscription.end(now=now)
    subscription.save()
    subscriptions.record(subscription, "end", actor=ACTOR, from_status=source, now=now)
    outbox.enqueue(tasks.end_subscription_on_smp, kwargs={"subscription_id": subscription.pk})
    return "ended"


def _ended(subscription: Subscription, now: datetime) -> str:
    subscription.due_at = None
    subscription.save(update_fields=["due_at", "updated_at"])
    return "ended_already"


_STEPS: dict[str, Callable[[Subscription, datetime], str]] = {
    SubscriptionStatus.ACTIVE: _active,
    SubscriptionStatus.CANCELLED: _winding_down,
    SubscriptionStatus.LAPSED: _winding_down,
    SubscriptionStatus.ENDED: _ended,
}


def _look_again(subscription: Subscription, at: datetime, outcome: str) -> str:
    subscription.due_at = at
    subscription.save(update_fields=["due_at", "updated_at"])
    return outcome


# --- 1. the reminder --------------------------------------------------------------------------


def _remind(subscription: Subscription, now: datetime) -> str:
    period = subscription.periods + 1
    queued = notices.notice_create(
        kind=NoticeKind.REMINDER,
        phone=subscription.phone,
        text=notices.reminder_text(subscription, renews_on=renews_on(subscription, now)),
        subscription=subscription,
        period=period,
    )
    if queued is not None:  # looked at again while the gateway is down: queued once
        subscriptions.record(subscription, "reminder_queued", actor=ACTOR, data={"period": period}, now=now)
    # The notice reports back when the gateway took it (reminder_sent); until then, look now and then.
    return _look_again(subscription, now + WATCH, "reminding")


def renews_on(subscription: Subscription, sent_at: datetime) -> datetime:
    """When the renewal is charged if the reminder goes out at ``sent_at`` (what ``_after_the_reminder``
    makes of it): the day a reminder names. WeChat Pay deducts only 07:00–22:00: a renewal due at night is
    deducted at the next 07:00 (lifecycle.deductions), the next day when it was due after 22:00."""
    at = max(subscription.next_renewal_at, sent_at + timedelta(days=settings.RENEWAL_REMINDER_DAYS))
    if subscription.payment_method == PaymentMethod.WECHAT_QR:
        at = deductions.next_open(at)
    return at


def reminder_sent(*, subscription_id: int, notice_id: int) -> None:
    """The gateway took the reminder of the coming period: the renewal may be charged, not earlier than
    ``RENEWAL_REMINDER_DAYS`` from now (inside the transaction that marks the notice sent)."""
    subscription = subscriptions.lock_subscription(subscription_id)
    notice = subscription.notices.get(pk=notice_id)
    if (
        subscription.status != SubscriptionStatus.ACTIVE
        or subscription.reminder_sent_at is not None
        or notice.period != subscription.periods + 1
    ):
        return
    _after_the_reminder(subscription, notice.sent_at or timezone.now())
    subscription.save()
    subscriptions.record(
        subscription,
        "reminder_sent",
        actor=ACTOR,
        reason="the renewal moved later: the reminder went out late" if subscription.renewal_moved else "",
        data={"period": notice.period, "renewal_at": subscription.next_renewal_at.isoformat()},
    )
    # WeChat Pay's pre-deduction notice goes out at the same time (docs/interfaces.md §8).
    deductions.reminder_went_out(subscription)


# --- 2. the renewal order ---------------------------------------------------------------------


def _after_the_reminder(subscription: Subscription, sent_at: datetime) -> None:
    """The reminder of the coming period went out at ``sent_at``: the renewal is due, not earlier than
    ``RENEWAL_REMINDER_DAYS`` after it (not saved here)."""
    earliest = sent_at + timedelta(days=settings.RENEWAL_REMINDER_DAYS)
    subscription.reminder_sent_at = sent_at
    if earliest > subscription.next_renewal_at:
        subscription.next_renewal_at = earliest
        subscription.renewal_moved = True
    subscription.due_at = subscription.next_renewal_at


def renewal_in_flight(subscription: Subscription) -> Order | None:
    return (
        Order.objects.filter(subscription=subscription, channel=Channel.RENEWAL, status__in=list(ACTIVE_STATUSES))
        .order_by("-pk")
        .first()
    )


def _renew(subscription: Subscription, now: datetime) -> str:
    period = subscription.periods + 1
    try:
        with transaction.atomic():
            order = Order.objects.create(
                order_no=new_order_no(),
                channel=Channel.RENEWAL,
                tv_account=subscription.tv_account,
                phone=subscription.phone,
                product=subscription.product,
                amount_fen=subscription.renewal_price_fen,
                status=OrderStatus.PRECHECKING,
                deadline_at=now,  # pre-check at once
                status_changed_at=now,
                origin_kind=ACTOR.kind,
                origin_id=ACTOR.id,
                subscription=subscription,
                renewal_period=period,
            )
    except IntegrityError:
        # Another renewal of it is in flight (the database allows one): it reports back when it ends.
        return _look_again(subscription, now + WATCH, "renewing")
    record_event(order, "create", actor=ACTOR, from_status="", reason=f"renewal of {subscription}", now=now)
    schedule_due(order)
    subscription.attempts += 1  # of this period's renewal: admin shows it
    subscriptions.record(
        subscription, "renewal_started", actor=ACTOR, data={"order_no": order.order_no, "period": period}, now=now
    )
    subscription.due_at = now + WATCH
    subscription.save(update_fields=["attempts", "due_at", "updated_at"])
    return "renewing"


def phone_rebound(subscription: Subscription, phone: str, *, actor: Actor, reason: str) -> None:
    """The SMP binds ``phone`` to the account now (subscription locked): when the customer bound another mobile,
    the notices go there from now on, and TD comes from it."""
    if not phone or phone == subscription.phone:
        return
    subscriptions.record(
        subscription,
        "phone_changed",
        actor=actor,
        reason=reason,
        data={"from": mask_phone(subscription.phone), "to": mask_phone(phone)},
    )
    subscription.phone = phone
    subscription.save(update_fields=["phone", "updated_at"])


def renewal_charge_start(order: Order, *, actor: Actor) -> None:
    """A renewal order passed its pre-check (order locked): charge it by the subscription's method, no
    new confirmation; or stop it if the subscription was cancelled meanwhile."""
    subscription = subscriptions.lock_subscription(order.subscription_id)
    if subscription.status != SubscriptionStatus.ACTIVE:
        transit(order, order.cancel_renewal, actor=actor, reason=f"the subscription is {subscription.status}")
        return
    phone_rebound(subscription, order.phone, actor=actor, reason=f"the SMP's pre-check of {order.order_no}")
    method = subscription.payment_method
    if method in PHONE_BILL_METHODS:
        # The SMP deducts the phone bill as it subscribes the period (lifecycle.provisioning), which marks the
        # payment pending when it sends the charge: until then a cancel stops it.
        Payment.objects.create(
            order=order,
            method=PaymentMethod.PHONE_BILL,
            provider=Provider.SMP,
            out_trade_no=order.order_no,
            amount_fen=order.amount_fen,
            status=PaymentStatus.CREATING,
        )
        transit(
            order,
            order.payment_confirmed,
            payment_method=PaymentMethod.PHONE_BILL,
            actor=actor,
            reason=f"renewal of {subscription}, charged to the phone bill",
        )
        return
    if method in DEDUCTION_METHODS:
        # Deducted under the WeChat Pay or Alipay contract signed in the first scan.
        deductions.deduction_start(order, subscription, actor=actor)
        return
    raise NotImplementedError(f"no renewal by {method}")


def same_period(order: Order) -> QuerySet[Order]:
    """The other renewal orders of the subscription for the period ``order`` renews (none for other orders)."""
    if order.channel != Channel.RENEWAL or not order.subscription_id or order.renewal_period is None:
        return Order.objects.none()
    return Order.objects.filter(
        subscription_id=order.subscription_id, channel=Channel.RENEWAL, renewal_period=order.renewal_period
    ).exclude(pk=order.pk)


def _tell_the_earlier_tries(order: Order) -> None:
    """A renewal completed: an earlier try of its period whose phone-bill charge is uncertain (its reversal
    never answered) is settled by it. The SMP keeps one charge per period (its key): what that try may have
    charged is the one this order was answered with, and reversing it now would take this period back."""
    if order.payment_method in PHONE_BILL_METHODS:
        work_item_add(
            orders=same_period(order),
            kind=WorkItemKind.PROVISIONING_UNCERTAIN,
            detail=f"period {order.renewal_period} was paid since by renewal order {order.order_no}, which the SMP "
            "answered with the period's one charge: nothing of this order is to be reversed",
        )


def renewal_stopped(order: Order) -> bool:
    """Whether a renewal order (locked) whose charge was not sent yet must not be charged: its subscription
    was cancelled meanwhile. Locks the subscription, after the order."""
    subscription = subscriptions.lock_subscription(order.subscription_id)
    return subscription.status != SubscriptionStatus.ACTIVE


# --- 3. the renewal order ended -----------------------------------------------------------------


def renewal_order_ended(order: Order, *, actor: Actor, now: datetime) -> None:
    """A renewal order reached a terminal status (inside the transition's transaction, order locked)."""
    subscription = subscriptions.lock_subscription(order.subscription_id)
    if order.status == OrderStatus.COMPLETED:
        _renewed(subscription, order, actor=actor, now=now)
    elif order.status == OrderStatus.REFUNDED and hasattr(order, "entitlement"):
        period_refunded(subscription, order, actor=actor, now=now)
    else:
        _renewal_failed(subscription, order, actor=actor, now=now)


def _renewed(subscription: Subscription, order: Order, *, actor: Actor, now: datetime) -> None:
    _tell_the_earlier_tries(order)
    new_end = order.entitlement.ends_at
    subscription.periods = max(subscription.periods, order.renewal_period or subscription.periods + 1)
    subscription.current_period_end = max(subscription.current_period_end, new_end)
    if subscription.status == SubscriptionStatus.ACTIVE:
        schedule_next_period(subscription)
    else:
        subscription.due_at = subscription.current_period_end  # cancelled meanwhile: it ends then
    subscription.save()
    subscriptions.record(
        subscription,
        "renewed",
        actor=actor,
        reason=f"order {order.order_no}",
        data={"period": subscription.periods, "period_end": subscription.current_period_end.isoformat()},
        now=now,
    )
    notices.notice_create(
        kind=NoticeKind.RENEWED,
        phone=subscription.phone,
        text=notices.renewed_text(subscription),
        subscription=subscription,
        period=subscription.periods,
    )


def _renewal_failed(subscription: Subscription, order: Order, *, actor: Actor, now: datetime) -> None:
    subscriptions.record(
        subscription,
        "renewal_failed",
        actor=actor,
        reason=order.failure_code,
        data={"order_no": order.order_no, "status": order.status},
        now=now,
    )
    if subscription.status != SubscriptionStatus.ACTIVE:
        subscription.due_at = subscription.current_period_end
        subscription.save(update_fields=["due_at", "updated_at"])
        return
    ahead = deductions.ahead_of_the_paid_period(subscription)
    if ahead:  # deducted, then not provisioned and given back: Alipay allows no retry in time
        _lapse(subscription, now, why=ahead, text=notices.lapsed_after_refund_text(subscription))
        return
    retry_at = now + timedelta(hours=settings.RENEWAL_RETRY_HOURS)
    if retry_at < subscription.current_period_end:
        subscription.next_renewal_at = retry_at
        subscription.due_at = retry_at
        subscription.save(update_fields=["next_renewal_at", "due_at", "updated_at"])
        return
    why = f"the renewal could not be charged before the paid period ends ({order.failure_code})"
    _lapse(subscription, now, why=why)


def _lapse(subscription: Subscription, now: datetime, *, why: str, text: str = "") -> str:
    source = subscription.status
    subscription.lapse(now=now)
    subscription.save()
    subscriptions.record(subscription, "lapse", actor=ACTOR, from_status=source, reason=why, now=now)
    contracts.subscription_ended(subscription, channel="", reason=f"lapsed: {why}")
    notices.notice_create(
        kind=NoticeKind.LAPSED,
        phone=subscription.phone,
        text=text or notices.lapsed_text(subscription),
        subscription=subscription,
        period=subscription.periods + 1,
    )
    return "lapsed"


def period_refunded(subscription: Subscription, order: Order, *, actor: Actor, now: datetime) -> None:
    """A paid period of the subscription was refunded: it comes off the end (its entitlement is revoked
    and the later ones moved earlier already); the subscription is paid until what remains."""
    _periods_changed(subscription, "period_refunded", order, actor=actor, now=now)


def periods_moved(order: Order, moved: list[Entitlement], *, actor: Actor, now: datetime) -> None:
    """A refund of ``order`` (locked) moved these later periods of the account earlier: a subscription whose
    periods they are is paid until an earlier end now, and renews before it (its own periods' refunds are
    ``period_refunded``'s)."""
    if not moved:
        return
    of_subscriptions = Order.objects.filter(pk__in=[e.order_id for e in moved], subscription__isnull=False)
    ids = set(of_subscriptions.values_list("subscription_id", flat=True)) - {order.subscription_id}
    for subscription_id in sorted(ids):
        subscription = subscriptions.lock_subscription(subscription_id)
        _periods_changed(subscription, "periods_moved", order, actor=actor, now=now)


def _periods_changed(subscription: Subscription, action: str, order: Order, *, actor: Actor, now: datetime) -> None:
    """A refund of ``order`` changed the subscription's (locked) periods: it is paid until what remains, the
    change is recorded, and an Alipay subscription whose agreed day is left a period ahead of the paid one
    lapses; not while a renewal is in flight: its deduction may be the one that moved it (its end decides)."""
    _paid_until_what_remains(subscription, now)
    subscriptions.record(
        subscription,
        action,
        actor=actor,
        reason=f"order {order.order_no}",
        data={"period_end": subscription.current_period_end.isoformat()},
        now=now,
    )
    if subscription.status == SubscriptionStatus.ACTIVE and renewal_in_flight(subscription) is None:
        why = deductions.ahead_of_the_paid_period(subscription)
        if why:
            _lapse(subscription, now, why=why, text=notices.lapsed_after_refund_text(subscription))
        elif not _renewable_in_time(subscription):
            # Nothing paid remains, or the next renewal could come only after the paid period (its reminder
            # first, then RENEWAL_REMINDER_DAYS): §8 retries a renewal until current_period_end, never after.
            why = "a refund left no time to renew before the paid period ends"
            _lapse(subscription, now, why=why, text=notices.lapsed_refunded_text(subscription, now))


def _renewable_in_time(subscription: Subscription) -> bool:
    """The coming renewal (after its reminder, when that is still to be sent) falls before the paid period ends."""
    earliest = subscription.next_renewal_at
    if subscription.reminder_sent_at is None:
        earliest = max(earliest, subscription.next_reminder_at + timedelta(days=settings.RENEWAL_REMINDER_DAYS))
    return earliest < subscription.current_period_end


def _paid_until_what_remains(subscription: Subscription, now: datetime) -> None:
    """The subscription (locked) is paid until the end of its periods that remain; its timetable follows."""
    remaining = (
        Entitlement.objects.filter(order__subscription=subscription, revoked_at__isnull=True)
        .order_by("-ends_at")
        .values_list("ends_at", flat=True)
        .first()
    )
    subscription.current_period_end = remaining or now
    if subscription.status == SubscriptionStatus.ACTIVE:
        reminded = subscription.reminder_sent_at
        schedule_next_period(subscription)
        if reminded is not None:
            # The reminder of the coming period went out already, and there is one per period: the renewal
            # follows it as it did (not earlier than its days), at the end as it now is.
            _after_the_reminder(subscription, reminded)
    else:
        subscription.due_at = subscription.current_period_end
    subscription.save()


def order_ended(order: Order, *, actor: Actor, now: datetime) -> None:
    """Called by lifecycle.transitions when an order of a subscription reaches a terminal status."""
    if order.channel == Channel.RENEWAL and order.subscription_id:
        renewal_order_ended(order, actor=actor, now=now)
    elif order.auto_renew and order.status == OrderStatus.COMPLETED and not order.subscription_id:
        subscriptions.subscription_start(order, actor=actor, now=now)
    elif order.auto_renew and not order.subscription_id and order.status != OrderStatus.COMPLETED:
        contracts.order_gave_up(order)
    elif order.subscription_id and order.status == OrderStatus.REFUNDED:
        period_refunded(subscriptions.lock_subscription(order.subscription_id), order, actor=actor, now=now)
