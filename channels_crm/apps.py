from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ChannelsCrmConfig(AppConfig):
    name = "channels_crm"
    verbose_name = _("Business halls (CRM)")
