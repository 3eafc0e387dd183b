"""WeChat Pay API v3 (Native payments, payment codes and refunds) served by the sandbox, for the wechatpayv3 SDK.

The paths are those the SDK calls, below ``/sandbox/wechatpay/fake``. A
request must carry ``Authorization: WECHATPAY2-SHA256-RSA2048 mchid=...,
nonce_str=..., signature=..., timestamp=..., serial_no=...``, SHA256withRSA
over "METHOD\\nPATH?QUERY\\nTIMESTAMP\\nNONCE\\nBODY\\n" with the merchant key
(the path as the merchant signs it: from ``/v3/``, without the sandbox
prefix); the fake verifies it with the public half of the sandbox's
``wechatpay_merchant_private_key.pem``, or answers 401 ``SIGN_ERROR``. Every
answer, a 204's empty body included, is signed as WeChat Pay signs it: the
``Wechatpay-*`` headers, SHA256withRSA over "TIMESTAMP\\nNONCE\\nBODY\\n" with
``wechatpay_platform_private_key.pem``. ``down`` answers 503 ``SYSTEM_ERROR``.

Payment codes (付款码支付, ``/v3/pay/transactions/codepay`` and ``…/out-trade-no/{no}/reverse``) answer by
the code's last four digits (sandbox.payments.CODE_OUTCOMES); a code ending 0003 holds the connection
longer than the client waits (``WECHATPAY_TIMEOUT_SECONDS``), as a provider that never answers.

委托代扣: the APIv3 pre-deduction notice (``/v3/papay/…``) is checked like the calls above; the APIv2 pay-and-sign
(``/pay/contractorder``), deduction (``/pay/pappayapply``), its query (``/pay/paporderquery``) and termination
(``/papay/deletecontract``) take XML
signed with the APIv2 key (``wechatpay_apiv2_key.txt``) and answer XML signed with it, as WeChat Pay does.
"""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.hashes import SHA256
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from adapters.providers.types import (
    CodePaymentRequest,
    ContractOrderRequest,
    DeductionNoticeRequest,
    DeductionRequest,
    DeductionState,
    ProviderRefused,
    QrOrderRequest,
    RefundRequest,
    RefundState,
    TradeState,
    UnsignRequest,
)
from adapters.wechatpay import crypto, v2
from ipvas import jsonparse
from ipvas.credentials import load_private_key, load_public_key
from ipvas.keyfiles import sandbox_private_key_pem, sandbox_public_key_pem, sandbox_secret
from sandbox import contracts, payments
from sandbox.http import sandbox_view
from sandbox.models import SimContract, SimContractStatus, SimRefund, SimTrade, SimTradeStatus
from sandbox.views.provider_fakes import Outage, compact_json, fault_delay, nonce, pause

SYSTEM = payments.WECHATPAY
AUTH_SCHEME = "WECHATPAY2-SHA256-RSA2048"
MAX_SKEW_SECONDS = 300
OUT_NO = re.compile(r"[0-9A-Za-z_\-|*]{6,32}")
OUT_REFUND_NO = re.compile(r"[0-9A-Za-z_\-|*@]{1,64}")
DEFAULT_EXPIRY = timedelta(hours=2)
# The simulated provider's refusals, as WeChat Pay names them.
AUTH_CODE = re.compile(r"[0-9]{10,32}")
# How long a code ending 0003 keeps the client waiting: past its read timeout, never for ever.
NO_ANSWER_CAP_SECONDS = 30.0
REFUSALS = {
    "ORDER_CLOSED": (400, "ORDER_CLOSED"),
    "INVALID_REQUEST": (400, "INVALID_REQUEST"),
    "TRADE_NOT_PAID": (400, "INVALID_REQUEST"),
    "RESOURCE_NOT_EXISTS": (404, "RESOURCE_NOT_EXISTS"),
}
REFUND_STATUSES = {
    RefundState.SUCCEEDED: "SUCCESS",
    RefundState.PROCESSING: "PROCESSING",
    RefundState.FAILED: "ABNORMAL",
}

Answer = tuple[int, dict[str, Any] | None]


