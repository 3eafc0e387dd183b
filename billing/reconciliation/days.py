"""The day of a statement: a local calendar day (settings.TIME_ZONE, Asia/Shanghai), as the providers count it."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """[start, end) of ``day`` in local time, as aware datetimes."""
    zone = ZoneInfo(settings.TIME_ZONE)
    start = datetime.combine(day, time.min, tzinfo=zone)
    return start, datetime.combine(day + timedelta(days=1), time.min, tzinfo=zone)
