"""Subscriptions in admin (docs/interfaces.md §8): the list, each one's whole life (renewals, notices,
events, the evidence of consent), read-only; and the one thing staff do by hand, cancel with a reason."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.utils import formats, timezone
from django.utils.dateparse import parse_datetime
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext, pgettext_lazy

from backoffice.actors import actor_label, scrub, scrub_data
from backoffice.forms import SubscriptionCancelForm
from backoffice.history import note_message
from backoffice.reasons import note_text
from billing.models import Provider
from ipvas.actors import Actor, ActorKind
from ipvas.admin_helpers import ReadOnlyAdminMixin
from ipvas.errors import ApplicationError
from lifecycle.subscriptions import subscription_cancel
from orders.constants import RENEWAL_METHODS, CancelChannel, Channel, OrderStatus, SalesChannel, SubscriptionStatus
from orders.events import subscription_action_label
from orders.models import Order, Subscription, SubscriptionEvent, SubscriptionNotice
from orders.subscription_selectors import renewal_due_within
from orders.validation import normalize_mainland_mobile

# Who may cancel a subscription from admin: the model's change permission (nothing else of it is editable).
CANCEL_PERMISSION = "orders.change_subscription"


def _when(value: Any, *, seconds: bool = True) -> str:
    if not value:
        return "-"
    return formats.date_format(timezone.localtime(value), "Y-m-d H:i:s" if seconds else "Y-m-d H:i")


# What an event's details hold, by key: said in words (the values are numbers, order numbers and dates).
DETAIL_LABELS = {
    "period": _("period"),
    "order_no": _("order number"),
    "status": _("status"),
    "channel": _("channel"),
    "renewal_at": _("renewal at"),
    "period_end": _("paid until"),
    "renewal_in_flight": _("renewal order in flight"),
}


def event_details(data: Any) -> str:
    """An event's details (JSON) as "label: value" pairs; keys without a label are shown as they are."""
    if not data:
        return "-"
    if not isinstance(data, dict):
        return scrub(str(data))
    cancel_channels = dict(CancelChannel.choices)
    statuses = dict(OrderStatus.choices)
    pairs = []
    for key, value in data.items():
        if value is None or value == "":
            continue
        if key == "channel" and value in cancel_channels:
            value = cancel_channels[value]
        elif key == "status" and value in statuses:
            value = statuses[value]
        elif isinstance(value, str) and (moment := parse_datetime(value)) is not None:
            value = _when(moment)
        pairs.append(f"{DETAIL_LABELS.get(key, key)}: {scrub_data(value)}")
    return pgettext("list separator", "; ").join(str(p) for p in pairs)


# The keys of a subscription's consent evidence (lifecycle.subscriptions.consent_evidence), in words.
EVIDENCE_LABELS = {
    "order_no": _("order that started it"),
    "placed_by": _("placed by"),
    "placed_at": _("placed at"),
    "clerk": _("clerk"),
    "store": _("store"),
    "sms": _("SMS confirmation"),
    "sent": _("SMS sent"),
    "reply": _("reply"),
    "replied_at": _("replied at"),
    "contract": _("deduction contract"),
    "provider": _("provider"),
    "contract_code": _("contract code"),
    "contract_id": _("provider's contract id"),
    "signed_at": _("signed at"),
}


def evidence_lines(evidence: Any, prefix: str = "") -> list[tuple[str, str]]:
    """(label, value) lines of the evidence; a nested part's lines are named after it."""
    if not isinstance(evidence, dict):
        return [(prefix or "-", scrub(str(evidence)))]
    lines: list[tuple[str, str]] = []
    providers = dict(Provider.choices)
    for key, value in evidence.items():
        label = str(EVIDENCE_LABELS.get(key, key))
        label = f"{prefix} · {label}" if prefix else label
        if isinstance(value, dict):
            lines += evidence_lines(value, label)
            continue
        if key == "placed_by" and isinstance(value, str):
            kind, _sep, who = value.partition(":")
            value = actor_label(kind, who)
        elif key == "provider" and value in providers:
            value = providers[value]
        elif isinstance(value, str) and key.endswith("_at") and (moment := parse_datetime(value)) is not None:
            value = _when(moment)
        lines.append((label, scrub("-" if value in (None, "") else str(value))))
    return lines


