"""The sales dashboard in admin, and the CSV export of each of its tables.

``GET /admin/reports/?start=YYYY-MM-DD&end=YYYY-MM-DD&day=YYYY-MM-DD`` shows
the dashboard (the last 30 local days by default; ``day`` is the shift of the
cash table, the range's last day by default); the same with
``&export=<table>`` streams that table as CSV. Wrapped in
``admin.site.admin_view`` by ``backoffice.reports.urls``: staff only.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest, StreamingHttpResponse
from django.shortcuts import render
from django.template.defaultfilters import floatformat
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.http import urlencode
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext

from backoffice.reports import charts, queries
from backoffice.reports.tables import TABLES, ReportData, Table
from backoffice.spreadsheet import csv_lines
from billing.reconciliation.selectors import latest_run_summary
from ipvas.money import fen_to_yuan
from ipvas.reports_database import Fallback, Source, read_reports

DEFAULT_DAYS = 30
MAX_DAYS = 366
FOLD_ROWS = 14  # a longer table folds away under its charts
EARLIEST, LATEST = date(2000, 1, 1), date(2099, 12, 31)


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
        if any(value and not EARLIEST <= value <= LATEST for value in (start, end, data.get("day"))):
            # 0001-01-01 and 9999-12-31 are dates, but no instant of Beijing's day before or after them is.
            raise forms.ValidationError(
                _("Choose days from %(first)s to %(last)s.") % {"first": EARLIEST, "last": LATEST}
            )
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


# --- CSV -----------------------------------------------------------------------------


def table_lines(table: Table) -> Iterator[str]:
    return csv_lines(table.headers, ([c.text for c in row] for row in table.rows))


def export_csv(table: Table, r: dict[str, date]) -> StreamingHttpResponse:
    if table.key == "cash_totals":
        stem = f"ipvas-{table.key}-{r['day'].isoformat()}"
    else:
        stem = f"ipvas-{table.key}-{r['start'].isoformat()}-{r['end'].isoformat()}"
    response = StreamingHttpResponse(table_lines(table), content_type="text/csv; charset=utf-8")
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
                charts.Series(pgettext("sales report", "Orders"), [r.orders for r in data.by_day]),
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
    out.update(build_subscription_charts(data, labels, short))
    return out


def build_subscription_charts(data: ReportData, labels: list[str], short: list[str]) -> dict[str, SafeString]:
    """The charts of renewals and subscriptions (docs/interfaces.md §8)."""
    renewal_days = data.renewals.days
    subscription_days = data.subscription_days.days
    out = {
        "renewals_by_day": charts.bar_chart(
            chart_id="chart-renewals-by-day",
            title=_("Renewal orders per day"),
            labels=labels,
            tick_labels=short,
            series=[
                charts.Series(_("Renewal orders"), [r.orders for r in renewal_days]),
                charts.Series(_("Completed"), [r.completed for r in renewal_days]),
            ],
            money=False,
        ),
        "renewal_revenue_by_day": charts.line_chart(
            chart_id="chart-renewal-revenue-by-day",
            title=_("Renewal revenue per day"),
            labels=labels,
            tick_labels=short,
            series=[charts.Series(_("Net revenue"), [r.net_fen for r in renewal_days])],
            money=True,
        ),
        "subscriptions_by_day": charts.line_chart(
            chart_id="chart-subscriptions-by-day",
            title=_("Subscriptions at the end of each day"),
            labels=labels,
            tick_labels=short,
            series=[
                charts.Series(_("Active (renewing)"), [d.active for d in subscription_days]),
                charts.Series(_("Not renewing, still paid"), [d.not_renewing for d in subscription_days]),
            ],
            money=False,
            unit=_("subscriptions"),
        ),
        "renewal_stops": charts.hbar_chart(
            chart_id="chart-renewal-stops",
            title=_("Cancels by channel, and lapses"),
            labels=[s.short_label for s in data.subscription_days.stops],
            values=[s.subscriptions for s in data.subscription_days.stops],
            money=False,
            unit=_("subscriptions"),
            label_width=210,
        ),
    }
    if data.renewals.failures:
        out["renewal_failures"] = charts.hbar_chart(
            chart_id="chart-renewal-failures",
            title=_("Why renewals did not complete"),
            labels=[f.failure_code or "-" for f in data.renewals.failures],
            values=[f.orders for f in data.renewals.failures],
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
    ("renewals_by_day", ("renewals_by_day", "renewal_revenue_by_day")),
    ("renewal_failures", ("renewal_failures",)),
    ("subscriptions_by_day", ("subscriptions_by_day",)),
    ("renewal_stops", ("renewal_stops",)),
    ("cash_totals", ()),
]


def dashboard(request: HttpRequest) -> HttpResponse:
    """The page, or one table as CSV with ``?export=``; staff only and never cached (see urls.py).

    Read from the reports' replica when there is one (ipvas.reports_database)."""
    form, r = read_range(request)
    export = request.GET.get("export")
    if export is not None:
        if export not in TABLES:
            raise Http404(_("There is no such table."))
        if not form.is_valid():
            return HttpResponseBadRequest(_("Invalid date range."), content_type="text/plain; charset=utf-8")
        return read_reports(lambda source: export_csv(TABLES[export](ReportData(r, only=export)), r))
    return read_reports(lambda source: dashboard_page(request, form, r, source))


