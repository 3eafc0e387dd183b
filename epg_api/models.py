from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _
from rest_framework_api_key.models import AbstractAPIKey


class EpgClient(AbstractAPIKey):
    """An EPG vendor's system. Its key is stored hashed (SHA-512) and can be revoked in admin."""

    class Meta(AbstractAPIKey.Meta):
        verbose_name = _("EPG client")
        verbose_name_plural = _("EPG clients")


class IdempotencyRecord(models.Model):
    """An order created under an Idempotency-Key: the same key and body within 24 h answer the same order."""

    client = models.ForeignKey(EpgClient, on_delete=models.CASCADE, related_name="idempotency_records")
    key = models.CharField(_("Idempotency-Key"), max_length=64)
    fingerprint = models.CharField(_("request fingerprint"), max_length=64)
    order = models.ForeignKey("orders.Order", on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("idempotency record")
        verbose_name_plural = _("idempotency records")
        constraints = [models.UniqueConstraint(fields=["client", "key"], name="idempotency_unique_client_key")]

    def __str__(self) -> str:
        return f"{self.client_id}:{self.key}"
