"""Admin of the reconciliation: runs, their items (filters, search, CSV export), statements; upload and run;
the discrepancies a person settles.

Everything is read-only except uploading a day's statements and running
(or re-running) a day, which needs the ``billing.add_reconciliationrun``
permission, and annotating or resolving a discrepancy with a reason, which
needs ``billing.change_discrepancy`` (superusers have both). A run says which
sources it compared: a day with a source missing or refused is never shown
as clean.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from adapters.smp.types import SmpCharge
from backoffice.actors import actor_label, actor_text
from backoffice.admin.reconciliation_export import items_csv_response
from backoffice.history import note_message
from backoffice.reasons import note_text, run_by_text
from billing.models import (
    Discrepancy,
    DiscrepancyEvent,
    ReconciliationItem,
    ReconciliationRun,
    Statement,
    StatementLine,
)
from billing.models.reconciliation import DiscrepancyAction, DiscrepancyStatus, StatementSource
from billing.reconciliation.discrepancies import discrepancy_annotate, discrepancy_resolve
from billing.reconciliation.parsers import StatementError
from billing.reconciliation.refusals import notes_text
from billing.reconciliation.selectors import discrepancies_text, found_text, verdict
from billing.reconciliation.services import ReconciliationBusy, reconcile_day, statements_import
from ipvas.actors import Actor, ActorKind
from ipvas.admin_helpers import ReadOnlyAdminMixin
from ipvas.errors import ApplicationError
from ipvas.money import fen_to_yuan

RUN_PERMISSION = "billing.add_reconciliationrun"
SETTLE_PERMISSION = "billing.change_discrepancy"


def _yuan(fen: int | None) -> str:
    return "" if fen is None else fen_to_yuan(fen)


@admin.register(Statement)
class StatementAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["day", "source", "file_name", "row_count", "size_bytes", "imported_at", "by", "short_sha"]
    exclude = ["imported_by"]
    readonly_fields = ["by"]
    list_filter = ["source", ("day", admin.DateFieldListFilter)]
    search_fields = ["file_name", "=sha256"]
    date_hierarchy = "day"

    @admin.display(description=_("SHA-256"))
    def short_sha(self, obj: Statement) -> str:
        return obj.sha256[:12]

    @admin.display(description=_("imported by"))
    def by(self, obj: Statement) -> str:
        return run_by_text(obj.imported_by)


@admin.register(StatementLine)
class StatementLineAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "of_statement",
        "line_no",
        "kind",
        "out_trade_no",
        "transaction_id",
        "out_refund_no",
        "amount_fen",
        "smp_charge",
        "occurred_at",
    ]
    exclude = ["statement", "charge"]
    readonly_fields = ["of_statement", "smp_charge"]

    @admin.display(description=_("statement"), ordering="statement")
    def of_statement(self, line: StatementLine) -> str:
        return str(line.statement)

    @admin.display(description=_("SMP charge"))
    def smp_charge(self, line: StatementLine) -> str:
        return str(SmpCharge(line.charge).label) if line.charge in SmpCharge.values else line.charge or "-"

    list_filter = ["statement__source", "kind", ("statement__day", admin.DateFieldListFilter)]
    # Exact, each on its own index: "=field" (iexact) compared UPPER(field), which no index holds, and read a day's
    # statements of a year whole (docs/performance.md).
    search_fields = ["out_trade_no__exact", "out_refund_no__exact", "transaction_id__exact"]
    search_help_text = _("An out_trade_no, an out_refund_no or a provider's transaction id, in full.")
    list_select_related = ["statement"]
    show_full_result_count = False


def _yesterday() -> Any:
    return timezone.localdate() - timedelta(days=1)


class UploadForm(forms.Form):
    # The day that is usually reconciled: the one just over (the morning run's, docs/operations.md).
    day = forms.DateField(
        label=_("Day"), widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"), initial=_yesterday
    )
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


def _discrepancies_url(**filters: str) -> str:
    query = "&".join(f"{name}={value}" for name, value in filters.items())
    return reverse("admin:billing_discrepancy_changelist") + (f"?{query}" if query else "")


@admin.register(ReconciliationRun)
class ReconciliationRunAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "day",
        "verdict_text",
        "wechatpay_state",
        "alipay_state",
        "smp_state",
        "matched",
        "discrepancy_count",
        "found",
        "open_work",
        "finished_at",
        "run_by",
        "links",
    ]
    list_filter = ["wechatpay_state", "alipay_state", "smp_state", ("day", admin.DateFieldListFilter)]
    date_hierarchy = "day"
    actions = ["rerun", "export_items"]
    change_list_template = "admin/billing/reconciliation/run_change_list.html"
    readonly_fields = ["verdict_text", "found", "open_work", "links", "run_by", "notes_shown"]

    def get_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        # The notes and who ran it, in words (the stored notes are the system's own English lines; a refused
        # file's is said from the run's refusals).
        shown_last = ("run_by", "notes_shown")
        hidden = ("notes", "refusals", "triggered_by", *shown_last)
        fields = [f for f in super().get_fields(request, obj) if f not in hidden]
        return [*fields, *shown_last]

    @admin.display(description=_("run by"))
    def run_by(self, obj: ReconciliationRun) -> str:
        return run_by_text(obj.triggered_by)

    @admin.display(description=_("notes"))
    def notes_shown(self, obj: ReconciliationRun) -> str:
        return run_notes_text(obj) or "-"

    def get_queryset(self, request: HttpRequest) -> QuerySet[ReconciliationRun]:
        still_open = (
            Discrepancy.objects.filter(day=OuterRef("day"), status=DiscrepancyStatus.OPEN)
            .order_by()
            .values("day")
            .annotate(n=Count("pk"))
            .values("n")
        )
        return super().get_queryset(request).annotate(open_discrepancies=Coalesce(Subquery(still_open), 0))

    @admin.display(description=_("verdict"))
    def verdict_text(self, obj: ReconciliationRun) -> str:
        return verdict(obj)

    @admin.display(description=_("discrepancies"))
    def discrepancy_count(self, obj: ReconciliationRun) -> int:
        return obj.discrepancies

    @admin.display(description=_("found"))
    def found(self, obj: ReconciliationRun) -> str:
        return found_text(obj)

    @admin.display(description=_("open discrepancies"), ordering="open_discrepancies")
    def open_work(self, obj: ReconciliationRun) -> str:
        count = getattr(obj, "open_discrepancies", None)
        if count is None:
            count = Discrepancy.objects.filter(day=obj.day, status=DiscrepancyStatus.OPEN).count()
        url = _discrepancies_url(day=obj.day.isoformat(), status__exact=DiscrepancyStatus.OPEN)
        return format_html('<a href="{}">{}</a>', url, count)

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
    # The discrepancies are counted once: by the verdict, or beside it when a source was not compared.
    text = gettext("%(day)s reconciled: %(matched)s matched.") % {"day": run.day.isoformat(), "matched": run.matched}
    found = f" {discrepancies_text(run)}." if not run.complete and run.discrepancies else ""
    return f"{text} {verdict(run)}.{found} {run_notes_text(run)}".strip()


def run_notes_text(run: ReconciliationRun) -> str:
    """The run's notes in the reader's language, a refused file's reason too (rendered now, not when it ran)."""
    return notes_text(run.notes, run.refusals, other=note_text)


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
        "paired_day",
        "detail",
    ]
    list_filter = ["outcome", "source", "kind", RunDayFilter]
    # Exact, each on its own index (as the statement lines'): "=field" compared UPPER(field), which no index holds.
    search_fields = ["order_no__exact", "reference__exact"]
    search_help_text = _("An order number or a reference, in full.")
    list_select_related = ["run"]
    show_full_result_count = False
    actions = ["export_selected"]
    exclude = ["run"]
    readonly_fields = ["run_day"]

    @admin.display(description=_("day"), ordering="run__day")
    def run_day(self, obj: ReconciliationItem) -> str:
        return obj.run.day.isoformat()

    @admin.display(description=_("ours (yuan)"), ordering="our_amount_fen")
    def ours(self, obj: ReconciliationItem) -> str:
        return _yuan(obj.our_amount_fen)

    @admin.display(description=_("theirs (yuan)"), ordering="their_amount_fen")
    def theirs(self, obj: ReconciliationItem) -> str:
        return _yuan(obj.their_amount_fen)

    @admin.display(description=_("detail"))
    def detail(self, obj: ReconciliationItem) -> str:
        return obj.detail

    @admin.action(description=_("Export the selected items as CSV"))
    def export_selected(self, request: HttpRequest, queryset: QuerySet[ReconciliationItem]) -> HttpResponseBase:
        return items_csv_response(queryset, filename="reconciliation-items.csv")


