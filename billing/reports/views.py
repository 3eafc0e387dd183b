"""The sales dashboard in admin, and the CSV export of each of its tables.

``GET /admin/reports/?start=YYYY-MM-DD&end=YYYY-MM-DD&day=YYYY-MM-DD`` shows
the dashboard (the last 30 local days by default; ``day`` is the shift of the
cash table, the range's last day by default); the same with
``&export=<table>`` streams that table as CSV. Wrapped in
``admin.site.admin_view`` by ``billing.reports.urls``: staff only.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from functools import cached_property
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache

from billing.money import fen_to_yuan
from billing.reports import charts, queries
from billing.reports.queries import ClerkCash, Funnel, SalesRow, StoreCash

DEFAULT_DAYS = 30
MAX_DAYS = 366


class ReportRangeForm(forms.Form):
    start = forms.DateField(label=gettext_lazy("From"), widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(label=gettext_lazy("To"), widget=forms.DateInput(attrs={"type": "date"}))
    day = forms.DateField(
        label=gettext_lazy("Shift day"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text=gettext_lazy("The day of the cash totals; the last day of the range when empty."),
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("start"), data.get("end")
        if start and end:
            if end < start:
                raise forms.ValidationError(_("The range must end on or after its first day."))
            if (end - start).days + 1 > MAX_DAYS:
                raise forms.ValidationError(_("Choose at most %(days)d days.") % {"days": MAX_DAYS})
        if not data.get("day") and end:
            data["day"] = end
        return data


def default_range(today: date | None = None) -> dict[str, date]:
    today = today or timezone.localdate()
    return {"start": today - timedelta(days=DEFAULT_DAYS - 1), "end": today, "day": today}


def read_range(request: HttpRequest) -> tuple[ReportRangeForm, dict[str, date]]:
    """The bound form and the range to report: what was asked for, or the default when that is invalid."""
    defaults = default_range()
    data = {name: request.GET.get(name) or value.isoformat() for name, value in defaults.items()}
    if not request.GET.get("day") and request.GET.get("end"):
        data["day"] = ""
    form = ReportRangeForm(data)
    if form.is_valid():
        return form, {k: form.cleaned_data[k] for k in ("start", "end", "day")}
    return form, defaults


# --- tables ------------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    text: str
    numeric: bool = False
    strong: bool = False

    @property
    def negative(self) -> bool:
        return self.numeric and self.text.startswith("-")


@dataclass(frozen=True)
class Table:
    key: str
    title: str
    headers: list[str]
    rows: list[list[Cell]]
    footer: list[Cell] | None = None
    note: str = ""


def _n(value: int) -> Cell:
    return Cell(str(value), numeric=True)


def _yuan(fen: int) -> Cell:
    return Cell(fen_to_yuan(fen), numeric=True)


def _sales_headers(first: Sequence[str]) -> list[str]:
    return [
        *first,
        _("Orders"),
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

    def __init__(self, r: dict[str, date]) -> None:
        self.start, self.end, self.day = r["start"], r["end"], r["day"]

    @cached_property
    def by_day(self) -> list[SalesRow]:
        return queries.revenue_by_day(self.start, self.end)

    @cached_property
    def by_channel(self) -> list[SalesRow]:
        return queries.revenue_by_channel(self.start, self.end)

    @cached_property
    def by_product(self) -> list[SalesRow]:
        return queries.revenue_by_product(self.start, self.end)

    @cached_property
    def by_method(self) -> list[SalesRow]:
        return queries.revenue_by_method(self.start, self.end)

    @cached_property
    def by_store(self) -> list[SalesRow]:
        return queries.revenue_by_store(self.start, self.end)

    @cached_property
    def funnel(self) -> Funnel:
        return queries.epg_funnel(self.start, self.end)

    @cached_property
    def cash(self) -> list[StoreCash]:
        return queries.cash_totals_by_store(self.day)


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
        headers=[_("Stage"), _("Orders"), _("Of created"), _("Of the previous stage")],
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
        headers=[_("Reached"), _("Did not reach"), _("Failure code"), _("Reason"), _("Orders")],
        rows=[
            [Cell(x.stage_label), Cell(x.next_label), Cell(x.failure_code), Cell(x.reason), _n(x.orders)]
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


TABLES: dict[str, Callable[[ReportData], Table]] = {
    "revenue_by_day": table_revenue_by_day,
    "revenue_by_channel": table_revenue_by_channel,
    "revenue_by_product": table_revenue_by_product,
    "revenue_by_method": table_revenue_by_method,
    "revenue_by_store": table_revenue_by_store,
    "funnel": table_funnel,
    "funnel_losses": table_funnel_losses,
    "cash_totals": table_cash_totals,
}


# --- CSV -----------------------------------------------------------------------------


class _Echo:
    """A file-like object whose write() hands the line back, for csv.writer in a stream."""

    def write(self, value: str) -> str:
        return value


def csv_lines(table: Table) -> Iterator[str]:
    # The byte-order mark makes Excel read the file as UTF-8 (Chinese labels).
    yield "\ufeff"
    writer = csv.writer(_Echo())
    yield writer.writerow(table.headers)
    for row in table.rows:
        yield writer.writerow([c.text for c in row])


def export_csv(table: Table, r: dict[str, date]) -> StreamingHttpResponse:
    if table.key == "cash_totals":
        stem = f"ipvas-{table.key}-{r['day'].isoformat()}"
    else:
        stem = f"ipvas-{table.key}-{r['start'].isoformat()}-{r['end'].isoformat()}"
    response = StreamingHttpResponse(csv_lines(table), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{stem}.csv"'
    return response


# --- the page ---------------------------------------------------------------------------


def build_charts(data: ReportData) -> dict[str, SafeString]:
    """The charts of the dashboard, from the same rows as its tables."""
    days = queries.days_between(data.start, data.end)
    labels = [d.isoformat() for d in days]
    short = [d.strftime("%m-%d") for d in days]
    out = {
        "revenue_by_day": charts.line_chart(
            chart_id="chart-revenue-by-day",
            title=_("Revenue per day"),
            labels=labels,
            tick_labels=short,
            series=[
                charts.Series(_("Payments"), [r.gross_fen for r in data.by_day]),
                charts.Series(_("Net revenue"), [r.net_fen for r in data.by_day]),
            ],
            money=True,
        ),
        "orders_by_day": charts.bar_chart(
            chart_id="chart-orders-by-day",
            title=_("Orders per day"),
            labels=labels,
            tick_labels=short,
            series=[
                charts.Series(_("Orders"), [r.orders for r in data.by_day]),
                charts.Series(_("Completed orders"), [r.completed for r in data.by_day]),
            ],
            money=False,
        ),
    }
    for key, title, rows in (
        ("revenue_by_channel", _("Net revenue per channel"), data.by_channel),
        ("revenue_by_product", _("Net revenue per product"), data.by_product),
        ("revenue_by_method", _("Net revenue per payment method"), data.by_method),
        ("revenue_by_store", _("Net revenue per store"), data.by_store),
    ):
        if rows:
            out[key] = charts.hbar_chart(
                chart_id=f"chart-{key.replace('_', '-')}",
                title=title,
                labels=[r.label or r.key for r in rows],
                values=[r.net_fen for r in rows],
                money=True,
            )
    out["funnel"] = charts.hbar_chart(
        chart_id="chart-funnel",
        title=_("EPG conversion funnel"),
        labels=[s.label for s in data.funnel.stages],
        values=[s.orders for s in data.funnel.stages],
        money=False,
    )
    return out


# The dashboard's sections: a table, and the chart drawn from the same rows.
SECTIONS: list[tuple[str, tuple[str, ...]]] = [
    ("revenue_by_day", ("revenue_by_day", "orders_by_day")),
    ("revenue_by_channel", ("revenue_by_channel",)),
    ("revenue_by_method", ("revenue_by_method",)),
    ("revenue_by_product", ("revenue_by_product",)),
    ("revenue_by_store", ("revenue_by_store",)),
    ("funnel", ("funnel",)),
    ("funnel_losses", ()),
    ("cash_totals", ()),
]


@never_cache
def dashboard(request: HttpRequest) -> HttpResponse:
    form, r = read_range(request)
    data = ReportData(r)
    export = request.GET.get("export")
    if export is not None:
        if export not in TABLES:
            raise Http404(_("There is no such table."))
        if not form.is_valid():
            return HttpResponseBadRequest(_("Invalid date range."), content_type="text/plain; charset=utf-8")
        return export_csv(TABLES[export](data), r)

    tables = {key: build(data) for key, build in TABLES.items()}
    chart_svgs = build_charts(data)
    query = {k: v.isoformat() for k, v in r.items()}
    sections = [
        {
            "table": tables[key],
            "charts": [chart_svgs[c] for c in chart_keys if c in chart_svgs],
            "export_url": "?" + urlencode({**query, "export": key}),
        }
        for key, chart_keys in SECTIONS
    ]
    total = queries.total_row(data.by_day, _("Total"))
    context = {
        **admin.site.each_context(request),
        "title": _("Sales dashboard"),
        "form": form,
        "range": r,
        "time_zone": settings.TIME_ZONE,
        "totals": [
            (_("Orders"), str(total.orders)),
            (_("Completed orders"), str(total.completed)),
            (_("Payments (yuan)"), fen_to_yuan(total.gross_fen)),
            (_("Refunds (yuan)"), fen_to_yuan(total.refunds_fen)),
            (_("Net revenue (yuan)"), fen_to_yuan(total.net_fen)),
        ],
        "sections": sections,
    }
    return render(request, "admin/reports/dashboard.html", context)
