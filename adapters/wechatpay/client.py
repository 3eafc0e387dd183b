"""The real WeChat Pay API v3 client (Native payments and payment codes), through the wechatpayv3 SDK.

Requests are signed with the merchant key; answers are verified, in the SDK's
place, with the platform public key their Wechatpay-Serial names (several
may be configured while WeChat Pay switches keys). ``WECHATPAY_GATEWAY`` points it at
api.mch.weixin.qq.com, or at the sandbox's fake for integration tests.

Payment codes (付款码) use APIv3 付款码支付: ``POST /v3/pay/transactions/codepay``, the same query as
Native, and ``POST /v3/pay/transactions/out-trade-no/{out_trade_no}/reverse`` (docs/decisions.md says
why APIv3 rather than the XML micropay of APIv2).

委托代扣 (deduction contracts, docs/protocols.md): pay and sign is APIv2 ``POST /pay/contractorder`` (XML, signed
with the APIv2 key; the SDK speaks only APIv3) and so is the merchant's termination
``POST /papay/deletecontract`` (by template and our contract code, which works even when the signing
notification never came); so is the deduction ``POST /pay/pappayapply`` (申请扣款: the call 周期扣费's rules and the
pre-deduction notice govern; APIv3's ``/v3/papay/pay/transactions/apply`` is another product's, 预约扣费, which
needs a schedule first), its result the APIv2 payment notification. The pre-deduction notice
``POST /v3/papay/contracts/{contract_id}/notify`` is APIv3, through the SDK's own request machinery
(``_core.request``: it signs the request and verifies the answer). The pay-and-sign trade is a NATIVE trade, queried,
closed and refunded with the APIv3 calls above; a deduction is asked with APIv2 ``/pay/paporderquery`` (the only
query of 申请扣款's orders) and has no close; its refund is the APIv3 one (docs/decisions.md: to be confirmed).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any
from uuid import uuid4

import requests
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone
from wechatpayv3 import WeChatPay, WeChatPayType
from wechatpayv3.type import RequestType

from adapters.http import keep_alive_session
from adapters.providers.types import (
    CloseResult,
    CodePaymentRequest,
    CodePaymentResult,
    CodeState,
    ContractOrderRequest,
    DeductionNoticeRequest,
    DeductionRequest,
    DeductionResult,
    DeductionState,
    ProviderRefused,
    ProviderUnavailable,
    QrOrderRequest,
    RefundRequest,
    RefundResult,
    RefundState,
    ReverseResult,
    Trade,
    TradeState,
    UnsignRequest,
    UnsignResult,
    settled_by_its_state,
)
from adapters.statements import COPY_CHUNK, StatementFile, StatementUnavailable, spool, spooled
from adapters.wechatpay import config, crypto, v2

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
# 查询订单 of 申请扣款's orders (paporderquery): ACCEPT and NOTPAY are on their way to SUCCESS or PAY_FAIL.
PAP_TRADE_STATES = {
    "SUCCESS": TradeState.PAID,
    "REFUND": TradeState.PAID,
    "ACCEPT": TradeState.NOT_PAID,
    "NOTPAY": TradeState.NOT_PAID,
    "PAY_FAIL": TradeState.FAILED,
    "CLOSED": TradeState.CLOSED,
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


# 委托代扣: error codes (APIv2 err_code, APIv3 code) that mean "not now, the outcome is unknown".
V2_RETRY_CODES = {"SYSTEMERROR", "SYSTEM_ERROR", "FREQUENCY_LIMITED", "FREQ_LIMIT", "ORDERPAID"}


def _iso(value: datetime) -> str:
    return timezone.localtime(value).replace(microsecond=0).isoformat()


def _v2_time(value: datetime) -> str:
    return timezone.localtime(value).strftime("%Y%m%d%H%M%S")


def _v2_parsed_time(value: str) -> datetime | None:
    """APIv2's ``yyyyMMddHHmmss``, Beijing time; None for anything else."""
    try:
        return timezone.make_aware(datetime.strptime(value, "%Y%m%d%H%M%S")) if value else None
    except ValueError:
        return None


SIGNATURE_TYPE = "WECHATPAY2-SHA256-RSA2048"


