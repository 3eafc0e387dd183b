from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class EpgApiConfig(AppConfig):
    name = "epg_api"
    verbose_name = _("EPG API")

    def ready(self) -> None:
        from epg_api import schema, signals  # noqa: F401