# --- the discrepancies: the work that reconciliation gives a person ----------------------------------


class SettleForm(forms.Form):
    ACTIONS = [
        ("annotate", _("Add a note (it stays as it is)")),
        ("resolve", _("Resolve: nothing more to do, for the reason given")),
    ]
    action = forms.ChoiceField(label=_("Action"), choices=ACTIONS, widget=forms.RadioSelect, initial="annotate")
    note = forms.CharField(label=_("Reason"), max_length=255, widget=forms.Textarea(attrs={"rows": 3}))


class DiscrepancyEventInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = DiscrepancyEvent
    fields = ["at", "action", "by", "note_shown"]
    readonly_fields = fields
    extra = 0

    @admin.display(description=_("by"))
    def by(self, event: DiscrepancyEvent) -> str:
        return actor_label(event.actor_kind, event.actor_id)

    @admin.display(description=_("note"))
    def note_shown(self, event: DiscrepancyEvent) -> str:
        return discrepancy_note(event)


def discrepancy_note(event: DiscrepancyEvent) -> str:
    """A discrepancy event's note: who ran the run that opened it, or what a person or a run said."""
    if event.action in (DiscrepancyAction.OPENED, DiscrepancyAction.REOPENED):
        return run_by_text(event.note)
    return note_text(event.note)


