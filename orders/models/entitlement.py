from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from orders.constants import ProductKind
from orders.models.order import Order
from orders.models.product import Product


class Entitlement(models.Model):
    """What a completed order gave a TV account: our own record of a subscription on the SMP.

    ``product_code`` and ``kind`` are copied from the product so that the
    entitlement check (the hot path) reads one table.
    """

    order = models.OneToOneField(Order, on_delete=models.PROTECT, related_name="entitlement", verbose_name=_("order"))
    tv_account = models.CharField(_("TV account"), max_length=64)
    product = models.ForeignKey(
        Product, on_delete=models.PROTECT, related_name="entitlements", verbose_name=_("product")
    )
    product_code = models.CharField(_("product code"), max_length=32)
    kind = models.CharField(_("kind"), max_length=16, choices=ProductKind.choices)
    content_id = models.CharField(_("content"), max_length=64, blank=True)
    starts_at = models.DateTimeField(_("starts at"))
    ends_at = models.DateTimeField(_("ends at"))
    smp_subscription_id = models.CharField(_("SMP subscription id"), max_length=64, blank=True)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("entitlement")
        verbose_name_plural = _("entitlements")
        ordering = ["tv_account", "starts_at"]
        indexes = [
            models.Index(
                fields=["tv_account", "ends_at"],
                name="entitlement_live",
                condition=Q(revoked_at__isnull=True),
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(ends_at__gt=models.F("starts_at")), name="entitlement_ordered"),
        ]

    def __str__(self) -> str:
        what = f"{self.product_code}:{self.content_id}" if self.content_id else self.product_code
        return f"{self.tv_account} {what} {self.starts_at:%Y-%m-%d}..{self.ends_at:%Y-%m-%d}"
