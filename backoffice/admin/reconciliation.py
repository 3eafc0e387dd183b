"""Admin of the reconciliation: runs, their items (filters, search, CSV export), statements; upload and run.

Everything is read-only except uploading a day's statements and running
(or re-running) a day, which needs the ``billing.add_reconciliationrun``
permission (superusers have it).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from backoffice.admin.reconciliation_export import items_csv_response
from billing.models import ReconciliationItem, ReconciliationRun, Statement, StatementLine
from billing.models.reconciliation import StatementSource
from billing.reconciliation.parsers import StatementError
from billing.reconciliation.services import ReconciliationBusy, reconcile_day, statements_import
from ipvas.admin_helpers import ReadOnlyAdminMixin
from ipvas.money import fen_to_yuan

RUN_PERMISSION = "billing.add_reconciliationrun"


def _yuan(fen: int | None) -> str:
    return "" if fen is None else fen_to_yuan(fen)


@admin.register(Statement)
class StatementAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["day", "source", "file_name", "row_count", "size_bytes", "imported_at", "imported_by", "short_sha"]
    list_filter = ["source", ("day", admin.DateFieldListFilter)]
    search_fields = ["file_name", "=sha256"]
    date_hierarchy = "day"

    @admin.display(description=_("SHA-256"))
    def short_sha(self, obj: Statement) -> str:
        return obj.sha256[:12]


@admin.register(StatementLine)
class StatementLineAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "statement",
        "line_no",
        "kind",
        "out_trade_no",
        "transaction_id",
        "out_refund_no",
        "amount_fen",
        "charge",
        "occurred_at",
    ]
    list_filter = ["statement__source", "kind", ("statement__day", admin.DateFieldListFilter)]
    search_fields = ["=out_trade_no", "=out_refund_no", "=transaction_id"]
    list_select_related = ["statement"]
    show_full_result_count = False


class UploadForm(forms.Form):
    day = forms.DateField(label=_("Day"), widget=forms.DateInput(attrs={"type": "date"}))
    wechatpay = forms.FileField(label=_("WeChat Pay trade bill (CSV, UTF-8)"), required=False)
    alipay = forms.FileField(label=_("Alipay business detail (…_业务明细.csv, GBK)"), required=False)
    smp = forms.FileField(label=_("SMP provisioning list (CSV)"), required=False)
    fetch = forms.BooleanField(
        label=_("Fetch the statements neither uploaded nor imported before"), required=False, initial=False
    )

    def clean_day(self) -> Any:
        day = self.cleaned_data["day"]
        if day >= timezone.localdate():
            raise forms.ValidationError(_("Only a day that is over can be reconciled."))
        return day


@admin.register(ReconciliationRun)
class ReconciliationRunAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "day",
        "matched",
        "missing_at_provider",
        "missing_here",
        "amount_differs",
        "paid_not_provisioned",
        "provisioned_not_paid",
        "finished_at",
        "triggered_by",
        "links",
    ]
    list_filter = [("day", admin.DateFieldListFilter)]
    date_hierarchy = "day"
    actions = ["rerun", "export_items"]
    change_list_template = "admin/billing/reconciliation/run_change_list.html"
    readonly_fields = ["links"]

    def get_urls(self) -> list[Any]:
        urls = [
            path(
                "upload/",
                self.admin_site.admin_view(self.upload_view),
                name="billing_reconciliationrun_upload",
            ),
            path(
                "<int:run_id>/export/",
                self.admin_site.admin_view(self.export_view),
                name="billing_reconciliationrun_export",
            ),
        ]
        return urls + super().get_urls()

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        extra = {**(extra_context or {}), "can_run": request.user.has_perm(RUN_PERMISSION)}
        return super().changelist_view(request, extra_context=extra)

    @admin.display(description=_("items"))
    def links(self, obj: ReconciliationRun) -> str:
        items = reverse("admin:billing_reconciliationitem_changelist") + f"?run_day={obj.day.isoformat()}"
        export = reverse("admin:billing_reconciliationrun_export", args=[obj.pk])
        return format_html('<a href="{}">{}</a> · <a href="{}">CSV</a>', items, _("items"), export)

    @admin.action(description=_("Run the selected days again"))
    def rerun(self, request: HttpRequest, queryset: QuerySet[ReconciliationRun]) -> None:
        if not request.user.has_perm(RUN_PERMISSION):
            raise PermissionDenied
        for day in list(queryset.values_list("day", flat=True)):
            try:
                run = reconcile_day(day, fetch=False, triggered_by=f"admin:{request.user}")
            except ReconciliationBusy as exc:
                self.message_user(request, str(exc), messages.ERROR)
            else:
                self.message_user(request, _run_summary(run), messages.SUCCESS)

    @admin.action(description=_("Export the items of the selected runs as CSV"))
    def export_items(self, request: HttpRequest, queryset: QuerySet[ReconciliationRun]) -> HttpResponseBase:
        items = ReconciliationItem.objects.filter(run__in=queryset)
        return items_csv_response(items, filename="reconciliation.csv")

    def export_view(self, request: HttpRequest, run_id: int) -> HttpResponseBase:
        if not self.has_view_permission(request):
            raise PermissionDenied
        run = get_object_or_404(ReconciliationRun, pk=run_id)
        return items_csv_response(run.items.all(), filename=f"reconciliation-{run.day.isoformat()}.csv")

    def upload_view(self, request: HttpRequest) -> HttpResponse:
        if not request.user.has_perm(RUN_PERMISSION):
            raise PermissionDenied
        form = UploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            day = form.cleaned_data["day"]
            files = {
                source: (upload.name, upload.file)
                for source in StatementSource.values
                if (upload := form.cleaned_data.get(source)) is not None
            }
            try:
                statements_import(day=day, files=files, imported_by=f"admin:{request.user}")
                run = reconcile_day(day, fetch=form.cleaned_data["fetch"], triggered_by=f"admin:{request.user}")
            except StatementError as exc:
                form.add_error(exc.source or None, str(exc))
            except ReconciliationBusy as exc:
                form.add_error(None, str(exc))
            else:
                self.message_user(request, _run_summary(run), messages.SUCCESS)
                return redirect(reverse("admin:billing_reconciliationitem_changelist") + f"?run_day={day.isoformat()}")
        context = {
            **self.admin_site.each_context(request),
            "title": _("Upload statements and reconcile a day"),
            "form": form,
            "opts": self.model._meta,
        }
        return render(request, "admin/billing/reconciliation/upload.html", context)


def _run_summary(run: ReconciliationRun) -> str:
    text = _("%(day)s reconciled: %(matched)s matched, %(discrepancies)s discrepancies.") % {
        "day": run.day.isoformat(),
        "matched": run.matched,
        "discrepancies": run.discrepancies,
    }
    return f"{text} {run.notes}".strip()


class RunDayFilter(admin.SimpleListFilter):
    title = _("run day")
    parameter_name = "run_day"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        days = ReconciliationRun.objects.order_by("-day").values_list("day", flat=True)[:62]
        return [(day.isoformat(), day.isoformat()) for day in days]

    def queryset(self, request: HttpRequest, queryset: QuerySet[ReconciliationItem]) -> QuerySet[ReconciliationItem]:
        value = self.value()
        return queryset.filter(run__day=value) if value else queryset


@admin.register(ReconciliationItem)
class ReconciliationItemAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "run_day",
        "outcome",
        "source",
        "kind",
        "order_no",
        "reference",
        "ours",
        "theirs",
        "statement_line_no",
        "detail",
    ]
    list_filter = ["outcome", "source", "kind", RunDayFilter]
    search_fields = ["=order_no", "=reference"]
    list_select_related = ["run"]
    show_full_result_count = False
    actions = ["export_selected"]

    @admin.display(description=_("day"), ordering="run__day")
    def run_day(self, obj: ReconciliationItem) -> str:
        return obj.run.day.isoformat()

    @admin.display(description=_("ours (yuan)"), ordering="our_amount_fen")
    def ours(self, obj: ReconciliationItem) -> str:
        return _yuan(obj.our_amount_fen)

    @admin.display(description=_("theirs (yuan)"), ordering="their_amount_fen")
    def theirs(self, obj: ReconciliationItem) -> str:
        return _yuan(obj.their_amount_fen)

    @admin.action(description=_("Export the selected items as CSV"))
    def export_selected(self, request: HttpRequest, queryset: QuerySet[ReconciliationItem]) -> HttpResponseBase:
        return items_csv_response(queryset, filename="reconciliation-items.csv")
