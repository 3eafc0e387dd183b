"""QR code images of pending payments, cached: clients ask again every second or two while polling."""

from __future__ import annotations

import hashlib
import io

import qrcode
from django.conf import settings
from django.core.cache import cache


def qr_png(content: str) -> bytes:
    key = "qrpng:" + hashlib.sha256(content.encode()).hexdigest()
    png = cache.get(key)
    if png is None:
        image = qrcode.make(content, box_size=10, border=2)
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        png = buffer.getvalue()
        cache.set(key, png, settings.PAYMENT_WINDOW_SECONDS + 60)
    return png


def showing_qr_content(order) -> str:  # type: ignore[no-untyped-def]
    """What the order's QR code encodes while its QR payment is pending, else ''."""
    from billing.models import Payment, PaymentStatus
    from orders.constants import QR_METHODS, OrderStatus

    if order.status != OrderStatus.PAYMENT_PENDING or order.payment_method not in QR_METHODS:
        return ""
    payment = (
        Payment.objects.filter(order=order, method=order.payment_method, status=PaymentStatus.PENDING)
        .order_by("-created_at", "-pk")
        .first()
    )
    return payment.qr_code_url if payment else ""
