from django.contrib import admin
from rest_framework_api_key.admin import APIKeyModelAdmin
from rest_framework_api_key.models import APIKey

from epg_api.models import EpgClient

# The library's own key model is not used: EPG clients are EpgClient.
admin.site.unregister(APIKey)


@admin.register(EpgClient)
class EpgClientAdmin(APIKeyModelAdmin):
    """Create (the key is shown once), expire or revoke EPG clients' keys; revoking cannot be undone."""

    list_display = ["prefix", "name", "created", "expiry_date", "_has_expired", "revoked"]
    list_filter = ["revoked", "created"]
