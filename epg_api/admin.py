from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import quote, unquote
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import formats, timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _
from rest_framework_api_key.admin import APIKeyModelAdmin
from rest_framework_api_key.models import APIKey

from epg_api.models import EpgClient

# The library's own key model is not used: EPG clients are EpgClient.
admin.site.unregister(APIKey)


def client_url(client: EpgClient) -> str:
    """The admin page of ``client``, by its key's prefix."""
    return reverse("admin:epg_api_epgclient_change", args=[client.prefix])


class PrefixChangeList(ChangeList):
    def url_for_result(self, result: EpgClient) -> str:
        return client_url(result)


class EpgClientForm(forms.ModelForm):
    """Revoking is ticked twice: the box, and its confirmation (the key stops at once and cannot come back)."""

    confirm_revoke = forms.BooleanField(
        label=_("Yes, revoke this key now"),
        required=False,
        help_text=_(
            "The EPG's requests with this key are refused from the moment it is saved, and a revoked key cannot "
            "be restored: the EPG then needs a new key."
        ),
    )

    class Meta:
        model = EpgClient
        fields = ["name", "tv_frame_origins", "expiry_date", "revoked"]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        newly_revoked = data.get("revoked") and not (self.instance.pk and self.instance.revoked)
        if newly_revoked and not data.get("confirm_revoke"):
            self.add_error("confirm_revoke", _("Tick this too to revoke the key: it cannot be undone."))
        return data


class LaterKeyForm(EpgClientForm):
    """A later key of a client: its name and TV origins are the client's (its first key's page)."""

    class Meta(EpgClientForm.Meta):
        fields = ["expiry_date", "revoked"]


class NewKeyForm(forms.Form):
    old_expires_in_days = forms.IntegerField(
        label=_("The old key keeps working for (days)"),
        min_value=0,
        max_value=365,
        initial=7,
        help_text=_(
            "For the EPG vendor to switch to the new key: the old key then expires (0: at once). Orders placed "
            "with either key stay the client's."
        ),
    )


def key_state(key: EpgClient) -> str:
    if key.revoked:
        return gettext("revoked")
    if key.has_expired:
        return gettext("expired")
    if key.expiry_date is not None:
        return gettext("in use, expires at %(when)s") % {
            "when": formats.date_format(timezone.localtime(key.expiry_date), "DATETIME_FORMAT")
        }
    return gettext("in use")


