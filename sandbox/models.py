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
        return f"{self.system.upper()}: {self.get_mode_display()}"


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
    # What the SMP de-duplicates a subscribe on when the caller names it (a renewal's period).
    idempotency_key = models.CharField(_("idempotency key"), max_length=64, blank=True, db_index=True)
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


class SimSmpAnswer(models.Model):
    """An order the simulated SMP answered with another order's subscription: a renewal whose subscribe its
    period key de-duplicated. The SMP knows the subscription by this order's number too (docs/protocols.md)."""

    order_no = models.CharField(_("order number"), max_length=32, unique=True)
    subscription = models.ForeignKey(SimSmpSubscription, on_delete=models.CASCADE, related_name="answers")
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("simulated SMP answer from a period's subscription")
        verbose_name_plural = _("simulated SMP answers from a period's subscription")

    def __str__(self) -> str:
        return f"{self.order_no} → {self.subscription.order_no}"


class SimTradeStatus(models.TextChoices):
    """WeChat Pay's names of a trade's states (Alipay's fake translates them)."""

    NOT_PAID = "NOTPAY", _("not paid")
    PAID = "SUCCESS", _("paid")
    CLOSED = "CLOSED", _("closed")
    # Payment codes (docs/interfaces.md §10):
    USER_PAYING = "USERPAYING", _("the customer is confirming in the app")
    FAILED = "PAYERROR", _("declined")
    REVOKED = "REVOKED", _("reversed")


class SimTrade(models.Model):
    """An order at a simulated payment provider (WeChat Pay or Alipay)."""

    provider = models.CharField(_("provider"), max_length=16)
    out_trade_no = models.CharField(_("out_trade_no"), max_length=64)
    transaction_id = models.CharField(_("transaction id"), max_length=64, unique=True)
    amount_fen = models.IntegerField(_("amount (fen)"))
    description = models.CharField(_("description"), max_length=128)
    code_url = models.CharField(_("QR code content"), max_length=256, blank=True)
    # A payment-code trade: the code the clerk scanned, and when the customer's confirmation completes it.
    auth_code = models.CharField(_("payment code"), max_length=32, blank=True)
    pays_at = models.DateTimeField(_("confirmed in the app at"), null=True, blank=True)
    status = models.CharField(
        _("status"), max_length=16, choices=SimTradeStatus.choices, default=SimTradeStatus.NOT_PAID
    )
    expires_at = models.DateTimeField(_("expires at"))
    paid_at = models.DateTimeField(_("paid at"), null=True, blank=True)
    refunded_fen = models.IntegerField(_("refunded (fen)"), default=0)
    # When a reverse ended the trade; a paid one's money went back then (WeChat Pay lists it as REVOKED).
    reversed_at = models.DateTimeField(_("reversed at"), null=True, blank=True)
    # A deduction under a contract (WeChat Pay 委托代扣, Alipay 周期扣款): the contract's id at the provider.
    deducted_under = models.CharField(_("deducted under contract"), max_length=64, blank=True)
    # The account's own data sent with the trade (WeChat Pay attach: shown in the bill's 商户数据包).
    attach = models.CharField(_("merchant data"), max_length=128, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("simulated provider trade")
        verbose_name_plural = _("simulated provider trades")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["provider", "out_trade_no"], name="simtrade_unique_out_trade_no"),
        ]

    def __str__(self) -> str:
        return f"{self.provider}:{self.out_trade_no} {self.status}"


class SimRefund(models.Model):
    provider = models.CharField(_("provider"), max_length=16)
    out_refund_no = models.CharField(_("out_refund_no"), max_length=64)
    refund_id = models.CharField(_("refund id"), max_length=64, unique=True)
    trade = models.ForeignKey(SimTrade, on_delete=models.CASCADE, related_name="refunds")
    amount_fen = models.IntegerField(_("amount (fen)"))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("simulated provider refund")
        verbose_name_plural = _("simulated provider refunds")
        constraints = [
            models.UniqueConstraint(fields=["provider", "out_refund_no"], name="simrefund_unique_out_refund_no"),
        ]

    def __str__(self) -> str:
        return f"{self.provider}:{self.out_refund_no}"


class SimContractStatus(models.TextChoices):
    PENDING = "pending", _("offered, not signed")
    SIGNED = "signed", _("signed")
    TERMINATED = "terminated", _("terminated")