class RenewalDueFilter(admin.SimpleListFilter):
    """Active subscriptions whose next renewal comes within N days (or is overdue: waiting or retried)."""

    title = _("renewal due")
    parameter_name = "renewal_due_days"
    DAYS = {"1": 1, "7": 7, "30": 30}

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("1", _("within 1 day")), ("7", _("within 7 days")), ("30", _("within 30 days"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Subscription]) -> QuerySet[Subscription]:
        days = self.DAYS.get(self.value() or "")
        if days is None:
            return queryset
        return renewal_due_within(queryset, within=timedelta(days=days))


class ConsentChannelFilter(admin.SimpleListFilter):
    """Where the customer chose automatic renewal: a sales channel (the field's choices include ``renewal``,
    which never gives consent)."""

    title = _("consent given on")
    parameter_name = "consent_channel"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return list(SalesChannel.choices)

    def queryset(self, request: HttpRequest, queryset: QuerySet[Subscription]) -> QuerySet[Subscription]:
        return queryset.filter(consent_channel=self.value()) if self.value() in SalesChannel.values else queryset


class PaymentMethodFilter(admin.SimpleListFilter):
    """How it renews: the methods a subscription can have (not cash)."""

    title = _("payment method")
    parameter_name = "payment_method"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [(m.value, m.label) for m in RENEWAL_METHODS]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Subscription]) -> QuerySet[Subscription]:
        return queryset.filter(payment_method=self.value()) if self.value() in RENEWAL_METHODS else queryset


