"""Billing's models: payments and notifications, the ledger and refunds, SMS confirmations, the work queue."""

from billing.models.contracts import ContractEnd, ContractStatus, ProviderContract
from billing.models.ledger import LedgerEntry, LedgerKind, Refund, RefundStatus
from billing.models.payments import Payment, PaymentCodeUse, PaymentNotification, PaymentStatus, Provider
from billing.models.reconciliation import (
    Discrepancy,
    DiscrepancyEvent,
    ReconciliationItem,
    ReconciliationRun,
    Statement,
    StatementLine,
)
from billing.models.sms import SmsConfirmation, SmsConfirmationStatus, SmsInbound
from billing.models.work import ADMIN_REFUND_PREFIX, WorkItem, WorkItemKind

__all__ = [
    "ADMIN_REFUND_PREFIX",
    "ContractEnd",
    "ContractStatus",
    "Discrepancy",
    "DiscrepancyEvent",
    "LedgerEntry",
    "LedgerKind",
    "Payment",
    "PaymentCodeUse",
    "PaymentNotification",
    "PaymentStatus",
    "Provider",
    "ProviderContract",
    "ReconciliationItem",
    "ReconciliationRun",
    "Refund",
    "RefundStatus",
    "SmsConfirmation",
    "SmsConfirmationStatus",
    "SmsInbound",
    "Statement",
    "StatementLine",
    "WorkItem",
    "WorkItemKind",
]
