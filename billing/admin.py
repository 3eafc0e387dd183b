from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from billing.models import (
    LedgerEntry,
    Payment,
    PaymentNotification,
    Refund,
    SmsConfirmation,
    SmsInbound,
    WorkItem,
)
from orders.admin import ReadOnlyAdminMixin


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
    """The stuck-work queue: what the system could not settle by itself."""

    list_display = ["created_at", "order", "kind", "detail", "resolved_at", "resolved_by"]
    list_filter = ["kind", ("resolved_at", admin.EmptyFieldListFilter)]
    search_fields = ["order__order_no"]
    list_select_related = ["order"]
    actions = ["mark_resolved"]

    @admin.action(description=_("Mark as resolved"))
    def mark_resolved(self, request: HttpRequest, queryset: Any) -> None:
        done = queryset.filter(resolved_at__isnull=True).update(
            resolved_at=timezone.now(), resolved_by=request.user.get_username(), resolution="marked resolved in admin"
        )
        messages.success(request, _("%(count)d item(s) marked resolved.") % {"count": done})
