from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from billing.models import Payment, Refund, WorkItem
from orders.models import Entitlement, Order, OrderEvent, Product


class ReadOnlyAdminMixin:
    """Records of what happened are shown, never edited, from admin."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = [
        "code",
        "name",
        "kind",
        "price_fen",
        "price_in_yuan",
        "channels",
        "is_active",
        "on_sale_from",
        "on_sale_until",
    ]
    list_filter = ["kind", "is_active"]
    search_fields = ["code", "name", "smp_product_code"]
    readonly_fields = ["price_in_yuan", "created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["code", "name", "description", "kind", "is_active"]}),
        (_("Price"), {"fields": ["price_fen", "price_in_yuan", "view_hours"]}),
        (_("Partner codes"), {"fields": ["smp_product_code", "smp_zero_price_package_code", "crm_activity_code"]}),
        (_("Where and how it is sold"), {"fields": ["channels", "payment_methods", "on_sale_from", "on_sale_until"]}),
        (_("History"), {"fields": ["created_at", "updated_at"]}),
    ]

    @admin.display(description=_("price (yuan)"))
    def price_in_yuan(self, product: Product) -> str:
        return f"¥{product.price_yuan}" if product.price_fen is not None else "-"

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        initial = super().get_changeform_initial_data(request)
        initial.setdefault("channels", ["epg", "crm"])
        return initial


class OrderEventInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = OrderEvent
    fields = ["at", "from_status", "to_status", "action", "actor_kind", "actor_id", "reason", "data"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name_plural = _("transition history")


class PaymentInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = Payment
    fields = [
        "created_at",
        "method",
        "provider",
        "out_trade_no",
        "amount_fen",
        "status",
        "provider_txn_id",
        "paid_at",
        "expires_at",
    ]
    readonly_fields = fields
    extra = 0
    can_delete = False


class RefundInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = Refund
    fields = ["created_at", "out_refund_no", "amount_fen", "status", "attempts", "last_error", "reason", "completed_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False


class WorkItemInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = WorkItem
    fields = ["created_at", "kind", "detail", "resolved_at", "resolved_by", "resolution"]
    readonly_fields = fields
    extra = 0
    can_delete = False


class EntitlementInline(ReadOnlyAdminMixin, admin.StackedInline):
    model = Entitlement
    fields = ["product_code", "content_id", "starts_at", "ends_at", "smp_subscription_id", "revoked_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(Order)
class OrderAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "order_no",
        "status",
        "channel",
        "product",
        "payment_method",
        "amount_yuan",
        "tv_account",
        "masked_phone",
        "failure_code",
        "created_at",
    ]
    list_filter = [
        "status",
        "channel",
        "product",
        "payment_method",
        "failure_code",
        ("created_at", admin.DateFieldListFilter),
    ]
    search_fields = ["=order_no", "=tv_account", "=phone"]
    date_hierarchy = "created_at"
    list_select_related = ["product"]
    show_full_result_count = False
    inlines = [PaymentInline, RefundInline, WorkItemInline, EntitlementInline]
    fields = [
        "order_no",
        "status",
        "channel",
        "product",
        "content_id",
        "amount_fen",
        "payment_method",
        "tv_account",
        "phone",
        "failure_code",
        "failure_detail",
        "deadline_at",
        "status_changed_at",
        "attempts",
        "origin_kind",
        "origin_id",
        "clerk",
        "store_code",
        "created_at",
        "updated_at",
    ]
    readonly_fields = fields

    @admin.display(description=_("amount (yuan)"), ordering="amount_fen")
    def amount_yuan(self, order: Order) -> str:
        return f"¥{order.amount_yuan}"

    @admin.display(description=_("mobile"))
    def masked_phone(self, order: Order) -> str:
        return order.phone_masked or "-"

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_active and request.user.is_staff and super().has_view_permission(request, obj))


@admin.register(Entitlement)
class EntitlementAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["tv_account", "product_code", "content_id", "starts_at", "ends_at", "revoked_at", "order"]
    list_filter = ["kind", "product_code"]
    search_fields = ["=tv_account", "order__order_no"]
    list_select_related = ["order"]
    raw_id_fields = ["order"]
