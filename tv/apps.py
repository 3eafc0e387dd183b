from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TvConfig(AppConfig):
    name = "tv"
    verbose_name = _("TV pages")
