"""Households' purchase PINs in admin (docs/interfaces.md §9): set, change or clear a PIN through the same
service as the clerk's page (hashed, audited); the audit trail of every set, clear, wrong entry and lock."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.dateparse import parse_datetime
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext

from backoffice.actors import actor_label, scrub
from backoffice.reasons import note_text
from ipvas.actors import Actor, ActorKind
from ipvas.admin_helpers import ReadOnlyAdminMixin
from lifecycle.pins import PIN_RE, pin_clear, pin_set
from orders.models import PurchasePin, PurchasePinEvent
from orders.validation import TV_ACCOUNT_RE

# Where a PIN was entered (lifecycle.pins.pin_check's channel).
PIN_CHANNELS = [("tv", _("TV pages")), ("epg_api", _("EPG API")), ("epg", _("TV (EPG)"))]
# What a PIN event's details hold (lifecycle.pins).
PIN_DETAILS = {"channel": _("where"), "entry": _("wrong entry no."), "until": _("locked until")}


def _admin(request: HttpRequest) -> Actor:
    return Actor(ActorKind.ADMIN, request.user.get_username())


def _when(value: Any) -> str:
    return formats.date_format(timezone.localtime(value), "Y-m-d H:i:s") if value else "-"


class PurchasePinForm(forms.ModelForm):
    pin = forms.CharField(
        label=_("New PIN (4 digits)"),
        max_length=4,
        widget=forms.PasswordInput(attrs={"inputmode": "numeric", "autocomplete": "off"}),
    )
    pin_again = forms.CharField(
        label=_("The new PIN again"),
        max_length=4,
        widget=forms.PasswordInput(attrs={"inputmode": "numeric", "autocomplete": "off"}),
    )

    class Meta:
        model = PurchasePin
        fields = ["tv_account"]

    def clean_tv_account(self) -> str:
        value = self.cleaned_data["tv_account"]
        if not TV_ACCOUNT_RE.match(value):
            raise forms.ValidationError(_("A TV account is 1-64 letters, digits, '_', '.', '-' or '@'."))
        return value

    def clean_pin(self) -> str:
        if not PIN_RE.match(self.cleaned_data["pin"]):
            raise forms.ValidationError(_("A purchase PIN is 4 digits."))
        return self.cleaned_data["pin"]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("pin") and data.get("pin_again") != data["pin"]:
            self.add_error("pin_again", _("The two PINs differ."))
        return data


@admin.register(PurchasePin)
class PurchasePinAdmin(admin.ModelAdmin):
    """Adding or changing sets the PIN (a new PIN lifts a lock); deleting clears it. Never the hash itself."""

    form = PurchasePinForm
    list_display = ["tv_account", "set_when", "set_by", "wrong_entries", "locked"]
    search_fields = ["tv_account"]
    readonly_fields = ["set_when", "set_by", "wrong_entries", "locked", "events"]

    def get_readonly_fields(self, request: HttpRequest, obj: PurchasePin | None = None) -> list[str]:
        return ["tv_account", *self.readonly_fields] if obj is not None else []

    def get_fields(self, request: HttpRequest, obj: PurchasePin | None = None) -> list[str]:
        if obj is None:
            return ["tv_account", "pin", "pin_again"]
        return ["tv_account", "pin", "pin_again", *self.readonly_fields]

    @admin.display(description=_("set at"), ordering="set_at")
    def set_when(self, pin: PurchasePin) -> str:
        return _when(pin.set_at)

    @admin.display(description=_("set by"))
    def set_by(self, pin: PurchasePin) -> str:
        return actor_label(pin.set_by_kind, pin.set_by_id)

    @admin.display(description=_("wrong entries"))
    def wrong_entries(self, pin: PurchasePin) -> int:
        return pin.failed_attempts

    @admin.display(description=_("purchases locked until"))
    def locked(self, pin: PurchasePin) -> str:
        return _when(pin.locked_until) if pin.is_locked(timezone.now()) else "-"

    @admin.display(description=_("audit trail"))
    def events(self, pin: PurchasePin) -> SafeString:
        url = reverse("admin:orders_purchasepinevent_changelist") + "?" + urlencode({"tv_account": pin.tv_account})
        return format_html('<a href="{}">{}</a>', url, _("Every set, clear, wrong entry and lock of this account"))

    def save_model(self, request: HttpRequest, obj: PurchasePin, form: PurchasePinForm, change: bool) -> None:
        row = pin_set(tv_account=obj.tv_account, pin=form.cleaned_data["pin"], actor=_admin(request), reason="admin")
        obj.pk = row.pk
        obj._state.adding = False

    def delete_model(self, request: HttpRequest, obj: PurchasePin) -> None:
        pin_clear(tv_account=obj.tv_account, actor=_admin(request), reason="admin")

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[PurchasePin]) -> None:
        for tv_account in list(queryset.values_list("tv_account", flat=True)):
            pin_clear(tv_account=tv_account, actor=_admin(request), reason="admin")


@admin.register(PurchasePinEvent)
class PurchasePinEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["when", "tv_account", "action", "by", "why", "details"]
    fields = ["when", "tv_account", "action", "by", "why", "details"]
    readonly_fields = fields
    list_filter = ["action", "actor_kind"]
    search_fields = ["=tv_account"]
    date_hierarchy = "at"

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest | None = None) -> bool:
        # The PIN's page links here with ?tv_account=...: its account's trail.
        return lookup == "tv_account" or super().lookup_allowed(lookup, value, request)

    @admin.display(description=_("at"), ordering="at")
    def when(self, event: PurchasePinEvent) -> str:
        return _when(event.at)

    @admin.display(description=_("by"))
    def by(self, event: PurchasePinEvent) -> str:
        return actor_label(event.actor_kind, event.actor_id)

    @admin.display(description=_("why"))
    def why(self, event: PurchasePinEvent) -> str:
        return scrub(note_text(event.reason)) or "-"

    @admin.display(description=_("details"))
    def details(self, event: PurchasePinEvent) -> str:
        if not event.data:
            return "-"
        return pgettext("list separator", "; ").join(
            f"{PIN_DETAILS.get(key, key)}: {_detail(key, value)}" for key, value in event.data.items()
        )


def _detail(key: str, value: Any) -> str:
    if key == "until" and isinstance(value, str) and (moment := parse_datetime(value)) is not None:
        return _when(moment)
    if key == "channel":
        return str(dict(PIN_CHANNELS).get(value, value))
    return str(value)