class WechatError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


def _refused(exc: ProviderRefused) -> WechatError:
    status, code = REFUSALS.get(exc.code, (400, "INVALID_REQUEST"))
    return WechatError(status, code, exc.message or exc.code)


# --- the merchant's request signature ------------------------------------------------


def _authorization(request: HttpRequest) -> dict[str, str]:
    scheme, _, rest = request.headers.get("Authorization", "").partition(" ")
    if scheme != AUTH_SCHEME:
        raise WechatError(401, "SIGN_ERROR", f"Authorization 须以 {AUTH_SCHEME} 开头")
    fields = dict(re.findall(r'(\w+)="([^"]*)"', rest))
    missing = {"mchid", "nonce_str", "signature", "timestamp", "serial_no"} - fields.keys()
    if missing:
        raise WechatError(401, "SIGN_ERROR", f"Authorization 缺少 {', '.join(sorted(missing))}")
    return fields


def _verify_request(request: HttpRequest) -> None:
    fields = _authorization(request)
    if fields["mchid"] != settings.WECHATPAY_MCHID:
        raise WechatError(401, "SIGN_ERROR", "商户号不存在")
    if fields["serial_no"] != settings.WECHATPAY_MERCHANT_SERIAL_NO:
        raise WechatError(401, "SIGN_ERROR", "商户证书序列号有误")
    try:
        skew = abs(time.time() - int(fields["timestamp"]))
    except ValueError:
        raise WechatError(401, "SIGN_ERROR", "timestamp 不是整数") from None
    if skew > MAX_SKEW_SECONDS:
        raise WechatError(401, "SIGN_ERROR", "timestamp 与当前时间相差过大")
    # The merchant signs the path from /v3/ on, with its query: the URL below the gateway.
    full_path = request.get_full_path()
    signed_path = full_path[full_path.find("/v3/") :]
    message = (
        f"{request.method}\n{signed_path}\n{fields['timestamp']}\n{fields['nonce_str']}\n".encode()
        + request.body
        + b"\n"
    )
    public_key = load_public_key(sandbox_public_key_pem("wechatpay_merchant_private_key.pem"))
    try:
        signature = base64.b64decode(fields["signature"], validate=True)
        public_key.verify(signature, message, padding.PKCS1v15(), SHA256())
    except (InvalidSignature, ValueError):
        raise WechatError(401, "SIGN_ERROR", "签名错误") from None


# --- answers signed as WeChat Pay signs them ------------------------------------------


def _platform_key() -> tuple[str, str]:
    """The id and the private key (PEM) WeChat Pay signs its answers under: the sandbox's key, under the id
    IPVAS is configured with (a test of a switch of keys signs under another)."""
    return settings.WECHATPAY_PLATFORM_PUBLIC_KEY_ID, sandbox_private_key_pem("wechatpay_platform_private_key.pem")


def _signed(status: int, body: dict[str, Any] | None) -> HttpResponse:
    raw = compact_json(body).encode() if body is not None else b""
    stamp = str(int(time.time()))
    header_nonce = nonce(32)
    key_id, private_pem = _platform_key()
    key = load_private_key(private_pem)
    response = HttpResponse(raw, status=status, content_type="application/json; charset=utf-8")
    if body is None:
        del response["Content-Type"]
    response["Request-ID"] = f"08{nonce(30)}"
    response["Wechatpay-Timestamp"] = stamp
    response["Wechatpay-Nonce"] = header_nonce
    response["Wechatpay-Signature"] = crypto.sign(key, timestamp=stamp, nonce=header_nonce, body=raw)
    response["Wechatpay-Serial"] = key_id
    response["Wechatpay-Signature-Type"] = AUTH_SCHEME
    return response


def _serve(request: HttpRequest, work: Callable[[], Answer]) -> HttpResponse:
    try:
        delay = fault_delay(SYSTEM)
    except Outage as exc:
        return _signed(503, {"code": "SYSTEM_ERROR", "message": f"系统繁忙，请稍后重试 ({exc})"})
    try:
        _verify_request(request)
        status, body = work()
    except WechatError as exc:
        status, body = exc.status, {"code": exc.code, "message": exc.message}
    except ProviderRefused as exc:
        refusal = _refused(exc)
        status, body = refusal.status, {"code": refusal.code, "message": refusal.message}
    pause(delay)
    return _signed(status, body)


