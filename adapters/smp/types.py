"""The SMP (业管平台) as IPVAS sees it: requests, results, and the adapter protocol.

docs/protocols.md describes the JSON-over-HTTP protocol the real client
speaks; the simulator (sandbox.simulators.smp) answers the same questions
from the sandbox's tables. Reason codes are the SMP's words for why it
refused; the lifecycle turns them into the order's failure codes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol

from django.db import models
from django.utils.translation import gettext_lazy as _

from adapters.statements import StatementFile


class SmpCharge(models.TextChoices):
    """How the SMP is told to charge when it subscribes (docs/interfaces.md §6)."""

    PHONE_BILL = "phone_bill", _("priced package, phone bill")
    PREPAID = "prepaid", _("zero-price package")
    MARKETING_ACCOUNT = "marketing_account", _("marketing account")


class SmpUnavailable(Exception):
    """The SMP did not answer (refused, timed out, 5xx, garbled): try again later."""


@dataclass(frozen=True)
class PrecheckRequest:
    product_code: str  # the SMP's product code
    kind: str
    tv_account: str = ""
    phone: str = ""
    content_id: str = ""


@dataclass(frozen=True)
class PrecheckResult:
    ok: bool
    tv_account: str = ""
    phone: str = ""
    reason: str = ""  # account_not_found, account_suspended, account_in_arrears, already_subscribed, ...
    message: str = ""  # the SMP's own words, kept for the audit trail


@dataclass(frozen=True)
class SubscribeRequest:
    order_no: str
    tv_account: str
    product_code: str
    package_code: str
    charge: str  # SmpCharge
    amount_fen: int
    kind: str
    period_months: int | None = None
    view_hours: int | None = None
    content_id: str = ""
    # What the SMP de-duplicates on; the order number unless the caller names another key
    # (a subscription's renewals: one key per period, whichever renewal order pays it).
    idempotency_key: str = ""


@dataclass(frozen=True)
class SubscribeResult:
    ok: bool
    subscription_id: str = ""
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    reason: str = ""  # e.g. "insufficient_balance", "product_not_available"
    message: str = ""


@dataclass(frozen=True)
class AuthorizeResult:
    authorized: bool
    ends_at: datetime | None = None


@dataclass(frozen=True)
class UnsubscribeResult:
    ok: bool
    reversed_fen: int = 0  # phone-bill money the SMP gave back


class SmpAdapter(Protocol):
    def precheck(self, request: PrecheckRequest) -> PrecheckResult: ...

    def subscribe(self, request: SubscribeRequest) -> SubscribeResult: ...

    def authorize(self, *, tv_account: str, product_code: str, content_id: str = "") -> AuthorizeResult: ...

    def unsubscribe(self, *, order_no: str, reverse: bool = True) -> UnsubscribeResult:
        """End the order's subscription; ``reverse`` gives back its phone-bill charge (a refund),
        without it the subscription just ends (a continuous subscription at the end of its paid period)."""
        ...

    def reschedule(self, *, order_no: str, starts_at: datetime, ends_at: datetime) -> bool:
        """Move the order's subscription to a new period (a refunded period earlier in the account's
        stack moved it); idempotent. True when the SMP has the period as asked."""
        ...

    def download_statement(self, day: date) -> StatementFile:
        """The provisioning list of ``day``; raises ``adapters.statements.StatementUnavailable``."""
        ...
