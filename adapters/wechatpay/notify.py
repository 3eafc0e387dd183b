"""Verifying WeChat Pay's notifications: API v3 (payment and refund), and the APIv2 ones of 委托代扣 (the
pay-and-sign order's payment, the contract's signing and termination), at the end of this module.

In order: the platform key id (one of those configured), the timestamp (at most
NOTIFICATION_MAX_SKEW_SECONDS off), the RSA signature with the platform
public key that id names, the nonce (a nonce seen before with another signature is a
replay; the same delivery again is a duplicate, which is answered, not
refused), then the AES-256-GCM resource with the APIv3 key.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from adapters.providers.types import (
    ContractEvent,
    ContractNotice,
    NotificationRejected,
    PaidNotice,
    RefundResult,
    RefundState,
)
from adapters.wechatpay import config, crypto, v2
from ipvas.text import storable

PROVIDER = "wechatpay"


@dataclass(frozen=True)
class WechatEvent:
    id: str
    event_type: str
    resource: dict[str, Any]


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name) or headers.get(name.lower()) or ""
    if not value:
        raise NotificationRejected(f"missing header {name}")
    return value


def verify_event(headers: Mapping[str, str], body: bytes) -> WechatEvent:
    timestamp = _header(headers, "Wechatpay-Timestamp")
    nonce = _header(headers, "Wechatpay-Nonce")
    signature = _header(headers, "Wechatpay-Signature")
    serial = _header(headers, "Wechatpay-Serial")
    signature_type = headers.get("Wechatpay-Signature-Type") or "WECHATPAY2-SHA256-RSA2048"
    if signature_type != "WECHATPAY2-SHA256-RSA2048":
        raise NotificationRejected(f"unsupported signature type {signature_type}")
    # The key the notification names, among those configured: while WeChat Pay switches keys it signs under
    # either (docs/protocols.md). An id we do not have is refused, and logged: the key to install.
    platform_key = config.platform_public_key_for(serial)
    if platform_key is None:
        raise NotificationRejected(f"unknown platform key {serial[:64]}")
    try:
        sent_at = int(timestamp)
    except ValueError:
        raise NotificationRejected("the timestamp is not a number") from None
    if abs(time.time() - sent_at) > settings.NOTIFICATION_MAX_SKEW_SECONDS:
        raise NotificationRejected("the timestamp is too far from now")
    if not crypto.verify(platform_key, timestamp=timestamp, nonce=nonce, body=body, signature=signature):
        raise NotificationRejected("bad signature")
    fingerprint = hashlib.sha256(signature.encode()).hexdigest()
    key = f"wechatpay:nonce:{hashlib.sha256(nonce.encode()).hexdigest()}"
    window = 2 * settings.NOTIFICATION_MAX_SKEW_SECONDS + 60
    if not cache.add(key, fingerprint, timeout=window) and cache.get(key) != fingerprint:
        raise NotificationRejected("nonce already used by another message")
    try:
        envelope = json.loads(body)
        resource = envelope["resource"]
        if envelope.get("resource_type") != "encrypt-resource" or resource.get("algorithm") != "AEAD_AES_256_GCM":
            raise NotificationRejected("unsupported resource encryption")
        plaintext = crypto.decrypt_resource(
            config.apiv3_key(),
            nonce=str(resource["nonce"]),
            associated_data=str(resource.get("associated_data") or ""),
            ciphertext=str(resource["ciphertext"]),
        )
        if plaintext is None:
            raise NotificationRejected("the resource does not decrypt with our APIv3 key")
        return WechatEvent(
            id=str(envelope["id"]), event_type=str(envelope["event_type"]), resource=json.loads(plaintext)
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise NotificationRejected(f"malformed notification: {exc.__class__.__name__}") from None


def _parse_time(value: Any) -> datetime | None:
    """The time WeChat Pay says, or None for one we cannot read or store (then the time it is applied)."""
    try:
        parsed = datetime.fromisoformat(str(value)) if value else None
        if parsed is not None and parsed.tzinfo is not None:
            parsed.astimezone(UTC)  # OverflowError at the ends of the calendar
        return parsed
    except (ValueError, OverflowError):
        return None


def _storable(**values: str) -> None:
    """Identifiers we keep as they come (the notification's id, the trade's numbers): a NUL (PostgreSQL refuses
    it) or a lone surrogate (no encoding writes it) is refused, a 400, not a 500 retried for ever."""
    for name, value in values.items():
        if not storable(value):
            raise NotificationRejected(f"{name} holds a NUL or a lone surrogate")


def paid_notice(event: WechatEvent) -> PaidNotice:
    """A TRANSACTION.* event as IPVAS's PaidNotice."""
    resource = event.resource
    if not event.event_type.startswith("TRANSACTION."):
        raise NotificationRejected(f"not a payment notification: {event.event_type}")
    if isinstance(resource, dict):
        _storable(
            id=event.id,
            out_trade_no=str(resource.get("out_trade_no") or ""),
            transaction_id=str(resource.get("transaction_id") or ""),
        )
    try:
        amount = resource.get("amount") or {}
        total = amount.get("total")
        if not isinstance(total, int) or isinstance(total, bool):
            raise NotificationRejected("amount.total is not an integer")
        return PaidNotice(
            provider=PROVIDER,
            notification_id=event.id,
            out_trade_no=str(resource["out_trade_no"]),
            paid=event.event_type == "TRANSACTION.SUCCESS" and resource.get("trade_state") == "SUCCESS",
            transaction_id=str(resource.get("transaction_id") or ""),
            amount_fen=total,
            paid_at=_parse_time(resource.get("success_time")),
            merchant_id=str(resource.get("mchid") or ""),
            app_id=str(resource.get("appid") or ""),
            decoded=resource,
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise NotificationRejected(f"malformed transaction: {exc.__class__.__name__}") from None


def check_ours(notice: PaidNotice) -> None:
    if notice.merchant_id != settings.WECHATPAY_MCHID:
        raise NotificationRejected(f"merchant id {notice.merchant_id!r} is not ours")
    if notice.app_id != settings.WECHATPAY_APPID:
        raise NotificationRejected(f"app id {notice.app_id!r} is not ours")


REFUND_EVENT_STATES = {
    "REFUND.SUCCESS": RefundState.SUCCEEDED,
    "REFUND.ABNORMAL": RefundState.FAILED,
    "REFUND.CLOSED": RefundState.FAILED,
}


def refund_result(event: WechatEvent) -> tuple[str, RefundResult]:
    """A REFUND.* event as (out_refund_no, RefundResult); checks it is our merchant's."""
    resource = event.resource
    state = REFUND_EVENT_STATES.get(event.event_type)
    if state is None:
        raise NotificationRejected(f"not a refund notification: {event.event_type}")
    if not isinstance(resource, dict):
        raise NotificationRejected("the resource is not a JSON object")
    if str(resource.get("mchid") or "") != settings.WECHATPAY_MCHID:
        raise NotificationRejected("merchant id is not ours")
    out_refund_no = str(resource.get("out_refund_no") or "")
    if not out_refund_no:
        raise NotificationRejected("missing out_refund_no")
    _storable(id=event.id, out_refund_no=out_refund_no, refund_id=str(resource.get("refund_id") or ""))
    return out_refund_no, RefundResult(
        state=state,
        out_refund_no=out_refund_no,
        refund_id=str(resource.get("refund_id") or ""),
        message=str(resource.get("refund_status") or event.event_type),
    )


# --- APIv2 notifications of 委托代扣: the pay-and-sign order's payment, the contract's signing and end ----------


def verify_v2(body: bytes) -> dict[str, str]:
    """An APIv2 notification's parameters, once its XML is read and its signature verified with the APIv2 key;
    and it must be ours (our merchant id). No time window: WeChat Pay resends the same notification for hours,
    and a repeat is recognised by what it is about (the transaction, or the contract and its change)."""
    try:
        params = v2.parse_xml(body)
    except ValueError as exc:
        raise NotificationRejected(f"malformed notification: {exc}") from None
    if params.get("return_code") != "SUCCESS":
        raise NotificationRejected(f"return_code {params.get('return_code')!r}")
    if not params.get("sign"):
        raise NotificationRejected("missing sign")
    if not v2.verify(params, config.v2_key()):
        raise NotificationRejected("bad signature")
    if params.get("mch_id") != settings.WECHATPAY_MCHID:
        raise NotificationRejected(f"merchant id {params.get('mch_id', '')[:32]!r} is not ours")
    return params


def _v2_time(value: str) -> datetime | None:
    try:
        return timezone.make_aware(datetime.strptime(value, "%Y%m%d%H%M%S")) if value else None
    except ValueError:
        return None


def v2_paid_notice(params: dict[str, str]) -> PaidNotice:
    """The APIv2 payment notification of a pay-and-sign order (支付结果通知) or of a deduction (扣款结果通知,
    trade_type PAP) as IPVAS's PaidNotice. A deduction that did not go through is ``result_code`` FAIL, or its
    ``trade_state`` another than SUCCESS (PAYERROR...): not paid, and its state is in ``decoded``."""
    if params.get("appid") != settings.WECHATPAY_APPID:
        raise NotificationRejected(f"app id {params.get('appid', '')[:32]!r} is not ours")
    paid = params.get("result_code") == "SUCCESS" and params.get("trade_state", "SUCCESS") == "SUCCESS"
    for name in ("out_trade_no", "total_fee", "result_code", *(("transaction_id",) if paid else ())):
        if not params.get(name):
            raise NotificationRejected(f"missing {name}")
    try:
        total = int(params["total_fee"])
    except ValueError:
        raise NotificationRejected("total_fee is not a whole number of fen") from None
    # One id per trade and state: a deduction's ACCEPT or NOTPAY notice is followed by its SUCCESS or PAY_FAIL,
    # which must not be taken for a repeat of it.
    reference = params.get("transaction_id") or params["out_trade_no"]
    state = params.get("trade_state") or params["result_code"]
    return PaidNotice(
        provider=PROVIDER,
        notification_id=f"v2-pay:{reference}:{state}",
        out_trade_no=params["out_trade_no"],
        paid=paid,
        transaction_id=params.get("transaction_id", ""),
        amount_fen=total,
        paid_at=_v2_time(params.get("time_end", "")),
        merchant_id=params["mch_id"],
        app_id=params["appid"],
        decoded=dict(params),
        contract_gone=not paid and params.get("err_code", "") in v2.CONTRACT_GONE_CODES,
    )


# change_type of the signing and termination notification (签约、解约结果通知).
CONTRACT_CHANGES = {"ADD": ContractEvent.SIGNED, "DELETE": ContractEvent.TERMINATED}
# contract_termination_mode: 0 never ended, 1 expired, 2 ended by the user, 3 by the merchant's API (and
# others: customer service); only 2 is the user's own doing in WeChat.
TERMINATED_BY_USER = "2"


def contract_notice(params: dict[str, str]) -> ContractNotice:
    """The APIv2 signing or termination notification (签约、解约结果通知) as a ContractNotice; it must name our
    template (plan_id)."""
    if params.get("result_code") != "SUCCESS":
        raise NotificationRejected(f"result_code {params.get('result_code')!r}")
    event = CONTRACT_CHANGES.get(params.get("change_type", ""))
    if event is None:
        raise NotificationRejected(f"unknown change_type {params.get('change_type', '')[:16]!r}")
    if params.get("plan_id") != settings.WECHATPAY_PAPAY_PLAN_ID:
        raise NotificationRejected(f"template {params.get('plan_id', '')[:32]!r} is not ours")
    for name in ("contract_code", "contract_id"):
        if not params.get(name):
            raise NotificationRejected(f"missing {name}")
    return ContractNotice(
        provider=PROVIDER,
        notification_id=f"contract:{params['contract_id']}:{params['change_type']}",
        event=event,
        contract_code=params["contract_code"],
        contract_id=params["contract_id"],
        at=_v2_time(params.get("operate_time", "").replace("-", "").replace(":", "").replace(" ", "")),
        by_user=event == ContractEvent.TERMINATED and params.get("contract_termination_mode") == TERMINATED_BY_USER,
        decoded=dict(params),
    )
