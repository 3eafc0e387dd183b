"""The simulated WeChat Pay 委托代扣 and Alipay 周期扣款: contracts offered with a pay-and-sign trade, signed when
it is paid, deductions under the providers' rules, ended by the user or the merchant; and their notifications,
signed as the providers sign them (WeChat Pay's APIv2 XML with the APIv2 key, Alipay's RSA2).

The rules the simulated providers hold a deduction to are the documented ones (docs/decisions.md):

* WeChat Pay: a pre-deduction notice only 07:00–22:00 Beijing time; then the deduction from the 3rd to the 9th
  natural day (the notice's day is the 1st), 07:00–22:00, at most the announced amount, once per notice.
* Alipay: from 3 days before the agreed day of the period to that day, at most the signed single amount, once
  per period; a success moves the agreed day one period on.

A WeChat Pay deduction is accepted and taken a few seconds later (``sandbox.payments.CONFIRM_SECONDS``, as a
payment code the customer confirms): the query then finds it paid, and ``POST /sandbox/wechatpay/pay/`` on it
delivers its payment notification now. An Alipay deduction is answered at once.
"""

from __future__ import annotations

import secrets
import string
from datetime import date, datetime, time, timedelta
from typing import Any

from dateutil.relativedelta import relativedelta
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from adapters.providers.types import (
    ContractOrderRequest,
    DeductionNoticeRequest,
    DeductionRequest,
    DeductionResult,
    DeductionState,
    ProviderRefused,
    QrOrderRequest,
    UnsignRequest,
    UnsignResult,
)
from ipvas.keyfiles import sandbox_private_key_pem, sandbox_secret
from ipvas.money import fen_to_yuan
from sandbox import payments
from sandbox.models import SimContract, SimContractStatus, SimTrade, SimTradeStatus

WECHATPAY, ALIPAY = payments.WECHATPAY, payments.ALIPAY
# WeChat Pay: notices and deductions only in these hours (Beijing time), the window from the 3rd to the 9th day.
OPEN_HOURS = (time(7, 0), time(22, 0))
WINDOW_FIRST_DAY, WINDOW_LAST_DAY = 3, 9
# Alipay: the deduction is allowed from this many days before the agreed day, to that day.
ALIPAY_DAYS_BEFORE = 3


def _digits(n: int) -> str:
    return "".join(secrets.choice(string.digits) for _ in range(n))


def _new_contract_id(provider: str) -> str:
    stamp = timezone.localtime().strftime("%Y%m%d")
    return f"Wx{stamp}{_digits(20)}" if provider == WECHATPAY else f"{stamp}{_digits(16)}"


def _at_local(day: date, moment: time) -> datetime:
    return timezone.make_aware(datetime.combine(day, moment))


def in_open_hours(now: datetime) -> bool:
    local = timezone.localtime(now).time()
    return OPEN_HOURS[0] <= local < OPEN_HOURS[1]


# --- pay and sign ----------------------------------------------------------------------------


def create_trade_with_contract(provider: str, request: ContractOrderRequest) -> str:
    """The pay-and-sign order: a trade like a QR order's, and the contract it offers (signed when paid)."""
    code_url = payments.create_trade(
        provider,
        QrOrderRequest(
            out_trade_no=request.out_trade_no,
            amount_fen=request.amount_fen,
            description=request.description,
            expires_at=request.expires_at,
        ),
    )
    with transaction.atomic():
        trade = SimTrade.objects.select_for_update().get(provider=provider, out_trade_no=request.out_trade_no)
        existing = SimContract.objects.filter(trade=trade).first()
        if existing is not None:
            if existing.contract_code != request.contract_code:
                raise ProviderRefused("INVALID_REQUEST", "out_trade_no reused with another contract")
            return code_url
        if SimContract.objects.filter(provider=provider, contract_code=request.contract_code).exists():
            raise ProviderRefused("CONTRACT_CODE_EXIST", "the contract code was used before")
        SimContract.objects.create(
            provider=provider,
            contract_code=request.contract_code,
            contract_id=_new_contract_id(provider),
            trade=trade,
            display_account=request.display_account[:64],
            period_months=request.period_months,
            single_amount_fen=request.renewal_amount_fen,
            plan_at=_at_local(request.first_deduction_on, time(0)) if provider == ALIPAY else None,
        )
    return code_url


