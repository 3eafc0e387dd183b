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
from adapters.providers.types import ContractEvent, ContractNotice, NotificationRejected, PaidNotice
from ipvas.money import yuan_to_fen

PROVIDER = "alipay"
PAID_STATUSES = {"TRADE_SUCCESS", "TRADE_FINISHED"}
# 周期扣款: the agreement's signing and its end (by the user in the Alipay app, or by the merchant's unsign)
# come to the same notify URL as the payments, told apart by notify_type.
CONTRACT_NOTIFY_TYPES = {"dut_user_sign": ContractEvent.SIGNED, "dut_user_unsign": ContractEvent.TERMINATED}


def _parse_time(value: str) -> datetime | None:
    try:
        return timezone.make_aware(datetime.strptime(value, "%Y-%m-%d %H:%M:%S")) if value else None
    except ValueError:
        return None


def verify_signature(params: Mapping[str, str]) -> None:
    signature = params.get("sign", "")
    if not signature:
        raise NotificationRejected("missing sign")
    if params.get("sign_type") != "RSA2":
        raise NotificationRejected("sign_type must be RSA2")
    if not crypto.verify(config.alipay_public_key(), params, signature):
        raise NotificationRejected("bad signature")


def is_contract_notification(params: Mapping[str, str]) -> bool:
    return params.get("notify_type", "") in CONTRACT_NOTIFY_TYPES


def verify_notification(params: Mapping[str, str]) -> PaidNotice:
    verify_signature(params)
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


def contract_notice(params: Mapping[str, str]) -> ContractNotice:
    """A signing (``dut_user_sign``) or termination (``dut_user_unsign``) notification of a 周期扣款 agreement,
    its RSA2 signature verified; it must be ours (app id, and our seller id as partner when set)."""
    verify_signature(params)
    event = CONTRACT_NOTIFY_TYPES.get(params.get("notify_type", ""))
    if event is None:
        raise NotificationRejected(f"not a contract notification: {params.get('notify_type', '')[:32]!r}")
    for name in ("notify_id", "external_agreement_no", "agreement_no"):
        if not params.get(name):
            raise NotificationRejected(f"missing {name}")
    app_id = params.get("app_id") or params.get("auth_app_id") or ""
    if app_id != settings.ALIPAY_APP_ID:
        raise NotificationRejected(f"app_id {app_id[:32]!r} is not ours")
    if settings.ALIPAY_SELLER_ID and params.get("partner_id", settings.ALIPAY_SELLER_ID) != settings.ALIPAY_SELLER_ID:
        raise NotificationRejected(f"partner_id {params.get('partner_id', '')[:32]!r} is not ours")
    when = params.get("sign_time") if event == ContractEvent.SIGNED else params.get("unsign_time")
    return ContractNotice(
        provider=PROVIDER,
        # Stored under the agreement and its change, whatever notify_id a resend carries.
        notification_id=f"contract:{params['agreement_no']}:{params['notify_type']}",
        event=event,
        contract_code=params["external_agreement_no"],
        contract_id=params["agreement_no"],
        at=_parse_time(when or ""),
        # The merchant's own unsign is notified at its notify_url only when it asked; any unsign we did not
        # ask for is the user's (docs/decisions.md).
        by_user=event == ContractEvent.TERMINATED,
        decoded=dict(params),
    )