@admin.register(EpgClient)
class EpgClientAdmin(APIKeyModelAdmin):
    """Create (the key is shown once), expire or revoke EPG clients' keys; revoking cannot be undone.

    Nothing here shows a key's hash (its row's id holds it): the key's prefix names it.
    """

    list_display = ["name", "prefix", "client_first_key", "created", "expiry_date", "expired", "revoked"]
    list_filter = ["revoked", "created"]
    search_fields = ["name", "prefix"]
    list_select_related = ["acts_for"]
    form = EpgClientForm
    fields = ["name", "prefix", "client_keys", "tv_frame_origins", "expiry_date", "revoked", "confirm_revoke"]
    # A client is revoked, never deleted (its orders name it); without actions no row's id is on the page.
    actions = None

    # --- addressed by the key's prefix: a row's id holds the key's hash, which no page or link shows -------

    def get_object(self, request: HttpRequest, object_id: str, from_field: str | None = None) -> EpgClient | None:
        queryset = self.get_queryset(request)
        return queryset.filter(prefix=object_id).first() or queryset.filter(pk=object_id).first()

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return PrefixChangeList

    def history_view(self, request: HttpRequest, object_id: str, extra_context: Any = None) -> Any:
        # Admin's history is kept under the row's id: found from the prefix here.
        client = self.get_object(request, unquote(object_id))
        return super().history_view(request, quote(client.pk) if client else object_id, extra_context)

    def response_add(self, request: HttpRequest, obj: EpgClient, post_url_continue: str | None = None) -> Any:
        return super().response_add(request, obj, post_url_continue=client_url(obj))

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_fields(self, request: HttpRequest, obj: EpgClient | None = None) -> list[str]:
        fields = list(super().get_fields(request, obj))
        if obj is None:
            fields = [f for f in fields if f != "client_keys"]
        elif obj.acts_for_id is not None:  # a later key: name and origins are the client's
            fields = [f for f in fields if f not in ("name", "tv_frame_origins")]
            fields.insert(0, "client_name")
        if obj is not None and obj.revoked:
            fields = [f for f in fields if f != "confirm_revoke"]
        return fields

    def get_readonly_fields(self, request: HttpRequest, obj: EpgClient | None = None) -> list[str]:
        return [*super().get_readonly_fields(request, obj), "client_keys", "client_name"]

    def get_form(self, request: HttpRequest, obj: EpgClient | None = None, change: bool = False, **kwargs: Any) -> Any:
        if obj is not None and obj.acts_for_id is not None:
            kwargs["form"] = LaterKeyForm
        return super().get_form(request, obj, change, **kwargs)

    @admin.display(description=_("client (its first key)"))
    def client_first_key(self, key: EpgClient) -> str:
        return key.acts_for.prefix if key.acts_for_id is not None else gettext("this key")

    @admin.display(description=_("client"))
    def client_name(self, key: EpgClient) -> str:
        first = key.acts_for or key
        return format_html('<a href="{}">{}</a> ({})', client_url(first), first.name, first.prefix)

    @admin.display(description=_("keys of this client"))
    def client_keys(self, key: EpgClient) -> str:
        rows = format_html_join(
            "",
            '<li><a href="{}">{}</a> · {} · {}{}</li>',
            (
                (
                    client_url(k),
                    k.prefix,
                    gettext("first key") if k.acts_for_id is None else gettext("issued later"),
                    key_state(k),
                    gettext(" (this key)") if k.pk == key.pk else "",
                )
                for k in key.client_keys()
            ),
        )
        return format_html(
            # The help under the list, not offset again: the field's own content is already past the labels.
            '<ul style="margin-left:0;padding-left:1em">{}</ul>'
            '<div class="help" style="margin-left:0;padding-left:0">{}</div>',
            rows,
            gettext(
                "Each of these keys reaches the client's orders and Idempotency-Keys, those of TV sessions included (a "
                "session itself ends with the key that opened it). Each is "
                "expired or revoked on its own: revoking one leaves the others working."
            ),
        )

    @admin.display(description=_("expired"), boolean=True)
    def expired(self, client: EpgClient) -> bool:
        return client.has_expired

    def save_model(self, request: HttpRequest, obj: EpgClient, form: Any = None, change: bool = False) -> None:
        if obj.pk:
            newly_revoked = obj.revoked and not obj._initial_revoked
            obj.save()
            if obj.acts_for_id is None:  # the client's name, on each of its keys' rows
                EpgClient.objects.filter(acts_for=obj).exclude(name=obj.name).update(name=obj.name)
            if newly_revoked:
                self._say_what_still_works(request, obj)
            return
        key = EpgClient.objects.assign_key(obj)
        obj.save()
        self._show_key_once(request, obj, key)

    def _show_key_once(self, request: HttpRequest, obj: EpgClient, key: str) -> None:
        messages.warning(
            request,
            gettext(
                "The API key of %(name)s is: %(key)s — copy it now and give it to the EPG vendor: it is shown "
                "this once and cannot be seen again. They send it as “Authorization: Api-Key <key>”."
            )
            % {"name": obj.name, "key": key},
        )

    def _say_what_still_works(self, request: HttpRequest, revoked: EpgClient) -> None:
        working = [k.prefix for k in revoked.client_keys() if k.usable]
        if working:
            messages.warning(
                request,
                ngettext(
                    "The client's other key %(prefixes)s still works: revoke it too to stop the client.",
                    "The client's other keys %(prefixes)s still work: revoke them too to stop the client.",
                    len(working),
                )
                % {"prefixes": ", ".join(working)},
            )

    # --- a new key for the same client (a rotation) -------------------------------------------------------

    def get_urls(self) -> list[Any]:
        return [
            path(
                "<str:prefix>/new-key/", self.admin_site.admin_view(self.new_key_view), name="epg_api_epgclient_new_key"
            ),
            *super().get_urls(),
        ]

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None) -> Any:
        extra_context = dict(extra_context or {})
        if self.has_add_permission(request) and self.has_change_permission(request):
            extra_context["new_key_url"] = reverse("admin:epg_api_epgclient_new_key", args=[unquote(object_id)])
        return super().change_view(request, object_id, form_url, extra_context)

    def new_key_view(self, request: HttpRequest, prefix: str) -> HttpResponse:
        """Issue a new key for this key's client, shown once; this key then expires after the days asked."""
        old = self.get_queryset(request).filter(prefix=prefix).select_related("acts_for").first()
        if old is None:
            raise Http404
        if not (self.has_add_permission(request) and self.has_change_permission(request, old)):
            raise PermissionDenied
        form = NewKeyForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            expires_at = timezone.now() + timedelta(days=form.cleaned_data["old_expires_in_days"])
            was = old.expiry_date
            with transaction.atomic():
                new, key = old.issue_key()
                old.expire_by(expires_at)
            self.log_addition(request, new, [{"added": {}}])
            # As backoffice.history reads it: the old and new expiry, and a note naming the new key.
            logged: list[dict[str, Any]] = [{"note": {"what": "new_epg_key", "how": new.prefix, "why": ""}}]
            if old.expiry_date != was:
                iso = [moment.isoformat() if moment else None for moment in (was, old.expiry_date)]
                logged.insert(0, {"values": {"expiry_date": iso}})
            self.log_change(request, old, json.dumps(logged))
            self._show_key_once(request, new, key)
            if not old.revoked:
                messages.info(
                    request,
                    gettext("The old key %(prefix)s keeps working until %(when)s, then it is refused.")
                    % {
                        "prefix": old.prefix,
                        "when": formats.date_format(timezone.localtime(old.expiry_date), "DATETIME_FORMAT"),
                    },
                )
            return HttpResponseRedirect(client_url(new))
        first = old.acts_for or old
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": gettext("A new key for %(name)s") % {"name": first.name},
            "old": old,
            "form": form,
        }
        return TemplateResponse(request, "admin/epg_api/epgclient/new_key.html", context)
