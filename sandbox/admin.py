"""The simulated world is editable from admin while the sandbox is on (demo accounts, balances, faults)."""

from typing import Any

from django.conf import settings
from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from adapters.smp.types import SmpCharge
from billing.models import Provider
from sandbox import models


@admin.display(description=_("provider"))
def provider_shown(row: Any) -> str:
    return str(Provider(row.provider).label) if row.provider in Provider.values else row.provider


@admin.display(description=_("charge"))
def charge_shown(row: Any) -> str:
    return str(SmpCharge(row.charge).label) if row.charge in SmpCharge.values else row.charge


@admin.display(description=_("payment"))
def trade_shown(row: Any) -> str:
    return str(row.trade)


if settings.SANDBOX:
    admin.site.register(models.SimulatedFault, list_display=["__str__", "mode", "calls"])
    admin.site.register(models.SimSmpProduct, list_display=["code", "zero_price_package_code", "active"])
    admin.site.register(
        models.SimSmpAccount,
        list_display=["tv_account", "phone", "status", "balance_fen"],
        search_fields=["tv_account", "phone"],
    )
    admin.site.register(
        models.SimSmpSubscription,
        list_display=[
            "order_no",
            "tv_account",
            "product_code",
            charge_shown,
            "amount_fen",
            "starts_at",
            "ends_at",
            "cancelled_at",
        ],
        search_fields=["order_no", "tv_account"],
    )
    admin.site.register(
        models.SimTrade,
        list_display=[provider_shown, "out_trade_no", "amount_fen", "status", "expires_at", "paid_at", "refunded_fen"],
    )
    admin.site.register(
        models.SimRefund,
        list_display=[provider_shown, "out_refund_no", "amount_fen", "created_at"],
        exclude=["trade"],
        readonly_fields=[trade_shown],
    )
    admin.site.register(models.SimSmsMessage, list_display=["sent_at", "to", "text"], search_fields=["to"])
    admin.site.register(models.SimCrmActivityCode, list_display=["code", "active"])
    admin.site.register(
        models.SimCrmActivity,
        list_display=["order_no", "activity_code", "virtual_staff_id", "amount_fen", "reversed_at"],
    )
