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
    # Paid, and money of it has gone back since (WeChat Pay's REFUND: refunded in part or whole).
    refunded: bool = False
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
    # Not paid because the user ended the deduction contract (WeChat Pay's CONTRACT_NOT_EXIST).
    contract_gone: bool = False


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
    not_found: bool = False  # the provider has no such trade (yet: a charge may still be on its way)


# --- deduction contracts (docs/interfaces.md §8): pay and sign in one scan, deduct each period ------------


class DeductionState(enum.StrEnum):
    """What a deduction request came to, as far as the provider said."""

    PAID = "paid"  # the money was taken (Alipay answers at once)
    ACCEPTED = "accepted"  # taken in hand, the result comes later (WeChat Pay: its payment notification, or a query)
    DECLINED = "declined"  # refused, nothing taken (insufficient funds, outside the allowed days...)
    CONTRACT_GONE = "contract_gone"  # the provider has no such contract any more: the user ended it
    UNKNOWN = "unknown"  # a system error at the provider: the deduction may or may not have been taken


class ContractEvent(enum.StrEnum):
    SIGNED = "signed"
    TERMINATED = "terminated"


@dataclass(frozen=True)
class ContractOrderRequest:
    """Pay the first period and sign the deduction contract in the same scan (WeChat Pay 支付中签约, Alipay
    支付并签约 周期扣款)."""

    out_trade_no: str
    amount_fen: int
    description: str
    expires_at: datetime
    contract_code: str  # ours: WeChat Pay contract_code, Alipay external_agreement_no
    request_serial: int  # WeChat Pay's request_serial (digits, unique per signing request)
    display_account: str  # what the payment app shows as the account that renews (the TV account)
    period_months: int
    renewal_amount_fen: int  # what each later deduction takes
    first_deduction_on: date  # Alipay's execute_time: the agreed day of the first deduction


@dataclass(frozen=True)
class DeductionNoticeRequest:
    """WeChat Pay's pre-deduction notice (预扣费通知): the user is told the amount before the deduction."""

    contract_id: str
    amount_fen: int


@dataclass(frozen=True)
class DeductionRequest:
    out_trade_no: str  # the renewal order's number
    contract_id: str
    amount_fen: int
    description: str
    period_key: str  # <subscription_no>P<n>: sent as the trade's own data, shown in the provider's bill


@dataclass(frozen=True)
class DeductionResult:
    state: DeductionState
    out_trade_no: str
    transaction_id: str = ""
    amount_fen: int = 0
    paid_at: datetime | None = None
    code: str = ""  # the provider's reason for a refusal
    message: str = ""
    raw: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class UnsignRequest:
    contract_code: str
    contract_id: str = ""  # unknown when the signing notification never came: the code alone names it
    reason: str = ""


@dataclass(frozen=True)
class UnsignResult:
    ended: bool  # the contract no longer allows deductions (ended now, or there was none)
    message: str = ""


@dataclass(frozen=True)
class ContractNotice:
    """A verified contract notification (signed, or ended by the user or the merchant), in IPVAS's terms."""

    provider: str
    notification_id: str
    event: ContractEvent
    contract_code: str
    contract_id: str
    at: datetime | None = None
    by_user: bool = False  # the user ended it in the payment app
    decoded: dict[str, Any] = field(default_factory=dict, compare=False)


def settled_by_its_state(trade: Trade) -> CloseResult | None:
    """What a trade's state says where there is no close to call (WeChat Pay's 申请扣款 orders): paid, or final
    (as good as closed); None while it is still on its way."""
    if trade.state == TradeState.PAID:
        return CloseResult(closed=False, already_paid=True)
    if trade.state in (TradeState.FAILED, TradeState.CLOSED, TradeState.NOT_FOUND):
        return CloseResult(closed=True)
    return None


class ContractProvider(Protocol):
    """Deduction contracts: pay and sign in one scan, deduct each period, end the contract."""

    def create_with_contract(self, request: ContractOrderRequest) -> str:
        """Create the pay-and-sign order; return what the QR code encodes."""
        ...

    def announce_deduction(self, request: DeductionNoticeRequest) -> bool:
        """Tell the user of the coming deduction where the provider needs it (WeChat Pay's pre-deduction notice);
        False when this provider has no such notice. ``ProviderUnavailable``/``ProviderRefused`` as usual."""
        ...

    def deduct(self, request: DeductionRequest) -> DeductionResult:
        """Deduct one period under the contract; ``ProviderUnavailable`` when the answer never came."""
        ...

    def unsign(self, request: UnsignRequest) -> UnsignResult:
        """End the contract at the provider (the merchant's termination); ``ProviderUnavailable`` as usual."""
        ...

    def query_deduction(self, out_trade_no: str) -> Trade:
        """A deduction's trade, asked with the query the provider gives its deductions."""
        ...

    def close_deduction(self, out_trade_no: str) -> CloseResult:
        """End a deduction that was never answered: ``closed`` once it will not be paid, ``already_paid`` when it
        was; ``ProviderUnavailable`` while it may still be."""
        ...


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


class PaymentProvider(QrPaymentProvider, PaymentCodeProvider, ContractProvider, Protocol):
    """What WeChat Pay and Alipay are to IPVAS: QR codes and payment codes, deduction contracts, refunds and
    statements."""
