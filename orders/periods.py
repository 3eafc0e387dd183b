"""Calendar arithmetic for entitlement periods, in the operator's time zone."""

from __future__ import annotations

from datetime import datetime, timedelta

from dateutil.relativedelta import relativedelta
from django.utils import timezone


def add_months(start: datetime, months: int) -> datetime:
    """``start`` plus calendar months in local time; 31 Jan + 1 month is the last day of February."""
    local = timezone.localtime(start)
    return timezone.localtime(local + relativedelta(months=months))


def period_end(*, start: datetime, period_months: int | None, view_hours: int | None) -> datetime:
    if period_months:
        return add_months(start, period_months)
    if view_hours:
        return start + timedelta(hours=view_hours)
    raise ValueError("a period needs months or viewing hours")
