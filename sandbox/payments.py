"""The simulated WeChat Pay and Alipay: trades, refunds, payment codes, and signed notifications.

The simulated providers sign notifications with the sandbox keys
(ipvas/keyfiles.py) exactly as the real ones do, and deliver them to the
notify URLs, so that IPVAS's real verification code runs on them.
"""

from __future__ import annotations

import json
import secrets
import string
import time
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from adapters.providers.types import (
    CloseResult,
    CodePaymentRequest,
    ProviderRefused,
    QrOrderRequest,
    RefundRequest,
    RefundResult,
    RefundState,
    ReverseResult,
    Trade,
    TradeState,
)
from ipvas.keyfiles import sandbox_private_key_pem, sandbox_secret
from ipvas.money import fen_to_yuan
from sandbox.models import SimRefund, SimTrade, SimTradeStatus

WECHATPAY = "wechatpay"
ALIPAY = "alipay"
_STATES = {
    SimTradeStatus.NOT_PAID: TradeState.NOT_PAID,
    SimTradeStatus.PAID: TradeState.PAID,
    SimTradeStatus.CLOSED: TradeState.CLOSED,
    SimTradeStatus.USER_PAYING: TradeState.NOT_PAID,
    SimTradeStatus.FAILED: TradeState.FAILED,
    SimTradeStatus.REVOKED: TradeState.CLOSED,
}


class SandboxRefusal(Exception):
    """What the simulated provider refuses to do (pay a closed or expired trade...)."""


def _digits(n: int) -> str:
    return "".join(secrets.choice(string.digits) for _ in range(n))


def _new_transaction_id(provider: str) -> str:
    stamp = timezone.localtime().strftime("%Y%m%d")
    return f"4200{_digits(6)}{stamp}{_digits(10)}" if provider == WECHATPAY else f"{stamp}22001{_digits(15)}"


def _code_url(provider: str) -> str:
    alphabet = string.ascii_letters + string.digits
    token = "".join(secrets.choice(alphabet) for _ in range(20))
    if provider == WECHATPAY:
        return f"weixin://wxpay/bizpayurl?pr={token}"
    return f"https://qr.alipay.com/bax0{token.lower()}"


def _trade(trade: SimTrade) -> Trade:
    return Trade(
        state=_STATES[SimTradeStatus(trade.status)],
        out_trade_no=trade.out_trade_no,
        transaction_id=trade.transaction_id if trade.status == SimTradeStatus.PAID else "",
        amount_fen=trade.amount_fen,
        paid_at=trade.paid_at,
        refunded=trade.status == SimTradeStatus.PAID and trade.refunded_fen > 0,
    )


def create_trade(provider: str, request: QrOrderRequest) -> str:
    with transaction.atomic():
        existing = (
            SimTrade.objects.select_for_update().filter(provider=provider, out_trade_no=request.out_trade_no).first()
        )
        if existing is not None:
            # Providers answer a repeated order with the same code while it is open.
            if existing.status == SimTradeStatus.CLOSED:
                raise ProviderRefused("ORDER_CLOSED", "the trade was closed")
            if existing.amount_fen != request.amount_fen:
                raise ProviderRefused("INVALID_REQUEST", "out_trade_no reused with another amount")
            return existing.code_url
        trade = SimTrade.objects.create(
            provider=provider,
            out_trade_no=request.out_trade_no,
            transaction_id=_new_transaction_id(provider),
            amount_fen=request.amount_fen,
            description=request.description[:128],
            code_url=_code_url(provider),
            expires_at=request.expires_at,
        )
        return trade.code_url


def trade_record(provider: str, out_trade_no: str) -> SimTrade | None:
    """The simulated provider's own row, for the HTTP fakes that answer with its fields."""
    confirmed_in_app(provider, out_trade_no)
    return SimTrade.objects.filter(provider=provider, out_trade_no=out_trade_no).first()


def refund_record(provider: str, out_refund_no: str) -> SimRefund | None:
    return SimRefund.objects.select_related("trade").filter(provider=provider, out_refund_no=out_refund_no).first()


