"""The figures of the sales dashboard, aggregated in SQL and returned as plain rows.

Money comes from the ledger only (``LedgerEntry``: gross = payments, refunds =
every other kind, signed, so ``net = gross + refunds``), order counts from the
orders. Both are counted on the *local* day (``settings.TIME_ZONE``) on which
the row was written: a refund on Wednesday of a sale on Monday lowers
Wednesday's net. Every selector runs a fixed number of queries, whatever the
number of orders.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Case, Count, IntegerField, Max, OuterRef, Q, QuerySet, Subquery, Sum, Value, When
from django.db.models.functions import Coalesce, TruncDate
from django.utils.translation import gettext as _

from billing.models import LedgerEntry, LedgerKind
from channels_crm.models import Store
from orders.constants import Channel, FailureCode, OrderStatus, PaymentMethod
from orders.models import Order, OrderEvent


@dataclass(frozen=True)
class SalesRow:
    """One line of a sales table: orders placed and money moved for one key (a day, a channel, ...)."""

    key: str
    label: str
    orders: int = 0
    completed: int = 0
    gross_fen: int = 0
    refunds_fen: int = 0  # signed: zero or negative

    @property
    def net_fen(self) -> int:
        return self.gross_fen + self.refunds_fen


@dataclass(frozen=True)
class FunnelStage:
    key: str
    label: str
    orders: int
    of_created: str  # "83.3%"
    of_previous: str


@dataclass(frozen=True)
class FunnelLoss:
    """Orders that reached ``stage`` but not the next one, by the failure code they ended with."""

    stage: str
    stage_label: str
    next_label: str
    failure_code: str  # "" while the order is still under way
    reason: str
    orders: int


@dataclass(frozen=True)
class Funnel:
    stages: list[FunnelStage]
    losses: list[FunnelLoss]


@dataclass(frozen=True)
class ClerkCash:
    staff_id: str
    name: str
    sales: int
    taken_fen: int
    paid_back_fen: int  # signed: zero or negative

    @property
    def net_fen(self) -> int:
        return self.taken_fen + self.paid_back_fen


@dataclass(frozen=True)
class StoreCash:
    store_code: str
    store_name: str
    clerks: list[ClerkCash]

    @property
    def sales(self) -> int:
        return sum(c.sales for c in self.clerks)

    @property
    def taken_fen(self) -> int:
        return sum(c.taken_fen for c in self.clerks)

    @property
    def paid_back_fen(self) -> int:
        return sum(c.paid_back_fen for c in self.clerks)

    @property
    def net_fen(self) -> int:
        return self.taken_fen + self.paid_back_fen


# --- days -----------------------------------------------------------------------


def local_zone() -> ZoneInfo:
    return ZoneInfo(settings.TIME_ZONE)


def local_bounds(start: date, end: date) -> tuple[datetime, datetime]:
    """The instants from local midnight of ``start`` to local midnight after ``end`` (``end`` included)."""
    zone = local_zone()
    return (
        datetime.combine(start, time.min, tzinfo=zone),
        datetime.combine(end + timedelta(days=1), time.min, tzinfo=zone),
    )


def days_between(start: date, end: date) -> list[date]:
    return [start + timedelta(days=n) for n in range((end - start).days + 1)]


def _orders_in(start: date, end: date) -> QuerySet[Order]:
    lo, hi = local_bounds(start, end)
    return Order.objects.filter(created_at__gte=lo, created_at__lt=hi).order_by()


def _ledger_in(start: date, end: date) -> QuerySet[LedgerEntry]:
    lo, hi = local_bounds(start, end)
    return LedgerEntry.objects.filter(created_at__gte=lo, created_at__lt=hi).order_by()


_ORDER_COUNTS = {
    "orders": Count("pk"),
    "completed": Count("pk", filter=Q(status=OrderStatus.COMPLETED)),
}
_LEDGER_SUMS = {
    "gross_fen": Coalesce(Sum("amount_fen", filter=Q(kind=LedgerKind.PAYMENT)), 0),
    "refunds_fen": Coalesce(Sum("amount_fen", filter=~Q(kind=LedgerKind.PAYMENT)), 0),
}
_FIGURES = ("orders", "completed", "gross_fen", "refunds_fen")


def _merge(
    order_rows: Iterable[dict[str, object]],
    order_key: Sequence[str],
    ledger_rows: Iterable[dict[str, object]],
    ledger_key: Sequence[str],
) -> dict[tuple[object, ...], dict[str, object]]:
    """Join the order counts and the ledger sums on their key, zero where one side has no row."""
    merged: dict[tuple[object, ...], dict[str, object]] = {}
    for rows, fields in ((order_rows, order_key), (ledger_rows, ledger_key)):
        for row in rows:
            key = tuple(row[f] for f in fields)
            slot = merged.setdefault(key, dict.fromkeys(_FIGURES, 0))
            slot.update({f: row[f] for f in _FIGURES if f in row})
    return merged


def _row(key: str, label: str, figures: dict[str, object] | None) -> SalesRow:
    figures = figures or {}
    return SalesRow(key=key, label=label, **{f: int(figures.get(f) or 0) for f in _FIGURES})  # type: ignore[call-overload]


def total_row(rows: Iterable[SalesRow], label: str) -> SalesRow:
    rows = list(rows)
    return SalesRow(
        key="",
        label=label,
        **{f: sum(getattr(r, f) for r in rows) for f in _FIGURES},  # type: ignore[arg-type]
    )


# --- revenue and order counts -------------------------------------------------------


def revenue_by_day(start: date, end: date) -> list[SalesRow]:
    """Every local day from ``start`` to ``end``, days without sales included (the charts need them)."""
    zone = local_zone()
    orders = (
        _orders_in(start, end)
        .annotate(day=TruncDate("created_at", tzinfo=zone))
        .values("day")
        .annotate(**_ORDER_COUNTS)
    )
    ledger = (
        _ledger_in(start, end).annotate(day=TruncDate("created_at", tzinfo=zone)).values("day").annotate(**_LEDGER_SUMS)
    )
    merged = _merge(orders, ["day"], ledger, ["day"])
    return [_row(day.isoformat(), day.isoformat(), merged.get((day,))) for day in days_between(start, end)]


# Each breakdown of the sales: its key among the orders' fields, and among the ledger's.
BREAKDOWNS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "channel": (("channel",), ("order__channel",)),
    "product": (("product__code", "product__name"), ("order__product__code", "order__product__name")),
    "method": (("payment_method",), ("method",)),  # the ledger's method is the entry's, not the order's
    "store": (("store_code",), ("order__store_code",)),
}


def _fold(
    rows: Iterable[dict[str, object]], fields: Sequence[str], into: dict[tuple[object, ...], dict[str, int]]
) -> None:
    """Add up the figures of finer rows under the key ``fields`` of each."""
    for row in rows:
        slot = into.setdefault(tuple(row[f] for f in fields), dict.fromkeys(_FIGURES, 0))
        for f in _FIGURES:
            if f in row:
                slot[f] += int(row[f] or 0)  # type: ignore[call-overload]


def sales_breakdown(start: date, end: date, breakdowns: Sequence[str] = tuple(BREAKDOWNS)) -> dict[str, list[SalesRow]]:
    """The sales per channel, product, payment method and store (those of ``breakdowns``): two queries, however
    many breakdowns.

    The orders are counted, and the ledger (joined to its orders when a breakdown needs them) summed, once
    each, grouped by the keys of every breakdown asked together (a few hundred rows: the combinations that
    sold); each breakdown adds those rows up along its own key.
    """
    order_fields = [f for b in breakdowns for f in BREAKDOWNS[b][0]]
    ledger_fields = [f for b in breakdowns for f in BREAKDOWNS[b][1]]
    orders, ledger = _orders_in(start, end), _ledger_in(start, end)
    if list(breakdowns) == ["store"]:  # the stores alone: the TV's orders are not read
        orders, ledger = orders.exclude(store_code=""), ledger.exclude(order__store_code="")
    order_rows = list(orders.values(*order_fields).annotate(**_ORDER_COUNTS))
    ledger_rows = list(ledger.values(*ledger_fields).annotate(**_LEDGER_SUMS))
    merged: dict[str, dict[tuple[object, ...], dict[str, int]]] = {}
    for b in breakdowns:
        order_key, ledger_key = BREAKDOWNS[b]
        merged[b] = {}
        if b == "store":  # business halls only: the TV has no store
            _fold((r for r in order_rows if r["store_code"] != ""), order_key, merged[b])
            _fold((r for r in ledger_rows if r["order__store_code"] != ""), ledger_key, merged[b])
        else:
            _fold(order_rows, order_key, merged[b])
            _fold(ledger_rows, ledger_key, merged[b])
    out: dict[str, list[SalesRow]] = {}
    if "channel" in merged:
        out["channel"] = [_row(c.value, str(c.label), merged["channel"].get((c.value,))) for c in Channel]
    if "product" in merged:
        out["product"] = sorted(
            (_row(str(code), str(name), figures) for (code, name), figures in merged["product"].items()),
            key=lambda r: (-r.net_fen, -r.orders, r.key),
        )
    if "method" in merged:
        out["method"] = [_row(m.value, str(m.label), merged["method"].get((m.value,))) for m in PaymentMethod]
        if ("",) in merged["method"]:
            out["method"].append(_row("", _("No method chosen"), merged["method"][("",)]))
    if "store" in merged:
        codes = sorted(str(code) for (code,) in merged["store"])
        names = _store_names(codes)
        out["store"] = [_row(code, names.get(code, ""), merged["store"][(code,)]) for code in codes]
    return out


def revenue_by_channel(start: date, end: date) -> list[SalesRow]:
    return sales_breakdown(start, end, ["channel"])["channel"]


def revenue_by_product(start: date, end: date) -> list[SalesRow]:
    """Products with orders or money in the range, the best-selling (by net) first."""
    return sales_breakdown(start, end, ["product"])["product"]


def revenue_by_method(start: date, end: date) -> list[SalesRow]:
    """Every payment method, then the orders that never chose one (counted, never paid)."""
    return sales_breakdown(start, end, ["method"])["method"]


def revenue_by_store(start: date, end: date) -> list[SalesRow]:
    """Business halls with orders or money in the range (CRM sales; the TV has no store), by store code."""
    return sales_breakdown(start, end, ["store"])["store"]


def _store_names(codes: Sequence[str]) -> dict[str, str]:
    if not codes:
        return {}
    return dict(Store.objects.filter(code__in=codes).values_list("code", "name"))


# --- the EPG conversion funnel -----------------------------------------------------

STAGE_CREATED = "created"
STAGE_PRECHECK_PASSED = "precheck_passed"
STAGE_PAYMENT_STARTED = "payment_started"
STAGE_COMPLETED = "completed"
STAGES = (STAGE_CREATED, STAGE_PRECHECK_PASSED, STAGE_PAYMENT_STARTED, STAGE_COMPLETED)


def stage_label(stage: str) -> str:
    return {
        STAGE_CREATED: _("Created"),
        STAGE_PRECHECK_PASSED: _("Pre-check passed"),
        STAGE_PAYMENT_STARTED: _("Payment started"),
        STAGE_COMPLETED: _("Completed"),
    }[stage]


def percent(part: int, whole: int) -> str:
    """'83.3%', rounded half up to a tenth, in integers."""
    if whole <= 0:
        return "-"
    tenths = (part * 1000 * 2 + whole) // (whole * 2)
    return f"{tenths // 10}.{tenths % 10}%"


def epg_funnel(start: date, end: date) -> Funnel:
    """EPG orders created in the range: how far each got, and why the others stopped.

    An order reached a stage when its events say so: ``precheck_passed``; a
    payment started (``start_payment``, or ``payment_confirmed`` straight from
    ``awaiting_payment`` for a direct phone-bill charge); completed (an event
    into ``completed``, or the status itself). Reaching a stage implies the
    earlier ones, so the funnel never widens. An order that stopped carries
    the failure code it ended with; one still under way has none.
    """
    # The furthest stage an order's events say it reached, the greatest of theirs: looked up once, and only for the
    # orders whose status does not say it already (completed, three in four), counted apart. Apart, the lookups'
    # estimated cost no longer counts every order, and PostgreSQL no longer compiles the statement (JIT) for longer
    # than it runs over a month.
    furthest_event = (
        OrderEvent.objects.filter(order=OuterRef("pk"))
        .order_by()
        .values("order")
        .annotate(
            stage=Max(
                Case(
                    When(to_status=OrderStatus.COMPLETED, then=Value(3)),
                    When(
                        action__in=["start_payment", "payment_confirmed"],
                        from_status=OrderStatus.AWAITING_PAYMENT,
                        then=Value(2),
                    ),
                    When(action="precheck_passed", then=Value(1)),
                    default=Value(0),
                    output_field=IntegerField(),
                )
            )
        )
        .values("stage")
    )
    epg = _orders_in(start, end).filter(channel=Channel.EPG)
    completed = (
        epg.filter(status=OrderStatus.COMPLETED)
        .annotate(furthest=Value(3, output_field=IntegerField()))
        .values("status", "failure_code", "furthest")
        .annotate(n=Count("pk"))
    )
    rest = (
        epg.exclude(status=OrderStatus.COMPLETED)
        .annotate(furthest=Coalesce(Subquery(furthest_event, output_field=IntegerField()), Value(0)))
        .values("status", "failure_code", "furthest")
        .annotate(n=Count("pk"))
    )
    rows = completed.union(rest, all=True)  # one statement
    reached = [0] * len(STAGES)
    lost: dict[tuple[int, str], int] = {}
    for row in rows:
        furthest = row["furthest"]
        for stage in range(furthest + 1):
            reached[stage] += row["n"]
        if furthest < len(STAGES) - 1:
            key = (furthest, row["failure_code"])
            lost[key] = lost.get(key, 0) + row["n"]

    stages = [
        FunnelStage(
            key=key,
            label=stage_label(key),
            orders=reached[i],
            of_created=percent(reached[i], reached[0]),
            of_previous=percent(reached[i], reached[i - 1]) if i else percent(reached[0], reached[0]),
        )
        for i, key in enumerate(STAGES)
    ]
    losses = [
        FunnelLoss(
            stage=STAGES[i],
            stage_label=stage_label(STAGES[i]),
            next_label=stage_label(STAGES[i + 1]),
            failure_code=code,
            reason=str(FailureCode(code).label) if code in FailureCode.values else _("Still under way"),
            orders=n,
        )
        for (i, code), n in sorted(lost.items(), key=lambda item: (item[0][0], -item[1], item[0][1]))
    ]
    return Funnel(stages=stages, losses=losses)


# --- end of shift: cash per store and clerk --------------------------------------------


def cash_totals_by_store(day: date) -> list[StoreCash]:
    """Cash taken and paid back on one local day, per store and per clerk who sold: what the drawer holds.

    From the ledger's cash movements (payments, and cash paid back for sales
    that could not be provisioned), attributed to the store and clerk of the
    order.
    """
    rows = (
        _ledger_in(day, day)
        .filter(method=PaymentMethod.CASH)
        .values(
            "order__store_code", "order__clerk__username", "order__clerk__clerk__staff_id", "order__clerk__clerk__name"
        )
        .annotate(
            sales=Count("pk", filter=Q(kind=LedgerKind.PAYMENT)),
            taken_fen=Coalesce(Sum("amount_fen", filter=Q(kind=LedgerKind.PAYMENT)), 0),
            paid_back_fen=Coalesce(Sum("amount_fen", filter=~Q(kind=LedgerKind.PAYMENT)), 0),
        )
    )
    by_store: dict[str, list[ClerkCash]] = {}
    for row in rows:
        by_store.setdefault(row["order__store_code"], []).append(
            ClerkCash(
                staff_id=row["order__clerk__clerk__staff_id"] or row["order__clerk__username"] or "",
                name=row["order__clerk__clerk__name"] or "",
                sales=row["sales"],
                taken_fen=row["taken_fen"],
                paid_back_fen=row["paid_back_fen"],
            )
        )
    names = _store_names(sorted(by_store))
    return [
        StoreCash(
            store_code=code,
            store_name=names.get(code, ""),
            clerks=sorted(by_store[code], key=lambda c: c.staff_id),
        )
        for code in sorted(by_store)
    ]