@admin.register(Discrepancy)
class DiscrepancyAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """One row per discrepancy found: open until a later run matches it or a person resolves it."""

    list_display = [
        "day",
        "outcome",
        "source",
        "kind",
        "order",
        "reference",
        "ours",
        "theirs",
        "detail",
        "status",
        "last_note",
        "act",
    ]
    list_filter = ["status", "outcome", "source", "kind", ("day", admin.DateFieldListFilter)]
    # Exact, each on its own index (as the statement lines'): "=field" compared UPPER(field), which no index holds.
    search_fields = ["order_no__exact", "reference__exact"]
    search_help_text = _("An order number or a reference, in full.")
    date_hierarchy = "day"
    show_full_result_count = False
    inlines = [DiscrepancyEventInline]
    fields = [
        "day",
        "source",
        "kind",
        "outcome",
        "order",
        "reference",
        "ours",
        "theirs",
        "statement_line_no",
        "detail",
        "status",
        "opened_at",
        "last_seen_at",
        "closed_at",
        "closed_by_shown",
        "resolution_shown",
        "last_note",
        "items",
    ]
    readonly_fields = fields

    def get_urls(self) -> list[Any]:
        return [
            path(
                "<int:discrepancy_id>/act/",
                self.admin_site.admin_view(self.act_view),
                name="billing_discrepancy_act",
            ),
            *super().get_urls(),
        ]

    @admin.display(description=_("closed by"))
    def closed_by_shown(self, obj: Discrepancy) -> str:
        return actor_text(obj.closed_by) or "-"

    @admin.display(description=_("resolution"))
    def resolution_shown(self, obj: Discrepancy) -> str:
        return note_text(obj.resolution) or "-"

    @admin.display(description=_("order number"), ordering="order_no")
    def order(self, obj: Discrepancy) -> str:
        if not obj.order_no:
            return "-"
        url = reverse("admin:orders_order_changelist") + f"?q={obj.order_no}"
        return format_html('<a href="{}">{}</a>', url, obj.order_no)

    @admin.display(description=_("ours (yuan)"), ordering="our_amount_fen")
    def ours(self, obj: Discrepancy) -> str:
        return _yuan(obj.our_amount_fen)

    @admin.display(description=_("theirs (yuan)"), ordering="their_amount_fen")
    def theirs(self, obj: Discrepancy) -> str:
        return _yuan(obj.their_amount_fen)

    @admin.display(description=_("detail"))
    def detail(self, obj: Discrepancy) -> str:
        return obj.detail

    @admin.display(description=_("items"))
    def items(self, obj: Discrepancy) -> str:
        url = reverse("admin:billing_reconciliationitem_changelist") + f"?run_day={obj.day.isoformat()}"
        if obj.reference or obj.order_no:
            url += f"&q={obj.reference or obj.order_no}"
        return format_html('<a href="{}">{}</a>', url, _("the day's items"))

    @admin.display(description=_("action"))
    def act(self, obj: Discrepancy) -> str:
        url = reverse("admin:billing_discrepancy_act", args=[obj.pk])
        label = _("Resolve or annotate…") if obj.status == DiscrepancyStatus.OPEN else _("Annotate…")
        return format_html('<a class="button" href="{}">{}</a>', url, label)

    def act_view(self, request: HttpRequest, discrepancy_id: int) -> HttpResponse:
        discrepancy = get_object_or_404(Discrepancy, pk=discrepancy_id)
        if not request.user.has_perm(SETTLE_PERMISSION):
            raise PermissionDenied
        form = SettleForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            actor = Actor(ActorKind.ADMIN, request.user.get_username())
            action, note = form.cleaned_data["action"], form.cleaned_data["note"]
            try:
                if action == "resolve":
                    discrepancy_resolve(discrepancy_id=discrepancy.pk, note=note, actor=actor)
                else:
                    discrepancy_annotate(discrepancy_id=discrepancy.pk, note=note, actor=actor)
            except ApplicationError as exc:
                problems = [message for messages_ in exc.fields.values() for message in messages_]
                form.add_error(None, "; ".join(problems) if problems else str(exc.message))
            else:
                self.log_change(request, discrepancy, note_message("discrepancy", how=action, why=note))
                messages.success(request, _("Done: %(action)s.") % {"action": dict(form.ACTIONS)[action]})
                return redirect("admin:billing_discrepancy_changelist")
        context = {
            **self.admin_site.each_context(request),
            "title": _("Settle a reconciliation discrepancy"),
            "discrepancy": discrepancy,
            "events": [
                {
                    "at": e.at,
                    "action": e.get_action_display(),
                    "by": actor_label(e.actor_kind, e.actor_id),
                    "note": discrepancy_note(e),
                }
                for e in discrepancy.events.all()
            ],
            "closed_by": actor_text(discrepancy.closed_by),
            "resolution": note_text(discrepancy.resolution),
            "form": form,
            "opts": self.model._meta,
        }
        return render(request, "admin/billing/reconciliation/discrepancy_act.html", context)
