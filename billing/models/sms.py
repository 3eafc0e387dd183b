from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from orders.models import Order


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
        constraints = [
            # A new confirmation to a number ends the older ones (docs/interfaces.md §4).
            models.UniqueConstraint(
                fields=["phone"], condition=Q(status="pending"), name="smsconf_one_pending_per_phone"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.phone} {self.get_status_display()}"


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