def _verify_answer(headers: Mapping[str, str], body: str) -> bool:
    """An answer's signature, verified with the platform key its Wechatpay-Serial names among those configured
    (WECHATPAY_PLATFORM_PUBLIC_KEYS and the single key). The SDK knows one key: an answer under another id it
    refused after fetching /v3/certificates, and while WeChat Pay switches keys it signs under either."""
    serial = headers.get("Wechatpay-Serial", "")
    if headers.get("Wechatpay-Signature-Type", "") != SIGNATURE_TYPE:
        return False
    key = config.platform_public_key_for(serial)
    if key is None:
        logger.warning(
            "wechatpay answer signed under platform key %s, which is not configured (WECHATPAY_PLATFORM_PUBLIC_KEYS)",
            serial[:64],
        )
        return False
    return crypto.verify(
        key,
        timestamp=headers.get("Wechatpay-Timestamp", ""),
        nonce=headers.get("Wechatpay-Nonce", ""),
        body=body,
        signature=headers.get("Wechatpay-Signature", ""),
    )


class WechatPayClient:
    name = "wechatpay"

    def __init__(self) -> None:
        # Our requests name this key (the request header Wechatpay-Serial): while WeChat Pay switches from platform
        # certificates to its public key, it signs its answers under the id the request names.
        key_id = settings.WECHATPAY_PLATFORM_PUBLIC_KEY_ID
        public_key = config.platform_public_key_pem_for(key_id)
        if public_key is None:
            raise ImproperlyConfigured(f"WECHATPAY_PLATFORM_PUBLIC_KEY_ID={key_id} has no key.")
        self._sdk = WeChatPay(
            wechatpay_type=WeChatPayType.NATIVE,
            mchid=settings.WECHATPAY_MCHID,
            private_key=config.merchant_private_key_pem(),
            cert_serial_no=settings.WECHATPAY_MERCHANT_SERIAL_NO,
            appid=settings.WECHATPAY_APPID,
            apiv3_key=config.apiv3_key(),
            notify_url=config.notify_url(),
            public_key=public_key,
            public_key_id=key_id,
            timeout=(3, settings.WECHATPAY_TIMEOUT_SECONDS),
        )
        # The SDK has no option for the gateway; this is its one attribute for it.
        self._sdk._core._gate_way = settings.WECHATPAY_GATEWAY.rstrip("/")
        # Nor for more than one platform key: its one method that verifies answers is replaced (docs/protocols.md).
        self._sdk._core._verify_signature = _verify_answer

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
            refunded=body.get("trade_state") == "REFUND",
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
            return ReverseResult(reversed=True, message=code, not_found=True)
        return ReverseResult(reversed=False, again=code in REVERSE_AGAIN_ERRORS, message=f"{code} {message}".strip())

    # --- 委托代扣: deduction contracts ---------------------------------------------------------

    def _post_v3(self, what: str, path: str, data: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """An APIv3 call the SDK has no method for, through its own machinery (signed, the answer verified)."""
        return self._call(what, lambda: self._sdk._core.request(path, RequestType.POST, data))

    def _v2(self, what: str, path: str, params: dict[str, str]) -> dict[str, str]:
        """An APIv2 call: the XML signed with the APIv2 key (MD5, the default these APIs document), the answer
        checked the same way. A transport fault, a ``return_code`` FAIL (WeChat Pay did not take the request:
        our keys or ids are wrong) or an answer whose signature does not verify is ``ProviderUnavailable``."""
        key = config.v2_key()
        body = v2.to_xml(v2.signed({**params, "nonce_str": uuid4().hex}, key))
        gateway = settings.WECHATPAY_GATEWAY.rstrip("/")
        try:
            response = keep_alive_session(gateway).post(
                gateway + path,
                data=body,
                headers={"Content-Type": "text/xml; charset=utf-8"},
                timeout=(3, settings.WECHATPAY_TIMEOUT_SECONDS),
            )
        except requests.RequestException as exc:
            logger.warning("wechatpay %s failed: %s", what, exc)
            raise ProviderUnavailable(f"WeChat Pay {what}: {exc.__class__.__name__}") from exc
        if response.status_code >= 500 or response.status_code in (401, 429):
            raise ProviderUnavailable(f"WeChat Pay {what}: HTTP {response.status_code}")
        try:
            answer = v2.parse_xml(response.content)
        except ValueError as exc:
            raise ProviderUnavailable(f"WeChat Pay {what}: the answer is not APIv2 XML ({exc})") from None
        if answer.get("return_code") != "SUCCESS":
            raise ProviderUnavailable(f"WeChat Pay {what}: {answer.get('return_code')} {answer.get('return_msg', '')}")
        if not v2.verify(answer, key):
            raise ProviderUnavailable(f"WeChat Pay {what}: the answer's signature does not verify")
        return answer

    def create_with_contract(self, request: ContractOrderRequest) -> str:
        """支付中签约 ``POST /pay/contractorder`` (APIv2), trade_type NATIVE: the code_url pays the first period and
        signs the contract; the payment result goes to ``notify_url``, the signing to ``contract_notify_url``."""
        answer = self._v2(
            "pay and sign",
            "/pay/contractorder",
            {
                "appid": settings.WECHATPAY_APPID,
                "mch_id": settings.WECHATPAY_MCHID,
                "contract_appid": settings.WECHATPAY_APPID,
                "contract_mchid": settings.WECHATPAY_MCHID,
                "out_trade_no": request.out_trade_no,
                "body": request.description[:127],
                "notify_url": config.v2_notify_url(),
                "total_fee": str(request.amount_fen),
                "spbill_create_ip": settings.WECHATPAY_SPBILL_CREATE_IP,
                "time_expire": _v2_time(request.expires_at),
                "trade_type": "NATIVE",
                "product_id": request.out_trade_no,
                "plan_id": settings.WECHATPAY_PAPAY_PLAN_ID,
                "contract_code": request.contract_code,
                "request_serial": str(request.request_serial),
                "contract_display_account": request.display_account[:32],
                "contract_notify_url": config.contract_notify_url(),
            },
        )
        code = answer.get("err_code") or answer.get("contract_err_code") or ""
        if answer.get("result_code") != "SUCCESS" or not answer.get("code_url"):
            if code in V2_RETRY_CODES:
                raise ProviderUnavailable(f"WeChat Pay pay and sign: {code}")
            raise ProviderRefused(code or "FAIL", answer.get("err_code_des") or "")
        if answer.get("contract_result_code", "SUCCESS") != "SUCCESS":
            # The code would pay without signing: never shown (its time_expire ends it unpaid).
            raise ProviderRefused(answer.get("contract_err_code") or "CONTRACT_FAIL", "the contract cannot be signed")
        return answer["code_url"]

    def announce_deduction(self, request: DeductionNoticeRequest) -> bool:
        """预扣费通知 ``POST /v3/papay/contracts/{contract_id}/notify``: only 07:00–22:00 Beijing time; the deduction
        may then be made from the 3rd to the 9th natural day (the notice's day is the 1st), up to this amount.
        ``deduct_duration`` is left out: it takes 1–3 days only, and without it the deduction has WeChat Pay's
        default of 7 days, which the 3rd–9th day rule (lifecycle.deductions) counts on."""
        status, body = self._post_v3(
            "pre-deduction notice",
            f"/v3/papay/contracts/{request.contract_id}/notify",
            {
                "mchid": settings.WECHATPAY_MCHID,
                "appid": settings.WECHATPAY_APPID,
                "estimated_amount": {"amount": request.amount_fen, "currency": "CNY"},
            },
        )
        if status in (200, 204):
            return True
        code = str(body.get("code") or status)
        if code in ("SYSTEM_ERROR", "FREQUENCY_LIMITED"):
            raise ProviderUnavailable(f"WeChat Pay pre-deduction notice: {code}")
        raise ProviderRefused(code, str(body.get("message") or ""))

    def deduct(self, request: DeductionRequest) -> DeductionResult:
        """申请扣款 ``POST /pay/pappayapply`` (APIv2, trade_type PAP): accepted now, the result comes by the APIv2
        payment notification (at ``notify_url``, as the pay-and-sign order's) or the query."""
        answer = self._v2(
            "deduction",
            "/pay/pappayapply",
            {
                "appid": settings.WECHATPAY_APPID,
                "mch_id": settings.WECHATPAY_MCHID,
                "body": request.description[:32],
                "attach": request.period_key[:127],
                "out_trade_no": request.out_trade_no,
                "total_fee": str(request.amount_fen),
                "fee_type": "CNY",
                "spbill_create_ip": settings.WECHATPAY_SPBILL_CREATE_IP,
                "notify_url": config.v2_notify_url(),
                "trade_type": "PAP",
                "contract_id": request.contract_id,
            },
        )
        code, message = answer.get("err_code") or "FAIL", answer.get("err_code_des") or ""
        if answer.get("result_code") == "SUCCESS" or code == "ORDER_ACCEPTED":  # 扣款请求已受理，请勿重复发起
            return DeductionResult(state=DeductionState.ACCEPTED, out_trade_no=request.out_trade_no, raw=answer)
        if code in V2_RETRY_CODES - {"ORDERPAID"}:
            # 系统超时 and the like: asked again with the same out_trade_no, WeChat Pay takes it once.
            raise ProviderUnavailable(f"WeChat Pay deduction: {code}")
        if code in v2.CONTRACT_GONE_CODES:
            state = DeductionState.CONTRACT_GONE
        elif code == "ORDERPAID":  # asked before and paid: the query says so
            state = DeductionState.UNKNOWN
        else:
            state = DeductionState.DECLINED
        return DeductionResult(state=state, out_trade_no=request.out_trade_no, code=code, message=message, raw=answer)

    def query_deduction(self, out_trade_no: str) -> Trade:
        """查询订单 ``POST /pay/paporderquery`` (APIv2): "该接口仅提供微信扣款服务申请扣款接口创建的订单进行查询"; the
        general query does not see 申请扣款's orders. ``trade_state`` decides: ACCEPT and NOTPAY are on their way
        (NOTPAY "很快会进入终态"), SUCCESS paid (REFUND paid, then refunded), PAY_FAIL failed, CLOSED closed."""
        answer = self._v2(
            "deduction query",
            "/pay/paporderquery",
            {"appid": settings.WECHATPAY_APPID, "mch_id": settings.WECHATPAY_MCHID, "out_trade_no": out_trade_no},
        )
        if answer.get("result_code") != "SUCCESS":
            code = answer.get("err_code") or "FAIL"
            if code in ("ORDERNOTEXIST", "ORDER_NOT_EXIST"):
                return Trade(state=TradeState.NOT_FOUND, out_trade_no=out_trade_no, raw=answer)
            raise ProviderUnavailable(f"WeChat Pay deduction query: {code}")
        state = PAP_TRADE_STATES.get(answer.get("trade_state", ""), TradeState.NOT_PAID)
        return Trade(
            state=state,
            out_trade_no=out_trade_no,
            transaction_id=answer.get("transaction_id", ""),
            amount_fen=int(answer["total_fee"]) if answer.get("total_fee", "").isdigit() else 0,
            paid_at=_v2_parsed_time(answer.get("time_end", "")) if state == TradeState.PAID else None,
            raw=answer,
        )

    def close_deduction(self, out_trade_no: str) -> CloseResult:
        """申请扣款's orders have no close: WeChat Pay takes them to a final state itself, soon. Its query says
        which; one still on its way is ``ProviderUnavailable`` (asked again later, then a person)."""
        trade = self.query_deduction(out_trade_no)
        settled = settled_by_its_state(trade)
        if settled is None:
            raise ProviderUnavailable(f"WeChat Pay deduction {out_trade_no} still {trade.raw.get('trade_state')}")
        return settled

    def unsign(self, request: UnsignRequest) -> UnsignResult:
        """申请解约 ``POST /papay/deletecontract`` (APIv2) by template and contract code: it ends a contract whose
        signing we never heard of too. A contract WeChat Pay does not have is nothing to end."""
        answer = self._v2(
            "termination",
            "/papay/deletecontract",
            {
                "appid": settings.WECHATPAY_APPID,
                "mch_id": settings.WECHATPAY_MCHID,
                "plan_id": settings.WECHATPAY_PAPAY_PLAN_ID,
                "contract_code": request.contract_code,
                "contract_termination_remark": (request.reason or "unsubscribed")[:512],
                "version": "1.0",
            },
        )
        if answer.get("result_code") == "SUCCESS":
            return UnsignResult(ended=True)
        code = answer.get("err_code") or "FAIL"
        if code in v2.CONTRACT_GONE_CODES:
            return UnsignResult(ended=True, message=code)
        if code in V2_RETRY_CODES:
            raise ProviderUnavailable(f"WeChat Pay termination: {code}")
        return UnsignResult(ended=False, message=f"{code} {answer.get('err_code_des', '')}".strip())

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