class RenewalInline(ReadOnlyAdminMixin, admin.TabularInline):
    """The renewal orders (channel ``renewal``), newest first: what each period cost, or why it failed."""

    model = Order
    fk_name = "subscription"
    verbose_name = _("renewal")
    verbose_name_plural = _("renewals")
    # The row's title is the order number, with a link to the order.
    fields = ["renewal_period", "status", "amount_yuan", "period_start", "period_end", "failure", "tried_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def get_queryset(self, request: HttpRequest) -> QuerySet[Order]:
        return (
            super()
            .get_queryset(request)
            .filter(channel=Channel.RENEWAL)
            .select_related("entitlement")
            .order_by("-created_at", "-pk")
        )

    @admin.display(description=_("amount (yuan)"))
    def amount_yuan(self, order: Order) -> str:
        return f"¥{order.amount_yuan}"

    @admin.display(description=_("period from"))
    def period_start(self, order: Order) -> str:
        entitlement = getattr(order, "entitlement", None)
        return _when(entitlement.starts_at) if entitlement else "-"

    @admin.display(description=_("period until"))
    def period_end(self, order: Order) -> str:
        entitlement = getattr(order, "entitlement", None)
        return _when(entitlement.ends_at) if entitlement else "-"

    @admin.display(description=_("failure"))
    def failure(self, order: Order) -> str:
        if not order.failure_code:
            return "-"
        return f"{order.failure_message} ({order.failure_detail})" if order.failure_detail else order.failure_message

    @admin.display(description=_("tried at"))
    def tried_at(self, order: Order) -> str:
        return _when(order.created_at)


class NoticeInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = SubscriptionNotice
    verbose_name = _("notice")
    verbose_name_plural = _("reminders and other notices")
    fields = ["kind", "period", "text", "written_at", "sent", "attempts", "gave_up"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    @admin.display(description=_("written at"))
    def written_at(self, notice: SubscriptionNotice) -> str:
        return _when(notice.created_at)

    @admin.display(description=_("sent at"))
    def sent(self, notice: SubscriptionNotice) -> str:
        return _when(notice.sent_at)

    @admin.display(description=_("given up at"))
    def gave_up(self, notice: SubscriptionNotice) -> str:
        return _when(notice.gave_up_at)


class EventInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = SubscriptionEvent
    verbose_name = _("event")
    verbose_name_plural = _("events")
    fields = ["when", "was", "became", "what", "by", "why", "details"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    @admin.display(description=_("at"))
    def when(self, event: SubscriptionEvent) -> str:
        return _when(event.at)

    @admin.display(description=pgettext_lazy("status", "from"))
    def was(self, event: SubscriptionEvent) -> str:
        return event.get_from_status_display() or "-"

    @admin.display(description=pgettext_lazy("status", "to"))
    def became(self, event: SubscriptionEvent) -> str:
        return event.get_to_status_display() or "-"

    @admin.display(description=_("what happened"))
    def what(self, event: SubscriptionEvent) -> str:
        return subscription_action_label(event.action)

    @admin.display(description=_("by"))
    def by(self, event: SubscriptionEvent) -> str:
        return actor_label(event.actor_kind, event.actor_id)

    @admin.display(description=_("why"))
    def why(self, event: SubscriptionEvent) -> str:
        return scrub(note_text(event.reason)) or "-"

    @admin.display(description=_("details"))
    def details(self, event: SubscriptionEvent) -> str:
        return event_details(event.data)


@admin.register(Subscription)
class SubscriptionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    # Narrow columns (the product's code, times to the minute): the list fits beside admin's navigation.
    list_display = [
        "subscription_no",
        "status",
        "product_code",
        "tv_account",
        "masked_phone",
        "payment_method",
        "price_yuan",
        "paid_until",
        "renews_at",
    ]
    list_filter = [
        "status",
        RenewalDueFilter,
        ("product", admin.RelatedOnlyFieldListFilter),
        PaymentMethodFilter,
        ConsentChannelFilter,
        "cancel_channel",
    ]
    search_fields = ["=subscription_no", "=tv_account", "=phone"]
    search_help_text = _("A subscription number, a TV account or a mobile number, in full.")
    list_select_related = ["product"]
    show_full_result_count = False
    inlines = [RenewalInline, NoticeInline, EventInline]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "subscription_no",
                    "status",
                    "product",
                    "tv_account",
                    "phone",
                    "payment_method",
                    "price_yuan",
                    "contract_id",
                ]
            },
        ),
        (
            _("Periods"),
            {
                "fields": [
                    "periods",
                    "current_period_end",
                    "next_reminder_at",
                    "reminder_sent_at",
                    "next_renewal_at",
                    "renewal_moved",
                    "due_at",
                    "attempts",
                ]
            },
        ),
        (
            _("Consent"),
            {"fields": ["consent_channel", "consent_method", "consent_at", "started_by", "consent_evidence_shown"]},
        ),
        (
            _("Cancel and end"),
            {"fields": ["cancelled_at", "cancel_channel", "cancel_reason_shown", "ended_at", "smp_unsubscribed_at"]},
        ),
        (_("Record"), {"fields": ["created_at", "updated_at"]}),
    ]
    readonly_fields = [field for _title, options in fieldsets for field in options["fields"]]

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Subscription], search_term: str
    ) -> tuple[QuerySet[Subscription], bool]:
        # A mobile number is stored normalised: '138 0000 0001' and '+86 13800000001' find it too.
        try:
            search_term = normalize_mainland_mobile(search_term)
        except ValidationError:
            pass
        return super().get_search_results(request, queryset, search_term)

    @admin.display(description=_("price of each period"), ordering="renewal_price_fen")
    def price_yuan(self, subscription: Subscription) -> str:
        return f"¥{subscription.renewal_price_yuan}"

    @admin.display(description=_("mobile"))
    def masked_phone(self, subscription: Subscription) -> str:
        return subscription.phone_masked or "-"

    @admin.display(description=_("product"), ordering="product__code")
    def product_code(self, subscription: Subscription) -> str:
        return subscription.product.code

    @admin.display(description=_("paid until"), ordering="current_period_end")
    def paid_until(self, subscription: Subscription) -> str:
        return _when(subscription.current_period_end, seconds=False)

    @admin.display(description=_("next renewal"), ordering="next_renewal_at")
    def renews_at(self, subscription: Subscription) -> str:
        return _when(subscription.next_renewal_at, seconds=False)

    @admin.display(description=_("started by the order"))
    def started_by(self, subscription: Subscription) -> SafeString | str:
        order = (
            Order.objects.filter(subscription=subscription, auto_renew=True)
            .exclude(channel=Channel.RENEWAL)
            .only("pk", "order_no")
            .first()
        )
        if order is None:
            return "-"
        return format_html('<a href="{}">{}</a>', reverse("admin:orders_order_change", args=[order.pk]), order.order_no)

    @admin.display(description=_("reason for cancelling"))
    def cancel_reason_shown(self, subscription: Subscription) -> str:
        return scrub(note_text(subscription.cancel_reason)) or "-"

    @admin.display(description=_("consent evidence"))
    def consent_evidence_shown(self, subscription: Subscription) -> SafeString:
        """The evidence of the customer's choice, as labelled lines (the stored JSON keeps its keys)."""
        lines = evidence_lines(subscription.consent_evidence)
        rows = format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", lines)
        return format_html('<table class="consent-evidence"><tbody>{}</tbody></table>', rows)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_active and request.user.is_staff and super().has_view_permission(request, obj))

    # --- cancel with a reason ------------------------------------------------------------------

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None) -> Any:
        extra_context = extra_context or {}
        subscription = (
            Subscription.objects.filter(pk=object_id).only("status").first() if str(object_id).isdigit() else None
        )
        if (
            subscription is not None
            and subscription.status == SubscriptionStatus.ACTIVE
            and request.user.has_perm(CANCEL_PERMISSION)
        ):
            extra_context["cancel_url"] = reverse("admin:orders_subscription_cancel", args=[object_id])
        return super().change_view(request, object_id, form_url, extra_context)

    def get_urls(self) -> list[Any]:
        return [
            path(
                "<int:subscription_id>/cancel/",
                self.admin_site.admin_view(self.cancel_view),
                name="orders_subscription_cancel",
            ),
            *super().get_urls(),
        ]

    def cancel_view(self, request: HttpRequest, subscription_id: int) -> HttpResponse:
        """Turn renewal off by hand, with the reason kept in the subscription's events and admin's history."""
        subscription = get_object_or_404(Subscription.objects.select_related("product"), pk=subscription_id)
        if not request.user.has_perm(CANCEL_PERMISSION):
            raise PermissionDenied
        form = SubscriptionCancelForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            reason = form.cleaned_data["reason"]
            if subscription.status == SubscriptionStatus.CANCELLED:
                # The service would answer with the earlier cancel, unchanged: say so rather than log a second one.
                form.add_error(
                    None,
                    _("Renewal was cancelled already, at %(when)s (%(channel)s).")
                    % {"when": _when(subscription.cancelled_at), "channel": subscription.get_cancel_channel_display()},
                )
            else:
                try:
                    subscription = subscription_cancel(
                        subscription_id=subscription.pk,
                        channel=CancelChannel.ADMIN,
                        actor=Actor(ActorKind.ADMIN, request.user.get_username()),
                        reason=reason,
                    )
                except ApplicationError as exc:
                    problems = [message for field_messages in exc.fields.values() for message in field_messages]
                    form.add_error(None, "; ".join(problems) if problems else str(exc.message))
                else:
                    self.log_change(request, subscription, note_message("renewal_cancelled", why=reason))
                    messages.success(
                        request,
                        _("Renewal cancelled. The paid period runs to %(end)s.")
                        % {"end": _when(subscription.current_period_end)},
                    )
                    return redirect("admin:orders_subscription_change", subscription.pk)
        context = {
            **self.admin_site.each_context(request),
            "title": _("Cancel subscription %(no)s") % {"no": subscription.subscription_no},
            "subscription": subscription,
            "paid_until": _when(subscription.current_period_end),
            "form": form,
            "opts": self.model._meta,
        }
        return render(request, "admin/orders/subscription/cancel.html", context)
