from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class IpvasConfig(AppConfig):
    name = "ipvas"
    verbose_name = _("Operations")

    def ready(self) -> None:
        from ipvas import checks, mfa, signals  # noqa: F401 - system checks, signal receivers
