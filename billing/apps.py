from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = _("Billing")

    def ready(self) -> None:
        # Registers the due handlers of payment_pending and provisioning with orders.services.due.
        from billing.services import due  # noqa: F401
