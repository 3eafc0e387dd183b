"""The payment-provider simulators, in process: the sandbox's WeChat Pay and Alipay behind the protocol
(``WECHATPAY_ADAPTER``, ``ALIPAY_ADAPTER``).

The fault modes of sandbox/faults.py apply under the provider's name
("wechatpay", "alipay"): ``down`` and ``flaky`` make calls fail as an
unreachable provider would; ``slow`` does the work, then answers after the
adapter's timeout (WECHATPAY_TIMEOUT_SECONDS, ALIPAY_TIMEOUT_SECONDS) or not
at all, as a real provider whose answer is lost.

Deduction contracts (pay and sign, the pre-deduction notice, deductions, unsign) follow the providers' rules
in sandbox.contracts.

Payment codes answer by their last four digits (sandbox.payments.CODE_OUTCOMES); a code ending 0003 is
taken by the provider but its answer never comes (``ProviderUnavailable``, as a timeout).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import TypeVar

from django.conf import settings

from adapters.providers.types import (
    CloseResult,
    CodePaymentRequest,
    CodePaymentResult,
    CodeState,
    ContractOrderRequest,
    DeductionNoticeRequest,
    DeductionRequest,
    DeductionResult,
    ProviderRefused,
    ProviderUnavailable,
    QrOrderRequest,
    RefundRequest,
    RefundResult,
    ReverseResult,
    Trade,
    TradeState,
    UnsignRequest,
    UnsignResult,
    settled_by_its_state,
)
from adapters.statements import StatementFile
from sandbox import contracts, faults, payments, statements
from sandbox.models import SimTrade

T = TypeVar("T")


class SimulatedProvider:
    def __init__(self, name: str) -> None:
        self.name = name

    def _call(self, work: Callable[[], T]) -> T:
        try:
            delay = faults.gate(self.name)
        except faults.SimulatedOutage as exc:
            raise ProviderUnavailable(str(exc)) from exc
        result = work()
        faults.answer_late(delay, self.timeout(), ProviderUnavailable, self.name)
        return result

    def timeout(self) -> float:
        return settings.WECHATPAY_TIMEOUT_SECONDS if self.name == "wechatpay" else settings.ALIPAY_TIMEOUT_SECONDS

    def create(self, request: QrOrderRequest) -> str:
        return self._call(lambda: payments.create_trade(self.name, request))

    def query(self, out_trade_no: str) -> Trade:
        return self._call(lambda: payments.query_trade(self.name, out_trade_no))

    def close(self, out_trade_no: str) -> CloseResult:
        return self._call(lambda: payments.close_trade(self.name, out_trade_no))

    def refund(self, request: RefundRequest) -> RefundResult:
        return self._call(lambda: payments.refund(self.name, request))

    def query_refund(self, out_refund_no: str, *, out_trade_no: str) -> RefundResult:
        return self._call(lambda: payments.query_refund(self.name, out_refund_no))

    def pay_code(self, request: CodePaymentRequest) -> CodePaymentResult:
        return self._call(lambda: self._charge(request))

    def _charge(self, request: CodePaymentRequest) -> CodePaymentResult:
        try:
            trade, outcome = payments.charge_code(self.name, request)
        except ProviderRefused as exc:  # the number reused with another code, or a reversed trade
            return CodePaymentResult(
                state=CodeState.DECLINED, out_trade_no=request.out_trade_no, code=exc.code, message=exc.message
            )
        if outcome == payments.NO_ANSWER:
            raise ProviderUnavailable(f"{self.name} payment code: the answer never came (timed out)")
        if outcome == payments.PAID and trade is not None:
            return CodePaymentResult(
                state=CodeState.PAID,
                out_trade_no=request.out_trade_no,
                transaction_id=trade.transaction_id,
                amount_fen=trade.amount_fen,
                paid_at=trade.paid_at,
            )
        if outcome == payments.CONFIRMING:
            return CodePaymentResult(state=CodeState.CONFIRMING, out_trade_no=request.out_trade_no)
        code, message = payments.REFUSALS[(self.name, outcome)]
        return CodePaymentResult(
            state=CodeState.DECLINED, out_trade_no=request.out_trade_no, code=code, message=message
        )

    def reverse(self, out_trade_no: str) -> ReverseResult:
        return self._call(lambda: payments.reverse_trade(self.name, out_trade_no)[1])

    def create_with_contract(self, request: ContractOrderRequest) -> str:
        return self._call(lambda: contracts.create_trade_with_contract(self.name, request))

    def announce_deduction(self, request: DeductionNoticeRequest) -> bool:
        return self._call(lambda: contracts.announce(self.name, request))

    def deduct(self, request: DeductionRequest) -> DeductionResult:
        return self._call(lambda: contracts.deduct(self.name, request)[1])

    def query_deduction(self, out_trade_no: str) -> Trade:
        return self.query(out_trade_no)

    def close_deduction(self, out_trade_no: str) -> CloseResult:
        return self.close(out_trade_no)

    def unsign(self, request: UnsignRequest) -> UnsignResult:
        return self._call(lambda: contracts.unsign(self.name, request))

    def download_statement(self, day: date) -> StatementFile:
        return StatementFile(statements.statement_file(self.name, day), statements.file_name(self.name, day))


class SimulatedWechatPay(SimulatedProvider):
    def __init__(self) -> None:
        super().__init__("wechatpay")

    def query_deduction(self, out_trade_no: str) -> Trade:
        """As paporderquery: 申请扣款's orders only; any other trade is not found there."""
        trade = self.query(out_trade_no)  # as any call: the simulated faults first
        deductions = SimTrade.objects.filter(provider=self.name, out_trade_no=out_trade_no).exclude(deducted_under="")
        return trade if deductions.exists() else Trade(state=TradeState.NOT_FOUND, out_trade_no=out_trade_no)

    def close_deduction(self, out_trade_no: str) -> CloseResult:
        """As WeChat Pay: no close for 申请扣款's orders; the query says whether one is final."""
        settled = settled_by_its_state(self.query_deduction(out_trade_no))
        if settled is None:
            raise ProviderUnavailable(f"WeChat Pay deduction {out_trade_no} still on its way")
        return settled


class SimulatedAlipay(SimulatedProvider):
    def __init__(self) -> None:
        super().__init__("alipay")
