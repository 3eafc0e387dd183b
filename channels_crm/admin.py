from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from channels_crm.models import Clerk, SsoLogin, Store
from ipvas.admin_helpers import ReadOnlyAdminMixin


@admin.register(Store)
class StoreAdmin(admin.ModelAdmin):
    list_display = ["code", "name"]
    search_fields = ["code", "name"]


@admin.register(Clerk)
class ClerkAdmin(admin.ModelAdmin):
    list_display = ["staff_id", "name", "store", "virtual_staff_id", "role", "managed_store"]
    list_filter = ["role", "store"]
    search_fields = ["staff_id", "name", "virtual_staff_id"]
    list_select_related = ["store"]
    raw_id_fields = ["user"]

    def get_form(self, request: HttpRequest, obj: Clerk | None = None, change: bool = False, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, change=change, **kwargs)
        form.base_fields["user"].label = _("sign-in account")  # auth's user field has no label of its own
        return form


@admin.register(SsoLogin)
class SsoLoginAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["at", "staff_id", "store_code", "accepted", "reason", "remote_addr"]
    list_filter = ["accepted", ("at", admin.DateFieldListFilter)]
    search_fields = ["staff_id", "store_code", "jti"]