def query_trade(provider: str, out_trade_no: str) -> Trade:
    confirmed_in_app(provider, out_trade_no)
    trade = SimTrade.objects.filter(provider=provider, out_trade_no=out_trade_no).first()
    if trade is None:
        return Trade(state=TradeState.NOT_FOUND, out_trade_no=out_trade_no)
    return _trade(trade)


def close_trade(provider: str, out_trade_no: str) -> CloseResult:
    confirmed_in_app(provider, out_trade_no)
    with transaction.atomic():
        trade = SimTrade.objects.select_for_update().filter(provider=provider, out_trade_no=out_trade_no).first()
        if trade is None:
            return CloseResult(closed=True)
        if trade.status == SimTradeStatus.PAID:
            return CloseResult(closed=False, already_paid=True)
        trade.status = SimTradeStatus.CLOSED
        trade.save(update_fields=["status"])
        return CloseResult(closed=True)


def pay_trade(provider: str, out_trade_no: str) -> SimTrade:
    """The customer scans and pays. Paying twice changes nothing; closed or expired trades refuse."""
    with transaction.atomic():
        trade = SimTrade.objects.select_for_update().filter(provider=provider, out_trade_no=out_trade_no).first()
        if trade is None:
            raise SandboxRefusal(f"no {provider} trade {out_trade_no}")
        if trade.status in (SimTradeStatus.CLOSED, SimTradeStatus.REVOKED, SimTradeStatus.FAILED):
            raise SandboxRefusal(f"the trade is {SimTradeStatus(trade.status).label}")
        if trade.status in (SimTradeStatus.NOT_PAID, SimTradeStatus.USER_PAYING):
            if timezone.now() >= trade.expires_at:
                raise SandboxRefusal("the QR code has expired")
            trade.status = SimTradeStatus.PAID
            trade.paid_at = timezone.now()
            trade.save(update_fields=["status", "paid_at"])
        return trade


def refund(provider: str, request: RefundRequest) -> RefundResult:
    confirmed_in_app(provider, request.out_trade_no)
    with transaction.atomic():
        trade = (
            SimTrade.objects.select_for_update().filter(provider=provider, out_trade_no=request.out_trade_no).first()
        )
        if trade is None or trade.status != SimTradeStatus.PAID:
            raise ProviderRefused("TRADE_NOT_PAID", "only a paid trade can be refunded")
        done = SimRefund.objects.filter(provider=provider, out_refund_no=request.out_refund_no).first()
        if done is not None:
            return RefundResult(RefundState.SUCCEEDED, request.out_refund_no, done.refund_id)
        if request.amount_fen <= 0 or trade.refunded_fen + request.amount_fen > trade.amount_fen:
            raise ProviderRefused("INVALID_REQUEST", "refund exceeds what was paid")
        made = SimRefund.objects.create(
            provider=provider,
            out_refund_no=request.out_refund_no,
            refund_id=f"50{_digits(28)}",
            trade=trade,
            amount_fen=request.amount_fen,
        )
        trade.refunded_fen += request.amount_fen
        trade.save(update_fields=["refunded_fen"])
        return RefundResult(RefundState.SUCCEEDED, request.out_refund_no, made.refund_id)


def query_refund(provider: str, out_refund_no: str) -> RefundResult:
    made = SimRefund.objects.filter(provider=provider, out_refund_no=out_refund_no).first()
    if made is None:
        raise ProviderRefused("RESOURCE_NOT_EXISTS", "no such refund")
    return RefundResult(RefundState.SUCCEEDED, out_refund_no, made.refund_id)


# --- payment codes (付款码, docs/interfaces.md §10) ------------------------------------
#
# Both providers take the sandbox codes by their last four digits: 0000 paid at once; 0001 the customer
# confirms in the app, paid CONFIRM_SECONDS later; 0002 declined; 0003 the provider never answers (the
# trade waits for ever, until it is reversed); 0004 insufficient funds. Any other code is invalid.

