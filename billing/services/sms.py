"""SMS confirmations of phone-bill payments: their text, the reply that confirms, their end.

The flow (send, reply, deadline) is the lifecycle's: lifecycle.confirmations.
"""

from __future__ import annotations

import math
import unicodedata
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from billing.models import Payment, PaymentStatus, SmsConfirmation, SmsConfirmationStatus, SmsInbound
from ipvas.money import fen_to_yuan
from ipvas.purge import purge_in_batches
from orders.constants import PaymentMethod
from orders.models import Order


def confirmation_text(order: Order) -> str:
    minutes = max(1, math.ceil(settings.PAYMENT_WINDOW_SECONDS / 60))
    price = fen_to_yuan(order.amount_fen)
    if order.auto_renew:
        # docs/interfaces.md §8: it renews, what each period costs, and that TD cancels.
        period = {"monthly": "每月", "quarterly": "每季", "yearly": "每年"}.get(order.product.kind, "每期")
        return (
            f"【IPTV增值业务】您正在订购「{order.product.name}」（自动续费），{period}{price}元，"
            f"费用计入手机话费，到期自动续费，可随时回复 TD 取消。"
            f"请在{minutes}分钟内回复 Y 确认订购，回复其他内容取消。"
        )
    return (
        f"【IPTV增值业务】您正在订购「{order.product.name}」，价格{price}元，"
        f"费用将计入手机话费。请在{minutes}分钟内回复 Y 确认订购，回复其他内容取消。"
    )


def is_yes(text: str) -> bool:
    """'Y', 'y', full-width 'Ｙ', with spaces (also full-width) around it."""
    return unicodedata.normalize("NFKC", text or "").strip().upper() == "Y"


def sms_confirmation_expire(order: Order) -> None:
    """The window ended (or a newer confirmation replaced this one): inside the caller's locked transaction."""
    SmsConfirmation.objects.filter(order=order, status=SmsConfirmationStatus.PENDING).update(
        status=SmsConfirmationStatus.EXPIRED
    )
    Payment.objects.filter(order=order, method=PaymentMethod.PHONE_BILL_SMS, status=PaymentStatus.PENDING).update(
        status=PaymentStatus.CLOSED
    )


def sms_replies_purge() -> int:
    """Forget the SMS replies stored more than ``SMS_REPLY_RETENTION_DAYS`` ago (beat, hourly). A confirmation
    keeps the reply that answered it, and a TD its subscription's event; the gateway retries a delivery for
    minutes, not months."""
    cutoff = timezone.now() - timedelta(days=settings.SMS_REPLY_RETENTION_DAYS)
    return purge_in_batches(SmsInbound.objects.filter(created_at__lt=cutoff))