# --- reading requests -------------------------------------------------------------------


def _json(request: HttpRequest) -> dict[str, Any]:
    try:
        body = jsonparse.loads(request.body or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise WechatError(400, "PARAM_ERROR", "请求体不是合法的 JSON") from None
    if not isinstance(body, dict):
        raise WechatError(400, "PARAM_ERROR", "请求体须为 JSON 对象")
    return body


def _text(body: dict[str, Any], name: str, pattern: re.Pattern[str] | None = None, *, max_length: int = 127) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value or len(value) > max_length:
        raise WechatError(400, "PARAM_ERROR", f"{name} 缺失或长度不符")
    if pattern is not None and not pattern.fullmatch(value):
        raise WechatError(400, "PARAM_ERROR", f"{name} 格式错误")
    return value


def _fen(amount: dict[str, Any], name: str) -> int:
    value = amount.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise WechatError(400, "PARAM_ERROR", f"amount.{name} 须为正整数（分）")
    return value


def _amount(body: dict[str, Any]) -> dict[str, Any]:
    amount = body.get("amount")
    if not isinstance(amount, dict):
        raise WechatError(400, "PARAM_ERROR", "amount 缺失")
    if amount.get("currency", "CNY") != "CNY":
        raise WechatError(400, "PARAM_ERROR", "amount.currency 仅支持 CNY")
    return amount


def _expiry(body: dict[str, Any]) -> datetime:
    value = body.get("time_expire")
    if value is None:
        return timezone.now() + DEFAULT_EXPIRY
    try:
        expires_at = datetime.fromisoformat(str(value))
    except ValueError:
        raise WechatError(400, "PARAM_ERROR", "time_expire 须为 RFC 3339 时间") from None
    if expires_at.tzinfo is None:
        raise WechatError(400, "PARAM_ERROR", "time_expire 须带时区")
    return expires_at


def _check_mchid(value: Any) -> None:
    if value != settings.WECHATPAY_MCHID:
        raise WechatError(400, "INVALID_REQUEST", "mchid 与签名的商户号不一致")


# --- the operations ---------------------------------------------------------------------


def _native_order(request: HttpRequest) -> Answer:
    body = _json(request)
    _check_mchid(body.get("mchid"))
    if body.get("appid") != settings.WECHATPAY_APPID:
        raise WechatError(400, "APPID_MCHID_NOT_MATCH", "appid 和 mch_id 不匹配")
    _text(body, "notify_url", max_length=255)
    order = QrOrderRequest(
        out_trade_no=_text(body, "out_trade_no", OUT_NO),
        amount_fen=_fen(_amount(body), "total"),
        description=_text(body, "description"),
        expires_at=_expiry(body),
    )
    if payments.query_trade(SYSTEM, order.out_trade_no).state == TradeState.PAID:
        raise WechatError(400, "ORDERPAID", "该订单已支付")
    return 200, {"code_url": payments.create_trade(SYSTEM, order)}


def _query(request: HttpRequest, out_trade_no: str) -> Answer:
    _check_mchid(request.GET.get("mchid"))
    trade = payments.trade_record(SYSTEM, out_trade_no)
    if trade is None:
        raise WechatError(404, "ORDER_NOT_EXIST", "订单不存在")
    answer = payments.wechatpay_transaction(trade)
    if trade.status == SimTradeStatus.PAID and trade.refunded_fen:
        # A paid trade refunded in part or whole is queried as 转入退款, as WeChat Pay answers it.
        answer.update(trade_state="REFUND", trade_state_desc="转入退款")
    return 200, answer


def _codepay(request: HttpRequest) -> Answer:
    body = _json(request)
    _check_mchid(body.get("mchid"))
    if body.get("appid") != settings.WECHATPAY_APPID:
        raise WechatError(400, "APPID_MCHID_NOT_MATCH", "appid 和 mch_id 不匹配")
    payer = body.get("payer")
    if not isinstance(payer, dict):
        raise WechatError(400, "PARAM_ERROR", "payer 缺失")
    charge = CodePaymentRequest(
        out_trade_no=_text(body, "out_trade_no", OUT_NO),
        auth_code=_text(payer, "auth_code", AUTH_CODE, max_length=128),
        amount_fen=_fen(_amount(body), "total"),
        description=_text(body, "description"),
    )
    if not isinstance(body.get("scene_info"), dict):
        raise WechatError(400, "PARAM_ERROR", "scene_info 缺失")
    trade, outcome = payments.charge_code(SYSTEM, charge)
    if outcome == payments.NO_ANSWER:
        time.sleep(min(settings.WECHATPAY_TIMEOUT_SECONDS + 1, NO_ANSWER_CAP_SECONDS))
    if trade is not None and outcome in (payments.PAID, payments.CONFIRMING, payments.NO_ANSWER):
        return 200, payments.wechatpay_transaction(trade)
    code, message = payments.REFUSALS[(SYSTEM, outcome)]
    return (400 if outcome == payments.INVALID else 403), {"code": code, "message": message}


def _reverse(request: HttpRequest, out_trade_no: str) -> Answer:
    body = _json(request)
    _check_mchid(body.get("mchid"))
    if body.get("appid") != settings.WECHATPAY_APPID:
        raise WechatError(400, "APPID_MCHID_NOT_MATCH", "appid 和 mch_id 不匹配")
    trade, _result = payments.reverse_trade(SYSTEM, out_trade_no)
    if trade is None:
        raise WechatError(404, "ORDER_NOT_EXIST", "订单不存在")
    return 200, {"appid": settings.WECHATPAY_APPID, "mchid": settings.WECHATPAY_MCHID, "out_trade_no": out_trade_no}


def _close(request: HttpRequest, out_trade_no: str) -> Answer:
    _check_mchid(_json(request).get("mchid"))
    if payments.close_trade(SYSTEM, out_trade_no).already_paid:
        raise WechatError(400, "ORDERPAID", "订单已支付")
    return 204, None


def _refund_body(made: SimRefund, state: RefundState) -> dict[str, Any]:
    trade = made.trade
    made_at = timezone.localtime(made.created_at).replace(microsecond=0).isoformat()
    body: dict[str, Any] = {
        "refund_id": made.refund_id,
        "out_refund_no": made.out_refund_no,
        "transaction_id": trade.transaction_id,
        "out_trade_no": trade.out_trade_no,
        "channel": "ORIGINAL",
        "user_received_account": "支付用户零钱",
        "create_time": made_at,
        "status": REFUND_STATUSES[state],
        "funds_account": "AVAILABLE",
        "amount": {
            "total": trade.amount_fen,
            "refund": made.amount_fen,
            "payer_total": trade.amount_fen,
            "payer_refund": made.amount_fen,
            "settlement_total": trade.amount_fen,
            "settlement_refund": made.amount_fen,
            "discount_refund": 0,
            "currency": "CNY",
        },
    }
    if state == RefundState.SUCCEEDED:
        body["success_time"] = made_at
    return body


def _refund(request: HttpRequest) -> Answer:
    body = _json(request)
    if "out_trade_no" not in body:
        raise WechatError(400, "PARAM_ERROR", "此沙箱仅支持按 out_trade_no 退款")
    out_trade_no = _text(body, "out_trade_no", OUT_NO)
    out_refund_no = _text(body, "out_refund_no", OUT_REFUND_NO, max_length=64)
    amount = _amount(body)
    refund_fen, total_fen = _fen(amount, "refund"), _fen(amount, "total")
    trade = payments.query_trade(SYSTEM, out_trade_no)
    if trade.state == TradeState.NOT_FOUND:
        raise WechatError(404, "RESOURCE_NOT_EXISTS", "订单不存在")
    if trade.state != TradeState.PAID:
        raise WechatError(400, "INVALID_REQUEST", "订单未支付，不能退款")
    if total_fen != trade.amount_fen:
        raise WechatError(400, "INVALID_REQUEST", "amount.total 与订单金额不一致")
    result = payments.refund(
        SYSTEM,
        RefundRequest(
            out_trade_no=out_trade_no,
            out_refund_no=out_refund_no,
            amount_fen=refund_fen,
            total_fen=total_fen,
            reason=str(body.get("reason") or ""),
        ),
    )
    return 200, _refund_body(_refund_row(out_refund_no), result.state)


def _refund_row(out_refund_no: str) -> SimRefund:
    made = payments.refund_record(SYSTEM, out_refund_no)
    if made is None:
        raise WechatError(404, "RESOURCE_NOT_EXISTS", "退款单不存在")
    return made


def _query_refund(out_refund_no: str) -> Answer:
    result = payments.query_refund(SYSTEM, out_refund_no)  # refuses RESOURCE_NOT_EXISTS
    return 200, _refund_body(_refund_row(out_refund_no), result.state)


# --- the views --------------------------------------------------------------------------


@sandbox_view
@require_POST
def native_order(request: HttpRequest) -> HttpResponse:
    return _serve(request, lambda: _native_order(request))


@sandbox_view
@require_POST
def codepay(request: HttpRequest) -> HttpResponse:
    return _serve(request, lambda: _codepay(request))


@sandbox_view
@require_POST
def reverse(request: HttpRequest, out_trade_no: str) -> HttpResponse:
    return _serve(request, lambda: _reverse(request, out_trade_no))


@sandbox_view
@require_GET
def query(request: HttpRequest, out_trade_no: str) -> HttpResponse:
    return _serve(request, lambda: _query(request, out_trade_no))


@sandbox_view
@require_POST
def close(request: HttpRequest, out_trade_no: str) -> HttpResponse:
    return _serve(request, lambda: _close(request, out_trade_no))


@sandbox_view
@require_POST
def refund(request: HttpRequest) -> HttpResponse:
    return _serve(request, lambda: _refund(request))


@sandbox_view
@require_GET
def query_refund(request: HttpRequest, out_refund_no: str) -> HttpResponse:
    return _serve(request, lambda: _query_refund(out_refund_no))


# --- 委托代扣: APIv3 (the pre-deduction notice) -------------------------------------------


def _deduct_notice(request: HttpRequest, contract_id: str) -> Answer:
    body = _json(request)
    _check_mchid(body.get("mchid"))
    if body.get("appid") != settings.WECHATPAY_APPID:
        raise WechatError(400, "APPID_MCHID_NOT_MATCH", "appid 和 mch_id 不匹配")
    amount = body.get("estimated_amount")
    if not isinstance(amount, dict):
        raise WechatError(400, "PARAM_ERROR", "estimated_amount 缺失")
    duration = body.get("deduct_duration")  # optional: 1–3 DAY; without it WeChat Pay's default, 7 days
    if duration is not None and (not isinstance(duration, dict) or duration.get("count") not in (1, 2, 3)):
        raise WechatError(400, "PARAM_ERROR", "deduct_duration.count 取值 1、2、3")
    contracts.announce(SYSTEM, DeductionNoticeRequest(contract_id=contract_id, amount_fen=_fen(amount, "amount")))
    return 204, None


@sandbox_view
@require_POST
def deduct_notice(request: HttpRequest, contract_id: str) -> HttpResponse:
    return _serve(request, lambda: _deduct_notice(request, contract_id))


# --- 委托代扣: APIv2 (pay and sign, the merchant's termination), XML signed with the APIv2 key ------------

V2_TIME = "%Y%m%d%H%M%S"


def _v2_answer(params: dict[str, str]) -> HttpResponse:
    """An APIv2 answer: SUCCESS ones are signed with the APIv2 key, as WeChat Pay signs them."""
    body = {"return_code": "SUCCESS", "return_msg": "OK", "appid": settings.WECHATPAY_APPID}
    body.update({"mch_id": settings.WECHATPAY_MCHID, "nonce_str": nonce(32), **params})
    signed = v2.signed(body, sandbox_secret("wechatpay_apiv2_key.txt"))
    return HttpResponse(v2.to_xml(signed), content_type="text/xml; charset=utf-8")


def _v2_fail(message: str) -> HttpResponse:
    return HttpResponse(v2.to_xml({"return_code": "FAIL", "return_msg": message}), content_type="text/xml")


def _v2_serve(request: HttpRequest, work: Callable[[dict[str, str]], dict[str, str]]) -> HttpResponse:
    try:
        delay = fault_delay(SYSTEM)
    except Outage:
        return _v2_answer({"result_code": "FAIL", "err_code": "SYSTEMERROR", "err_code_des": "系统繁忙"})
    try:
        params = v2.parse_xml(request.body)
    except ValueError:
        return _v2_fail("XML格式错误")
    if not v2.verify(params, sandbox_secret("wechatpay_apiv2_key.txt")):
        return _v2_fail("签名错误")
    if params.get("mch_id") != settings.WECHATPAY_MCHID or params.get("appid") != settings.WECHATPAY_APPID:
        return _v2_fail("appid 和 mch_id 不匹配")
    try:
        answer = work(params)
    except ProviderRefused as exc:
        answer = {"result_code": "FAIL", "err_code": exc.code, "err_code_des": exc.message or exc.code}
    pause(delay)
    return _v2_answer(answer)


def _contract_order(params: dict[str, str]) -> dict[str, str]:
    for name in ("out_trade_no", "body", "notify_url", "total_fee", "trade_type", "plan_id", "contract_code",
                 "request_serial", "contract_display_account", "contract_notify_url", "spbill_create_ip"):  # fmt: skip
        if not params.get(name):
            raise ProviderRefused("PARAM_ERROR", f"{name} 缺失")
    if params["trade_type"] != "NATIVE":
        raise ProviderRefused("PARAM_ERROR", "此沙箱仅支持 trade_type NATIVE")
    if params["plan_id"] != settings.WECHATPAY_PAPAY_PLAN_ID:
        raise ProviderRefused("PLAN_ID_ERROR", "模板 id 不存在")
    expires = params.get("time_expire")
    try:
        expires_at = timezone.make_aware(datetime.strptime(expires, V2_TIME)) if expires else None
        total = int(params["total_fee"])
    except ValueError:
        raise ProviderRefused("PARAM_ERROR", "time_expire 或 total_fee 格式错误") from None
    if payments.query_trade(SYSTEM, params["out_trade_no"]).state == TradeState.PAID:
        raise ProviderRefused("ORDERPAID", "该订单已支付")
    code_url = contracts.create_trade_with_contract(
        SYSTEM,
        ContractOrderRequest(
            out_trade_no=params["out_trade_no"],
            amount_fen=total,
            description=params["body"],
            expires_at=expires_at or timezone.now() + DEFAULT_EXPIRY,
            contract_code=params["contract_code"],
            request_serial=int(params["request_serial"]),
            display_account=params["contract_display_account"],
            period_months=1,
            renewal_amount_fen=total,
            first_deduction_on=timezone.localdate(),
        ),
    )
    return {
        "result_code": "SUCCESS",
        "trade_type": "NATIVE",
        "prepay_id": f"wx{nonce(30).lower()}",
        "code_url": code_url,
        "contract_result_code": "SUCCESS",
    }


def _pappay_apply(params: dict[str, str]) -> dict[str, str]:
    """申请扣款: accepted (the result comes by the APIv2 notification once the sandbox's ``pay/`` says so), or
    refused with WeChat Pay's err_code."""
    for name in ("body", "out_trade_no", "total_fee", "spbill_create_ip", "notify_url", "trade_type", "contract_id"):
        if not params.get(name):
            raise ProviderRefused("PARAM_ERROR", f"{name} 缺失")
    if params["trade_type"] != "PAP":
        raise ProviderRefused("PARAM_ERROR", "trade_type 应为 PAP")
    if not OUT_NO.fullmatch(params["out_trade_no"]):
        raise ProviderRefused("PARAM_ERROR", "out_trade_no 格式错误")
    try:
        total = int(params["total_fee"])
    except ValueError:
        raise ProviderRefused("PARAM_ERROR", "total_fee 格式错误") from None
    _trade, result = contracts.deduct(
        SYSTEM,
        DeductionRequest(
            out_trade_no=params["out_trade_no"],
            contract_id=params["contract_id"],
            amount_fen=total,
            description=params["body"],
            period_key=params.get("attach", ""),
        ),
    )
    if result.state in (DeductionState.ACCEPTED, DeductionState.PAID):
        return {"result_code": "SUCCESS", "out_trade_no": params["out_trade_no"], "contract_id": params["contract_id"]}
    raise ProviderRefused(
        "CONTRACT_NOT_EXIST" if result.state == DeductionState.CONTRACT_GONE else result.code, result.message
    )


# 查询订单 of 申请扣款's orders: the sandbox's trade states in the names paporderquery uses.
PAP_STATES = {
    SimTradeStatus.PAID: "SUCCESS",
    SimTradeStatus.USER_PAYING: "ACCEPT",
    SimTradeStatus.NOT_PAID: "NOTPAY",
    SimTradeStatus.FAILED: "PAY_FAIL",
    SimTradeStatus.CLOSED: "CLOSED",
    SimTradeStatus.REVOKED: "CLOSED",
}


def _pap_order_query(params: dict[str, str]) -> dict[str, str]:
    """查询订单 (paporderquery): only 申请扣款's orders; any other is ORDERNOTEXIST, as WeChat Pay says of it."""
    payments.confirmed_in_app(SYSTEM, params.get("out_trade_no", ""))
    trade = SimTrade.objects.filter(provider=SYSTEM, out_trade_no=params.get("out_trade_no", "")).first()
    if trade is None or not trade.deducted_under:
        raise ProviderRefused("ORDERNOTEXIST", "此订单号不存在")
    answer = {
        "result_code": "SUCCESS",
        "trade_type": "PAP",
        "trade_state": PAP_STATES.get(trade.status, "NOTPAY"),
        "out_trade_no": trade.out_trade_no,
        "contract_id": trade.deducted_under,
        "total_fee": str(trade.amount_fen),
    }
    if trade.status == SimTradeStatus.PAID:
        answer.update(
            transaction_id=trade.transaction_id,
            time_end=timezone.localtime(trade.paid_at or timezone.now()).strftime(V2_TIME),
        )
    return answer


def _delete_contract(params: dict[str, str]) -> dict[str, str]:
    if params.get("version") != "1.0" or not params.get("contract_termination_remark"):
        raise ProviderRefused("PARAM_ERROR", "version / contract_termination_remark 缺失")
    code = params.get("contract_code", "")
    if params.get("plan_id") != settings.WECHATPAY_PAPAY_PLAN_ID or not code:
        raise ProviderRefused("PARAM_ERROR", "此沙箱按 plan_id + contract_code 解约")
    contract = SimContract.objects.filter(provider=SYSTEM, contract_code=code).first()
    if contract is None or contract.status != SimContractStatus.SIGNED:
        raise ProviderRefused("CONTRACT_NOT_EXIST", "签约协议不存在")
    contracts.unsign(SYSTEM, UnsignRequest(contract_code=code))
    return {"result_code": "SUCCESS", "contract_id": contract.contract_id, "plan_id": params["plan_id"],
            "contract_code": code}  # fmt: skip


@sandbox_view
@require_POST
def contract_order(request: HttpRequest) -> HttpResponse:
    return _v2_serve(request, _contract_order)


@sandbox_view
@require_POST
def pappay_apply(request: HttpRequest) -> HttpResponse:
    return _v2_serve(request, _pappay_apply)


@sandbox_view
@require_POST
def pap_order_query(request: HttpRequest) -> HttpResponse:
    return _v2_serve(request, _pap_order_query)


@sandbox_view
@require_POST
def delete_contract(request: HttpRequest) -> HttpResponse:
    return _v2_serve(request, _delete_contract)
