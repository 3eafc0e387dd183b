"""Alipay's openapi gateway served by the sandbox, for python-alipay-sdk (face-to-face QR and payment codes).

``/sandbox/alipay/fake/gateway.do`` takes the signed parameters (query
string or form) of ``alipay.trade.precreate``, ``.pay`` (scene ``bar_code``),
``.query``, ``.close``, ``.cancel``, ``.refund`` and ``.fastpay.refund.query``. A request is signed RSA2 over
every parameter but ``sign`` (``sign_type`` included: Alipay leaves it out
only when verifying its own notifications), sorted and joined as
"k=v&k=v", with the app key; the fake verifies it with the public half of
the sandbox's ``alipay_app_private_key.pem``.

The answer is Alipay's: ``{"<method>_response": {...}, "sign": "..."}``,
the sign RSA2 over the exact text of the inner object with
``alipay_private_key.pem``, which is why that text is written once and
embedded as is. An unknown app_id is answered unsigned, as Alipay cannot
choose a key for it. ``down`` answers Alipay's system error (code 20000).
Amounts are yuan strings; the simulated provider counts fen. A payment code
answers by its last four digits (sandbox.payments.CODE_OUTCOMES); one ending
0003 holds the connection longer than the client waits (``ALIPAY_TIMEOUT_SECONDS``).

周期扣款: a GET of the signed ``alipay.trade.wap.pay`` URL (what the Alipay app does with the QR code) opens
the cashier page of a pay-and-sign order and makes its trade and agreement; ``alipay.trade.pay`` with
product_code CYCLE_PAY_AUTH deducts under the agreement; ``alipay.user.agreement.unsign`` ends it.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from html import escape
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.hashes import SHA256
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from adapters.alipay import crypto
from adapters.providers.types import (
    CodePaymentRequest,
    ContractOrderRequest,
    DeductionRequest,
    ProviderRefused,
    QrOrderRequest,
    RefundRequest,
    RefundState,
    Trade,
    TradeState,
    UnsignRequest,
)
from ipvas import jsonparse
from ipvas.credentials import load_private_key, load_public_key
from ipvas.keyfiles import sandbox_private_key_pem, sandbox_public_key_pem
from ipvas.money import fen_to_yuan, yuan_to_fen
from sandbox import contracts, payments
from sandbox.http import sandbox_view
from sandbox.models import SimContract, SimContractStatus, SimTrade
from sandbox.views.provider_fakes import Outage, compact_json, fault_delay, pause

SYSTEM = payments.ALIPAY
SUCCESS = {"code": "10000", "msg": "Success"}
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
DEFAULT_EXPIRY = timedelta(hours=2)
TRADE_STATUSES = {
    TradeState.NOT_PAID: "WAIT_BUYER_PAY",
    TradeState.PAID: "TRADE_SUCCESS",
    TradeState.CLOSED: "TRADE_CLOSED",
    TradeState.FAILED: "TRADE_CLOSED",  # a declined payment code
}
WAITING = {"code": "10003", "msg": " order success pay inprocess"}
# How long a code ending 0003 keeps the client waiting: past its read timeout, never for ever.
NO_ANSWER_CAP_SECONDS = 30.0

Inner = dict[str, Any]


class AlipayError(Exception):
    """An answer other than success: ``code`` 40001/40002 (the call) or 40004 (the business)."""

    def __init__(self, code: str, msg: str, sub_code: str, sub_msg: str, **extra: str) -> None:
        super().__init__(f"{code} {sub_code}: {sub_msg}")
        self.inner: Inner = {"code": code, "msg": msg, "sub_code": sub_code, "sub_msg": sub_msg, **extra}


def _invalid(sub_code: str, sub_msg: str) -> AlipayError:
    return AlipayError("40002", "Invalid Arguments", sub_code, sub_msg)


def _business(sub_code: str, sub_msg: str, **extra: str) -> AlipayError:
    return AlipayError("40004", "Business Failed", sub_code, sub_msg, **extra)


def _local(value: datetime) -> str:
    return timezone.localtime(value).strftime(TIME_FORMAT)


def _buyer(trade: SimTrade) -> dict[str, str]:
    return {"buyer_logon_id": "san***@sandbox.com", "buyer_user_id": "2088" + trade.transaction_id[-12:]}


# --- signatures ---------------------------------------------------------------------------


def _request_signed_by_our_app(params: dict[str, str]) -> bool:
    content = "&".join(f"{k}={params[k]}" for k in sorted(params) if k != "sign" and params[k] != "")
    public_key = load_public_key(sandbox_public_key_pem("alipay_app_private_key.pem"))
    try:
        signature = base64.b64decode(params.get("sign", ""), validate=True)
        public_key.verify(signature, content.encode(), padding.PKCS1v15(), SHA256())
    except (InvalidSignature, ValueError):
        return False
    return True


def _answer(response_key: str, inner: Inner, *, signed: bool = True) -> HttpResponse:
    text = compact_json(inner)
    if signed:
        sign = crypto.sign_string(load_private_key(sandbox_private_key_pem("alipay_private_key.pem")), text)
        raw = f'{{"{response_key}":{text},"sign":"{sign}"}}'
    else:
        raw = f'{{"{response_key}":{text}}}'
    return HttpResponse(raw.encode(), content_type="application/json;charset=utf-8")


# --- reading requests ---------------------------------------------------------------------


def _text(biz: dict[str, Any], name: str, *, max_length: int = 64, required: bool = True) -> str:
    value = biz.get(name, "")
    if not isinstance(value, str) or len(value) > max_length or (required and not value):
        raise _invalid("isv.invalid-parameter", f"参数 {name} 缺失或不合法")
    return value


def _fen(biz: dict[str, Any], name: str) -> int:
    try:
        fen = yuan_to_fen(str(biz.get(name, "")))
    except ValueError:
        raise _invalid("isv.invalid-parameter", f"参数 {name} 不是合法金额") from None
    if fen < 1:
        raise _invalid("isv.invalid-parameter", f"参数 {name} 须大于 0")
    return fen


def _expiry(biz: dict[str, Any]) -> datetime:
    value = biz.get("time_expire")
    if not value:
        return timezone.now() + DEFAULT_EXPIRY
    try:
        return timezone.make_aware(datetime.strptime(str(value), TIME_FORMAT))
    except ValueError:
        raise _invalid("isv.invalid-parameter", "time_expire 格式须为 yyyy-MM-dd HH:mm:ss") from None


def _existing(out_trade_no: str) -> Trade:
    trade = payments.query_trade(SYSTEM, out_trade_no)
    if trade.state == TradeState.NOT_FOUND:
        raise _business(
            "ACQ.TRADE_NOT_EXIST",
            "交易不存在",
            out_trade_no=out_trade_no,
            buyer_pay_amount="0.00",
            invoice_amount="0.00",
            point_amount="0.00",
            receipt_amount="0.00",
        )
    return trade


def _record(out_trade_no: str) -> SimTrade:
    trade = payments.trade_record(SYSTEM, out_trade_no)
    if trade is None:
        raise _business("ACQ.TRADE_NOT_EXIST", "交易不存在", out_trade_no=out_trade_no)
    return trade


# --- the operations -----------------------------------------------------------------------


def _precreate(biz: dict[str, Any]) -> Inner:
    order = QrOrderRequest(
        out_trade_no=_text(biz, "out_trade_no"),
        amount_fen=_fen(biz, "total_amount"),
        description=_text(biz, "subject", max_length=256),
        expires_at=_expiry(biz),
    )
    if payments.query_trade(SYSTEM, order.out_trade_no).state == TradeState.PAID:
        raise _business("ACQ.TRADE_HAS_SUCCESS", "交易已被支付")
    try:
        qr_code = payments.create_trade(SYSTEM, order)
    except ProviderRefused as exc:
        if exc.code == "ORDER_CLOSED":
            raise _business("ACQ.TRADE_HAS_CLOSE", "交易已经关闭") from None
        raise _business("ACQ.CONTEXT_INCONSISTENT", "交易信息被篡改") from None
    return {**SUCCESS, "out_trade_no": order.out_trade_no, "qr_code": qr_code}


def _query(biz: dict[str, Any]) -> Inner:
    out_trade_no = _text(biz, "out_trade_no")
    trade = _existing(out_trade_no)
    record = _record(out_trade_no)
    paid = trade.state == TradeState.PAID
    received = fen_to_yuan(trade.amount_fen if paid else 0)
    inner = {
        **SUCCESS,
        "trade_no": record.transaction_id,
        "out_trade_no": out_trade_no,
        # Paid and refunded in full is TRADE_CLOSED, as Alipay queries it ("支付完成后全额退款").
        "trade_status": "TRADE_CLOSED"
        if paid and record.refunded_fen >= trade.amount_fen
        else TRADE_STATUSES[trade.state],
        "total_amount": fen_to_yuan(trade.amount_fen),
        "buyer_pay_amount": received,
        "invoice_amount": received,
        "receipt_amount": received,
        "point_amount": "0.00",
    }
    if paid and trade.paid_at is not None:
        inner.update({"send_pay_date": _local(trade.paid_at), **_buyer(record)})
    return inner


def _trade_pay(biz: dict[str, Any]) -> Inner:
    if biz.get("product_code") == "CYCLE_PAY_AUTH":
        return _cycle_pay(biz)
    if biz.get("scene") not in ("bar_code", "wave_code"):
        raise _invalid("isv.invalid-parameter", "参数 scene 不合法")
    auth_code = _text(biz, "auth_code", max_length=32)
    if not auth_code.isdigit():
        raise _business("ACQ.PAYMENT_AUTH_CODE_INVALID", payments.REFUSALS[(SYSTEM, payments.INVALID)][1])
    charge = CodePaymentRequest(
        out_trade_no=_text(biz, "out_trade_no"),
        auth_code=auth_code,
        amount_fen=_fen(biz, "total_amount"),
        description=_text(biz, "subject", max_length=256),
        store_code=_text(biz, "store_id", max_length=32, required=False),
    )
    try:
        trade, outcome = payments.charge_code(SYSTEM, charge)
    except ProviderRefused as exc:
        if exc.code == "ORDER_CLOSED":
            raise _business("ACQ.TRADE_HAS_CLOSE", "交易已经关闭") from None
        raise _business("ACQ.CONTEXT_INCONSISTENT", "交易信息被篡改") from None
    if outcome == payments.NO_ANSWER:
        time.sleep(min(settings.ALIPAY_TIMEOUT_SECONDS + 1, NO_ANSWER_CAP_SECONDS))
    if trade is None or outcome not in (payments.PAID, payments.CONFIRMING, payments.NO_ANSWER):
        sub_code, sub_msg = payments.REFUSALS[(SYSTEM, outcome)]
        raise _business(sub_code, sub_msg, buyer_pay_amount="0.00", invoice_amount="0.00", receipt_amount="0.00")
    inner: Inner = {
        **(SUCCESS if outcome == payments.PAID else WAITING),
        "trade_no": trade.transaction_id,
        "out_trade_no": trade.out_trade_no,
        "buyer_logon_id": "san***@sandbox.com",
        "total_amount": fen_to_yuan(trade.amount_fen),
    }
    if outcome == payments.PAID and trade.paid_at is not None:
        received = fen_to_yuan(trade.amount_fen)
        inner.update(
            {
                "receipt_amount": received,
                "buyer_pay_amount": received,
                "invoice_amount": received,
                "point_amount": "0.00",
                "gmt_payment": _local(trade.paid_at),
                "fund_bill_list": [{"fund_channel": "ALIPAYACCOUNT", "amount": received}],
                "buyer_user_id": _buyer(trade)["buyer_user_id"],
            }
        )
    return inner


def _cancel(biz: dict[str, Any]) -> Inner:
    out_trade_no = _text(biz, "out_trade_no")
    trade, result = payments.reverse_trade(SYSTEM, out_trade_no)
    if trade is None:
        raise _business("ACQ.TRADE_NOT_EXIST", "交易不存在", retry_flag="N")
    return {
        **SUCCESS,
        "trade_no": trade.transaction_id,
        "out_trade_no": out_trade_no,
        "retry_flag": "N",
        "action": "refund" if result.refunded else "close",
    }


def _close(biz: dict[str, Any]) -> Inner:
    out_trade_no = _text(biz, "out_trade_no")
    record = _record(out_trade_no)
    if payments.close_trade(SYSTEM, out_trade_no).already_paid:
        raise _business("ACQ.TRADE_STATUS_ERROR", "交易状态不合法")
    return {**SUCCESS, "trade_no": record.transaction_id, "out_trade_no": out_trade_no}


def _refund(biz: dict[str, Any]) -> Inner:
    out_trade_no = _text(biz, "out_trade_no")
    # Without out_request_no Alipay takes the request as the trade's one full refund.
    out_request_no = _text(biz, "out_request_no", required=False) or out_trade_no
    refund_fen = _fen(biz, "refund_amount")
    trade = _existing(out_trade_no)
    zero = {"out_trade_no": out_trade_no, "refund_fee": "0.00", "send_back_fee": "0.00"}
    if trade.state != TradeState.PAID:
        raise _business("ACQ.TRADE_STATUS_ERROR", "交易状态不合法", **zero)
    # A request repeated under the same out_request_no moves no money again: fund_change "N".
    repeated = payments.refund_record(SYSTEM, out_request_no) is not None
    try:
        payments.refund(
            SYSTEM,
            RefundRequest(
                out_trade_no=out_trade_no,
                out_refund_no=out_request_no,
                amount_fen=refund_fen,
                total_fen=trade.amount_fen,
                reason=_text(biz, "refund_reason", max_length=256, required=False),
            ),
        )
    except ProviderRefused:
        raise _business("ACQ.REASON_TRADE_REFUND_FEE_ERR", "退款金额无效", **zero) from None
    record = _record(out_trade_no)
    return {
        **SUCCESS,
        "trade_no": record.transaction_id,
        "out_trade_no": out_trade_no,
        **_buyer(record),
        "fund_change": "N" if repeated else "Y",
        "refund_fee": fen_to_yuan(record.refunded_fen),
        "send_back_fee": "0.00" if repeated else fen_to_yuan(refund_fen),
        "gmt_refund_pay": _local(timezone.now()),
    }


def _refund_query(biz: dict[str, Any]) -> Inner:
    out_trade_no = _text(biz, "out_trade_no")
    out_request_no = _text(biz, "out_request_no")
    record = _record(out_trade_no)
    found = {**SUCCESS, "trade_no": record.transaction_id, "out_trade_no": out_trade_no}
    try:
        result = payments.query_refund(SYSTEM, out_request_no)
    except ProviderRefused:
        return found  # Alipay answers success with no refund in it: it never received that request
    made = payments.refund_record(SYSTEM, out_request_no)
    if made is None or made.trade_id != record.pk:
        return found
    found.update(
        {
            "out_request_no": out_request_no,
            "total_amount": fen_to_yuan(record.amount_fen),
            "refund_amount": fen_to_yuan(made.amount_fen),
            "gmt_refund_pay": _local(made.created_at),
        }
    )
    if result.state == RefundState.SUCCEEDED:
        found["refund_status"] = "REFUND_SUCCESS"
    return found


def _cycle_pay(biz: dict[str, Any]) -> Inner:
    """周期扣款: ``alipay.trade.pay`` with product_code CYCLE_PAY_AUTH and the agreement, answered at once."""
    agreement = biz.get("agreement_params")
    if not isinstance(agreement, dict) or not agreement.get("agreement_no"):
        raise _invalid("isv.invalid-parameter", "agreement_params.agreement_no 缺失")
    try:
        trade, result = contracts.deduct(
            SYSTEM,
            DeductionRequest(
                out_trade_no=_text(biz, "out_trade_no"),
                contract_id=str(agreement["agreement_no"]),
                amount_fen=_fen(biz, "total_amount"),
                description=_text(biz, "subject", max_length=256),
                period_key=_text(biz, "body", max_length=128, required=False),
            ),
        )
    except ProviderRefused:
        raise _business("ACQ.CONTEXT_INCONSISTENT", "交易信息被篡改") from None
    if trade is None:
        raise _business(result.code, result.message, buyer_pay_amount="0.00", invoice_amount="0.00")
    received = fen_to_yuan(trade.amount_fen)
    return {
        **SUCCESS,
        "trade_no": trade.transaction_id,
        "out_trade_no": trade.out_trade_no,
        "buyer_logon_id": "san***@sandbox.com",
        "total_amount": received,
        "receipt_amount": received,
        "buyer_pay_amount": received,
        "invoice_amount": received,
        "point_amount": "0.00",
        "gmt_payment": _local(trade.paid_at or timezone.now()),
        "fund_bill_list": [{"fund_channel": "ALIPAYACCOUNT", "amount": received}],
        "buyer_user_id": _buyer(trade)["buyer_user_id"],
    }


def _agreement_unsign(biz: dict[str, Any]) -> Inner:
    """``alipay.user.agreement.unsign``: ends the agreement named by our external_agreement_no."""
    code = _text(biz, "external_agreement_no", required=False)
    if not code:
        raise _invalid("isv.invalid-parameter", "此沙箱按 external_agreement_no 解约")
    if biz.get("personal_product_code") != "CYCLE_PAY_AUTH_P":
        raise _invalid("isv.invalid-parameter", "personal_product_code 须为 CYCLE_PAY_AUTH_P")
    contract = SimContract.objects.filter(provider=SYSTEM, contract_code=code).first()
    if contract is None or contract.status != SimContractStatus.SIGNED:
        raise _business("USER_AGREEMENT_NOT_EXIST", "用户协议不存在")
    try:
        contracts.unsign(SYSTEM, UnsignRequest(contract_code=code, contract_id=str(biz.get("agreement_no") or "")))
    except ProviderRefused:
        raise _business("AGREEMENT_NO_NOT_MATCH", "协议号与商户签约号不一致") from None
    return dict(SUCCESS)


def _wap_pay_page(biz: dict[str, Any]) -> HttpResponse:
    """The Alipay app opens the signed ``alipay.trade.wap.pay`` URL of the QR code: the cashier page of a
    pay-and-sign order (product_code CYCLE_PAY_AUTH). The trade and the agreement it offers are made now."""
    if biz.get("product_code") != "CYCLE_PAY_AUTH":
        return HttpResponse("此沙箱的 wap.pay 仅支持 CYCLE_PAY_AUTH", status=400, content_type="text/plain")
    agreement = biz.get("agreement_sign_params")
    rule = agreement.get("period_rule_params") if isinstance(agreement, dict) else None
    if (
        not isinstance(agreement, dict)
        or not isinstance(rule, dict)
        or agreement.get("personal_product_code") != "CYCLE_PAY_AUTH_P"
    ):
        return HttpResponse("agreement_sign_params 不合法", status=400, content_type="text/plain")
    try:
        contracts.create_trade_with_contract(
            SYSTEM,
            ContractOrderRequest(
                out_trade_no=_text(biz, "out_trade_no"),
                amount_fen=_fen(biz, "total_amount"),
                description=_text(biz, "subject", max_length=256),
                expires_at=_expiry(biz),
                contract_code=_text(agreement, "external_agreement_no", max_length=32),
                request_serial=0,
                display_account=str(agreement.get("external_logon_id") or ""),
                period_months=int(rule.get("period") or 1),
                renewal_amount_fen=_fen(rule, "single_amount"),
                first_deduction_on=date.fromisoformat(str(rule.get("execute_time"))),
            ),
        )
    except (AlipayError, ProviderRefused, ValueError) as exc:
        return HttpResponse(f"无法支付: {exc}", status=400, content_type="text/plain")
    what = escape(f"支付 {biz['total_amount']} 元并开通自动续费 ({biz['out_trade_no']})")
    page = f"<!doctype html><title>支付宝</title><p>{what}</p>"
    return HttpResponse(page, content_type="text/html; charset=utf-8")


OPERATIONS: dict[str, Callable[[dict[str, Any]], Inner]] = {
    "alipay.trade.precreate": _precreate,
    "alipay.trade.pay": _trade_pay,
    "alipay.trade.query": _query,
    "alipay.trade.close": _close,
    "alipay.trade.cancel": _cancel,
    "alipay.trade.refund": _refund,
    "alipay.trade.fastpay.refund.query": _refund_query,
    "alipay.user.agreement.unsign": _agreement_unsign,
}


def _biz_content(params: dict[str, str]) -> dict[str, Any]:
    try:
        biz = jsonparse.loads(params.get("biz_content") or "{}")
    except ValueError:
        raise _invalid("isv.invalid-parameter", "biz_content 不是合法的 JSON") from None
    if not isinstance(biz, dict):
        raise _invalid("isv.invalid-parameter", "biz_content 须为 JSON 对象")
    return biz


def _cashier(params: dict[str, str]) -> HttpResponse:
    if params.get("app_id") != settings.ALIPAY_APP_ID or params.get("sign_type") != "RSA2":
        return HttpResponse("无效的AppID参数或签名类型", status=400, content_type="text/plain")
    if not _request_signed_by_our_app(params):
        return HttpResponse("验签出错", status=400, content_type="text/plain")
    try:
        return _wap_pay_page(_biz_content(params))
    except AlipayError as exc:
        return HttpResponse(str(exc), status=400, content_type="text/plain")


@sandbox_view
@require_http_methods(["GET", "POST"])
def gateway(request: HttpRequest) -> HttpResponse:
    params = {**request.GET.dict(), **request.POST.dict()}
    method = params.get("method", "")
    if method == "alipay.trade.wap.pay":
        return _cashier(params)
    operation = OPERATIONS.get(method)
    if operation is None:
        return _answer("error_response", _invalid("isv.invalid-method", "不存在的方法名").inner, signed=False)
    response_key = method.replace(".", "_") + "_response"
    try:
        delay = fault_delay(SYSTEM)
    except Outage:
        unavailable = AlipayError("20000", "Service Currently Unavailable", "isp.unknow-error", "系统繁忙")
        return _answer(response_key, unavailable.inner)
    if params.get("app_id") != settings.ALIPAY_APP_ID:
        return _answer(response_key, _invalid("isv.invalid-app-id", "无效的AppID参数").inner, signed=False)
    try:
        if not params.get("sign"):
            raise AlipayError("40001", "Missing Required Arguments", "isv.missing-signature", "缺少签名参数")
        if params.get("sign_type") != "RSA2":
            raise _invalid("isv.invalid-signature-type", "无效的签名类型")
        if not _request_signed_by_our_app(params):
            raise _invalid("isv.invalid-signature", "验签出错")
        inner = operation(_biz_content(params))
    except AlipayError as exc:
        inner = exc.inner
    pause(delay)
    return _answer(response_key, inner)
