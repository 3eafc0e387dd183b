from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from backoffice.forms import WorkItemActionForm
from billing.models import (
    LedgerEntry,
    Payment,
    PaymentNotification,
    Refund,
    SmsConfirmation,
    SmsInbound,
    WorkItem,
)
from ipvas.actors import Actor, ActorKind
from ipvas.admin_helpers import ReadOnlyAdminMixin
from ipvas.errors import ApplicationError
from lifecycle import manual


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
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
    search_fields = ["=out_trade_no", "=provider_txn_id", "order__order_no"]
    list_select_related = ["order"]
    raw_id_fields = ["order"]


@admin.register(PaymentNotification)
class PaymentNotificationAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["received_at", "provider", "notification_id", "out_trade_no", "outcome"]
    list_filter = ["provider", "outcome"]
    search_fields = ["=out_trade_no", "=notification_id"]


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["created_at", "order", "kind", "amount_fen", "method", "provider", "provider_ref", "actor_kind"]
    list_filter = ["kind", "provider", "method", ("created_at", admin.DateFieldListFilter)]
    search_fields = ["order__order_no", "=provider_ref", "=idempotency_key"]
    list_select_related = ["order"]


@admin.register(Refund)
class RefundAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
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


@admin.register(SmsConfirmation)
class SmsConfirmationAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["created_at", "order", "phone", "status", "sent_at", "reply_text", "replied_at"]
    list_filter = ["status"]
    search_fields = ["=phone", "order__order_no"]
    list_select_related = ["order"]


@admin.register(SmsInbound)
class SmsInboundAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["created_at", "sender", "text", "outcome"]
    list_filter = ["outcome"]
    search_fields = ["=sender"]


@admin.register(WorkItem)
class WorkItemAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The stuck-work queue: what the system could not settle by itself, and what resolves it."""

    list_display = ["created_at", "order", "kind", "detail", "resolved_at", "resolved_by", "act"]
    list_filter = ["kind", ("resolved_at", admin.EmptyFieldListFilter)]
    search_fields = ["order__order_no"]
    list_select_related = ["order"]
    readonly_fields = ["order", "kind", "detail", "created_at", "resolved_at", "resolved_by", "resolution"]

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
        form = WorkItemActionForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            actor = Actor(ActorKind.ADMIN, request.user.get_username())
            action, note = form.cleaned_data["action"], form.cleaned_data["note"]
            try:
                if action == "retry_refund":
                    manual.work_item_retry_refund(item_id=item.pk, note=note, actor=actor)
                elif action == "retry_provisioning":
                    manual.work_item_retry_provisioning(item_id=item.pk, note=note, actor=actor)
                else:
                    manual.work_item_resolve(
                        item_id=item.pk, note=note, actor=actor, cash_paid_back=action == "cash_paid_back"
                    )
            except ApplicationError as exc:
                problems = [message for messages_ in exc.fields.values() for message in messages_]
                form.add_error(None, "; ".join(problems) if problems else str(exc.message))
            else:
                self.log_change(request, item, f"{action}: {note}")
                messages.success(request, _("Done: %(action)s.") % {"action": dict(form.ACTIONS)[action]})
                return redirect("admin:billing_workitem_changelist")
        context = {
            **self.admin_site.each_context(request),
            "title": _("Resolve work item"),
            "item": item,
            "form": form,
            "opts": self.model._meta,
        }
        return render(request, "admin/billing/workitem_act.html", context)
