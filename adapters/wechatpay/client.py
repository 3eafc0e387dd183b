"""The real WeChat Pay API v3 client (Native payments and payment codes), through the wechatpayv3 SDK.

Requests are signed with the merchant key; answers are verified by the SDK
with the platform public key. ``WECHATPAY_GATEWAY`` points it at
api.mch.weixin.qq.com, or at the sandbox's fake for integration tests.

Payment codes (付款码) use APIv3 付款码支付: ``POST /v3/pay/transactions/codepay``, the same query as
Native, and ``POST /v3/pay/transactions/out-trade-no/{out_trade_no}/reverse`` (docs/decisions.md says
why APIv3 rather than the XML micropay of APIv2).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
from datetime import date, datetime
from typing import Any

from django.conf import settings
from django.utils import timezone
from wechatpayv3 import WeChatPay, WeChatPayType

from adapters.providers.types import (
    CloseResult,
    CodePaymentRequest,
    CodePaymentResult,
    CodeState,
    ProviderRefused,
    ProviderUnavailable,
    QrOrderRequest,
    RefundRequest,
    RefundResult,
    RefundState,
    ReverseResult,
    Trade,
    TradeState,
)
from adapters.statements import COPY_CHUNK, StatementFile, StatementUnavailable, spool, spooled
from adapters.wechatpay import config

logger = logging.getLogger(__name__)

TRADE_STATES = {
    "SUCCESS": TradeState.PAID,
    "REFUND": TradeState.PAID,
    "NOTPAY": TradeState.NOT_PAID,
    "USERPAYING": TradeState.NOT_PAID,
    "CLOSED": TradeState.CLOSED,
    "REVOKED": TradeState.CLOSED,
    "PAYERROR": TradeState.FAILED,
}
# Refund answers that mean "not now": the merchant account is short, or WeChat is busy.
RETRY_LATER_CODES = {"NOT_ENOUGH", "FREQUENCY_LIMITED", "SYSTEM_ERROR"}
REFUND_STATES = {
    "SUCCESS": RefundState.SUCCEEDED,
    "PROCESSING": RefundState.PROCESSING,
    "CLOSED": RefundState.FAILED,
    "ABNORMAL": RefundState.FAILED,
}


# A payment code's answer, by trade_state (200) or by error code (4xx/5xx):
CODE_TRADE_STATES = {
    "SUCCESS": CodeState.PAID,
    "USERPAYING": CodeState.CONFIRMING,
    "PAYERROR": CodeState.DECLINED,
    "NOTPAY": CodeState.UNKNOWN,  # not taken yet: the query says what becomes of it
}
# The customer is asked for the password in the app: query again in 5 s.
CODE_CONFIRMING_ERRORS = {"USERPAYING", "USER_PAYING"}
# WeChat Pay could not say: the money may have been taken (or the trade was paid by an earlier call).
CODE_UNKNOWN_ERRORS = {"SYSTEM_ERROR", "SYSTEMERROR", "BANK_ERROR", "BANKERROR", "ORDERPAID", "ORDER_PAID"}
# A reverse that cannot be done now but may later (the customer is still in the password dialog).
REVERSE_AGAIN_ERRORS = {"USERPAYING", "USER_PAYING", "SYSTEM_ERROR", "SYSTEMERROR", "FREQUENCY_LIMITED"}
# A reverse of a trade WeChat Pay does not have: nothing was taken, nothing can be paid any more.
REVERSE_NOTHING_ERRORS = {"ORDER_NOT_EXIST", "ORDERNOTEXIST", "RESOURCE_NOT_EXISTS"}


def _iso(value: datetime) -> str:
    return timezone.localtime(value).replace(microsecond=0).isoformat()


class WechatPayClient:
    name = "wechatpay"

    def __init__(self) -> None:
        self._sdk = WeChatPay(
            wechatpay_type=WeChatPayType.NATIVE,
            mchid=settings.WECHATPAY_MCHID,
            private_key=config.merchant_private_key_pem(),
            cert_serial_no=settings.WECHATPAY_MERCHANT_SERIAL_NO,
            appid=settings.WECHATPAY_APPID,
            apiv3_key=config.apiv3_key(),
            notify_url=config.notify_url(),
            public_key=config.platform_public_key_pem(),
            public_key_id=settings.WECHATPAY_PLATFORM_PUBLIC_KEY_ID,
            timeout=(3, settings.WECHATPAY_TIMEOUT_SECONDS),
        )
        # The SDK has no option for the gateway; this is its one attribute for it.
        self._sdk._core._gate_way = settings.WECHATPAY_GATEWAY.rstrip("/")

    def _call(self, what: str, method: Any, **kwargs: Any) -> tuple[int, dict[str, Any]]:
        try:
            status, text = method(**kwargs)
        except Exception as exc:  # the SDK raises plain Exception for transport and signature faults
            logger.warning("wechatpay %s failed: %s", what, exc)
            raise ProviderUnavailable(f"WeChat Pay {what}: {exc.__class__.__name__}") from exc
        # 401 (SIGN_ERROR...) means WeChat Pay did not take the request for ours: our keys or
        # ids are wrong, a fault to fix and retry, never an answer about the trade.
        if status >= 500 or status in (401, 429):
            raise ProviderUnavailable(f"WeChat Pay {what}: HTTP {status}")
        if not text:
            return status, {}
        try:
            body = json.loads(text) if isinstance(text, str | bytes) else {}
        except ValueError:
            raise ProviderUnavailable(f"WeChat Pay {what}: answer is not JSON") from None
        return status, body if isinstance(body, dict) else {}

    def create(self, request: QrOrderRequest) -> str:
        status, body = self._call(
            "native order",
            self._sdk.pay,
            description=request.description[:127],
            out_trade_no=request.out_trade_no,
            amount={"total": request.amount_fen, "currency": "CNY"},
            time_expire=_iso(request.expires_at),
        )
        if status == 200 and body.get("code_url"):
            return str(body["code_url"])
        if body.get("code") == "SYSTEM_ERROR":
            raise ProviderUnavailable("WeChat Pay native order: SYSTEM_ERROR")
        raise ProviderRefused(str(body.get("code") or status), str(body.get("message") or ""))

    def query(self, out_trade_no: str) -> Trade:
        status, body = self._call("query", self._sdk.query, out_trade_no=out_trade_no)
        if status == 404 or body.get("code") == "ORDER_NOT_EXIST":
            return Trade(state=TradeState.NOT_FOUND, out_trade_no=out_trade_no)
        if status != 200:
            raise ProviderUnavailable(f"WeChat Pay query: HTTP {status} {body.get('code')}")
        state = TRADE_STATES.get(str(body.get("trade_state")), TradeState.NOT_PAID)
        success_time = body.get("success_time")
        return Trade(
            state=state,
            out_trade_no=out_trade_no,
            transaction_id=str(body.get("transaction_id") or ""),
            amount_fen=int((body.get("amount") or {}).get("total") or 0),
            paid_at=datetime.fromisoformat(success_time) if success_time else None,
            raw=body,
        )

    def close(self, out_trade_no: str) -> CloseResult:
        status, body = self._call("close", self._sdk.close, out_trade_no=out_trade_no)
        if status in (200, 204):
            return CloseResult(closed=True)
        # Closing fails when the trade was paid (or is gone): the trade's state says which.
        trade = self.query(out_trade_no)
        if trade.state == TradeState.PAID:
            return CloseResult(closed=False, already_paid=True)
        if trade.state in (TradeState.CLOSED, TradeState.NOT_FOUND, TradeState.FAILED):
            return CloseResult(closed=True)
        raise ProviderUnavailable(f"WeChat Pay close: HTTP {status} {body.get('code')}")

    def refund(self, request: RefundRequest) -> RefundResult:
        status, body = self._call(
            "refund",
            self._sdk.refund,
            out_refund_no=request.out_refund_no,
            out_trade_no=request.out_trade_no,
            amount={"refund": request.amount_fen, "total": request.total_fen, "currency": "CNY"},
            reason=request.reason[:80],
            notify_url=config.notify_url(),
        )
        if body.get("code") in RETRY_LATER_CODES:
            raise ProviderUnavailable(f"WeChat Pay refund: {body.get('code')}")
        if status == 200:
            return RefundResult(
                state=REFUND_STATES.get(str(body.get("status")), RefundState.PROCESSING),
                out_refund_no=request.out_refund_no,
                refund_id=str(body.get("refund_id") or ""),
            )
        raise ProviderRefused(str(body.get("code") or status), str(body.get("message") or ""))

    def query_refund(self, out_refund_no: str, *, out_trade_no: str) -> RefundResult:
        status, body = self._call("refund query", self._sdk.query_refund, out_refund_no=out_refund_no)
        if status != 200:
            raise ProviderRefused(str(body.get("code") or status), str(body.get("message") or ""))
        return RefundResult(
            state=REFUND_STATES.get(str(body.get("status")), RefundState.PROCESSING),
            out_refund_no=out_refund_no,
            refund_id=str(body.get("refund_id") or ""),
        )

    def pay_code(self, request: CodePaymentRequest) -> CodePaymentResult:
        """付款码支付: ``POST /v3/pay/transactions/codepay`` with ``payer.auth_code``. No answer (timeout,
        5xx, a signature we cannot verify) raises ``ProviderUnavailable``: the outcome is unknown."""
        store = request.store_code or "IPVAS"
        status, body = self._call(
            "payment code",
            self._sdk.pay,
            description=request.description[:127],
            out_trade_no=request.out_trade_no,
            amount={"total": request.amount_fen, "currency": "CNY"},
            payer={"auth_code": request.auth_code},
            scene_info={"device_id": store[:16], "store_info": {"out_id": store[:32]}},
            pay_type=WeChatPayType.CODEPAY,
        )
        out_trade_no = request.out_trade_no
        if status in (200, 202) and body.get("trade_state"):
            state = CODE_TRADE_STATES.get(str(body["trade_state"]), CodeState.UNKNOWN)
            success_time = body.get("success_time")
            return CodePaymentResult(
                state=state,
                out_trade_no=out_trade_no,
                transaction_id=str(body.get("transaction_id") or ""),
                amount_fen=int((body.get("amount") or {}).get("total") or 0),
                paid_at=datetime.fromisoformat(success_time) if success_time and state == CodeState.PAID else None,
                code=str(body["trade_state"]) if state == CodeState.DECLINED else "",
                message=str(body.get("trade_state_desc") or ""),
                raw=body,
            )
        code, message = str(body.get("code") or status), str(body.get("message") or "")
        if code in CODE_CONFIRMING_ERRORS or status == 202:
            return CodePaymentResult(state=CodeState.CONFIRMING, out_trade_no=out_trade_no, raw=body)
        if code in CODE_UNKNOWN_ERRORS or status in (200, 202):
            return CodePaymentResult(state=CodeState.UNKNOWN, out_trade_no=out_trade_no, code=code, raw=body)
        # A refusal that WeChat Pay answered: an invalid or expired code, insufficient funds, a bad request.
        return CodePaymentResult(
            state=CodeState.DECLINED, out_trade_no=out_trade_no, code=code, message=message, raw=body
        )

    def reverse(self, out_trade_no: str) -> ReverseResult:
        """撤销订单: ``POST /v3/pay/transactions/out-trade-no/{out_trade_no}/reverse``. A paid trade's money goes
        back to the customer; an unpaid one can no longer be paid."""
        status, body = self._call("reverse", self._sdk.codepay_reverse, out_trade_no=out_trade_no)
        if status in (200, 204):
            return ReverseResult(reversed=True)
        code, message = str(body.get("code") or status), str(body.get("message") or "")
        if code in REVERSE_NOTHING_ERRORS or status == 404:
            return ReverseResult(reversed=True, message=code)
        return ReverseResult(reversed=False, again=code in REVERSE_AGAIN_ERRORS, message=f"{code} {message}".strip())

    def download_statement(self, day: date) -> StatementFile:
        """``GET /v3/bill/tradebill`` (SDK ``trade_bill``, ``bill_type=ALL``, gzip), then the file at its
        ``download_url`` (SDK ``download_bill``), checked against the announced SHA-1 of the unzipped bill."""
        sdk = self._sdk
        try:
            status, text = sdk.trade_bill(bill_date=day.isoformat(), bill_type="ALL", tar_type="GZIP")
        except Exception as exc:  # the SDK raises plain Exception for transport and signature faults
            raise StatementUnavailable(f"WeChat Pay trade bill: {exc.__class__.__name__}: {exc}") from exc
        try:
            answer = json.loads(text) if text else {}
        except ValueError:
            raise StatementUnavailable(f"WeChat Pay trade bill: HTTP {status}, an answer that is not JSON") from None
        if status != 200:
            code = answer.get("code", "")
            if code == "NO_STATEMENT_EXIST":
                return StatementFile(None, "", note="WeChat Pay has no trade bill for the day (no trades)")
            raise StatementUnavailable(
                f"WeChat Pay trade bill: HTTP {status} {code} {answer.get('message', '')}".strip()
            )
        url, expected = answer.get("download_url"), str(answer.get("hash_value", "")).lower()
        if not url:
            raise StatementUnavailable("WeChat Pay trade bill: no download_url in the answer")
        try:
            status, content = sdk.download_bill(url)
        except Exception as exc:
            raise StatementUnavailable(f"WeChat Pay bill download: {exc.__class__.__name__}: {exc}") from exc
        if status != 200 or not isinstance(content, bytes | bytearray):
            raise StatementUnavailable(f"WeChat Pay bill download: HTTP {status}")
        file, digest = spool(), hashlib.sha1(usedforsecurity=False)
        try:
            with gzip.GzipFile(fileobj=spooled(bytes(content)), mode="rb") as unzipped:
                while chunk := unzipped.read(COPY_CHUNK):
                    digest.update(chunk)
                    file.write(chunk)
        except (OSError, EOFError) as exc:
            raise StatementUnavailable(f"WeChat Pay bill download: not a gzip file ({exc})") from exc
        if expected and digest.hexdigest() != expected:
            raise StatementUnavailable("WeChat Pay bill download: the file's SHA-1 is not the hash_value announced")
        file.seek(0)
        return StatementFile(file, f"wechatpay_tradebill_ALL_{day:%Y-%m-%d}.csv")