# Why the figures come from the primary, in the words finance reads (ipvas.reports_database.Fallback).
WHY_FROM_THE_PRIMARY = {
    Fallback.REPLICA_FAILED: gettext_lazy(
        "The reports' replica did not answer: these figures come from the primary database."
    ),
    Fallback.REPLICA_CUT_OFF: gettext_lazy(
        "The reports' replica does not receive the primary database's changes and has replayed none since it "
        "started: these figures come from the primary database."
    ),
    Fallback.PRIMARY_FAILED: gettext_lazy(
        "A query on the primary database failed while these figures were read from the reports' replica: they "
        "were read again, from the primary database."
    ),
}


def where_from(source: Source) -> str:
    """What the page says of where its figures come from."""
    if source.fell_back:
        return str(WHY_FROM_THE_PRIMARY[source.fallback or Fallback.REPLICA_FAILED])
    if source.as_of is not None:
        return _("Figures from the reports' replica as of %(at)s: it is %(seconds)s s behind the primary database.") % {
            "at": date_format(timezone.localtime(source.as_of), "Y-m-d H:i:s"),
            "seconds": floatformat(source.behind_seconds, 0),
        }
    return _("Figures from the reports' replica, up to date.")


def dashboard_page(
    request: HttpRequest, form: ReportRangeForm, r: dict[str, date], source: Source | None
) -> HttpResponse:
    data = ReportData(r)
    tables = {key: build(data) for key, build in TABLES.items()}
    chart_svgs = build_charts(data)
    query = {k: v.isoformat() for k, v in r.items()}
    sections = [
        {
            "table": tables[key],
            "charts": [chart_svgs[c] for c in chart_keys if c in chart_svgs],
            "export_url": "?" + urlencode({**query, "export": key}),
            # A long table (a row per day) folds away under its charts.
            "fold": len(tables[key].rows) > FOLD_ROWS,
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
            (pgettext("sales report", "Orders"), str(total.orders)),
            (_("Completed orders"), str(total.completed)),
            (_("Payments (yuan)"), fen_to_yuan(total.gross_fen)),
            (_("Refunds (yuan)"), fen_to_yuan(total.refunds_fen)),
            (_("Net revenue (yuan)"), fen_to_yuan(total.net_fen)),
        ],
        "sections": sections,
        # The latest day reconciled: whatever range is shown, finance sees whether yesterday is settled.
        "reconciliation": latest_run_summary(),
        "figures_from": where_from(source) if source is not None else "",
    }
    return render(request, "admin/reports/dashboard.html", context)
