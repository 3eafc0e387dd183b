"""The SMS a subscriber gets (docs/interfaces.md §8): the reminder before each renewal, the renewal done,
the lapse, and the answer to ``TD``.

A notice is written in the transaction that decides it (once per kind and period) and handed to the
gateway by ``tasks.send_notice`` after commit, retried with backoff. Notices never count against,
nor wait for, the confirmation limits of §7. When the reminder is out, the renewal may be charged
(lifecycle.renewals.reminder_sent).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from adapters.smp import PrecheckRequest, SmpUnavailable, get_smp
from adapters.sms import SmsMessage, SmsUnavailable, get_sms_gateway
from ipvas import outbox
from ipvas.actors import Actor
from ipvas.money import fen_to_yuan
from lifecycle import renewals, subscriptions, tasks
from orders.constants import NoticeKind, SubscriptionStatus
from orders.models import Product, Subscription, SubscriptionNotice
from orders.validation import reachable_mobile

logger = logging.getLogger(__name__)
ACTOR = Actor.task("notices")

# How long a notice is retried before it is given up (logged; the reminder's absence then holds the renewal).
NOTICE_GIVE_UP = timedelta(days=2)
SEND_BACKOFF_SECONDS = (5, 15, 30, 60, 120, 300)
PREFIX = "【IPTV增值业务】"


def _day(value: datetime) -> str:
    return timezone.localtime(value).strftime("%Y年%m月%d日")


def _until(value: datetime) -> str:
    """When viewing ends, to the minute: a period ends at the time of day it was bought, so the date alone
    ("可观看至03月05日") promised the whole of a day that ends at 00:20, or at 10:00."""
    return timezone.localtime(value).strftime("%Y年%m月%d日 %H:%M")


def reminder_text(subscription: Subscription, *, renews_on: datetime) -> str:
    return (
        f"{PREFIX}您订购的「{subscription.product.name}」将于{_day(renews_on)}自动续费，"
        f"费用{fen_to_yuan(subscription.renewal_price_fen)}元{_how_charged(subscription)}。"
        f"如需取消自动续费，请回复 TD。"
    )


def renewed_text(subscription: Subscription) -> str:
    # A charge sent before a cancel still completes (§8): then renewal is off, and TD has nothing to do.
    after = (
        "如需取消自动续费，请回复 TD。"
        if subscription.status == SubscriptionStatus.ACTIVE
        else "自动续费已取消，到期后不再扣费。"
    )
    return (
        f"{PREFIX}您订购的「{subscription.product.name}」已续费成功，"
        f"费用{fen_to_yuan(subscription.renewal_price_fen)}元，有效期至{_until(subscription.current_period_end)}。"
        f"{after}"
    )


def lapsed_text(subscription: Subscription) -> str:
    return (
        f"{PREFIX}您订购的「{subscription.product.name}」续费未能成功扣费，自动续费已停止；"
        f"已付费的内容可观看至{_until(subscription.current_period_end)}。"
    )


def not_renewed_text(subscription: Subscription) -> str:
    """Lapsed with nothing tried (no reminder could be sent in time): no word of a charge that failed."""
    return (
        f"{PREFIX}您订购的「{subscription.product.name}」未能在到期前按时续费，自动续费已停止，不会再扣费；"
        f"已付费的内容可观看至{_until(subscription.current_period_end)}。"
    )


def lapsed_refunded_text(subscription: Subscription, now: datetime) -> str:
    """Lapsed by a refund that left no paid period, or no time to renew before the paid period ends."""
    if subscription.current_period_end <= now:
        return f"{PREFIX}您订购的「{subscription.product.name}」费用已退款，自动续费已停止，不会再扣费。"
    return (
        f"{PREFIX}您订购的「{subscription.product.name}」有一期费用已退款，到期前已来不及续费，自动续费已停止，"
        f"不会再扣费；已付费的内容可观看至{_until(subscription.current_period_end)}。"
    )


def lapsed_after_refund_text(subscription: Subscription) -> str:
    return (
        f"{PREFIX}您订购的「{subscription.product.name}」有一期费用已退款，支付宝的约定扣款日无法提前，"
        f"自动续费已停止；已付费的内容可观看至{_until(subscription.current_period_end)}。"
    )


def cancelled_text(cancelled: list[Subscription], *, not_started: Iterable[Product] = ()) -> str:
    what = [f"「{s.product.name}」可观看至{_until(s.current_period_end)}" for s in cancelled]
    what += [f"「{product.name}」（刚订购，自动续费不再开通）" for product in not_started]
    return f"{PREFIX}已为您取消自动续费：{'；'.join(what)}。到期后不再扣费。"


def nothing_to_cancel_text() -> str:
    return f"{PREFIX}您没有正在自动续费的业务，无需取消。"


def _how_charged(subscription: Subscription) -> str:
    return {
        "wechat_qr": "，将从微信支付扣款",
        "alipay_qr": "，将从支付宝扣款",
    }.get(subscription.payment_method, "，计入手机话费")


def notice_create(
    *, kind: str, phone: str, text: str, subscription: Subscription | None = None, period: int | None = None
) -> SubscriptionNotice | None:
    """Write a notice and ask for it to be sent after commit; None when this one was written already."""
    try:
        with transaction.atomic():
            notice = SubscriptionNotice.objects.create(
                subscription=subscription, kind=kind, period=period, phone=phone, text=text
            )
    except IntegrityError:
        return None  # one reminder, renewal and lapse notice per period
    outbox.enqueue(tasks.send_notice, kwargs={"notice_id": notice.pk})
    return notice


def _void(notice: SubscriptionNotice) -> str:
    """Why a notice must no longer go out, or ''."""
    if not notice.phone:
        return "no mobile number to send it to"
    subscription = notice.subscription
    if notice.kind == NoticeKind.REMINDER and subscription is not None:
        if subscription.status != SubscriptionStatus.ACTIVE:
            return f"the subscription is {subscription.status}: no renewal to remind of"
        if notice.period != subscription.periods + 1:
            return f"period {notice.period} is not the coming one"
    return ""


def _bound_now(notice: SubscriptionNotice) -> str:
    """The mobile the SMP binds to the reminder's account now. A period may be a year: the customer may have
    bound another number since, and the reminder (the one notice before the charge, and what TD answers) must
    not go to whoever has the old one. The SMP's pre-check says (as the renewal's does); unanswered or refused,
    the number we have."""
    subscription = notice.subscription
    product = subscription.product
    request = PrecheckRequest(
        product_code=product.smp_product_code,
        kind=product.kind,
        tv_account=subscription.tv_account,
        phone=subscription.phone,
    )
    try:
        result = get_smp().precheck(request)
    except SmpUnavailable:
        return notice.phone
    phone = reachable_mobile(result.phone) if result.ok else ""  # none an SMS can reach: the number we have
    if not phone or phone == notice.phone:
        return notice.phone
    with transaction.atomic():
        renewals.phone_rebound(
            subscriptions.lock_subscription(subscription.pk),
            phone,
            actor=ACTOR,
            reason="the SMP's number before the reminder",
        )
        SubscriptionNotice.objects.filter(pk=notice.pk, sent_at__isnull=True).update(phone=phone)
    return phone


def notice_send(*, notice_id: int, attempt: int = 0) -> str:
    """Hand the notice to the gateway; retried with backoff. Safe to run twice: sent once."""
    notice = SubscriptionNotice.objects.select_related("subscription__product").filter(pk=notice_id).first()
    if notice is None or notice.sent_at or notice.gave_up_at:
        return "nothing_to_send"
    now = timezone.now()
    void = _void(notice)
    if void:
        SubscriptionNotice.objects.filter(pk=notice_id, sent_at__isnull=True).update(gave_up_at=now)
        logger.info("notice %s (%s) not sent: %s", notice.pk, notice.kind, void)
        return "void"
    if notice.kind == NoticeKind.REMINDER and notice.subscription is not None:
        notice.phone = _bound_now(notice)
        # Written when it was decided; sent later (the gateway was down), it names the day the renewal moves to.
        text = reminder_text(notice.subscription, renews_on=renewals.renews_on(notice.subscription, now))
        if text != notice.text:
            notice.text = text
            SubscriptionNotice.objects.filter(pk=notice_id).update(text=text)
    try:
        message_id = get_sms_gateway().send(
            SmsMessage(to=notice.phone, text=notice.text, reference=f"ipvas-notice-{notice.pk}")
        )
    except SmsUnavailable as exc:
        now = timezone.now()
        if now - notice.created_at > NOTICE_GIVE_UP:
            SubscriptionNotice.objects.filter(pk=notice_id, sent_at__isnull=True).update(
                gave_up_at=now, attempts=attempt + 1
            )
            logger.error("notice %s (%s) never sent: %s", notice.pk, notice.kind, exc)
            return "gave_up"
        delay = SEND_BACKOFF_SECONDS[min(attempt, len(SEND_BACKOFF_SECONDS) - 1)]
        with transaction.atomic():
            SubscriptionNotice.objects.filter(pk=notice_id).update(attempts=attempt + 1, tried_at=now)
            outbox.enqueue(
                tasks.send_notice,
                kwargs={"notice_id": notice_id, "attempt": attempt + 1},
                due_at=now + timedelta(seconds=delay),
            )
        logger.warning("notice %s not sent (%s); retry in %s s", notice.pk, exc, delay)
        return "retry"
    with transaction.atomic():
        sent = SubscriptionNotice.objects.filter(pk=notice_id, sent_at__isnull=True).update(
            sent_at=timezone.now(), gateway_message_id=message_id[:64], attempts=attempt + 1
        )
        if sent and notice.kind == NoticeKind.REMINDER and notice.subscription_id:
            renewals.reminder_sent(subscription_id=notice.subscription_id, notice_id=notice.pk)
    return "sent"
