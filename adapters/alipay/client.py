"""The real Alipay client (precreate QR payments, payment codes), through python-alipay-sdk.

Requests are signed RSA2 with our app key; the SDK verifies every answer
with the Alipay public key. ``ALIPAY_GATEWAY`` points it at Alipay's
gateway, or at the sandbox's fake for integration tests.

Payment codes (付款码): ``alipay.trade.pay`` with scene ``bar_code``, then ``alipay.trade.query``, and
``alipay.trade.cancel`` when the outcome stays unknown.

周期扣款 (deduction contracts, docs/protocols.md): pay and sign is the cashier page ``alipay.trade.wap.pay`` with
product_code ``CYCLE_PAY_AUTH`` and ``agreement_sign_params``; the QR encodes its signed gateway URL, which the
Alipay app opens (the SDK signs it, no call is made). The deduction is ``alipay.trade.pay`` with product_code
``CYCLE_PAY_AUTH`` and ``agreement_params.agreement_no``; the merchant's termination is
``alipay.user.agreement.unsign`` by our external_agreement_no (SDK ``server_api``).
"""

from __future__ import annotations

import logging
import shutil
import zipfile
from datetime import date, datetime
from typing import Any
from urllib.error import URLError

import requests
from alipay import AliPay
from alipay.exceptions import AliPayException, AliPayValidationError
from alipay.utils import AliPayConfig
from django.conf import settings
from django.utils import timezone

from adapters.alipay import config
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
)
from adapters.statements import COPY_CHUNK, DOWNLOAD_TIMEOUT, StatementFile, StatementUnavailable, spool
from ipvas.money import fen_to_yuan, yuan_to_fen

logger = logging.getLogger(__name__)

SUCCESS = "10000"
WAITING = "10003"  # alipay.trade.pay: the customer confirms in the app (WAIT_BUYER_PAY)
TRADE_STATES = {
    "WAIT_BUYER_PAY": TradeState.NOT_PAID,
    "TRADE_SUCCESS": TradeState.PAID,
    "TRADE_FINISHED": TradeState.PAID,
    "TRADE_CLOSED": TradeState.CLOSED,
}
SYSTEM_ERRORS = {"20000", "20001"}  # service unavailable, authorisation system busy
# Alipay did not take the request for ours (our keys or ids are wrong): a fault to fix and
# retry, never an answer about the trade; WeChat Pay says the same with HTTP 401.
AUTHENTICATION_ERRORS = {"isv.invalid-app-id", "isv.invalid-signature", "isv.invalid-signature-type"}


# alipay.trade.pay refusals whose outcome is not a refusal: the trade may be paid (by an earlier call).
CODE_UNKNOWN_SUB_CODES = {"ACQ.TRADE_HAS_SUCCESS", "ACQ.SYSTEM_ERROR", "ACQ.PAY_DELAY"}


# 周期扣款: the product codes Alipay gives the cycle deduction.
CYCLE_PAY_AUTH = "CYCLE_PAY_AUTH"
CYCLE_PAY_AUTH_P = "CYCLE_PAY_AUTH_P"
# alipay.trade.pay refusals that mean the agreement is gone (ended by the user, or never signed).
AGREEMENT_GONE_SUB_CODES = {
    "ACQ.AGREEMENT_NOT_EXIST",
    "ACQ.AGREEMENT_INVALID",
    "ACQ.AGREEMENT_STATUS_NOT_NORMAL",
    "ACQ.AGREEMENT_ERROR",
}
# alipay.user.agreement.unsign: an agreement Alipay does not have (or that is ended already) is nothing to end.
UNSIGN_NOTHING_SUB_CODES = {"USER_AGREEMENT_NOT_EXIST", "AGREEMENT_NOT_EXIST", "USER_AGREEMENT_UNSIGNED"}


def _local(value: datetime) -> str:
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S")


def _sub_code(answer: dict[str, Any]) -> str:
    return str(answer.get("sub_code") or answer.get("code") or "")


