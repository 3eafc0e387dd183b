from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import quote, unquote
from django.contrib.admin.views.main import ChangeList
from django.http import HttpRequest
from django.urls import reverse
from django.utils.translation import gettext
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


@admin.register(EpgClient)
class EpgClientAdmin(APIKeyModelAdmin):
    """Create (the key is shown once), expire or revoke EPG clients' keys; revoking cannot be undone.

    Nothing here shows a key's hash (its row's id holds it): the key's prefix names it.
    """

    list_display = ["name", "prefix", "created", "expiry_date", "expired", "revoked"]
    list_filter = ["revoked", "created"]
    search_fields = ["name", "prefix"]
    form = EpgClientForm
    fields = ["name", "prefix", "tv_frame_origins", "expiry_date", "revoked", "confirm_revoke"]
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
        return [f for f in fields if f != "confirm_revoke"] if obj is not None and obj.revoked else fields

    @admin.display(description=_("expired"), boolean=True)
    def expired(self, client: EpgClient) -> bool:
        return client.has_expired

    def save_model(self, request: HttpRequest, obj: EpgClient, form: Any = None, change: bool = False) -> None:
        if obj.pk:
            obj.save()
            return
        key = EpgClient.objects.assign_key(obj)
        obj.save()
        messages.warning(
            request,
            gettext(
                "The API key of %(name)s is: %(key)s — copy it now and give it to the EPG vendor: it is shown "
                "this once and cannot be seen again. They send it as “Authorization: Api-Key <key>”."
            )
            % {"name": obj.name, "key": key},
        )
