"""The payment-provider simulator, in process: the sandbox's WeChat Pay or Alipay behind the protocol.

The fault modes of sandbox/faults.py apply under the provider's name
("wechatpay", "alipay"): ``down`` and ``flaky`` make calls fail as an
unreachable provider would.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from billing.providers.types import (
    CloseResult,
    ProviderUnavailable,
    QrOrderRequest,
    RefundRequest,
    RefundResult,
    Trade,
)

T = TypeVar("T")


class SimulatedProvider:
    def __init__(self, name: str) -> None:
        self.name = name

    def _call(self, work: Callable[[], T]) -> T:
        from sandbox import faults

        try:
            faults.gate(self.name)
        except faults.SimulatedOutage as exc:
            raise ProviderUnavailable(str(exc)) from exc
        return work()

    def create(self, request: QrOrderRequest) -> str:
        from sandbox import payments

        return self._call(lambda: payments.create_trade(self.name, request))

    def query(self, out_trade_no: str) -> Trade:
        from sandbox import payments

        return self._call(lambda: payments.query_trade(self.name, out_trade_no))

    def close(self, out_trade_no: str) -> CloseResult:
        from sandbox import payments

        return self._call(lambda: payments.close_trade(self.name, out_trade_no))

    def refund(self, request: RefundRequest) -> RefundResult:
        from sandbox import payments

        return self._call(lambda: payments.refund(self.name, request))

    def query_refund(self, out_refund_no: str, *, out_trade_no: str) -> RefundResult:
        from sandbox import payments

        return self._call(lambda: payments.query_refund(self.name, out_refund_no))
