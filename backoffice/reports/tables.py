"""The dashboard's tables: the rows of backoffice.reports.queries as cells, for the page and for CSV alike.

One ``Table`` feeds both the HTML table and its CSV export, so what an admin
sees and what Excel opens cannot drift apart. Money cells are yuan strings
made by ``fen_to_yuan``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date
from functools import cached_property

from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from backoffice.reports import queries, subscriptions
from backoffice.reports.queries import ClerkCash, Funnel, SalesRow, StoreCash
from backoffice.reports.subscriptions import RenewalRow, Renewals, SubscriptionDays
from ipvas.money import fen_to_yuan


@dataclass(frozen=True)
class Cell:
    text: str
    numeric: bool = False
    strong: bool = False
    code: bool = False  # a machine code (a failure code): shown as written, beside its label

    @property
    def negative(self) -> bool:
        return self.numeric and self.text.startswith("-")

    @property
    def css(self) -> str:
        """The classes of its <td>: numbers right-aligned, negative ones marked."""
        flags = (("num", self.numeric), ("neg", self.negative), ("strong", self.strong), ("field-code", self.code))
        return " ".join(name for name, on in flags if on)


@dataclass(frozen=True)
class Table:
    key: str
    title: str
    headers: list[str]
    rows: list[list[Cell]]
    footer: list[Cell] | None = None
    note: str = ""
    intro: str = ""  # what the section counts, shown above its charts


def _n(value: int) -> Cell:
    return Cell(str(value), numeric=True)


def _yuan(fen: int) -> Cell:
    return Cell(fen_to_yuan(fen), numeric=True)


def _sales_headers(first: Sequence[str]) -> list[str]:
    return [
        *first,
        pgettext("sales report", "Orders"),
        _("Completed orders"),
        _("Payments (yuan)"),
        _("Refunds (yuan)"),
        _("Net revenue (yuan)"),
    ]


def _sales_cells(row: SalesRow) -> list[Cell]:
    return [_n(row.orders), _n(row.completed), _yuan(row.gross_fen), _yuan(row.refunds_fen), _yuan(row.net_fen)]


def _sales_table(
    key: str,
    title: str,
    first: Sequence[str],
    rows: Sequence[SalesRow],
    label_cells: Callable[[SalesRow], list[Cell]],
    *,
    note: str = "",
) -> Table:
    total = queries.total_row(rows, _("Total"))
    blanks = [Cell("") for _ in first[1:]]
    return Table(
        key=key,
        title=title,
        headers=_sales_headers(first),
        rows=[[*label_cells(r), *_sales_cells(r)] for r in rows],
        footer=[Cell(total.label), *blanks, *_sales_cells(total)],
        note=note,
    )


class ReportData:
    """The figures of one range, each fetched when first needed and once only."""

    def __init__(self, r: dict[str, date], only: str | None = None) -> None:
        self.start, self.end, self.day = r["start"], r["end"], r["day"]
        self.only = only  # the one table wanted (a CSV file): its figures alone are fetched

    @cached_property
    def by_day(self) -> list[SalesRow]:
        return queries.revenue_by_day(self.start, self.end)

    @cached_property
    def breakdown(self) -> dict[str, list[SalesRow]]:
        """The sales per channel, product, method and store, fetched together for the page."""
        only = (self.only or "").removeprefix("revenue_by_")
        wanted = [only] if only in queries.BREAKDOWNS else list(queries.BREAKDOWNS)
        return queries.sales_breakdown(self.start, self.end, wanted)

    @cached_property
    def by_channel(self) -> list[SalesRow]:
        return self.breakdown["channel"]

    @cached_property
    def by_product(self) -> list[SalesRow]:
        return self.breakdown["product"]

    @cached_property
    def by_method(self) -> list[SalesRow]:
        return self.breakdown["method"]

    @cached_property
    def by_store(self) -> list[SalesRow]:
        return self.breakdown["store"]

    @cached_property
    def funnel(self) -> Funnel:
        return queries.epg_funnel(self.start, self.end)

    @cached_property
    def cash(self) -> list[StoreCash]:
        return queries.cash_totals_by_store(self.day)

    @cached_property
    def renewals(self) -> Renewals:
        return subscriptions.renewals(self.start, self.end)

    @cached_property
    def subscription_days(self) -> SubscriptionDays:
        return subscriptions.subscriptions_by_day(self.start, self.end)


def table_revenue_by_day(data: ReportData) -> Table:
    return _sales_table("revenue_by_day", _("Per day"), [_("Day")], data.by_day, lambda row: [Cell(row.label)])


def table_revenue_by_channel(data: ReportData) -> Table:
    return _sales_table(
        "revenue_by_channel", _("Per channel"), [_("Channel")], data.by_channel, lambda row: [Cell(row.label)]
    )


def table_revenue_by_product(data: ReportData) -> Table:
    return _sales_table(
        "revenue_by_product",
        _("Per product"),
        [_("Product code"), _("Product")],
        data.by_product,
        lambda row: [Cell(row.key), Cell(row.label)],
    )


def table_revenue_by_method(data: ReportData) -> Table:
    return _sales_table(
        "revenue_by_method",
        _("Per payment method"),
        [_("Payment method")],
        data.by_method,
        lambda row: [Cell(row.label)],
    )


def table_revenue_by_store(data: ReportData) -> Table:
    return _sales_table(
        "revenue_by_store",
        _("Per store"),
        [_("Store code"), _("Store")],
        data.by_store,
        lambda row: [Cell(row.key), Cell(row.label)],
        note=_("Business-hall (CRM) sales only."),
    )


def table_funnel(data: ReportData) -> Table:
    return Table(
        key="funnel",
        title=_("EPG conversion funnel"),
        headers=[_("Stage"), pgettext("sales report", "Orders"), _("Of created"), _("Of the previous stage")],
        rows=[
            [Cell(s.label), _n(s.orders), Cell(s.of_created, numeric=True), Cell(s.of_previous, numeric=True)]
            for s in data.funnel.stages
        ],
        note=_("TV orders created in the range, by the furthest stage they reached."),
    )


def table_funnel_losses(data: ReportData) -> Table:
    return Table(
        key="funnel_losses",
        title=_("Where EPG orders are lost"),
        headers=[_("Reached"), _("Did not reach"), _("Failure code"), _("Reason"), pgettext("sales report", "Orders")],
        rows=[
            [Cell(x.stage_label), Cell(x.next_label), Cell(x.failure_code, code=True), Cell(x.reason), _n(x.orders)]
            for x in data.funnel.losses
        ],
        note=_("Orders without a failure code are still under way."),
    )


def table_cash_totals(data: ReportData) -> Table:
    rows: list[list[Cell]] = []
    for store in data.cash:
        store_cells = [Cell(store.store_code), Cell(store.store_name)]
        for clerk in store.clerks:
            rows.append([*store_cells, Cell(clerk.staff_id), Cell(clerk.name), *_cash_cells(clerk)])
        total = [*store_cells, Cell(_("Store total")), Cell(""), *_cash_cells(store)]
        rows.append([replace(cell, strong=True) for cell in total])
    return Table(
        key="cash_totals",
        title=_("End-of-shift cash, %(day)s") % {"day": data.day.isoformat()},
        headers=[
            _("Store code"),
            _("Store"),
            _("Clerk"),
            _("Clerk name"),
            _("Cash sales"),
            _("Cash taken (yuan)"),
            _("Cash paid back (yuan)"),
            _("Cash to hand over (yuan)"),
        ],
        rows=rows,
        note=_("Cash movements in the ledger on the shift day, by the store and clerk of the order."),
    )


def _cash_cells(cash: ClerkCash | StoreCash) -> list[Cell]:
    return [_n(cash.sales), _yuan(cash.taken_fen), _yuan(cash.paid_back_fen), _yuan(cash.net_fen)]


# --- subscriptions (docs/interfaces.md §8) ----------------------------------------------------


def _renewal_cells(row: RenewalRow) -> list[Cell]:
    return [
        _n(row.orders),
        _n(row.completed),
        _n(row.not_completed),
        _n(row.under_way),
        Cell(row.success_rate, numeric=True),
        _yuan(row.gross_fen),
        _yuan(row.refunds_fen),
        _yuan(row.net_fen),
    ]


def table_renewals_by_day(data: ReportData) -> Table:
    total = data.renewals.total
    return Table(
        key="renewals_by_day",
        title=_("Renewals per day"),
        headers=[
            _("Day"),
            _("Renewal orders"),
            _("Completed"),
            _("Ended without completing"),
            _("Still under way"),
            _("Success rate"),
            _("Payments (yuan)"),
            _("Refunds (yuan)"),
            _("Net revenue (yuan)"),
        ],
        rows=[[Cell(row.label), *_renewal_cells(row)] for row in data.renewals.days],
        footer=[Cell(total.label), *_renewal_cells(total)],
        note=_(
            "Renewal orders on the day they were placed; success rate: completed of those that ended. "
            "Money from the ledger on the day it moved."
        ),
    )


def table_renewal_failures(data: ReportData) -> Table:
    failures = data.renewals.failures
    return Table(
        key="renewal_failures",
        title=_("Why renewals did not complete"),
        headers=[_("Failure code"), _("Reason"), _("Renewal orders")],
        rows=[[Cell(f.failure_code, code=True), Cell(f.reason), _n(f.orders)] for f in failures],
        footer=[Cell(_("Total")), Cell(""), _n(sum(f.orders for f in failures))],
        note=_(
            "Renewal orders placed in the range that ended without completing. A failed renewal is tried "
            "again until the paid period ends; then the subscription lapses."
        ),
    )


def table_subscriptions_by_day(data: ReportData) -> Table:
    figures = data.subscription_days
    days = figures.days
    return Table(
        key="subscriptions_by_day",
        title=_("Subscriptions per day"),
        headers=[
            _("Day"),
            _("Started"),
            _("Cancelled"),
            _("Lapsed"),
            _("Ended"),
            _("Active at the end of the day"),
            _("Not renewing, still paid, at the end of the day"),
        ],
        rows=[
            [
                Cell(d.label),
                _n(d.started),
                _n(d.cancelled),
                _n(d.lapsed),
                _n(d.ended),
                _n(d.active),
                _n(d.not_renewing),
            ]
            for d in days
        ],
        footer=[
            Cell(_("Total")),
            *(_n(sum(getattr(d, f) for d in days)) for f in ("started", "cancelled", "lapsed", "ended")),
            Cell(""),
            Cell(""),
        ],
        intro=_(
            "Counted at the end of each local day. Active: renews automatically, from the moment it "
            "started until it is cancelled or lapses. Not renewing: cancelled or lapsed, no longer "
            "renews, but the paid period runs on until it ends."
        ),
        note=_("At 00:00 on %(day)s: %(active)d active, %(not_renewing)d not renewing.")
        % {
            "day": data.start.isoformat(),
            "active": figures.active_at_start,
            "not_renewing": figures.not_renewing_at_start,
        },
    )


def table_renewal_stops(data: ReportData) -> Table:
    stops = data.subscription_days.stops
    return Table(
        key="renewal_stops",
        title=_("Cancels and lapses"),
        headers=[_("Renewal turned off"), _("Subscriptions")],
        rows=[[Cell(s.label), _n(s.subscriptions)] for s in stops],
        footer=[Cell(_("Total")), _n(sum(s.subscriptions for s in stops))],
        note=_("Subscriptions cancelled (by the channel the cancel came from) or lapsed in the range."),
    )


TABLES: dict[str, Callable[[ReportData], Table]] = {
    "revenue_by_day": table_revenue_by_day,
    "revenue_by_channel": table_revenue_by_channel,
    "revenue_by_product": table_revenue_by_product,
    "revenue_by_method": table_revenue_by_method,
    "revenue_by_store": table_revenue_by_store,
    "funnel": table_funnel,
    "funnel_losses": table_funnel_losses,
    "renewals_by_day": table_renewals_by_day,
    "renewal_failures": table_renewal_failures,
    "subscriptions_by_day": table_subscriptions_by_day,
    "renewal_stops": table_renewal_stops,
    "cash_totals": table_cash_totals,
}
