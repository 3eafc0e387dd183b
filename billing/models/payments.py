from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from orders.constants import PaymentMethod
from orders.models import Order


class Provider(models.TextChoices):
    WECHATPAY = "wechatpay", _("WeChat Pay")
    ALIPAY = "alipay", _("Alipay")
    SMP = "smp", _("SMP (phone bill)")
    CRM = "crm", _("CRM (cash)")


class PaymentStatus(models.TextChoices):
    CREATING = "creating", _("being created at the provider")
    PENDING = "pending", _("waiting for the customer")
    PAID = "paid", _("paid")
    CLOSED = "closed", _("closed unpaid")
    FAILED = "failed", _("failed")
    # A payment code's trade reversed at the provider (WeChat Pay reverse, Alipay cancel): it can no longer
    # be paid, and money it took went back to the customer by the provider itself.
    REVERSED = "reversed", _("reversed at the provider")


class Payment(models.Model):
    """One attempt to take the money for an order by one method.

    An order may have several (the customer switched from WeChat Pay to
    Alipay); at most one is ever ``paid`` for an order unless the provider
    took money twice, which the refund machinery then returns.
    """

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="payments", verbose_name=_("order"))
    method = models.CharField(_("method"), max_length=16, choices=PaymentMethod.choices)
    provider = models.CharField(_("provider"), max_length=16, choices=Provider.choices)
    out_trade_no = models.CharField(_("out_trade_no"), max_length=64)
    amount_fen = models.IntegerField(_("amount (fen)"))
    status = models.CharField(_("status"), max_length=16, choices=PaymentStatus.choices, default=PaymentStatus.CREATING)
    # A signed Alipay cashier URL (the pay-and-sign of an auto-renewing order) is longer than a code_url.
    qr_code_url = models.CharField(_("QR code content"), max_length=2048, blank=True)
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)
    provider_txn_id = models.CharField(_("provider transaction id"), max_length=64, blank=True)
    paid_at = models.DateTimeField(_("paid at"), null=True, blank=True)
    failure_reason = models.CharField(_("failure reason"), max_length=255, blank=True)
    # A payment code's reverse, written before it is sent: a trade found closed after it is our own reverse
    # (the worker died before recording its answer), not the customer's payment declined.
    reverse_sent_at = models.DateTimeField(_("reverse sent at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("payment")
        verbose_name_plural = _("payments")
        ordering = ["-created_at"]
        # What admin lists newest first and finds by either number, among a year's millions (docs/performance.md).
        indexes = [
            models.Index(fields=["created_at"], name="payment_created"),
            models.Index(fields=["out_trade_no"], name="payment_trade_no"),
            models.Index(fields=["provider_txn_id"], name="payment_provider_txn"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["provider", "out_trade_no"], name="payment_unique_trade_no"),
            models.CheckConstraint(condition=Q(amount_fen__gte=0), name="payment_amount_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.get_provider_display()} {self.out_trade_no} {self.get_status_display()}"


class PaymentNotification(models.Model):
    """A provider's notification exactly as it arrived, kept for audit.

    Stored under the provider's own id before it is processed: the same
    notification delivered again is recognised and answered, not re-applied.
    """

    provider = models.CharField(_("provider"), max_length=16, choices=Provider.choices)
    notification_id = models.CharField(_("provider's notification id"), max_length=128)
    out_trade_no = models.CharField(_("out_trade_no"), max_length=64, blank=True, db_index=True)
    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, null=True, blank=True, related_name="notifications")
    # A deduction contract's signing or termination notification (billing.models.contracts).
    contract = models.ForeignKey(
        "billing.ProviderContract", on_delete=models.PROTECT, null=True, blank=True, related_name="notifications"
    )
    headers = models.JSONField(_("headers"), default=dict)
    body = models.TextField(_("body"))
    decoded = models.JSONField(_("decoded content"), default=dict, blank=True)
    received_at = models.DateTimeField(_("received at"), auto_now_add=True)
    outcome = models.CharField(_("outcome"), max_length=255, blank=True)

    class Meta:
        verbose_name = _("payment notification")
        verbose_name_plural = _("payment notifications")
        ordering = ["-received_at"]
        constraints = [
            models.UniqueConstraint(fields=["provider", "notification_id"], name="notification_unique_id"),
        ]

    def __str__(self) -> str:
        return f"{self.get_provider_display()} {self.notification_id}"


class PaymentCodeUse(models.Model):
    """A payment code (付款码) the clerk scanned: each is charged once, whatever is retried or scanned again.

    The code is needed until its charge is sent (by the order's due work, which may run again after a crash);
    it is a token of the customer's app that expires within a minute or two, of no use to anyone after that,
    and is forgotten ``PAYMENT_CODE_RETENTION_HOURS`` after the scan (billing.services.payment_codes). Logs
    show it masked (ipvas.logs).
    """

    code = models.CharField(_("payment code"), max_length=32, unique=True)
    provider = models.CharField(_("provider"), max_length=16, choices=Provider.choices)
    payment = models.OneToOneField(
        Payment, on_delete=models.PROTECT, related_name="code_use", verbose_name=_("payment")
    )
    used_at = models.DateTimeField(_("scanned at"), auto_now_add=True)

    class Meta:
        verbose_name = _("scanned payment code")
        verbose_name_plural = _("scanned payment codes")
        ordering = ["-used_at"]

    def __str__(self) -> str:
        return f"{self.provider}:{self.masked}"

    @property
    def masked(self) -> str:
        return f"{self.code[:4]}{'*' * max(len(self.code) - 8, 0)}{self.code[-4:]}"
