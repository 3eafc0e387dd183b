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
    qr_code_url = models.CharField(_("QR code content"), max_length=512, blank=True)
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)
    provider_txn_id = models.CharField(_("provider transaction id"), max_length=64, blank=True)
    paid_at = models.DateTimeField(_("paid at"), null=True, blank=True)
    failure_reason = models.CharField(_("failure reason"), max_length=255, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("payment")
        verbose_name_plural = _("payments")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["provider", "out_trade_no"], name="payment_unique_trade_no"),
            models.CheckConstraint(condition=Q(amount_fen__gte=0), name="payment_amount_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.provider}:{self.out_trade_no} {self.status}"


class PaymentNotification(models.Model):
    """A provider's notification exactly as it arrived, kept for audit.

    Stored under the provider's own id before it is processed: the same
    notification delivered again is recognised and answered, not re-applied.
    """

    provider = models.CharField(_("provider"), max_length=16, choices=Provider.choices)
    notification_id = models.CharField(_("provider's notification id"), max_length=128)
    out_trade_no = models.CharField(_("out_trade_no"), max_length=64, blank=True, db_index=True)
    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, null=True, blank=True, related_name="notifications")
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
        return f"{self.provider}:{self.notification_id}"


class LedgerKind(models.TextChoices):
    PAYMENT = "payment", _("payment taken")
    REFUND = "refund", _("refund")
    REVERSAL = "reversal", _("phone-bill charge reversed")
    CASH_PAYBACK = "cash_payback", _("cash paid back by the store")


class LedgerEntry(models.Model):
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
        indexes = [models.Index(fields=["provider", "provider_ref"], name="ledger_provider_ref")]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount_fen} {self.provider}:{self.provider_ref}"

    def save(self, *args: object, **kwargs: object) -> None:
        if self.pk is not None:
            raise ValueError("ledger entries are append-only")
        super().save(*args, **kwargs)  # type: ignore[arg-type]

    def delete(self, *args: object, **kwargs: object) -> tuple[int, dict[str, int]]:
        raise ValueError("ledger entries are append-only")


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

    def __str__(self) -> str:
        return f"{self.provider}:{self.out_refund_no} {self.status}"


class SmsConfirmationStatus(models.TextChoices):
    PENDING = "pending", _("waiting for the reply")
    CONFIRMED = "confirmed", _("confirmed with Y")
    DECLINED = "declined", _("declined")
    EXPIRED = "expired", _("no reply in time")
    SUPERSEDED = "superseded", _("replaced by a newer confirmation")


class SmsConfirmation(models.Model):
    """The SMS asking the bound number to confirm a phone-bill purchase with 'Y'."""

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="sms_confirmations")
    phone = models.CharField(_("mobile number"), max_length=20)
    text = models.TextField(_("text"))
    status = models.CharField(
        _("status"), max_length=16, choices=SmsConfirmationStatus.choices, default=SmsConfirmationStatus.PENDING
    )
    expires_at = models.DateTimeField(_("expires at"))
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    gateway_message_id = models.CharField(_("gateway message id"), max_length=64, blank=True)
    reply_text = models.CharField(_("reply"), max_length=160, blank=True)
    replied_at = models.DateTimeField(_("replied at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("SMS confirmation")
        verbose_name_plural = _("SMS confirmations")
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["phone", "status", "-created_at"], name="smsconf_pending_by_phone")]

    def __str__(self) -> str:
        return f"{self.phone} {self.status}"


class SmsInbound(models.Model):
    """A reply delivered by the gateway, kept once: the same delivery twice is recognised."""

    digest = models.CharField(_("digest"), max_length=64, unique=True)
    sender = models.CharField(_("from"), max_length=20)
    text = models.CharField(_("text"), max_length=160)
    received_at = models.DateTimeField(_("received at"))
    confirmation = models.ForeignKey(
        SmsConfirmation, on_delete=models.PROTECT, null=True, blank=True, related_name="replies"
    )
    outcome = models.CharField(_("outcome"), max_length=64)
    created_at = models.DateTimeField(_("stored at"), auto_now_add=True)

    class Meta:
        verbose_name = _("SMS reply")
        verbose_name_plural = _("SMS replies")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.sender}: {self.text[:20]}"


class WorkItemKind(models.TextChoices):
    CASH_PAYBACK = "cash_payback", _("cash sale not provisioned: pay the cash back, reverse the CRM activity")
    REFUND_FAILED = "refund_failed", _("refund failed")
    PROVISIONING_UNCERTAIN = "provisioning_uncertain", _("phone bill may be charged without a product")
    PROVIDER_DISAGREES = "provider_disagrees", _("the provider's state disagrees with ours")
    CRM_UNCERTAIN = "crm_uncertain", _("the CRM did not answer about a cash sale")


class WorkItem(models.Model):
    """An order that needs a person: the stuck-work queue of admin."""

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="work_items", verbose_name=_("order"))
    kind = models.CharField(_("kind"), max_length=32, choices=WorkItemKind.choices)
    detail = models.CharField(_("detail"), max_length=255, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True)
    resolved_by = models.CharField(_("resolved by"), max_length=150, blank=True)
    resolution = models.CharField(_("resolution"), max_length=255, blank=True)

    class Meta:
        verbose_name = _("work item")
        verbose_name_plural = _("work items")
        ordering = ["resolved_at", "-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["order", "kind"], condition=Q(resolved_at__isnull=True), name="workitem_one_open_per_kind"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.order_id} {self.kind}"
