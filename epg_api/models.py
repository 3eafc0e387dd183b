from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from rest_framework_api_key.models import AbstractAPIKey


class EpgClient(AbstractAPIKey):
    """An EPG vendor's system. Its key is stored hashed (SHA-512) and can be revoked in admin."""

    class Meta(AbstractAPIKey.Meta):
        verbose_name = _("EPG client")
        verbose_name_plural = _("EPG clients")
