"""WeChat Pay and Alipay as IPVAS sees them: one protocol for both providers, QR codes and payment codes.

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


class CodeState(enum.StrEnum):
    """What a payment-code charge came to, as far as the provider said (docs/interfaces.md §10)."""

    PAID = "paid"  # WeChat SUCCESS, Alipay 10000 / TRADE_SUCCESS
    CONFIRMING = "confirming"  # the customer confirms in the app: WeChat USERPAYING, Alipay 10003 / WAIT_BUYER_PAY
    DECLINED = "declined"  # refused, nothing taken: insufficient funds, an invalid or expired code...
    UNKNOWN = "unknown"  # a system error at the provider: the charge may or may not have happened


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


@dataclass(frozen=True)
class CodePaymentRequest:
    """Charge the payment code the clerk scanned (WeChat Pay micropay, Alipay trade.pay scene bar_code)."""

    out_trade_no: str
    auth_code: str
    amount_fen: int
    description: str
    store_code: str = ""  # the business hall, as the provider's store id


@dataclass(frozen=True)
class CodePaymentResult:
    state: CodeState
    out_trade_no: str
    transaction_id: str = ""
    amount_fen: int = 0
    paid_at: datetime | None = None
    code: str = ""  # the provider's reason for a decline (NOT_ENOUGH, ACQ.BUYER_BALANCE_NOT_ENOUGH...)
    message: str = ""
    raw: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class ReverseResult:
    """The provider's answer to a reverse (WeChat reverse, Alipay cancel) of a payment-code trade.

    ``reversed``: the trade can no longer be paid, and money it took went back to the customer by the
    provider itself. ``again``: the provider asks to be called again (WeChat recall, Alipay retry_flag).
    """

    reversed: bool
    again: bool = False
    refunded: bool = False  # the provider says it gave money back (Alipay action "refund")
    message: str = ""


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


class PaymentCodeProvider(Protocol):
    """The counter's payment codes (docs/interfaces.md §10): charge, then query (``query``), then reverse."""

    def pay_code(self, request: CodePaymentRequest) -> CodePaymentResult:
        """Charge a payment code; ``ProviderUnavailable`` when the answer never came (its outcome is unknown)."""
        ...

    def reverse(self, out_trade_no: str) -> ReverseResult:
        """Reverse a payment-code trade whose outcome is unknown: closed if unpaid, the money back if paid."""
        ...


class PaymentProvider(QrPaymentProvider, PaymentCodeProvider, Protocol):
    """What WeChat Pay and Alipay are to IPVAS: QR codes and payment codes, refunds and statements."""