CONFIRM_SECONDS = 10
PAID, CONFIRMING, DECLINED, NO_ANSWER, INSUFFICIENT, INVALID = (
    "paid", "confirming", "declined", "no_answer", "insufficient", "invalid"
)  # fmt: skip
CODE_OUTCOMES = {"0000": PAID, "0001": CONFIRMING, "0002": DECLINED, "0003": NO_ANSWER, "0004": INSUFFICIENT}
# How each provider words a refusal: (code, message).
REFUSALS = {
    (WECHATPAY, DECLINED): ("TRADE_ERROR", "交易错误，请顾客使用其他支付方式"),
    (WECHATPAY, INSUFFICIENT): ("NOT_ENOUGH", "用户账号余额不足"),
    (WECHATPAY, INVALID): ("AUTH_CODE_INVALID", "付款码无效，请顾客刷新后重新扫码"),
    (ALIPAY, DECLINED): ("ACQ.PAYMENT_FAIL", "支付失败"),
    (ALIPAY, INSUFFICIENT): ("ACQ.BUYER_BALANCE_NOT_ENOUGH", "买家余额不足"),
    (ALIPAY, INVALID): ("ACQ.PAYMENT_AUTH_CODE_INVALID", "支付失败，获取顾客账户信息失败，请顾客刷新付款码后重新收款"),
}
CODE_TRADE_LIFETIME = timedelta(hours=2)


def code_outcome(auth_code: str) -> str:
    return CODE_OUTCOMES.get(auth_code[-4:], INVALID)


def confirmed_in_app(provider: str, out_trade_no: str) -> None:
    """A confirming payment code whose customer confirmed by now is paid (the simulated customer's app)."""
    SimTrade.objects.filter(
        provider=provider, out_trade_no=out_trade_no, status=SimTradeStatus.USER_PAYING, pays_at__lte=timezone.now()
    ).update(status=SimTradeStatus.PAID, paid_at=F("pays_at"))


def charge_code(provider: str, request: CodePaymentRequest) -> tuple[SimTrade | None, str]:
    """The provider takes a payment code: the trade it made (None for an invalid code) and what it answers.

    The same out_trade_no again answers what became of that trade, as the providers do; another code or
    amount under it is refused.
    """
    confirmed_in_app(provider, request.out_trade_no)
    now = timezone.now()
    with transaction.atomic():
        trade = (
            SimTrade.objects.select_for_update().filter(provider=provider, out_trade_no=request.out_trade_no).first()
        )
        if trade is not None:
            if trade.auth_code != request.auth_code or trade.amount_fen != request.amount_fen:
                raise ProviderRefused("INVALID_REQUEST", "out_trade_no reused with another code or amount")
            if trade.status in (SimTradeStatus.REVOKED, SimTradeStatus.CLOSED):
                raise ProviderRefused("ORDER_CLOSED", "the trade was reversed")
            if trade.status == SimTradeStatus.PAID:
                return trade, PAID
            outcome = code_outcome(request.auth_code)
            return trade, CONFIRMING if outcome == CONFIRMING else outcome
        outcome = code_outcome(request.auth_code)
        if outcome == INVALID:
            return None, INVALID
        status = {
            PAID: SimTradeStatus.PAID,
            CONFIRMING: SimTradeStatus.USER_PAYING,
            NO_ANSWER: SimTradeStatus.USER_PAYING,
        }.get(outcome, SimTradeStatus.FAILED)
        trade = SimTrade.objects.create(
            provider=provider,
            out_trade_no=request.out_trade_no,
            transaction_id=_new_transaction_id(provider),
            amount_fen=request.amount_fen,
            description=request.description[:128],
            code_url="",
            auth_code=request.auth_code,
            status=status,
            expires_at=now + CODE_TRADE_LIFETIME,
            paid_at=now if outcome == PAID else None,
            pays_at=now + timedelta(seconds=CONFIRM_SECONDS) if outcome == CONFIRMING else None,
        )
        return trade, outcome


