"""WeChat Pay and Alipay as IPVAS sees them: one protocol for both QR providers.

The real clients (``adapters.wechatpay.client``, ``adapters.alipay.client``)
speak each provider's protocol through its SDK; the simulators
(``sandbox.simulators.providers``) answer from the sandbox's tables. Notifications are verified by
``notify`` modules with the providers' own algorithms, whoever signed them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol

from adapters.statements import StatementFile


class ProviderUnavailable(Exception):
    """The provider did not answer or answered with a system error: try again later."""


class ProviderRefused(Exception):
    """The provider answered, and the answer is no (bad parameters, trade closed...)."""

    def __init__(self, code: str, message: str = "") -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.message = message


class NotificationRejected(Exception):
    """A notification that must not be acted on: forged, stale, replayed, or not ours."""


class TradeState(enum.StrEnum):
    NOT_PAID = "not_paid"  # created, waiting for the customer (WeChat NOTPAY/USERPAYING, Alipay WAIT_BUYER_PAY)
    PAID = "paid"  # WeChat SUCCESS / REFUND, Alipay TRADE_SUCCESS / TRADE_FINISHED
    CLOSED = "closed"  # closed unpaid (WeChat CLOSED/REVOKED, Alipay TRADE_CLOSED)
    FAILED = "failed"  # WeChat PAYERROR
    NOT_FOUND = "not_found"  # the provider has no such trade (Alipay: QR never scanned)


class RefundState(enum.StrEnum):
    SUCCEEDED = "succeeded"
    PROCESSING = "processing"
    FAILED = "failed"


@dataclass(frozen=True)
class QrOrderRequest:
    out_trade_no: str
    amount_fen: int
    description: str
    expires_at: datetime


@dataclass(frozen=True)
class Trade:
    state: TradeState
    out_trade_no: str
    transaction_id: str = ""
    amount_fen: int = 0
    paid_at: datetime | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class CloseResult:
    closed: bool  # the trade can no longer be paid
    already_paid: bool = False


@dataclass(frozen=True)
class RefundRequest:
    out_trade_no: str
    out_refund_no: str
    amount_fen: int
    total_fen: int
    reason: str


@dataclass(frozen=True)
class RefundResult:
    state: RefundState
    out_refund_no: str
    refund_id: str = ""
    message: str = ""


@dataclass(frozen=True)
class PaidNotice:
    """A verified payment notification, in IPVAS's terms."""

    provider: str
    notification_id: str
    out_trade_no: str
    paid: bool
    transaction_id: str = ""
    amount_fen: int = 0
    paid_at: datetime | None = None
    merchant_id: str = ""  # WeChat mchid / Alipay seller_id
    app_id: str = ""
    decoded: dict[str, Any] = field(default_factory=dict, compare=False)


class QrPaymentProvider(Protocol):
    name: str

    def create(self, request: QrOrderRequest) -> str:
        """Create the provider's order; return what the QR code encodes (code_url / qr_code)."""
        ...

    def query(self, out_trade_no: str) -> Trade: ...

    def close(self, out_trade_no: str) -> CloseResult: ...

    def refund(self, request: RefundRequest) -> RefundResult: ...

    def query_refund(self, out_refund_no: str, *, out_trade_no: str) -> RefundResult: ...

    def download_statement(self, day: date) -> StatementFile:
        """The provider's bill of ``day``; raises ``adapters.statements.StatementUnavailable``."""
        ...
