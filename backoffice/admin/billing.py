from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet, Subquery
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.utils import formats, timezone
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from backoffice.actors import actor_label, actor_text, scrub
from backoffice.forms import WorkItemActionForm
from backoffice.history import note_message
from backoffice.reasons import note_text, outcome_text
from backoffice.work import actions_for, resolution_text
from billing.models import (
    LedgerEntry,
    Payment,
    PaymentNotification,
    ProviderContract,
    Refund,
    SmsConfirmation,
    SmsInbound,
    WorkItem,
)
from ipvas.actors import Actor, ActorKind
from ipvas.admin_helpers import ReadOnlyAdminMixin
from ipvas.errors import ApplicationError
from lifecycle import manual
from orders.models import Order
from orders.models.order import mask_phone


class ExactSearchOrOrderNumber:
    """The search of a table of a year's millions: the term, whole, is one of ``search_fields`` (exact lookups on
    indexed columns) or the number of the row's order. The order is found first, on its own (its number is unique):
    an OR across the join with the orders had PostgreSQL read both tables whole (docs/performance.md)."""

    search_fields: list[str]

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str) -> tuple[QuerySet, bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        match = Q(order_id=Subquery(Order.objects.filter(order_no=term).values("pk")[:1]))
        for field in self.search_fields:
            match |= Q(**{field: term})
        return queryset.filter(match), False


@admin.register(Payment)
class PaymentAdmin(ExactSearchOrOrderNumber, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "out_trade_no",
        "provider",
        "method",
        "amount_fen",
        "status",
        "provider_txn_id",
        "created_at",
        "paid_at",
    ]
    list_filter = ["provider", "method", "status"]
    search_fields = ["out_trade_no__exact", "provider_txn_id__exact"]
    search_help_text = _("An out_trade_no, a provider's transaction id or an order number, in full.")
    # A year's payments: counted once, sorted on an index only (each other column sorted them all, 1.1 s).
    show_full_result_count = False
    sortable_by = ["out_trade_no", "provider", "provider_txn_id", "created_at"]
    list_select_related = ["order"]
    raw_id_fields = ["order"]


@admin.register(PaymentNotification)
class PaymentNotificationAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["received_at", "provider", "notification_id", "out_trade_no", "result"]
    list_filter = ["provider"]
    search_fields = ["=out_trade_no", "=notification_id"]
    exclude = ["payment", "contract", "outcome"]
    readonly_fields = ["of_payment", "result"]

    @admin.display(description=_("payment"))
    def of_payment(self, notification: PaymentNotification) -> str:
        return str(notification.payment) if notification.payment_id else "-"

    @admin.display(description=_("outcome"))
    def result(self, notification: PaymentNotification) -> str:
        return outcome_text(notification.outcome)


@admin.register(ProviderContract)
class ProviderContractAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """WeChat Pay and Alipay deduction contracts (issue #14): signed in the first scan, ended by the user or by us.
    Read-only: they change only through the providers' notifications and lifecycle.contracts."""

    list_display = ["contract_code", "provider", "status", "order", "subscription", "signed_at", "ended_at", "ended_by"]
    list_filter = ["provider", "status", "ended_by"]
    search_fields = ["=contract_code", "=provider_contract_id", "order__order_no", "subscription__subscription_no"]
    list_select_related = ["order", "subscription"]
    raw_id_fields = ["order", "payment", "subscription"]


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ExactSearchOrOrderNumber, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["created_at", "order", "kind", "amount_fen", "method", "provider", "provider_ref", "by"]
    list_filter = ["kind", "provider", "method", ("created_at", admin.DateFieldListFilter)]
    search_fields = ["provider_ref__exact", "idempotency_key__exact"]
    search_help_text = _("An order number, a provider's reference or an idempotency key, in full.")
    # As the payments: counted once, sorted on an index only (kind, amount or method took 1.0-1.3 s).
    show_full_result_count = False
    sortable_by = ["created_at", "order", "provider", "provider_ref"]
    list_select_related = ["order"]
    fields = [
        "created_at", "order", "of_payment", "kind", "amount_fen", "method", "provider", "provider_ref",
        "idempotency_key", "by", "note",
    ]  # fmt: skip
    readonly_fields = fields

    @admin.display(description=_("by"))
    def by(self, entry: LedgerEntry) -> str:
        return actor_label(entry.actor_kind, entry.actor_id)

    @admin.display(description=_("payment"))
    def of_payment(self, entry: LedgerEntry) -> str:
        return str(entry.payment) if entry.payment_id else "-"


@admin.register(Refund)
class RefundAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    fields = [
        "order", "payment", "provider", "out_refund_no", "amount_fen", "reason_shown", "status",
        "provider_refund_id", "attempts", "last_error", "requested_by", "created_at", "updated_at", "completed_at",
    ]  # fmt: skip
    readonly_fields = fields
    list_display = [
        "out_refund_no",
        "provider",
        "amount_fen",
        "status",
        "attempts",
        "last_error",
        "created_at",
        "completed_at",
    ]
    list_filter = ["provider", "status"]
    search_fields = ["=out_refund_no", "order__order_no"]
    list_select_related = ["order"]

    @admin.display(description=_("requested by"))
    def requested_by(self, refund: Refund) -> str:
        return actor_label(refund.requested_by_kind, refund.requested_by_id)

    @admin.display(description=_("reason"))
    def reason_shown(self, refund: Refund) -> str:
        return scrub(note_text(refund.reason))


@admin.register(SmsConfirmation)
class SmsConfirmationAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    # The number masked in the list, as the orders' list shows it; whole on the record's page.
    list_display = ["created_at", "of_order", "masked_phone", "status", "sent_at", "reply_text", "replied_at"]
    list_filter = ["status"]
    # Exact, on the order's indexes (a confirmation goes to its order's mobile number): across two tables the
    # search read both whole (docs/performance.md).
    search_fields = ["order__phone__exact", "order__order_no__exact"]
    show_full_result_count = False
    list_select_related = ["order"]
    exclude = ["order"]
    readonly_fields = ["of_order"]

    @admin.display(description=_("order"), ordering="order__order_no")
    def of_order(self, confirmation: SmsConfirmation) -> str:
        return confirmation.order.order_no

    @admin.display(description=_("mobile number"))
    def masked_phone(self, confirmation: SmsConfirmation) -> str:
        return mask_phone(confirmation.phone) or "-"


@admin.register(SmsInbound)
class SmsInboundAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["created_at", "masked_sender", "text", "result"]
    search_fields = ["=sender"]
    exclude = ["confirmation", "outcome"]
    readonly_fields = ["of_confirmation", "result"]

    @admin.display(description=_("from"))
    def masked_sender(self, inbound: SmsInbound) -> str:
        return mask_phone(inbound.sender) or "-"

    @admin.display(description=_("SMS confirmation"))
    def of_confirmation(self, inbound: SmsInbound) -> str:
        return str(inbound.confirmation) if inbound.confirmation_id else "-"

    @admin.display(description=_("outcome"))
    def result(self, inbound: SmsInbound) -> str:
        return outcome_text(inbound.outcome)


class WorkStateFilter(admin.SimpleListFilter):
    """The queue opens on what is still to do; the resolved items are one click away."""

    title = _("state")
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("open", _("open")), ("resolved", _("resolved")), ("all", _("all"))]

    def choices(self, changelist: Any) -> Any:
        current = self.value() or "open"
        for value, label in self.lookup_choices:
            yield {
                "selected": current == value,
                "query_string": changelist.get_query_string({self.parameter_name: value}),
                "display": label,
            }

    def queryset(self, request: HttpRequest, queryset: Any) -> Any:
        state = self.value() or "open"
        if state == "open":
            return queryset.filter(resolved_at__isnull=True)
        if state == "resolved":
            return queryset.filter(resolved_at__isnull=False)
        return queryset


