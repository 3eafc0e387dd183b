"""The simulated outside world: what the SMP, the CRM, the providers and the SMS
gateway would hold. Used by the simulators in tests, demos and the sandbox;
never by a production set-up."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class FaultMode(models.TextChoices):
    OK = "ok", _("answer normally")
    DOWN = "down", _("refuse connections")
    SLOW = "slow", _("take 5 s")
    FLAKY = "flaky", _("fail every other call")


class SimulatedFault(models.Model):
    system = models.CharField(_("system"), max_length=16, unique=True)
    mode = models.CharField(_("mode"), max_length=8, choices=FaultMode.choices, default=FaultMode.OK)
    calls = models.PositiveBigIntegerField(_("calls counted"), default=0)

    class Meta:
        verbose_name = _("simulated fault")
        verbose_name_plural = _("simulated faults")

    def __str__(self) -> str:
        return f"{self.system}: {self.mode}"


class SmpAccountStatus(models.TextChoices):
    ACTIVE = "active", _("active")
    SUSPENDED = "suspended", _("suspended")
    IN_ARREARS = "in_arrears", _("in arrears")


class SimSmpProduct(models.Model):
    code = models.CharField(_("SMP product code"), max_length=64, unique=True)
    zero_price_package_code = models.CharField(_("zero-price package code"), max_length=64, blank=True)
    active = models.BooleanField(_("orderable"), default=True)

    class Meta:
        verbose_name = _("simulated SMP product")
        verbose_name_plural = _("simulated SMP products")

    def __str__(self) -> str:
        return self.code


class SimSmpAccount(models.Model):
    tv_account = models.CharField(_("TV account"), max_length=64, unique=True)
    phone = models.CharField(_("bound mobile number"), max_length=20, db_index=True)
    status = models.CharField(_("status"), max_length=16, choices=SmpAccountStatus.choices)
    balance_fen = models.IntegerField(_("phone-bill balance (fen)"), default=0)
    blocked_products = models.JSONField(_("products it may not order"), default=list, blank=True)

    class Meta:
        verbose_name = _("simulated SMP account")
        verbose_name_plural = _("simulated SMP accounts")

    def __str__(self) -> str:
        return f"{self.tv_account} / {self.phone}"


class SimSmpSubscription(models.Model):
    order_no = models.CharField(_("order number"), max_length=32, unique=True)
    subscription_id = models.CharField(_("subscription id"), max_length=40, unique=True)
    tv_account = models.CharField(_("TV account"), max_length=64, db_index=True)
    product_code = models.CharField(_("product code"), max_length=64)
    package_code = models.CharField(_("package code"), max_length=64)
    charge = models.CharField(_("charge"), max_length=20)
    amount_fen = models.IntegerField(_("charged (fen)"))
    content_id = models.CharField(_("content"), max_length=64, blank=True)
    starts_at = models.DateTimeField(_("starts at"))
    ends_at = models.DateTimeField(_("ends at"))
    cancelled_at = models.DateTimeField(_("cancelled at"), null=True, blank=True)
    reversed_fen = models.IntegerField(_("reversed (fen)"), default=0)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("simulated SMP subscription")
        verbose_name_plural = _("simulated SMP subscriptions")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.order_no} {self.tv_account} {self.product_code}"
