from django.contrib import admin

from channels_crm.models import Clerk, SsoLogin, Store
from ipvas.admin_helpers import ReadOnlyAdminMixin


@admin.register(Store)
class StoreAdmin(admin.ModelAdmin):
    list_display = ["code", "name"]
    search_fields = ["code", "name"]


@admin.register(Clerk)
class ClerkAdmin(admin.ModelAdmin):
    list_display = ["staff_id", "name", "store", "virtual_staff_id", "role"]
    list_filter = ["role", "store"]
    search_fields = ["staff_id", "name", "virtual_staff_id"]
    list_select_related = ["store"]
    raw_id_fields = ["user"]


@admin.register(SsoLogin)
class SsoLoginAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["at", "staff_id", "store_code", "accepted", "reason", "remote_addr"]
    list_filter = ["accepted", ("at", admin.DateFieldListFilter)]
    search_fields = ["staff_id", "store_code", "jti"]
