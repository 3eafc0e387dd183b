from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext, pgettext
from django.utils.translation import gettext_lazy as _

from backoffice.actors import actor_label, actor_text, client_names, scrub
from backoffice.admin.staff import content_type_label
from backoffice.forms import RefundForm
from backoffice.history import change_text, changed_values, note_message, outcome_text
from backoffice.reasons import note_text
from backoffice.work import resolution_text
from billing.models import LedgerEntry, Payment, Provider, Refund, WorkItem
from billing.services.ledger import order_totals
from ipvas.actors import Actor, ActorKind
from ipvas.admin_helpers import ReadOnlyAdminMixin
from ipvas.errors import ApplicationError
from ipvas.money import fen_to_yuan
from lifecycle import manual
from orders.constants import PROVIDER_METHODS, OrderStatus, PaymentMethod, SalesChannel, SubscriptionStatus
from orders.events import order_action_label
from orders.models import Entitlement, Order, Product, Subscription
from orders.validation import normalize_mainland_mobile


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
        "sold_on",
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

    def construct_change_message(
        self, request: HttpRequest, form: Any, formsets: Any, add: bool = False
    ) -> list[dict[str, Any]]:
        """What changed, from what to what, and why: kept as JSON, said in the reader's language
        (backoffice.history)."""
        message: list[dict[str, Any]] = [{"added": {}}] if add else []
        if not add:
            message.append({"values": changed_values(form, skip=("change_reason",))})
        message.append({"why": form.cleaned_data.get("change_reason", "")})
        return message

    def save_model(self, request: HttpRequest, obj: Product, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        stopped = change and ({"is_active", "renewable"} & set(form.changed_data))
        if stopped and not (obj.is_active and obj.renewable):
            # Taken off sale, or no longer renewable: new orders stop; the subscriptions the customers agreed
            # to go on renewing (docs/decisions.md). Whoever made the change is told how many, and where.
            renewing = Subscription.objects.filter(product=obj, status=SubscriptionStatus.ACTIVE).count()
            if renewing:
                url = reverse("admin:orders_subscription_changelist")
                messages.warning(
                    request,
                    format_html(
                        gettext(
                            "{count} active subscriptions of this product go on renewing: new orders stop, the "
                            'subscriptions do not. To end them, cancel them in <a href="{url}">Subscriptions</a>.'
                        ),
                        count=renewing,
                        url=f"{url}?product__id__exact={obj.pk}&status__exact=active",
                    ),
                )

    @admin.display(description=_("channels"))
    def sold_on(self, product: Product) -> str:
        labels = dict(SalesChannel.choices)
        return pgettext("list separator", ", ").join(str(labels.get(c, c)) for c in product.channels) or "-"

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
    # What fits the form's width: the provider is the method's, the window's end is on the payment's own page.
    model = Payment
    fields = ["created_at", "method", "amount", "status", "out_trade_no", "provider_txn_id", "paid_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    @admin.display(description=_("amount (yuan)"))
    def amount(self, payment: Payment) -> str:
        return fen_to_yuan(payment.amount_fen)


class RefundInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = Refund
    fields = ["created_at", "out_refund_no", "amount", "status", "attempts", "last_error", "why", "completed_at"]
    readonly_fields = fields

    @admin.display(description=_("amount (yuan)"))
    def amount(self, refund: Refund) -> str:
        return fen_to_yuan(refund.amount_fen)

    @admin.display(description=_("reason"))
    def why(self, refund: Refund) -> str:
        return scrub(note_text(refund.reason))

    extra = 0
    can_delete = False


class WorkItemInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = WorkItem
    fields = ["created_at", "what", "details", "resolved_at", "by", "how_resolved"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    @admin.display(description=_("kind"))
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
        return resolution_text(item.resolution)


class EntitlementInline(ReadOnlyAdminMixin, admin.StackedInline):
    model = Entitlement
    fields = ["product_code", "content_id", "starts_at", "ends_at", "smp_subscription_id", "revoked_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(Order)
class OrderAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    # What fits beside the filters (failure codes and automatic renewal are filters, and on each order's page).
    list_display = [
        "order_no",
        "status",
        "channel",
        "product_name",
        "payment_method",
        "amount_yuan",
        "tv_account",
        "masked_phone",
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
    # Exact lookups, each on its own index: a year holds millions of orders, and "=field" (iexact) compares
    # UPPER(field), which no index holds, so every search read the whole table (docs/performance.md).
    search_fields = ["order_no__exact", "tv_account__exact", "phone__exact"]
    search_help_text = _("An order number, a TV account or a mobile number, in full.")
    date_hierarchy = "created_at"

    def get_search_results(self, request: HttpRequest, queryset: Any, search_term: str) -> tuple[Any, bool]:
        # A mobile number as people write it ("138 0000 0001", "+86 138…") is the number orders keep.
        try:
            search_term = normalize_mainland_mobile(search_term)
        except ValidationError:
            pass  # not a mobile number: an order number or a TV account, as typed
        return super().get_search_results(request, queryset, search_term)

    list_select_related = ["product"]
    show_full_result_count = False
    # Sorted on an index only: a million orders sorted by channel, product, method or amount took 1.2-1.5 s, and
    # those are filters.
    sortable_by = ["order_no", "status", "tv_account", "created_at"]
    inlines = [PaymentInline, RefundInline, WorkItemInline, EntitlementInline]
    fields = [
        "order_no",
        "status",
        "channel",
        "product",
        "content_id",
        "amount_yuan",
        "payment_method",
        "tv_account",
        "phone",
        "failure_code",
        "failure_detail",
        "deadline_at",
        "status_changed_at",
        "attempts",
        "placed_by",
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

    @admin.display(description=_("placed by"))
    def placed_by(self, order: Order) -> str:
        return actor_label(order.origin_kind, order.origin_id) if order.origin_kind else "-"

    @admin.display(description=_("history and money"))
    def history_and_money(self, order: Order) -> SafeString:
        """The transition history, then the ledger, each in time order, in words."""
        totals = order_totals(order)
        events = list(order.events.all())
        entries = list(LedgerEntry.objects.filter(order=order).order_by("created_at", "pk"))
        texts = [*(e.actor_id for e in events), *(e.reason for e in events), *(x.actor_id for x in entries)]
        names = client_names(texts)
        statuses = dict(OrderStatus.choices)
        providers = dict(Provider.choices)
        methods = dict(PaymentMethod.choices)
        return render_to_string(
            "admin/orders/order/history_and_money.html",
            {
                "events": [
                    {
                        "at": e.at,
                        "from": statuses.get(e.from_status, e.from_status),
                        "to": statuses.get(e.to_status, e.to_status),
                        "action": order_action_label(e.action),
                        "by": actor_label(e.actor_kind, e.actor_id, names),
                        "reason": scrub(note_text(e.reason), names),
                    }
                    for e in events
                ],
                "entries": [
                    {
                        "at": entry.created_at,
                        "kind": entry.get_kind_display(),
                        "amount": fen_to_yuan(entry.amount_fen),
                        "method": methods.get(entry.method, entry.method),
                        "provider": providers.get(entry.provider, entry.provider),
                        "reference": entry.provider_ref,
                        "by": actor_label(entry.actor_kind, entry.actor_id, names),
                    }
                    for entry in entries
                ],
                "totals": {k: fen_to_yuan(v) for k, v in totals.items()},
            },
        )

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None) -> Any:
        extra_context = extra_context or {}
        # Admin's own lookup answers an id that is no number ("abc", a NUL) with "does not exist"; this one too.
        order = Order.objects.filter(pk=object_id).only("status").first() if str(object_id).isdigit() else None
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
        totals = order_totals(order)
        # Only a provider's refund can give back part of the money; the SMP's reversal and the store's cash
        # payback are whole (lifecycle.manual).
        partial = order.payment_method in PROVIDER_METHODS
        refundable = manual.refundable_fen(order)
        if refundable is None:
            # Its money is all on its way back: nothing to offer until that refund is done.
            messages.warning(request, _("A refund of this order is under way."))
            return redirect("admin:orders_order_change", order.pk)
        form = RefundForm(request.POST or None, refundable_fen=refundable, partial=partial)
        if request.method == "POST" and form.is_valid():
            try:
                started = manual.refund_by_admin(
                    order_id=order.pk,
                    reason=form.cleaned_data["reason"],
                    amount_fen=form.cleaned_data.get("amount_yuan"),
                    actor=Actor(ActorKind.ADMIN, request.user.get_username()),
                )
            except ApplicationError as exc:
                problems = [message for field_messages in exc.fields.values() for message in field_messages]
                form.add_error(None, "; ".join(problems) if problems else str(exc.message))
            else:
                if started == "already_under_way":  # a second click, or another admin's: nothing new started
                    messages.warning(request, _("A refund of this order is under way."))
                    return redirect("admin:orders_order_change", order.pk)
                self.log_change(
                    request, order, note_message("refund_requested", how=started, why=form.cleaned_data["reason"])
                )
                messages.success(request, _("Refund started: %(how)s.") % {"how": outcome_text(started)})
                return redirect("admin:orders_order_change", order.pk)
        context = {
            **self.admin_site.each_context(request),
            "title": _("Refund order %(no)s") % {"no": order.order_no},
            "order": order,
            "totals": {k: fen_to_yuan(v) for k, v in totals.items()},
            "partial": partial,
            "form": form,
            "opts": self.model._meta,
        }
        return render(request, "admin/orders/order/refund.html", context)

    @admin.display(description=_("product"), ordering="product__name")
    def product_name(self, order: Order) -> str:
        return order.product.name

    @admin.display(description=_("amount (yuan)"), ordering="amount_fen")
    def amount_yuan(self, order: Order) -> str:
        return f"¥{order.amount_yuan}"

    @admin.display(description=_("mobile"))
    def masked_phone(self, order: Order) -> str:
        return order.phone_masked or "-"

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_active and request.user.is_staff and super().has_view_permission(request, obj))


class ProductCodeFilter(admin.SimpleListFilter):
    """The products' codes, from the products: the codes the entitlements hold, without reading them all."""

    title = _("product code")
    parameter_name = "product_code"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(code, code) for code in Product.objects.order_by("code").values_list("code", flat=True)]

    def queryset(self, request: HttpRequest, queryset: Any) -> Any:
        return queryset.filter(product_code=self.value()) if self.value() else queryset


@admin.register(Entitlement)
class EntitlementAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["tv_account", "product_code", "content_id", "starts_at", "ends_at", "revoked_at", "order"]
    list_filter = ["kind", ProductCodeFilter]
    # Found through the order's indexes (an entitlement's account is its order's): exact, in full.
    search_fields = ["order__tv_account__exact", "order__order_no__exact"]
    search_help_text = _("A TV account or an order number, in full.")
    show_full_result_count = False
    list_select_related = ["order"]
    raw_id_fields = ["order"]


class ContentTypeFilter(admin.SimpleListFilter):
    """The kinds of object admin changed, named in the current language."""

    title = _("content type")
    parameter_name = "content_type"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        used = LogEntry.objects.values_list("content_type", flat=True).distinct()
        kinds = ContentType.objects.filter(pk__in=used)
        return sorted(((str(kind.pk), content_type_label(kind)) for kind in kinds), key=lambda pair: pair[1])

    def queryset(self, request: HttpRequest, queryset: Any) -> Any:
        return queryset.filter(content_type_id=self.value()) if self.value() else queryset


@admin.register(LogEntry)
class AdminChangeAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Every change made in admin (who, when, what, why): readable, never editable.

    The changed object is named, not identified by its id: an EPG client's id holds its key's hash.
    """

    list_display = ["action_time", "user", "of_kind", "object_repr", "action_flag", "what_changed"]
    list_filter = ["action_flag", ContentTypeFilter, ("action_time", admin.DateFieldListFilter)]
    search_fields = ["object_repr", "change_message", "user__username"]
    list_select_related = ["user", "content_type"]
    fields = ["action_time", "user", "of_kind", "object_repr", "action_flag", "what_changed"]
    readonly_fields = fields

    @admin.display(description=_("content type"), ordering="content_type")
    def of_kind(self, entry: LogEntry) -> str:
        return content_type_label(entry.content_type)

    @admin.display(description=_("change message"))
    def what_changed(self, entry: LogEntry) -> str:
        return change_text(entry)