def reverse_trade(provider: str, out_trade_no: str) -> tuple[SimTrade | None, ReverseResult]:
    """WeChat Pay's reverse, Alipay's cancel: an unpaid trade can no longer be paid, a paid one's money goes
    back (the provider's own refund). Reversing twice is harmless."""
    confirmed_in_app(provider, out_trade_no)
    with transaction.atomic():
        trade = SimTrade.objects.select_for_update().filter(provider=provider, out_trade_no=out_trade_no).first()
        if trade is None:
            return None, ReverseResult(reversed=True, message="no such trade", not_found=True)
        refunded = trade.status == SimTradeStatus.PAID
        if trade.status != SimTradeStatus.REVOKED:
            trade.status = SimTradeStatus.REVOKED
            trade.pays_at = None
            trade.reversed_at = timezone.now()
            if refunded:
                trade.refunded_fen = trade.amount_fen
            trade.save(update_fields=["status", "pays_at", "refunded_fen", "reversed_at"])
        return trade, ReverseResult(reversed=True, refunded=refunded)


# --- notifications, signed as the providers sign them ----------------------------------


def _nonce(n: int = 32) -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(n))


TRADE_STATE_DESCRIPTIONS = {
    SimTradeStatus.PAID: "支付成功",
    SimTradeStatus.NOT_PAID: "订单未支付",
    SimTradeStatus.CLOSED: "订单已关闭",
    SimTradeStatus.USER_PAYING: "需要用户输入支付密码",
    SimTradeStatus.FAILED: "支付失败，请撤销订单",
    SimTradeStatus.REVOKED: "订单已撤销",
}


def trade_type(trade: SimTrade) -> str:
    """WeChat Pay's 交易类型: a payment code MICROPAY, a deduction under a contract PAP (委托代扣), a QR NATIVE."""
    if trade.auth_code:
        return "MICROPAY"
    return "PAP" if trade.deducted_under else "NATIVE"


def wechatpay_transaction(trade: SimTrade) -> dict[str, Any]:
    """The transaction object of WeChat Pay API v3 (query answer and notification resource)."""
    paid = trade.status == SimTradeStatus.PAID
    body: dict[str, Any] = {
        "mchid": settings.WECHATPAY_MCHID,
        "appid": settings.WECHATPAY_APPID,
        "out_trade_no": trade.out_trade_no,
        "trade_type": trade_type(trade),
        "trade_state": trade.status,
        "trade_state_desc": TRADE_STATE_DESCRIPTIONS.get(trade.status, "订单未支付"),
        "amount": {"total": trade.amount_fen, "currency": "CNY"},
    }
    if paid:
        body.update(
            {
                "transaction_id": trade.transaction_id,
                "bank_type": "OTHERS",
                "attach": trade.attach,
                "success_time": timezone.localtime(trade.paid_at).replace(microsecond=0).isoformat(),
                "payer": {"openid": "oSandbox" + trade.transaction_id[-12:]},
            }
        )
        body["amount"].update({"payer_total": trade.amount_fen, "payer_currency": "CNY"})
    return body


def wechatpay_event(
    *, event_type: str, summary: str, original_type: str, resource: dict[str, Any], timestamp: int | None = None
) -> tuple[bytes, dict[str, str]]:
    """A WeChat Pay API v3 notification: the resource sealed with the APIv3 key, the body signed."""
    from adapters.wechatpay import crypto
    from ipvas.credentials import load_private_key

    nonce = _nonce(12)
    plaintext = json.dumps(resource, ensure_ascii=False, separators=(",", ":"))
    envelope = {
        "id": f"EV-{_digits(20)}",
        "create_time": timezone.localtime().replace(microsecond=0).isoformat(),
        "resource_type": "encrypt-resource",
        "event_type": event_type,
        "summary": summary,
        "resource": {
            "original_type": original_type,
            "algorithm": "AEAD_AES_256_GCM",
            "ciphertext": crypto.encrypt_resource(
                sandbox_secret("wechatpay_apiv3_key.txt"),
                nonce=nonce,
                associated_data=original_type,
                plaintext=plaintext,
            ),
            "associated_data": original_type,
            "nonce": nonce,
        },
    }
    body = json.dumps(envelope, ensure_ascii=False, separators=(",", ":")).encode()
    stamp = str(timestamp if timestamp is not None else int(time.time()))
    header_nonce = _nonce(32)
    key = load_private_key(sandbox_private_key_pem("wechatpay_platform_private_key.pem"))
    headers = {
        "Wechatpay-Timestamp": stamp,
        "Wechatpay-Nonce": header_nonce,
        "Wechatpay-Signature": crypto.sign(key, timestamp=stamp, nonce=header_nonce, body=body),
        "Wechatpay-Serial": settings.WECHATPAY_PLATFORM_PUBLIC_KEY_ID,
        "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
    }
    return body, headers


