"""payment_pending → provisioning or failed: phone bill with SMS confirmation (docs/interfaces.md §4).

The SMS goes out through the gateway, the reply comes in through callbacks.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from adapters.sms import SmsMessage, SmsUnavailable, get_sms_gateway
from billing.models import (
    Payment,
    PaymentStatus,
    Provider,
    SmsConfirmation,
    SmsConfirmationStatus,
    SmsInbound,
)
from billing.services.sms import confirmation_text, is_yes
from ipvas import outbox, ratelimit
from ipvas.actors import Actor, ActorKind
from ipvas.errors import InvalidState
from ipvas.locks import lock_name
from lifecycle import subscriptions, tasks
from lifecycle.transitions import lock_order, lock_to_pay, transit
from orders.constants import FailureCode, OrderStatus, PaymentMethod
from orders.models import Order
from orders.models.order import mask_phone
from orders.validation import normalize_mainland_mobile

logger = logging.getLogger(__name__)
SEND_BACKOFF_SECONDS = (1, 2, 5, 10, 20, 30)


def _limit(order: Order, actor: Actor) -> None:
    message = _("Too many SMS confirmations; please try again later.")
    ratelimit.hit(
        "sms-number",
        order.phone,
        limit=settings.SMS_CONFIRMATIONS_PER_NUMBER_PER_HOUR,
        window_seconds=3600,
        message=message,
    )
    ratelimit.hit(
        "sms-account",
        order.tv_account,
        limit=settings.SMS_CONFIRMATIONS_PER_TV_ACCOUNT_PER_HOUR,
        window_seconds=3600,
        message=message,
    )
    if actor.kind == ActorKind.EPG_CLIENT:
        ratelimit.hit(
            "sms-client",
            actor.id,
            limit=settings.SMS_CONFIRMATIONS_PER_CLIENT_PER_MINUTE,
            window_seconds=60,
            message=message,
        )


def sms_confirmation_start(*, order_id: int, actor: Actor) -> Order:
    now = timezone.now()
    with transaction.atomic():
        order = lock_to_pay(order_id, PaymentMethod.PHONE_BILL_SMS)
        if order.status != OrderStatus.AWAITING_PAYMENT:
            raise InvalidState(
                _("A payment method cannot be chosen for an order that is %(status)s.")
                % {"status": OrderStatus(order.status).label},
                extra={"status": order.status},
            )
        if not order.phone:
            raise InvalidState(_("The SMP gave no mobile number for this account; choose another method."))
        _limit(order, actor)
        # One confirmation pending per number: starts for the same number queue here.
        lock_name(f"sms-confirmation:{order.phone}")
        expires_at = now + timedelta(seconds=settings.PAYMENT_WINDOW_SECONDS)
        # A new confirmation to a number expires the older ones pending there
        # (docs/interfaces.md §4); their orders end at once, each under its own lock.
        for older in SmsConfirmation.objects.filter(phone=order.phone, status=SmsConfirmationStatus.PENDING):
            SmsConfirmation.objects.filter(pk=older.pk, status=SmsConfirmationStatus.PENDING).update(
                status=SmsConfirmationStatus.SUPERSEDED
            )
            deadline = Order.objects.filter(pk=older.order_id).values_list("deadline_at", flat=True).first()
            if deadline is not None:
                outbox.enqueue(
                    tasks.order_deadline,
                    kwargs={"order_id": older.order_id, "due_at": deadline.isoformat()},
                )
        confirmation = SmsConfirmation.objects.create(
            order=order, phone=order.phone, text=confirmation_text(order), expires_at=expires_at
        )
        Payment.objects.create(
            order=order,
            method=PaymentMethod.PHONE_BILL_SMS,
            provider=Provider.SMP,
            out_trade_no=order.order_no,
            amount_fen=order.amount_fen,
            status=PaymentStatus.PENDING,
            expires_at=expires_at,
        )
        transit(
            order,
            order.start_payment,
            payment_method=PaymentMethod.PHONE_BILL_SMS,
            deadline_at=expires_at,
            actor=actor,
            reason=f"confirmation SMS to {mask_phone(order.phone)}",
            data={"method": PaymentMethod.PHONE_BILL_SMS},
        )
        outbox.enqueue(tasks.send_sms_confirmation, kwargs={"confirmation_id": confirmation.pk})
    return order


def sms_send_confirmation(*, confirmation_id: int, attempt: int = 0) -> str:
    """Hand the SMS to the gateway; retried with backoff until the confirmation window ends."""
    confirmation = SmsConfirmation.objects.filter(pk=confirmation_id).first()
    if confirmation is None or confirmation.status != SmsConfirmationStatus.PENDING or confirmation.sent_at:
        return "nothing_to_send"
    now = timezone.now()
    if now >= confirmation.expires_at:
        return "too_late"
    try:
        message_id = get_sms_gateway().send(
            SmsMessage(to=confirmation.phone, text=confirmation.text, reference=f"ipvas-sms-{confirmation.pk}")
        )
    except SmsUnavailable as exc:
        delay = SEND_BACKOFF_SECONDS[min(attempt, len(SEND_BACKOFF_SECONDS) - 1)]
        if now + timedelta(seconds=delay) < confirmation.expires_at:
            logger.warning("SMS to %s not sent (%s); retry in %s s", mask_phone(confirmation.phone), exc, delay)
            with transaction.atomic():
                outbox.enqueue(
                    tasks.send_sms_confirmation,
                    kwargs={"confirmation_id": confirmation_id, "attempt": attempt + 1},
                    due_at=now + timedelta(seconds=delay),
                )
            return "retry"
        logger.error("SMS to %s never sent: %s", mask_phone(confirmation.phone), exc)
        return "gave_up"
    SmsConfirmation.objects.filter(pk=confirmation_id, sent_at__isnull=True).update(
        sent_at=timezone.now(), gateway_message_id=message_id
    )
    return "sent"


def reply_freshness() -> timedelta:
    """How old a reply may be (its signed ``received_at``) and still be taken: a day less than its digest is kept,
    so that a replay is always refused, by the digest or by its age. A gateway retries for minutes."""
    return timedelta(days=settings.SMS_REPLY_RETENTION_DAYS - 1)


def sms_reply_received(*, sender: str, text: str, received_at: datetime, raw: bytes) -> str:
    """The gateway delivered a reply (MO). Returns what it did, in a word."""
    try:
        phone = normalize_mainland_mobile(sender)
    except ValidationError:
        return "not_a_mobile"
    if received_at < timezone.now() - reply_freshness():
        # A signed reply is refused twice by its stored digest, which is purged after SMS_REPLY_RETENTION_DAYS
        # (billing.services.sms): one older than that may be a captured reply replayed, to confirm a new charge.
        logger.warning("SMS reply from %s received at %s refused: too old", mask_phone(phone), received_at)
        return "too_old"
    digest = hashlib.sha256(raw).hexdigest()
    with transaction.atomic():
        try:
            with transaction.atomic():
                inbound = SmsInbound.objects.create(
                    digest=digest, sender=phone, text=text[:160], received_at=received_at, outcome="received"
                )
        except IntegrityError:
            return "duplicate"
        now = timezone.now()
        # Only a confirmation whose SMS went out can be answered: a Y to an earlier SMS must not confirm a newer
        # order the customer never saw (its SMS not sent yet, the gateway down).
        confirmation = (
            SmsConfirmation.objects.filter(
                phone=phone, status=SmsConfirmationStatus.PENDING, expires_at__gt=now, sent_at__isnull=False
            )
            .order_by("-created_at", "-pk")
            .first()
        )
        # Like any reply other than Y, TD declines a pending confirmation (docs/interfaces.md §4, §8).
        outcome = _apply_reply(confirmation, text=text, now=now, phone=phone) if confirmation else "none_pending"
        td, product_code = subscriptions.is_td(text)
        if td:
            actor = Actor(ActorKind.SMS, mask_phone(phone) or "")
            cancelled = subscriptions.cancel_by_sms(phone=phone, product_code=product_code, actor=actor)
            outcome = f"{outcome}; td cancelled {len(cancelled)}"
        inbound.confirmation = confirmation
        inbound.outcome = outcome
        inbound.save(update_fields=["confirmation", "outcome"])
    return outcome


def _apply_reply(confirmation: SmsConfirmation, *, text: str, now: datetime, phone: str) -> str:
    order = lock_order(confirmation.order_id)
    confirmation = SmsConfirmation.objects.select_for_update().get(pk=confirmation.pk)
    if (
        confirmation.status != SmsConfirmationStatus.PENDING
        or now >= confirmation.expires_at
        or order.status != OrderStatus.PAYMENT_PENDING
        or order.payment_method != PaymentMethod.PHONE_BILL_SMS
    ):
        return "too_late"
    actor = Actor(ActorKind.SMS, mask_phone(phone) or "")
    confirmation.reply_text = text[:160]
    confirmation.replied_at = now
    if is_yes(text):
        confirmation.status = SmsConfirmationStatus.CONFIRMED
        confirmation.save(update_fields=["status", "reply_text", "replied_at"])
        transit(
            order, order.payment_confirmed, payment_method=PaymentMethod.PHONE_BILL_SMS, actor=actor, reason="replied Y"
        )
        return "confirmed"
    confirmation.status = SmsConfirmationStatus.DECLINED
    confirmation.save(update_fields=["status", "reply_text", "replied_at"])
    Payment.objects.filter(order=order, method=PaymentMethod.PHONE_BILL_SMS, status=PaymentStatus.PENDING).update(
        status=PaymentStatus.FAILED, failure_reason="declined by SMS"
    )
    transit(order, order.fail, code=FailureCode.SMS_DECLINED, actor=actor, reason="replied other than Y")
    return "declined"
