from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from orders.models import Order

# How a cash refund started in admin begins its item's detail (lifecycle.manual): the store pays cash back for
# a sale that was provisioned, where the kind's own label is of a sale that was not.
ADMIN_REFUND_PREFIX = "refund by "


class WorkItemKind(models.TextChoices):
    CASH_PAYBACK = "cash_payback", _("cash sale not provisioned: pay the cash back, reverse the CRM activity")
    REFUND_FAILED = "refund_failed", _("refund failed")
    PROVISIONING_UNCERTAIN = "provisioning_uncertain", _("phone bill may be charged without a product")
    PROVIDER_DISAGREES = "provider_disagrees", _("the provider's state disagrees with ours")
    CRM_UNCERTAIN = "crm_uncertain", _("the CRM did not answer about a cash sale")
    # A clean-up call (a reversal, a close, an unsubscribe…) whose task fails every time (lifecycle.stalled).
    FOLLOW_UP_FAILING = "follow_up_failing", _("a follow-up call keeps failing: see the worker's log")


class WorkItem(models.Model):
    """An order that needs a person: the stuck-work queue of admin."""

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="work_items", verbose_name=_("order"))
    kind = models.CharField(_("kind"), max_length=32, choices=WorkItemKind.choices)
    # One line per problem the item stands for (billing.services.work.work_item_open).
    detail = models.CharField(_("detail"), max_length=1000, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True)
    resolved_by = models.CharField(_("resolved by"), max_length=150, blank=True)
    resolution = models.CharField(_("resolution"), max_length=255, blank=True)

    class Meta:
        verbose_name = _("work item")
        verbose_name_plural = _("work items")
        # Open items first on every database (PostgreSQL sorts NULL last by default).
        ordering = [models.F("resolved_at").asc(nulls_first=True), "-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["order", "kind"], condition=Q(resolved_at__isnull=True), name="workitem_one_open_per_kind"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.order.order_no} {self.title}"

    @property
    def is_admin_refund(self) -> bool:
        return self.kind == WorkItemKind.CASH_PAYBACK and self.detail.startswith(ADMIN_REFUND_PREFIX)

    @property
    def title(self) -> str:
        """What the item is about, in words (the kind's label, but for a cash refund started in admin)."""
        if self.is_admin_refund:
            return str(
                _("cash order refunded in admin: the store pays the cash back, then the CRM activity is reversed")
            )
        return str(self.get_kind_display())
