"""The subscription figures of the sales dashboard (docs/interfaces.md §8): renewals, lapses, cancels, and
the subscriptions active at the end of each day, aggregated in SQL and returned as plain rows.

Days are *local* days (``settings.TIME_ZONE``), as in backoffice.reports.queries. Renewal orders are
counted on the day they were placed, their money on the day it moved in the ledger. A subscription's
status only moves forward (active → cancelled or lapsed → ended), so how many were in each status at
the end of a day is a running sum of what started, stopped renewing and ended, from the start of time:
each selector runs a fixed number of grouped queries, whatever the number of subscriptions.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from django.db.models import BooleanField, Case, Count, Q, QuerySet, Sum, When
from django.db.models.functions import Coalesce, TruncDate
from django.utils.translation import gettext as _

from backoffice.reports.queries import days_between, local_bounds, local_zone, percent
from billing.models import LedgerEntry, LedgerKind
from orders.constants import TERMINAL_STATUSES, CancelChannel, Channel, FailureCode, OrderStatus
from orders.models import Order, Subscription, SubscriptionEvent

LAPSE = "lapse"  # the SubscriptionEvent action of active → lapsed (lifecycle.renewals._lapse)


@dataclass(frozen=True)
class RenewalRow:
    """The renewal orders placed on one day (or in the whole range), and the money they moved."""

    key: str
    label: str
    orders: int = 0
    completed: int = 0
    ended: int = 0  # reached a terminal status, completed or not
    gross_fen: int = 0
    refunds_fen: int = 0  # signed: zero or negative

    @property
    def not_completed(self) -> int:
        return self.ended - self.completed

    @property
    def under_way(self) -> int:
        return self.orders - self.ended

    @property
    def net_fen(self) -> int:
        return self.gross_fen + self.refunds_fen

    @property
    def success_rate(self) -> str:
        """Completed of those that ended; '-' when none ended."""
        return percent(self.completed, self.ended)


@dataclass(frozen=True)
class RenewalFailure:
    failure_code: str
    reason: str
    orders: int


@dataclass(frozen=True)
class Renewals:
    days: list[RenewalRow]
    failures: list[RenewalFailure]  # renewal orders that ended without completing, by failure code

    @property
    def total(self) -> RenewalRow:
        return RenewalRow(
            key="",
            label=_("Total"),
            **{f: sum(getattr(d, f) for d in self.days) for f in _RENEWAL_FIGURES},  # type: ignore[arg-type]
        )


_RENEWAL_FIGURES = ("orders", "completed", "ended", "gross_fen", "refunds_fen")


@dataclass(frozen=True)
class SubscriptionDay:
    """What happened to subscriptions on one local day, and how many were in each state at its end."""

    key: str
    label: str
    started: int
    cancelled: int
    lapsed: int
    ended: int
    active: int  # renewing at the end of the day
    not_renewing: int  # cancelled or lapsed at the end of the day, the paid period still running


@dataclass(frozen=True)
class RenewalStop:
    """Subscriptions whose renewal was turned off in the range: cancelled on one channel, or lapsed."""

    key: str  # the cancel channel, or "lapse"
    label: str
    subscriptions: int
    short_label: str  # for the chart: the channel, or "Lapsed"


@dataclass(frozen=True)
class SubscriptionDays:
    days: list[SubscriptionDay]
    active_at_start: int  # at local midnight before the first day
    not_renewing_at_start: int
    stops: list[RenewalStop]  # in the range: cancels by channel (every channel), then lapses


# --- renewals ----------------------------------------------------------------------------------


def _renewal_orders_in(start: date, end: date) -> QuerySet[Order]:
    lo, hi = local_bounds(start, end)
    return Order.objects.filter(channel=Channel.RENEWAL, created_at__gte=lo, created_at__lt=hi).order_by()


def _renewal_ledger_in(start: date, end: date) -> QuerySet[LedgerEntry]:
    lo, hi = local_bounds(start, end)
    return LedgerEntry.objects.filter(order__channel=Channel.RENEWAL, created_at__gte=lo, created_at__lt=hi).order_by()


def renewals(start: date, end: date) -> Renewals:
    """Renewal orders placed on each local day of the range (days without any included), their money
    from the ledger, and why those that ended without completing did not: two queries."""
    zone = local_zone()
    orders = (
        _renewal_orders_in(start, end)
        .annotate(
            day=TruncDate("created_at", tzinfo=zone),
            # Refunded after it completed (an admin gave the period back; its entitlement stays, revoked): it
            # renewed, it did not fail.
            renewed=Case(
                When(
                    Q(status=OrderStatus.COMPLETED) | Q(status=OrderStatus.REFUNDED, entitlement__isnull=False),
                    then=True,
                ),
                default=False,
                output_field=BooleanField(),
            ),
        )
        .values("day", "status", "failure_code", "renewed")
        .annotate(n=Count("pk"))
    )
    ledger = (
        _renewal_ledger_in(start, end)
        .annotate(day=TruncDate("created_at", tzinfo=zone))
        .values("day")
        .annotate(
            gross_fen=Coalesce(Sum("amount_fen", filter=Q(kind=LedgerKind.PAYMENT)), 0),
            refunds_fen=Coalesce(Sum("amount_fen", filter=~Q(kind=LedgerKind.PAYMENT)), 0),
        )
    )
    figures: dict[date, dict[str, int]] = {}
    failures: dict[str, int] = {}
    for row in orders:
        slot = figures.setdefault(row["day"], dict.fromkeys(_RENEWAL_FIGURES, 0))
        slot["orders"] += row["n"]
        if row["status"] in TERMINAL_STATUSES:
            slot["ended"] += row["n"]
            if row["renewed"]:
                slot["completed"] += row["n"]
            else:
                failures[row["failure_code"]] = failures.get(row["failure_code"], 0) + row["n"]
    for row in ledger:
        slot = figures.setdefault(row["day"], dict.fromkeys(_RENEWAL_FIGURES, 0))
        slot["gross_fen"] += row["gross_fen"]
        slot["refunds_fen"] += row["refunds_fen"]
    days = [
        RenewalRow(key=day.isoformat(), label=day.isoformat(), **figures.get(day, {}))
        for day in days_between(start, end)
    ]
    return Renewals(
        days=days,
        failures=[
            RenewalFailure(failure_code=code, reason=_failure_reason(code), orders=n)
            for code, n in sorted(failures.items(), key=lambda item: (-item[1], item[0]))
        ],
    )


def _failure_reason(code: str) -> str:
    if code in FailureCode.values:
        return str(FailureCode(code).label)
    return _("No failure code recorded")


# --- subscriptions over time ---------------------------------------------------------------------


def _per_day(rows: Iterable[dict[str, object]], start: date) -> tuple[int, dict[date, int]]:
    """(how many before ``start``, how many on each day from ``start``) of rows grouped by local day."""
    before = 0
    by_day: dict[date, int] = {}
    for row in rows:
        day, n = row["day"], int(row["n"])  # type: ignore[call-overload]
        if day < start:  # type: ignore[operator]
            before += n
        else:
            by_day[day] = by_day.get(day, 0) + n  # type: ignore[index]
    return before, by_day


def subscriptions_by_day(start: date, end: date) -> SubscriptionDays:
    """Subscriptions started, cancelled, lapsed and ended on each local day, how many were active
    (renewing) and how many cancelled or lapsed but still paid at the end of it, and the cancels of the
    range by channel.

    Active at the end of a day: started (``created_at``) before local midnight, and neither cancelled
    (``cancelled_at``) nor lapsed (its ``lapse`` event) before it. Cancelled or lapsed before midnight
    and not ended (``ended_at``) before it: still paid, not renewing. Four grouped queries, each
    returning at most a row per local day (and cancel channel) on which something happened, up to the
    end of the range.
    """
    zone = local_zone()
    _lo, hi = local_bounds(start, end)
    subscriptions = Subscription.objects.order_by()
    started = (
        subscriptions.filter(created_at__lt=hi).values(day=TruncDate("created_at", tzinfo=zone)).annotate(n=Count("pk"))
    )
    cancelled = (
        subscriptions.filter(cancelled_at__lt=hi)
        .values("cancel_channel", day=TruncDate("cancelled_at", tzinfo=zone))
        .annotate(n=Count("pk"))
    )
    lapsed = (
        SubscriptionEvent.objects.filter(action=LAPSE, at__lt=hi)
        .order_by()
        .values(day=TruncDate("at", tzinfo=zone))
        .annotate(n=Count("pk"))
    )
    ended = subscriptions.filter(ended_at__lt=hi).values(day=TruncDate("ended_at", tzinfo=zone)).annotate(n=Count("pk"))
    cancelled_rows = list(cancelled)
    started_before, started_on = _per_day(started, start)
    cancelled_before, cancelled_on = _per_day(cancelled_rows, start)
    lapsed_before, lapsed_on = _per_day(lapsed, start)
    ended_before, ended_on = _per_day(ended, start)

    active = started_before - cancelled_before - lapsed_before
    not_renewing = cancelled_before + lapsed_before - ended_before
    opening = (active, not_renewing)
    days = []
    for day in days_between(start, end):
        s, c, x, e = (counts.get(day, 0) for counts in (started_on, cancelled_on, lapsed_on, ended_on))
        active += s - c - x
        not_renewing += c + x - e
        days.append(
            SubscriptionDay(
                key=day.isoformat(),
                label=day.isoformat(),
                started=s,
                cancelled=c,
                lapsed=x,
                ended=e,
                active=active,
                not_renewing=not_renewing,
            )
        )
    by_channel: dict[str, int] = {}
    for row in cancelled_rows:
        if row["day"] >= start:  # type: ignore[operator]
            channel = str(row["cancel_channel"])
            by_channel[channel] = by_channel.get(channel, 0) + int(row["n"])  # type: ignore[call-overload]
    stops = [
        RenewalStop(
            key=c.value,
            label=_("Cancelled: %(channel)s") % {"channel": c.label},
            subscriptions=by_channel.get(c.value, 0),
            short_label=str(c.label),
        )
        for c in CancelChannel
    ]
    stops.append(
        RenewalStop(
            key=LAPSE,
            label=_("Lapsed: renewal stopped without a cancel (not charged, no reminder, or the paid period refunded)"),
            subscriptions=sum(lapsed_on.values()),
            short_label=_("Lapsed"),
        )
    )
    return SubscriptionDays(days=days, active_at_start=opening[0], not_renewing_at_start=opening[1], stops=stops)