def contract_of_trade(trade: SimTrade) -> SimContract | None:
    return SimContract.objects.filter(trade=trade).first()


def sign_paid(trade: SimTrade) -> SimContract | None:
    """The customer paid a pay-and-sign trade: its contract is signed in the same step (once)."""
    with transaction.atomic():
        contract = SimContract.objects.select_for_update().filter(trade=trade).first()
        if contract is None or trade.status != SimTradeStatus.PAID:
            return contract
        if contract.status == SimContractStatus.PENDING:
            contract.status = SimContractStatus.SIGNED
            contract.signed_at = timezone.now()
            contract.save(update_fields=["status", "signed_at"])
        return contract


def contract_by_id(provider: str, contract_id: str) -> SimContract | None:
    return SimContract.objects.filter(provider=provider, contract_id=contract_id).first()


def terminate_by_user(contract: SimContract) -> SimContract:
    """The user ends the contract in the payment app."""
    with transaction.atomic():
        contract = SimContract.objects.select_for_update().get(pk=contract.pk)
        if contract.status == SimContractStatus.SIGNED:
            contract.status = SimContractStatus.TERMINATED
            contract.terminated_at = timezone.now()
            contract.terminated_by = "user"
            contract.save(update_fields=["status", "terminated_at", "terminated_by"])
        return contract


def unsign(provider: str, request: UnsignRequest) -> UnsignResult:
    """The merchant ends a contract, named by its code: a signed one ends; one never signed is nothing to end."""
    with transaction.atomic():
        contract = (
            SimContract.objects.select_for_update()
            .filter(provider=provider, contract_code=request.contract_code)
            .first()
        )
        if contract is None or contract.status != SimContractStatus.SIGNED:
            return UnsignResult(ended=True, message="no such contract")
        if request.contract_id and request.contract_id != contract.contract_id:
            raise ProviderRefused("INVALID_REQUEST", "contract_id does not match the contract code")
        contract.status = SimContractStatus.TERMINATED
        contract.terminated_at = timezone.now()
        contract.terminated_by = "merchant"
        contract.save(update_fields=["status", "terminated_at", "terminated_by"])
        return UnsignResult(ended=True)


# --- deductions ------------------------------------------------------------------------------


def announce(provider: str, request: DeductionNoticeRequest) -> bool:
    """WeChat Pay's pre-deduction notice: the deduction window opens from the 3rd to the 9th day."""
    if provider != WECHATPAY:
        return False
    now = timezone.now()
    if not in_open_hours(now):
        raise ProviderRefused("RULE_LIMIT", "预扣费通知只能在每天 7:00~22:00 发送")
    with transaction.atomic():
        contract = SimContract.objects.select_for_update().filter(provider=provider, contract_id=request.contract_id)
        contract = contract.first()
        if contract is None or contract.status != SimContractStatus.SIGNED:
            raise ProviderRefused("CONTRACT_NOT_EXIST", "签约协议不存在")
        day = timezone.localtime(now).date()
        contract.notice_amount_fen = request.amount_fen
        contract.deduct_from = _at_local(day + timedelta(days=WINDOW_FIRST_DAY - 1), OPEN_HOURS[0])
        contract.deduct_until = _at_local(day + timedelta(days=WINDOW_LAST_DAY - 1), OPEN_HOURS[1])
        contract.save(update_fields=["notice_amount_fen", "deduct_from", "deduct_until"])
    return True


def _refusal(contract: SimContract | None, request: DeductionRequest, now: datetime) -> tuple[str, str] | None:
    """Why the provider refuses this deduction now, or None when its rules allow it."""
    if contract is None or contract.status != SimContractStatus.SIGNED:
        gone = "CONTRACT_NOT_EXIST" if contract is None or contract.provider == WECHATPAY else "ACQ.AGREEMENT_NOT_EXIST"
        return gone, "the contract does not exist or was ended"
    if contract.provider == WECHATPAY:
        if contract.deduct_from is None or not (contract.deduct_from <= now <= contract.deduct_until):
            return "RULE_LIMIT", "not within the days the pre-deduction notice allows"
        if not in_open_hours(now):
            return "RULE_LIMIT", "deductions are made 7:00~22:00 only"
        if request.amount_fen > contract.notice_amount_fen:
            return "RULE_LIMIT", "more than the amount announced"
        return None
    if contract.plan_at is None or not (
        contract.plan_at - timedelta(days=ALIPAY_DAYS_BEFORE) <= now < contract.plan_at + timedelta(days=1)
    ):
        return "ACQ.CYCLE_PAY_DATE_NOT_MATCH", "扣款日期不在签约时的允许范围之内"
    if request.amount_fen > contract.single_amount_fen:
        return "ACQ.CYCLE_PAY_SINGLE_AMOUNT_NOT_MATCH", "扣款金额超过签约时的单笔限额"
    return None