@admin.register(WorkItem)
class WorkItemAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The stuck-work queue: what the system could not settle by itself, and what resolves it."""

    # Few columns, so that what the item is about and what to do with it stay readable beside the filters.
    list_display = ["created_at", "order", "what", "details", "state", "act"]
    list_filter = [WorkStateFilter, "kind"]
    search_fields = ["order__order_no"]
    list_select_related = ["order"]
    fields = ["order", "what", "details", "created_at", "resolved_at", "by", "how_resolved"]
    readonly_fields = fields

    @admin.display(description=_("kind"), ordering="kind")
    def what(self, item: WorkItem) -> str:
        return item.title

    @admin.display(description=_("detail"))
    def details(self, item: WorkItem) -> str:
        return scrub(note_text(item.detail))

    @admin.display(description=_("resolved by"))
    def by(self, item: WorkItem) -> str:
        return actor_text(item.resolved_by) or "-"

    @admin.display(description=_("resolution"))
    def how_resolved(self, item: WorkItem) -> str:
        return resolution_text(item.resolution) or "-"

    @admin.display(description=_("state"), ordering="resolved_at")
    def state(self, item: WorkItem) -> str:
        if item.resolved_at is None:
            return str(_("open"))
        return gettext("resolved at %(when)s by %(who)s") % {
            "when": formats.date_format(timezone.localtime(item.resolved_at), "Y-m-d H:i"),
            "who": actor_text(item.resolved_by),
        }

    @admin.display(description=_("action"))
    def act(self, item: WorkItem) -> str:
        if item.resolved_at:
            return "-"
        url = reverse("admin:billing_workitem_act", args=[item.pk])
        return format_html('<a class="button" href="{}">{}</a>', url, _("Resolve…"))

    def get_urls(self) -> list[Any]:
        return [
            path("<int:item_id>/act/", self.admin_site.admin_view(self.act_view), name="billing_workitem_act"),
            *super().get_urls(),
        ]

    def act_view(self, request: HttpRequest, item_id: int) -> HttpResponse:
        item = get_object_or_404(WorkItem.objects.select_related("order"), pk=item_id)
        if not request.user.has_perm("billing.change_workitem"):
            raise PermissionDenied
        form = WorkItemActionForm(request.POST or None, actions=actions_for(item))
        # Settled: nothing more can be done with it (the page says so; the service would refuse too).
        resolved = item.resolved_at is not None
        if not resolved and request.method == "POST" and form.is_valid():
            actor = Actor(ActorKind.ADMIN, request.user.get_username())
            action, note = form.cleaned_data["action"], form.cleaned_data["note"]
            try:
                if action == "retry_refund":
                    manual.work_item_retry_refund(item_id=item.pk, note=note, actor=actor)
                elif action == "paid_back_by_hand":
                    manual.work_item_paid_back_by_hand(item_id=item.pk, note=note, actor=actor)
                elif action == "refunded_at_smp_by_hand":
                    manual.work_item_refunded_at_smp_by_hand(item_id=item.pk, note=note, actor=actor)
                elif action == "retry_provisioning":
                    manual.work_item_retry_provisioning(item_id=item.pk, note=note, actor=actor)
                elif action == "deduction_failed_by_hand":
                    manual.work_item_deduction_failed_by_hand(item_id=item.pk, note=note, actor=actor)
                else:
                    manual.work_item_resolve(
                        item_id=item.pk, note=note, actor=actor, cash_paid_back=action == "cash_paid_back"
                    )
            except ApplicationError as exc:
                problems = [message for messages_ in exc.fields.values() for message in messages_]
                form.add_error(None, "; ".join(problems) if problems else str(exc.message))
            else:
                self.log_change(request, item, note_message("work_item", how=action, why=note))
                messages.success(request, _("Done: %(action)s.") % {"action": form.actions[action]})
                return redirect("admin:billing_workitem_changelist")
        context = {
            **self.admin_site.each_context(request),
            "title": _("Resolve work item"),
            "item": item,
            "item_title": item.title,
            "item_detail": scrub(note_text(item.detail)),
            "resolved_note": gettext("This item was resolved already.") if resolved else "",
            "form": form,
            "opts": self.model._meta,
        }
        return render(request, "admin/billing/workitem_act.html", context)