class AlipayClient:
    name = "alipay"

    def __init__(self) -> None:
        self._sdk = AliPay(
            appid=settings.ALIPAY_APP_ID,
            app_notify_url=config.notify_url(),
            app_private_key_string=config.app_private_key_pem(),
            alipay_public_key_string=config.alipay_public_key_pem(),
            sign_type="RSA2",
            config=AliPayConfig(timeout=settings.ALIPAY_TIMEOUT_SECONDS),
        )
        self._sdk._gateway = settings.ALIPAY_GATEWAY  # the SDK's one attribute for it

    def _call(self, what: str, method: Any, **kwargs: Any) -> dict[str, Any]:
        try:
            answer = method(**kwargs)
        except AliPayValidationError as exc:
            raise ProviderUnavailable(f"Alipay {what}: the answer's signature does not verify") from exc
        except AliPayException as exc:  # an unsigned or error_response answer (it has no .code)
            raise ProviderUnavailable(f"Alipay {what}: {str(exc)[:200]}") from exc
        except (URLError, OSError, ValueError, AttributeError) as exc:  # AttributeError: an answer with no body
            raise ProviderUnavailable(f"Alipay {what}: {exc.__class__.__name__}") from exc
        if not isinstance(answer, dict):
            raise ProviderUnavailable(f"Alipay {what}: unreadable answer")
        if (
            str(answer.get("code")) in SYSTEM_ERRORS
            or answer.get("sub_code") == "ACQ.SYSTEM_ERROR"
            or answer.get("sub_code") in AUTHENTICATION_ERRORS
        ):
            raise ProviderUnavailable(f"Alipay {what}: {answer.get('code')} {answer.get('sub_code')}")
        return answer

    def create(self, request: QrOrderRequest) -> str:
        answer = self._call(
            "precreate",
            self._sdk.api_alipay_trade_precreate,
            subject=request.description[:256],
            out_trade_no=request.out_trade_no,
            total_amount=fen_to_yuan(request.amount_fen),
            time_expire=_local(request.expires_at),
        )
        if answer.get("code") == SUCCESS and answer.get("qr_code"):
            return str(answer["qr_code"])
        raise ProviderRefused(str(answer.get("sub_code") or answer.get("code")), str(answer.get("sub_msg") or ""))

    def query(self, out_trade_no: str) -> Trade:
        answer = self._call("query", self._sdk.api_alipay_trade_query, out_trade_no=out_trade_no)
        if answer.get("sub_code") == "ACQ.TRADE_NOT_EXIST":
            return Trade(state=TradeState.NOT_FOUND, out_trade_no=out_trade_no)
        if answer.get("code") != SUCCESS:
            raise ProviderUnavailable(f"Alipay query: {answer.get('code')} {answer.get('sub_code')}")
        paid_at = answer.get("send_pay_date")
        return Trade(
            state=TRADE_STATES.get(str(answer.get("trade_status")), TradeState.NOT_PAID),
            out_trade_no=out_trade_no,
            transaction_id=str(answer.get("trade_no") or ""),
            amount_fen=yuan_to_fen(str(answer.get("total_amount") or "0")),
            paid_at=timezone.make_aware(datetime.strptime(paid_at, "%Y-%m-%d %H:%M:%S")) if paid_at else None,
            raw=answer,
        )

    def close(self, out_trade_no: str) -> CloseResult:
        answer = self._call("close", self._sdk.api_alipay_trade_close, out_trade_no=out_trade_no)
        if answer.get("code") == SUCCESS or answer.get("sub_code") == "ACQ.TRADE_NOT_EXIST":
            # A precreated QR code that was never scanned has no trade yet; its
            # time_expire keeps it from being paid later.
            return CloseResult(closed=True)
        trade = self.query(out_trade_no)
        if trade.state == TradeState.PAID:
            return CloseResult(closed=False, already_paid=True)
        if trade.state in (TradeState.CLOSED, TradeState.NOT_FOUND):
            return CloseResult(closed=True)
        raise ProviderUnavailable(f"Alipay close: {answer.get('code')} {answer.get('sub_code')}")

    def refund(self, request: RefundRequest) -> RefundResult:
        answer = self._call(
            "refund",
            self._sdk.api_alipay_trade_refund,
            refund_amount=fen_to_yuan(request.amount_fen),
            out_trade_no=request.out_trade_no,
            out_request_no=request.out_refund_no,
            refund_reason=request.reason[:256],
        )
        if answer.get("code") == SUCCESS:
            state = RefundState.SUCCEEDED if answer.get("fund_change") == "Y" else RefundState.PROCESSING
            return RefundResult(
                state=state, out_refund_no=request.out_refund_no, refund_id=str(answer.get("trade_no", ""))
            )
        raise ProviderRefused(str(answer.get("sub_code") or answer.get("code")), str(answer.get("sub_msg") or ""))

    def query_refund(self, out_refund_no: str, *, out_trade_no: str) -> RefundResult:
        answer = self._call(
            "refund query",
            self._sdk.api_alipay_trade_fastpay_refund_query,
            out_request_no=out_refund_no,
            out_trade_no=out_trade_no,
        )
        if answer.get("code") != SUCCESS:
            raise ProviderRefused(str(answer.get("sub_code") or answer.get("code")), str(answer.get("sub_msg") or ""))
        # "refund_status … 未返回该字段表示退款请求未收到或者退款失败": an echoed refund_amount alone is not a refund
        # done (the older wording said so; Alipay's current one does not).
        done = answer.get("refund_status") == "REFUND_SUCCESS"
        return RefundResult(
            state=RefundState.SUCCEEDED if done else RefundState.PROCESSING,
            out_refund_no=out_refund_no,
            refund_id=str(answer.get("trade_no", "")),
        )

    def pay_code(self, request: CodePaymentRequest) -> CodePaymentResult:
        """``alipay.trade.pay``, scene ``bar_code``. Code 10000 is paid, 10003 waits for the customer, a system
        error (20000, ACQ.SYSTEM_ERROR) or no answer raises ``ProviderUnavailable``: the outcome is unknown."""
        extra: dict[str, Any] = {}
        if request.store_code:
            extra["store_id"] = request.store_code[:32]
        answer = self._call(
            "payment code",
            self._sdk.api_alipay_trade_pay,
            out_trade_no=request.out_trade_no,
            scene="bar_code",
            auth_code=request.auth_code,
            subject=request.description[:256],
            total_amount=fen_to_yuan(request.amount_fen),
            **extra,
        )
        code, sub_code = str(answer.get("code")), str(answer.get("sub_code") or "")
        out_trade_no = request.out_trade_no
        if code == SUCCESS:
            paid_at = answer.get("gmt_payment")
            return CodePaymentResult(
                state=CodeState.PAID,
                out_trade_no=out_trade_no,
                transaction_id=str(answer.get("trade_no") or ""),
                amount_fen=yuan_to_fen(str(answer.get("total_amount") or "0")),
                paid_at=timezone.make_aware(datetime.strptime(paid_at, "%Y-%m-%d %H:%M:%S")) if paid_at else None,
                raw=answer,
            )
        if code == WAITING:
            return CodePaymentResult(state=CodeState.CONFIRMING, out_trade_no=out_trade_no, raw=answer)
        if sub_code in CODE_UNKNOWN_SUB_CODES:
            return CodePaymentResult(state=CodeState.UNKNOWN, out_trade_no=out_trade_no, code=sub_code, raw=answer)
        return CodePaymentResult(
            state=CodeState.DECLINED,
            out_trade_no=out_trade_no,
            code=sub_code or code,
            message=str(answer.get("sub_msg") or answer.get("msg") or ""),
            raw=answer,
        )

    def reverse(self, out_trade_no: str) -> ReverseResult:
        """``alipay.trade.cancel``: closes an unpaid trade, gives back a paid one's money (``action`` refund);
        ``retry_flag`` Y asks to call again."""
        answer = self._call("cancel", self._sdk.api_alipay_trade_cancel, out_trade_no=out_trade_no)
        if answer.get("code") == SUCCESS:
            if answer.get("retry_flag") == "Y":
                return ReverseResult(reversed=False, again=True, message="retry_flag Y")
            return ReverseResult(reversed=True, refunded=answer.get("action") == "refund")
        sub_code = str(answer.get("sub_code") or answer.get("code"))
        if sub_code == "ACQ.TRADE_NOT_EXIST":
            return ReverseResult(reversed=True, message=sub_code, not_found=True)
        again = answer.get("retry_flag") == "Y"
        return ReverseResult(reversed=False, again=again, message=f"{sub_code} {answer.get('sub_msg') or ''}".strip())

    # --- 周期扣款: deduction contracts ---------------------------------------------------------

    def create_with_contract(self, request: ContractOrderRequest) -> str:
        """支付并签约: the signed ``alipay.trade.wap.pay`` URL (product_code CYCLE_PAY_AUTH) that the QR encodes. The
        payment and the signing notifications both come to our notify URL (notify_type ``trade_status_sync`` and
        ``dut_user_sign``). Each later deduction is allowed from 3 days before the agreed day of its period to
        that day (the period rule's ``execute_time``, a day 1–28, then every ``period`` months)."""
        sign_params = {
            "personal_product_code": CYCLE_PAY_AUTH_P,
            "sign_scene": settings.ALIPAY_CYCLE_SIGN_SCENE,
            "external_agreement_no": request.contract_code,
            "external_logon_id": request.display_account[:100],
            "sign_notify_url": config.notify_url(),
            "access_params": {"channel": "ALIPAYAPP"},
            "period_rule_params": {
                "period_type": "MONTH",
                "period": request.period_months,
                "execute_time": request.first_deduction_on.isoformat(),
                "single_amount": fen_to_yuan(request.renewal_amount_fen),
            },
        }
        signed = self._sdk.api_alipay_trade_wap_pay(
            subject=request.description[:256],
            out_trade_no=request.out_trade_no,
            total_amount=fen_to_yuan(request.amount_fen),
            notify_url=config.notify_url(),
            product_code=CYCLE_PAY_AUTH,
            time_expire=_local(request.expires_at),
            agreement_sign_params=sign_params,
        )
        return f"{settings.ALIPAY_GATEWAY}?{signed}"

    def announce_deduction(self, request: DeductionNoticeRequest) -> bool:
        """Alipay has no pre-deduction notice: the period rule the user signed is the announcement."""
        return False

    def deduct(self, request: DeductionRequest) -> DeductionResult:
        """``alipay.trade.pay`` with product_code CYCLE_PAY_AUTH and the agreement: answered at once (10000 paid,
        10003 still being paid, 40004 refused)."""
        answer = self._call(
            "deduction",
            self._sdk.server_api,
            api_name="alipay.trade.pay",
            biz_content={
                "out_trade_no": request.out_trade_no,
                "total_amount": fen_to_yuan(request.amount_fen),
                "subject": request.description[:256],
                "product_code": CYCLE_PAY_AUTH,
                "agreement_params": {"agreement_no": request.contract_id},
                "body": request.period_key,
            },
        )
        code, sub_code = str(answer.get("code")), str(answer.get("sub_code") or "")
        out_trade_no = request.out_trade_no
        if code == SUCCESS:
            paid_at = answer.get("gmt_payment")
            return DeductionResult(
                state=DeductionState.PAID,
                out_trade_no=out_trade_no,
                transaction_id=str(answer.get("trade_no") or ""),
                amount_fen=yuan_to_fen(str(answer.get("total_amount") or "0")),
                paid_at=timezone.make_aware(datetime.strptime(paid_at, "%Y-%m-%d %H:%M:%S")) if paid_at else None,
                raw=answer,
            )
        if code == WAITING or sub_code in CODE_UNKNOWN_SUB_CODES:
            return DeductionResult(state=DeductionState.UNKNOWN, out_trade_no=out_trade_no, code=sub_code, raw=answer)
        state = DeductionState.CONTRACT_GONE if sub_code in AGREEMENT_GONE_SUB_CODES else DeductionState.DECLINED
        return DeductionResult(
            state=state,
            out_trade_no=out_trade_no,
            code=sub_code or code,
            message=str(answer.get("sub_msg") or answer.get("msg") or ""),
            raw=answer,
        )

    def query_deduction(self, out_trade_no: str) -> Trade:
        """A deduction (alipay.trade.pay under the agreement) is a trade like any: alipay.trade.query."""
        return self.query(out_trade_no)

    def close_deduction(self, out_trade_no: str) -> CloseResult:
        return self.close(out_trade_no)

    def unsign(self, request: UnsignRequest) -> UnsignResult:
        """``alipay.user.agreement.unsign`` by our external_agreement_no (and the agreement_no when known)."""
        biz: dict[str, Any] = {
            "personal_product_code": CYCLE_PAY_AUTH_P,
            "sign_scene": settings.ALIPAY_CYCLE_SIGN_SCENE,
            "external_agreement_no": request.contract_code,
        }
        if request.contract_id:
            biz["agreement_no"] = request.contract_id
        answer = self._call(
            "termination", self._sdk.server_api, api_name="alipay.user.agreement.unsign", biz_content=biz
        )
        if answer.get("code") == SUCCESS:
            return UnsignResult(ended=True)
        sub_code = _sub_code(answer)
        if sub_code in UNSIGN_NOTHING_SUB_CODES:
            return UnsignResult(ended=True, message=sub_code)
        return UnsignResult(ended=False, message=f"{sub_code} {answer.get('sub_msg') or ''}".strip())

    def download_statement(self, day: date) -> StatementFile:
        """``alipay.data.dataservice.bill.downloadurl.query`` (SDK ``server_api``, ``bill_type=trade``) gives a
        short-lived URL of a zip; its ``…_业务明细.csv`` member (not the 汇总 one) is the statement, GBK."""
        sdk = self._sdk
        try:
            answer = sdk.server_api(
                "alipay.data.dataservice.bill.downloadurl.query",
                biz_content={"bill_type": "trade", "bill_date": day.isoformat()},
            )
        except (AliPayException, AliPayValidationError, OSError, ValueError, AttributeError) as exc:
            # AliPayValidationError (an answer whose signature does not verify) is no AliPayException; an answer
            # with neither its response nor an error_response is an AttributeError inside the SDK.
            raise StatementUnavailable(f"Alipay bill download URL: {exc.__class__.__name__}: {exc}") from exc
        if not isinstance(answer, dict) or answer.get("code") != "10000":
            sub_code = answer.get("sub_code", "") if isinstance(answer, dict) else ""
            if sub_code == "isp.bill_not_exist":
                return StatementFile(None, "", note="Alipay has no bill for the day (no trades)")
            raise StatementUnavailable(f"Alipay bill download URL: {answer!r}"[:300])
        url = answer.get("bill_download_url")
        if not url:
            raise StatementUnavailable("Alipay bill download URL: no bill_download_url in the answer")
        archive = spool()
        try:
            with requests.get(url, stream=True, timeout=DOWNLOAD_TIMEOUT) as response:
                response.raise_for_status()
                for chunk in response.iter_content(COPY_CHUNK):
                    archive.write(chunk)
        except requests.RequestException as exc:
            raise StatementUnavailable(f"Alipay bill download: {exc.__class__.__name__}") from exc
        archive.seek(0)
        try:
            with zipfile.ZipFile(archive) as bundle:
                for member in bundle.infolist():
                    name = _zip_name(member)
                    if name.endswith("业务明细.csv") and "汇总" not in name:
                        member_file = spool()
                        with bundle.open(member) as detail:
                            shutil.copyfileobj(detail, member_file, COPY_CHUNK)
                        member_file.seek(0)
                        return StatementFile(member_file, name.rsplit("/", 1)[-1])
        except zipfile.BadZipFile as exc:
            raise StatementUnavailable(f"Alipay bill download: not a zip file ({exc})") from exc
        raise StatementUnavailable("Alipay bill download: no …_业务明细.csv in the zip")


def _zip_name(member: zipfile.ZipInfo) -> str:
    # Alipay's zips name their members in GBK without the UTF-8 flag; zipfile then reads them as CP437.
    if member.flag_bits & 0x800:
        return member.filename
    try:
        return member.filename.encode("cp437").decode("gb18030")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return member.filename