def deduct(provider: str, request: DeductionRequest) -> tuple[SimTrade | None, DeductionResult]:
    """A deduction under the contract: the trade it made (None when refused) and the provider's answer.

    The same out_trade_no again answers what became of that trade, as the providers do.
    """
    payments.confirmed_in_app(provider, request.out_trade_no)
    now = timezone.now()
    out_trade_no = request.out_trade_no
    with transaction.atomic():
        trade = SimTrade.objects.select_for_update().filter(provider=provider, out_trade_no=out_trade_no).first()
        if trade is not None:
            if trade.deducted_under != request.contract_id or trade.amount_fen != request.amount_fen:
                raise ProviderRefused("INVALID_REQUEST", "out_trade_no reused with another contract or amount")
            return trade, _answer(provider, trade)
        contract = (
            SimContract.objects.select_for_update().filter(provider=provider, contract_id=request.contract_id).first()
        )
        refusal = _refusal(contract, request, now)
        if refusal is None and contract is not None and contract.decline_with:
            refusal = (contract.decline_with, "declined")
        if refusal is not None:
            code, message = refusal
            gone = code in ("CONTRACT_NOT_EXIST", "ACQ.AGREEMENT_NOT_EXIST")
            state = DeductionState.CONTRACT_GONE if gone else DeductionState.DECLINED
            return None, DeductionResult(state=state, out_trade_no=out_trade_no, code=code, message=message)
        assert contract is not None
        wechat = provider == WECHATPAY
        trade = SimTrade.objects.create(
            provider=provider,
            out_trade_no=out_trade_no,
            transaction_id=payments._new_transaction_id(provider),
            amount_fen=request.amount_fen,
            description=request.description[:128],
            code_url="",
            deducted_under=contract.contract_id,
            attach=request.period_key[:128],
            status=SimTradeStatus.USER_PAYING if wechat else SimTradeStatus.PAID,
            expires_at=now + payments.CODE_TRADE_LIFETIME,
            paid_at=None if wechat else now,
            pays_at=now + timedelta(seconds=payments.CONFIRM_SECONDS) if wechat else None,
        )
        # Once per period: WeChat Pay's notice is spent, Alipay's agreed day moves one period on.
        if wechat:
            contract.deduct_from = contract.deduct_until = None
            contract.save(update_fields=["deduct_from", "deduct_until"])
        else:
            # The same day of the month in Beijing's calendar, as Alipay counts it.
            day = timezone.localtime(contract.plan_at).date() + relativedelta(months=contract.period_months)
            contract.plan_at = timezone.make_aware(datetime.combine(day, time(0)))
            contract.save(update_fields=["plan_at"])
        return trade, _answer(provider, trade)


def _answer(provider: str, trade: SimTrade) -> DeductionResult:
    if trade.status == SimTradeStatus.PAID:
        return DeductionResult(
            state=DeductionState.PAID if provider == ALIPAY else DeductionState.ACCEPTED,
            out_trade_no=trade.out_trade_no,
            transaction_id=trade.transaction_id,
            amount_fen=trade.amount_fen,
            paid_at=trade.paid_at,
        )
    return DeductionResult(state=DeductionState.ACCEPTED, out_trade_no=trade.out_trade_no)


# --- notifications, signed as the providers sign them ------------------------------------------


def _v2_time(value: datetime | None) -> str:
    return timezone.localtime(value or timezone.now()).strftime("%Y%m%d%H%M%S")


