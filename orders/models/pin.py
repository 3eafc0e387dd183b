"""The household's purchase PIN (docs/interfaces.md §9) and its audit trail.

One row per TV account that has a PIN; clearing the PIN deletes the row (and so
lifts any lock). The PIN itself is never stored: only its hash, made by Django's
password hashers. Every set, clear, wrong entry and lock is a ``PurchasePinEvent``,
which outlives the PIN (it is keyed by the TV account, not by the row).
"""

from __future__ import annotations

from datetime import datetime

from django.db import models
from django.utils.translation import gettext_lazy as _

from ipvas.actors import ActorKind
from ipvas.appendonly import AppendOnlyModel


class PurchasePin(models.Model):
    tv_account = models.CharField(_("TV account"), max_length=64, unique=True)
    pin_hash = models.CharField(_("PIN hash"), max_length=256)
    # Wrong entries since the last right one (or since the last lock): the fifth locks purchases.
    failed_attempts = models.PositiveSmallIntegerField(_("wrong entries"), default=0)
    locked_until = models.DateTimeField(_("purchases locked until"), null=True, blank=True)
    set_at = models.DateTimeField(_("set at"))
    set_by_kind = models.CharField(_("set by"), max_length=16, choices=ActorKind.choices)
    set_by_id = models.CharField(_("set by id"), max_length=150, blank=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("purchase PIN")
        verbose_name_plural = _("purchase PINs")
        ordering = ["tv_account"]

    def __str__(self) -> str:
        return self.tv_account

    def is_locked(self, now: datetime) -> bool:
        return self.locked_until is not None and self.locked_until > now


class PinEventAction(models.TextChoices):
    SET = "set", _("PIN set")
    CHANGED = "changed", _("PIN changed")
    CLEARED = "cleared", _("PIN cleared")
    WRONG = "wrong", _("wrong PIN entered")
    LOCKED = "locked", _("purchases locked")


class PurchasePinEvent(AppendOnlyModel):
    """One thing that happened to a household's purchase PIN: who, what, when, from which channel."""

    tv_account = models.CharField(_("TV account"), max_length=64, db_index=True)
    at = models.DateTimeField(_("at"), db_index=True)
    action = models.CharField(_("action"), max_length=16, choices=PinEventAction.choices)
    actor_kind = models.CharField(_("by"), max_length=16, choices=ActorKind.choices)
    actor_id = models.CharField(_("by id"), max_length=150, blank=True)
    reason = models.CharField(_("why"), max_length=255, blank=True)
    data = models.JSONField(_("details"), default=dict, blank=True)

    class Meta:
        verbose_name = _("purchase PIN event")
        verbose_name_plural = _("purchase PIN events")
        ordering = ["-at", "-pk"]

    def __str__(self) -> str:
        return f"{self.tv_account} {self.get_action_display()}"