def wechatpay_notification(trade: SimTrade, *, timestamp: int | None = None) -> tuple[bytes, dict[str, str]]:
    return wechatpay_event(
        event_type="TRANSACTION.SUCCESS",
        summary="支付成功",
        original_type="transaction",
        resource=wechatpay_transaction(trade),
        timestamp=timestamp,
    )


def wechatpay_refund_notification(refund: SimRefund, *, status: str = "SUCCESS") -> tuple[bytes, dict[str, str]]:
    """REFUND.SUCCESS (or ABNORMAL, CLOSED) for a simulated refund, as WeChat Pay sends it."""
    trade = refund.trade
    resource = {
        "mchid": settings.WECHATPAY_MCHID,
        "out_trade_no": trade.out_trade_no,
        "transaction_id": trade.transaction_id,
        "out_refund_no": refund.out_refund_no,
        "refund_id": refund.refund_id,
        "refund_status": status,
        "success_time": timezone.localtime().replace(microsecond=0).isoformat(),
        "user_received_account": "支付用户零钱",
        "amount": {
            "total": trade.amount_fen,
            "refund": refund.amount_fen,
            "payer_total": trade.amount_fen,
            "payer_refund": refund.amount_fen,
        },
    }
    return wechatpay_event(event_type=f"REFUND.{status}", summary="退款成功", original_type="refund", resource=resource)


def alipay_notification(trade: SimTrade) -> dict[str, str]:
    from adapters.alipay import crypto
    from ipvas.credentials import load_private_key

    paid_at = timezone.localtime(trade.paid_at or timezone.now())
    created = timezone.localtime(trade.created_at or timezone.now())
    params = {
        "gmt_create": created.strftime("%Y-%m-%d %H:%M:%S"),
        "charset": "utf-8",
        "gmt_payment": paid_at.strftime("%Y-%m-%d %H:%M:%S"),
        "notify_time": timezone.localtime().strftime("%Y-%m-%d %H:%M:%S"),
        "subject": trade.description,
        "buyer_id": "2088" + _digits(12),
        "invoice_amount": fen_to_yuan(trade.amount_fen),
        "version": "1.0",
        "notify_id": f"2026{_digits(28)}",
        "fund_bill_list": json.dumps([{"amount": fen_to_yuan(trade.amount_fen), "fundChannel": "ALIPAYACCOUNT"}]),
        "notify_type": "trade_status_sync",
        "out_trade_no": trade.out_trade_no,
        "total_amount": fen_to_yuan(trade.amount_fen),
        "trade_status": "TRADE_SUCCESS",
        "trade_no": trade.transaction_id,
        "auth_app_id": settings.ALIPAY_APP_ID,
        "receipt_amount": fen_to_yuan(trade.amount_fen),
        "point_amount": "0.00",
        "app_id": settings.ALIPAY_APP_ID,
        "buyer_pay_amount": fen_to_yuan(trade.amount_fen),
        "seller_id": settings.ALIPAY_SELLER_ID,
    }
    key = load_private_key(sandbox_private_key_pem("alipay_private_key.pem"))
    params["sign"] = crypto.sign(key, params)
    params["sign_type"] = "RSA2"
    return params
