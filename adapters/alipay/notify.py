"""Verifying Alipay's asynchronous notifications (RSA2 with the Alipay public key).

Alipay re-sends a notification with the same notify_id for up to a day
until it reads "success", so there is no freshness window here: a repeat is
recognised by its notify_id and answered without being applied again.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from django.conf import settings
from django.utils import timezone

from adapters.alipay import config, crypto
from adapters.providers.types import NotificationRejected, PaidNotice
from ipvas.money import yuan_to_fen

PROVIDER = "alipay"
PAID_STATUSES = {"TRADE_SUCCESS", "TRADE_FINISHED"}


def _parse_time(value: str) -> datetime | None:
    try:
        return timezone.make_aware(datetime.strptime(value, "%Y-%m-%d %H:%M:%S")) if value else None
    except ValueError:
        return None


def verify_notification(params: Mapping[str, str]) -> PaidNotice:
    signature = params.get("sign", "")
    if not signature:
        raise NotificationRejected("missing sign")
    if params.get("sign_type") != "RSA2":
        raise NotificationRejected("sign_type must be RSA2")
    if not crypto.verify(config.alipay_public_key(), params, signature):
        raise NotificationRejected("bad signature")
    for name in ("notify_id", "out_trade_no", "trade_status", "total_amount", "app_id"):
        if not params.get(name):
            raise NotificationRejected(f"missing {name}")
    try:
        amount = yuan_to_fen(params["total_amount"])
    except ValueError as exc:
        raise NotificationRejected(str(exc)) from None
    return PaidNotice(
        provider=PROVIDER,
        notification_id=params["notify_id"],
        out_trade_no=params["out_trade_no"],
        paid=params["trade_status"] in PAID_STATUSES,
        transaction_id=params.get("trade_no", ""),
        amount_fen=amount,
        paid_at=_parse_time(params.get("gmt_payment", "")),
        merchant_id=params.get("seller_id", ""),
        app_id=params["app_id"],
        decoded=dict(params),
    )


def check_ours(notice: PaidNotice) -> None:
    if notice.app_id != settings.ALIPAY_APP_ID:
        raise NotificationRejected(f"app_id {notice.app_id!r} is not ours")
    if settings.ALIPAY_SELLER_ID and notice.merchant_id != settings.ALIPAY_SELLER_ID:
        raise NotificationRejected(f"seller_id {notice.merchant_id!r} is not ours")
