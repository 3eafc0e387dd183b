from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from billing.models.payments import Payment, Provider
from orders.models import Order


class ContractStatus(models.TextChoices):
    PENDING = "pending", _("offered in the QR code, not signed yet")
    SIGNED = "signed", _("signed")
    UNSIGNING = "unsigning", _("being ended at the provider")
    TERMINATED = "terminated", _("ended")


class ContractEnd(models.TextChoices):
    """Who or what ended a contract."""

    USER = "user", _("the user, in the payment app")
    MERCHANT = "merchant", _("IPVAS: the subscription was cancelled on another channel")
    UNUSED = "unused", _("IPVAS: no subscription started with it")


class ProviderContract(models.Model):
    """A deduction contract offered in the QR code of an auto-renewing order (docs/interfaces.md §8): WeChat Pay
    委托代扣 ("pay and sign") or Alipay 周期扣款, signed in the scan that pays the first period.

    One per QR payment (a switch between the providers offers a new one). The signing notification and the
    payment notification arrive in either order; the subscription starts when both are in
    (lifecycle.contracts). A contract that is left without a paid order, or a paid order left without its
    contract, is ended at ``due_at`` (unsigned at the provider), never left half. The renewal deductions run
    under the signed one; ``deduct_from``/``deduct_until`` is when the provider's rules allow the coming one.
    """

    provider = models.CharField(_("provider"), max_length=16, choices=Provider.choices)
    # Ours: WeChat Pay's contract_code, Alipay's external_agreement_no.
    contract_code = models.CharField(_("our contract code"), max_length=32, unique=True)
    # The provider's: WeChat Pay's contract_id, Alipay's agreement_no; known once signed.
    provider_contract_id = models.CharField(_("provider contract id"), max_length=64, blank=True)
    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="contracts", verbose_name=_("order"))
    payment = models.OneToOneField(
        Payment, on_delete=models.PROTECT, related_name="contract", verbose_name=_("payment")
    )
    subscription = models.ForeignKey(
        "orders.Subscription",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="contracts",
        verbose_name=_("subscription"),
    )
    status = models.CharField(
        _("status"), max_length=16, choices=ContractStatus.choices, default=ContractStatus.PENDING
    )
    period_months = models.PositiveIntegerField(_("months per period"))
    amount_fen = models.IntegerField(_("deduction per period (fen)"))
    signed_at = models.DateTimeField(_("signed at"), null=True, blank=True)
    ended_at = models.DateTimeField(_("ended at"), null=True, blank=True)
    ended_by = models.CharField(_("ended by"), max_length=16, choices=ContractEnd.choices, blank=True)
    end_reason = models.CharField(_("why ended"), max_length=255, blank=True)
    # The coming deduction: WeChat Pay's pre-deduction notice and the days it opens; Alipay's agreed day.
    notice_sent_at = models.DateTimeField(_("pre-deduction notice sent at"), null=True, blank=True)
    plan_at = models.DateTimeField(_("agreed deduction day"), null=True, blank=True)
    deduct_from = models.DateTimeField(_("deduction allowed from"), null=True, blank=True)
    deduct_until = models.DateTimeField(_("deduction allowed until"), null=True, blank=True)
    # A pre-deduction notice being sent, until then (lifecycle.deductions.deduction_announce): one at a time.
    notice_claimed_until = models.DateTimeField(_("pre-deduction notice being sent until"), null=True, blank=True)
    # When the deadline machinery must next look at it (a half contract, an unsign under way).
    due_at = models.DateTimeField(_("next look at"), null=True, blank=True)
    attempts = models.PositiveIntegerField(_("attempts of the step due"), default=0)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("deduction contract")
        verbose_name_plural = _("deduction contracts")
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["due_at"], name="contract_due", condition=Q(due_at__isnull=False)),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "provider_contract_id"],
                condition=~Q(provider_contract_id=""),
                name="contract_unique_provider_id",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_provider_display()} {self.contract_code} · {self.get_status_display()}"
