"""The payment-provider simulators, in process: the sandbox's WeChat Pay and Alipay behind the protocol
(``WECHATPAY_ADAPTER``, ``ALIPAY_ADAPTER``).

The fault modes of sandbox/faults.py apply under the provider's name
("wechatpay", "alipay"): ``down`` and ``flaky`` make calls fail as an
unreachable provider would.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import TypeVar

from adapters.providers.types import (
    CloseResult,
    ProviderUnavailable,
    QrOrderRequest,
    RefundRequest,
    RefundResult,
    Trade,
)
from adapters.statements import StatementFile
from sandbox import faults, payments, statements

T = TypeVar("T")


class SimulatedProvider:
    def __init__(self, name: str) -> None:
        self.name = name

    def _call(self, work: Callable[[], T]) -> T:
        try:
            faults.gate(self.name)
        except faults.SimulatedOutage as exc:
            raise ProviderUnavailable(str(exc)) from exc
        return work()

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

    def download_statement(self, day: date) -> StatementFile:
        return StatementFile(statements.statement_file(self.name, day), statements.file_name(self.name, day))


class SimulatedWechatPay(SimulatedProvider):
    def __init__(self) -> None:
        super().__init__("wechatpay")


class SimulatedAlipay(SimulatedProvider):
    def __init__(self) -> None:
        super().__init__("alipay")