def wechatpay_v2_payment_notification(trade: SimTrade) -> bytes:
    """The APIv2 payment notification of a pay-and-sign trade (支付结果通知) or of a deduction (扣款结果通知, trade_type
    PAP, with its contract and ``trade_state``), XML signed with the APIv2 key."""
    from adapters.wechatpay import v2

    params = {
        "return_code": "SUCCESS",
        "appid": settings.WECHATPAY_APPID,
        "mch_id": settings.WECHATPAY_MCHID,
        "nonce_str": payments._nonce(32),
        "result_code": "SUCCESS",
        "openid": "oSandbox" + trade.transaction_id[-12:],
        "is_subscribe": "N",
        "trade_type": payments.trade_type(trade),
        "bank_type": "OTHERS",
        "total_fee": str(trade.amount_fen),
        "fee_type": "CNY",
        "cash_fee": str(trade.amount_fen),
        "transaction_id": trade.transaction_id,
        "out_trade_no": trade.out_trade_no,
        "time_end": _v2_time(trade.paid_at),
    }
    if trade.deducted_under:
        params.update(contract_id=trade.deducted_under, trade_state="SUCCESS")
        if trade.attach:
            params["attach"] = trade.attach
    return v2.to_xml(v2.signed(params, sandbox_secret("wechatpay_apiv2_key.txt")))


def wechatpay_contract_notification(contract: SimContract) -> bytes:
    """签约、解约结果通知: change_type ADD when signed, DELETE when ended (mode 2 by the user, 3 by the merchant)."""
    from adapters.wechatpay import v2

    ended = contract.status == SimContractStatus.TERMINATED
    params = {
        "return_code": "SUCCESS",
        "return_msg": "OK",
        "result_code": "SUCCESS",
        "mch_id": settings.WECHATPAY_MCHID,
        "contract_code": contract.contract_code,
        "plan_id": settings.WECHATPAY_PAPAY_PLAN_ID,
        "openid": "oSandbox" + contract.contract_id[-12:],
        "change_type": "DELETE" if ended else "ADD",
        "operate_time": timezone.localtime(
            (contract.terminated_at if ended else contract.signed_at) or timezone.now()
        ).strftime("%Y-%m-%d %H:%M:%S"),
        "contract_id": contract.contract_id,
        "contract_expired_time": "2099-12-31 23:59:59",
        "request_serial": str(contract.pk),
    }
    if ended:
        params["contract_termination_mode"] = "2" if contract.terminated_by == "user" else "3"
    return v2.to_xml(v2.signed(params, sandbox_secret("wechatpay_apiv2_key.txt")))


def alipay_contract_notification(contract: SimContract) -> dict[str, str]:
    """dut_user_sign when signed, dut_user_unsign when ended; RSA2 with Alipay's key."""
    from adapters.alipay import crypto
    from ipvas.credentials import load_private_key

    ended = contract.status == SimContractStatus.TERMINATED
    local = timezone.localtime
    params: dict[str, Any] = {
        "notify_type": "dut_user_unsign" if ended else "dut_user_sign",
        "notify_id": f"2026{_digits(28)}",
        "notify_time": local().strftime("%Y-%m-%d %H:%M:%S"),
        "charset": "utf-8",
        "version": "1.0",
        "app_id": settings.ALIPAY_APP_ID,
        "partner_id": settings.ALIPAY_SELLER_ID,
        "personal_product_code": "CYCLE_PAY_AUTH_P",
        "sign_scene": settings.ALIPAY_CYCLE_SIGN_SCENE,
        "external_agreement_no": contract.contract_code,
        "agreement_no": contract.contract_id,
        "alipay_user_id": "2088" + contract.contract_id[-12:],
        "external_logon_id": contract.display_account,
        "status": "UNSIGN" if ended else "NORMAL",
        "sign_time": local(contract.signed_at or timezone.now()).strftime("%Y-%m-%d %H:%M:%S"),
        "valid_time": local(contract.signed_at or timezone.now()).strftime("%Y-%m-%d %H:%M:%S"),
        "invalid_time": "2115-02-01 00:00:00",
        "single_amount": fen_to_yuan(contract.single_amount_fen),
    }
    if ended:
        params["unsign_time"] = local(contract.terminated_at or timezone.now()).strftime("%Y-%m-%d %H:%M:%S")
    key = load_private_key(sandbox_private_key_pem("alipay_private_key.pem"))
    params["sign"] = crypto.sign(key, params)
    params["sign_type"] = "RSA2"
    return params
