"""Getting a day's statement: each source's adapter downloads its own (``download_statement``).

The real clients download from WeChat Pay, Alipay and the SMP; the
simulators make the sandbox's statements. No database transaction is open here.
"""

from __future__ import annotations

from datetime import date

from adapters.providers import get_provider
from adapters.smp import get_smp
from adapters.statements import StatementFile
from billing.models.reconciliation import StatementSource


def fetch_statement(source: str, day: date) -> StatementFile:
    """Raises ``adapters.statements.StatementUnavailable`` when it cannot be had now."""
    if source in (StatementSource.WECHATPAY, StatementSource.ALIPAY):
        return get_provider(source).download_statement(day)
    if source == StatementSource.SMP:
        return get_smp().download_statement(day)
    raise ValueError(f"unknown statement source {source!r}")
