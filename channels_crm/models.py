from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Store(models.Model):
    """A business hall (营业厅)."""

    code = models.CharField(_("store code"), max_length=32, unique=True)
    name = models.CharField(_("name"), max_length=100, blank=True)

    class Meta:
        verbose_name = _("store")
        verbose_name_plural = _("stores")
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code} {self.name}".strip()


class ClerkRole(models.TextChoices):
    CLERK = "clerk", _("clerk")
    MANAGER = "manager", _("store manager")


class Clerk(models.Model):
    """A business-hall employee as the CRM knows them; logs in by single sign-on."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="clerk", verbose_name=_("sign-in account")
    )
    staff_id = models.CharField(_("CRM staff id"), max_length=64, unique=True)
    name = models.CharField(_("name"), max_length=100, blank=True)
    store = models.ForeignKey(Store, on_delete=models.PROTECT, related_name="clerks", verbose_name=_("store"))
    virtual_staff_id = models.CharField(_("virtual staff id"), max_length=32)
    role = models.CharField(_("role"), max_length=16, choices=ClerkRole.choices, default=ClerkRole.CLERK)
    # The store a manager's role was granted for: at another store (the CRM's ticket names where the clerk
    # signs in today) they are a clerk. Set to their store when the role is given, if left empty.
    managed_store = models.ForeignKey(
        Store,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("store managed"),
    )

    class Meta:
        verbose_name = _("clerk")
        verbose_name_plural = _("clerks")
        ordering = ["store__code", "staff_id"]

    def __str__(self) -> str:
        return f"{self.staff_id} {self.name}".strip()

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.role == ClerkRole.MANAGER and self.managed_store_id is None:
            self.managed_store_id = self.store_id
            if kwargs.get("update_fields") is not None:
                kwargs["update_fields"] = {*kwargs["update_fields"], "managed_store"}
        super().save(*args, **kwargs)

    @property
    def is_manager(self) -> bool:
        """A manager at the store they manage; a clerk anywhere else."""
        return self.role == ClerkRole.MANAGER and self.managed_store_id == self.store_id


class SsoTicketUse(models.Model):
    """A ticket's jti, kept until the ticket expires: a ticket logs in once."""

    jti = models.CharField(_("ticket id"), max_length=128, unique=True)
    expires_at = models.DateTimeField(_("expires at"), db_index=True)

    class Meta:
        verbose_name = _("used SSO ticket")
        verbose_name_plural = _("used SSO tickets")

    def __str__(self) -> str:
        return self.jti


class SsoLogin(models.Model):
    """Every single sign-on, accepted or refused: who, when, from where, and why not."""

    at = models.DateTimeField(_("at"), auto_now_add=True, db_index=True)
    staff_id = models.CharField(_("CRM staff id"), max_length=64, blank=True)
    store_code = models.CharField(_("store code"), max_length=32, blank=True)
    jti = models.CharField(_("ticket id"), max_length=128, blank=True)
    accepted = models.BooleanField(_("accepted"))
    reason = models.CharField(_("reason"), max_length=255, blank=True)
    remote_addr = models.GenericIPAddressField(_("from"), null=True, blank=True)

    class Meta:
        verbose_name = _("SSO login")
        verbose_name_plural = _("SSO logins")
        ordering = ["-at"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.staff_id}"
