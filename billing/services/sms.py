"""SMS confirmations of phone-bill payments: their text, the reply that confirms, their end.

The flow (send, reply, deadline) is the lifecycle's: lifecycle.confirmations.
"""

from __future__ import annotations

import math
import unicodedata

from django.conf import settings

from billing.models import Payment, PaymentStatus, SmsConfirmation, SmsConfirmationStatus
from ipvas.money import fen_to_yuan
from orders.constants import PaymentMethod
from orders.models import Order


def confirmation_text(order: Order) -> str:
    minutes = max(1, math.ceil(settings.PAYMENT_WINDOW_SECONDS / 60))
    return (
        f"【IPTV增值业务】您正在订购「{order.product.name}」，价格{fen_to_yuan(order.amount_fen)}元，"
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
