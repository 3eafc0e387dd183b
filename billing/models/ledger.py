from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from billing.models.payments import Payment, Provider
from ipvas.appendonly import AppendOnlyModel
from ipvas.money import fen_to_yuan
from orders.constants import PaymentMethod
from orders.models import Order


class LedgerKind(models.TextChoices):
    PAYMENT = "payment", _("payment taken")
    REFUND = "refund", _("refund")
    REVERSAL = "reversal", _("phone-bill charge reversed")
    CASH_PAYBACK = "cash_payback", _("cash paid back by the store")
    # A refund the provider refused for good, made by other means (a bank transfer): a person records it.
    HAND_PAYBACK = "hand_payback", _("paid back by hand, outside the provider")


class LedgerEntry(AppendOnlyModel):
    """One movement of money, append-only. Totals are sums of these, never counters.

    ``amount_fen`` is signed: money in is positive, money going back is
    negative. ``idempotency_key`` names the provider's reference, so the same
    movement can never be written twice, whatever retries or races do.
    """

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="ledger", verbose_name=_("order"))
    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, null=True, blank=True, related_name="ledger")
    kind = models.CharField(_("kind"), max_length=16, choices=LedgerKind.choices)
    amount_fen = models.IntegerField(_("amount (fen)"))
    method = models.CharField(_("method"), max_length=16, choices=PaymentMethod.choices)
    provider = models.CharField(_("provider"), max_length=16, choices=Provider.choices)
    provider_ref = models.CharField(_("provider reference"), max_length=64)
    idempotency_key = models.CharField(_("idempotency key"), max_length=128, unique=True)
    actor_kind = models.CharField(_("by"), max_length=16)
    actor_id = models.CharField(_("by id"), max_length=150, blank=True)
    note = models.CharField(_("note"), max_length=255, blank=True)
    created_at = models.DateTimeField(_("at"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("ledger entry")
        verbose_name_plural = _("ledger entries")
        ordering = ["created_at", "pk"]
        indexes = [
            models.Index(fields=["provider", "provider_ref"], name="ledger_provider_ref"),
            # Admin finds an entry by the provider's reference alone (docs/performance.md).
            models.Index(fields=["provider_ref"], name="ledger_ref"),
        ]

    def __str__(self) -> str:
        # For people (admin's titles): labels, the amount in yuan.
        amount = fen_to_yuan(self.amount_fen)
        return f"{self.get_kind_display()} ¥{amount} {self.get_provider_display()} {self.provider_ref}"


class RefundStatus(models.TextChoices):
    REQUESTED = "requested", _("requested")
    PROCESSING = "processing", _("processing at the provider")
    SUCCEEDED = "succeeded", _("money returned")
    FAILED = "failed", _("failed, needs a person")


class Refund(models.Model):
    """Money going back to the customer, tracked until the provider says it is done."""

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="refunds", verbose_name=_("order"))
    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refunds", verbose_name=_("payment"))
    provider = models.CharField(_("provider"), max_length=16, choices=Provider.choices)
    out_refund_no = models.CharField(_("out_refund_no"), max_length=64)
    amount_fen = models.IntegerField(_("amount (fen)"))
    reason = models.CharField(_("reason"), max_length=255)
    status = models.CharField(_("status"), max_length=16, choices=RefundStatus.choices, default=RefundStatus.REQUESTED)
    provider_refund_id = models.CharField(_("provider refund id"), max_length=64, blank=True)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    last_error = models.CharField(_("last error"), max_length=255, blank=True)
    requested_by_kind = models.CharField(_("requested by"), max_length=16)
    requested_by_id = models.CharField(_("requested by id"), max_length=150, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    completed_at = models.DateTimeField(_("completed at"), null=True, blank=True)

    class Meta:
        verbose_name = _("refund")
        verbose_name_plural = _("refunds")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["provider", "out_refund_no"], name="refund_unique_out_refund_no"),
            models.CheckConstraint(condition=Q(amount_fen__gt=0), name="refund_amount_positive"),
        ]
        indexes = [
            # The stalled-work sweep's look for refunds under way (lifecycle.stalled).
            models.Index(
                fields=["updated_at"],
                condition=Q(status__in=["requested", "processing"]),
                name="refund_under_way_updated",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_provider_display()} {self.out_refund_no} {self.get_status_display()}"
