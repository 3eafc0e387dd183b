from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.models import LogEntry
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import path, reverse
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _

from backoffice.forms import RefundForm
from billing.models import LedgerEntry, Payment, Refund, WorkItem
from billing.services.ledger import order_totals
from ipvas.actors import Actor, ActorKind
from ipvas.admin_helpers import ReadOnlyAdminMixin
from ipvas.errors import ApplicationError
from ipvas.money import fen_to_yuan
from lifecycle import manual
from orders.constants import OrderStatus
from orders.models import Entitlement, Order, Product


class ProductAdminForm(forms.ModelForm):
    change_reason = forms.CharField(
        label=_("Why"),
        max_length=200,
        help_text=_("Kept in the admin history with who changed what, and when."),
    )

    class Meta:
        model = Product
        fields = [
            "code", "name", "description", "kind", "is_active", "price_fen", "view_hours", "smp_product_code",
            "smp_zero_price_package_code", "crm_activity_code", "channels", "payment_methods", "renewable",
            "on_sale_from", "on_sale_until",
        ]  # fmt: skip


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    form = ProductAdminForm
    list_display = [
        "code",
        "name",
        "kind",
        "price_fen",
        "price_in_yuan",
        "channels",
        "renewable",
        "is_active",
        "on_sale_from",
        "on_sale_until",
    ]
    list_filter = ["kind", "renewable", "is_active"]
    search_fields = ["code", "name", "smp_product_code"]
    readonly_fields = ["price_in_yuan", "created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["code", "name", "description", "kind", "is_active"]}),
        (_("Price"), {"fields": ["price_fen", "price_in_yuan", "view_hours"]}),
        (_("Partner codes"), {"fields": ["smp_product_code", "smp_zero_price_package_code", "crm_activity_code"]}),
        (
            _("Where and how it is sold"),
            {"fields": ["channels", "payment_methods", "renewable", "on_sale_from", "on_sale_until"]},
        ),
        (_("History"), {"fields": ["created_at", "updated_at", "change_reason"]}),
    ]

    def construct_change_message(self, request: HttpRequest, form: Any, formsets: Any, add: bool = False) -> str:
        """What changed, as admin's history shows it, and why (the history keeps both)."""
        what = LogEntry(change_message=json.dumps(super().construct_change_message(request, form, formsets, add)))
        return f"{what.get_change_message()} Why: {form.cleaned_data.get('change_reason', '')}"

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Orders keep pointing at their product: a product is retired (not active), never deleted.
        return False

    @admin.display(description=_("price (yuan)"))
    def price_in_yuan(self, product: Product) -> str:
        return f"¥{product.price_yuan}" if product.price_fen is not None else "-"

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        initial = super().get_changeform_initial_data(request)
        initial.setdefault("channels", ["epg", "crm"])
        return initial


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
        "auto_renew",
        "created_at",
    ]
    list_filter = [
        "status",
        "channel",
        "product",
        "payment_method",
        "failure_code",
        "auto_renew",
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
        "auto_renew",
        "subscription",
        "renewal_period",
        "created_at",
        "updated_at",
        "history_and_money",
    ]
    readonly_fields = fields

    @admin.display(description=_("history and money"))
    def history_and_money(self, order: Order) -> SafeString:
        """The transition history and the ledger side by side, each in time order."""
        totals = order_totals(order)
        return render_to_string(
            "admin/orders/order/history_and_money.html",
            {
                "events": list(order.events.all()),
                "entries": list(LedgerEntry.objects.filter(order=order).order_by("created_at", "pk")),
                "totals": {k: fen_to_yuan(v) for k, v in totals.items()},
            },
        )

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None) -> Any:
        extra_context = extra_context or {}
        order = Order.objects.filter(pk=object_id).only("status").first()
        if order is not None and order.status == OrderStatus.COMPLETED:
            extra_context["refund_url"] = reverse("admin:orders_order_refund", args=[object_id])
        return super().change_view(request, object_id, form_url, extra_context)

    def get_urls(self) -> list[Any]:
        return [
            path("<int:order_id>/refund/", self.admin_site.admin_view(self.refund_view), name="orders_order_refund"),
            *super().get_urls(),
        ]

    def refund_view(self, request: HttpRequest, order_id: int) -> HttpResponse:
        """Refund a completed order by hand: the money goes back the way it came."""
        order = get_object_or_404(Order.objects.select_related("product"), pk=order_id)
        if not request.user.has_perm("billing.add_refund"):
            raise PermissionDenied
        form = RefundForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                started = manual.refund_by_admin(
                    order_id=order.pk,
                    reason=form.cleaned_data["reason"],
                    amount_fen=form.cleaned_data["amount_yuan"],
                    actor=Actor(ActorKind.ADMIN, request.user.get_username()),
                )
            except ApplicationError as exc:
                problems = [message for field_messages in exc.fields.values() for message in field_messages]
                form.add_error(None, "; ".join(problems) if problems else str(exc.message))
            else:
                self.log_change(request, order, f"refund requested ({started}): {form.cleaned_data['reason']}")
                messages.success(request, _("Refund started: %(how)s.") % {"how": started})
                return redirect("admin:orders_order_change", order.pk)
        context = {
            **self.admin_site.each_context(request),
            "title": _("Refund order %(no)s") % {"no": order.order_no},
            "order": order,
            "totals": {k: fen_to_yuan(v) for k, v in order_totals(order).items()},
            "form": form,
            "opts": self.model._meta,
        }
        return render(request, "admin/orders/order/refund.html", context)

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


@admin.register(LogEntry)
class AdminChangeAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Every change made in admin (who, when, what, why): readable, never editable."""

    list_display = ["action_time", "user", "content_type", "object_repr", "action_flag", "change_message"]
    list_filter = ["action_flag", "content_type", ("action_time", admin.DateFieldListFilter)]
    search_fields = ["object_repr", "change_message", "user__username"]
    list_select_related = ["user", "content_type"]