class SimContract(models.Model):
    """A deduction contract at a simulated provider: WeChat Pay 委托代扣 or Alipay 周期扣款.

    Offered with a pay-and-sign trade, signed when that trade is paid, ended by the user (the sandbox's
    terminate endpoint) or the merchant (unsign). The provider's rules for a deduction live here too: WeChat
    Pay's window opened by a pre-deduction notice, Alipay's agreed day of the period.
    """

    provider = models.CharField(_("provider"), max_length=16)
    contract_code = models.CharField(_("merchant's contract code"), max_length=64)
    contract_id = models.CharField(_("contract id"), max_length=64, unique=True)
    trade = models.OneToOneField(SimTrade, on_delete=models.CASCADE, related_name="contract", null=True, blank=True)
    status = models.CharField(
        _("status"), max_length=16, choices=SimContractStatus.choices, default=SimContractStatus.PENDING
    )
    display_account = models.CharField(_("account shown"), max_length=64, blank=True)
    period_months = models.PositiveIntegerField(_("months per period"), default=1)
    single_amount_fen = models.IntegerField(_("most per deduction (fen)"), default=0)
    # WeChat Pay: the latest pre-deduction notice and what it allows; Alipay: the agreed day (midnight).
    notice_amount_fen = models.IntegerField(_("announced amount (fen)"), default=0)
    deduct_from = models.DateTimeField(_("deduction allowed from"), null=True, blank=True)
    deduct_until = models.DateTimeField(_("deduction allowed until"), null=True, blank=True)
    plan_at = models.DateTimeField(_("agreed deduction day"), null=True, blank=True)
    # The simulated user's account refuses the deductions with this code (e.g. NOT_ENOUGH), when set.
    decline_with = models.CharField(_("decline deductions with"), max_length=64, blank=True)
    signed_at = models.DateTimeField(_("signed at"), null=True, blank=True)
    terminated_at = models.DateTimeField(_("terminated at"), null=True, blank=True)
    terminated_by = models.CharField(_("terminated by"), max_length=16, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("simulated deduction contract")
        verbose_name_plural = _("simulated deduction contracts")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["provider", "contract_code"], name="simcontract_unique_code"),
        ]

    def __str__(self) -> str:
        return f"{self.provider}:{self.contract_code} {self.status}"


class SimSmsMessage(models.Model):
    """A message the simulated SMS gateway sent (MT): the sandbox's outbox."""

    to = models.CharField(_("to"), max_length=20, db_index=True)
    text = models.TextField(_("text"))
    gateway_id = models.CharField(_("gateway message id"), max_length=40, unique=True)
    reference = models.CharField(_("sender's reference"), max_length=64, blank=True)
    sent_at = models.DateTimeField(_("sent at"), auto_now_add=True)

    class Meta:
        verbose_name = _("simulated SMS")
        verbose_name_plural = _("simulated SMS")
        ordering = ["-sent_at", "-pk"]
        constraints = [
            # The gateway is idempotent on the sender's reference, as a real one with client ids is.
            models.UniqueConstraint(
                fields=["reference"], condition=~models.Q(reference=""), name="simsms_unique_reference"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.to}: {self.text[:30]}"


class SimCrmActivityCode(models.Model):
    code = models.CharField(_("marketing-activity code"), max_length=64, unique=True)
    active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("simulated CRM activity code")
        verbose_name_plural = _("simulated CRM activity codes")

    def __str__(self) -> str:
        return self.code


class SimCrmActivity(models.Model):
    """A marketing activity the simulated CRM handled: it bills the clerk's virtual staff id."""

    order_no = models.CharField(_("order number"), max_length=32, unique=True)
    activity_id = models.CharField(_("activity id"), max_length=40, unique=True)
    activity_code = models.CharField(_("activity code"), max_length=64)
    phone = models.CharField(_("mobile number"), max_length=20)
    virtual_staff_id = models.CharField(_("virtual staff id"), max_length=32)
    amount_fen = models.IntegerField(_("amount (fen)"))
    reversed_at = models.DateTimeField(_("reversed at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("simulated CRM activity")
        verbose_name_plural = _("simulated CRM activities")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.order_no} {self.activity_code}"
