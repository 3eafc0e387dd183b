"""The daily three-way reconciliation: the providers' and the SMP's statements, and what comparing them found.

A ``Statement`` is one imported file (WeChat Pay's trade bill, Alipay's
business-detail CSV or the SMP's provisioning list) for one day, kept line by
line. A ``ReconciliationRun`` is the comparison of one day, at most one per
day: running a day again replaces it. Its ``ReconciliationItem`` rows say
what was found, one per key (out_trade_no, out_refund_no or order number).
Amounts are integer fen, signed: money going back is negative.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class StatementSource(models.TextChoices):
    WECHATPAY = "wechatpay", _("WeChat Pay trade bill")
    ALIPAY = "alipay", _("Alipay business detail")
    SMP = "smp", _("SMP provisioning list")


class StatementLineKind(models.TextChoices):
    PAYMENT = "payment", _("payment")
    REFUND = "refund", _("refund")
    SUBSCRIPTION = "subscription", _("subscription")


class Outcome(models.TextChoices):
    MATCHED = "matched", _("matched")
    MISSING_AT_PROVIDER = "missing_at_provider", _("missing at the provider")
    MISSING_HERE = "missing_here", _("missing here")
    AMOUNT_DIFFERS = "amount_differs", _("amount differs")
    PAID_NOT_PROVISIONED = "paid_not_provisioned", _("paid, not provisioned")
    PROVISIONED_NOT_PAID = "provisioned_not_paid", _("provisioned, not paid")


class Statement(models.Model):
    """One statement file of one source for one day, imported whole or not at all."""

    source = models.CharField(_("source"), max_length=16, choices=StatementSource.choices)
    day = models.DateField(_("day"))
    sha256 = models.CharField(_("SHA-256 of the file"), max_length=64)
    file_name = models.CharField(_("file name"), max_length=255, blank=True)
    size_bytes = models.PositiveBigIntegerField(_("size (bytes)"), default=0)
    row_count = models.PositiveIntegerField(_("rows"), default=0)
    imported_at = models.DateTimeField(_("imported at"), auto_now_add=True)
    imported_by = models.CharField(_("imported by"), max_length=150, blank=True)

    class Meta:
        verbose_name = _("statement")
        verbose_name_plural = _("statements")
        ordering = ["-day", "source"]
        constraints = [
            models.UniqueConstraint(fields=["source", "sha256"], name="statement_unique_file"),
            models.UniqueConstraint(fields=["source", "day"], name="statement_one_per_day"),
        ]

    def __str__(self) -> str:
        return f"{self.source} {self.day}"


class StatementLine(models.Model):
    """One row of a statement, in IPVAS's terms; ``raw`` keeps the line exactly as the file had it."""

    statement = models.ForeignKey(Statement, on_delete=models.CASCADE, related_name="lines")
    line_no = models.PositiveIntegerField(_("line"))
    kind = models.CharField(_("kind"), max_length=16, choices=StatementLineKind.choices)
    # What the comparison joins on: out_trade_no (payments), out_refund_no (refunds), order_no (SMP).
    match_key = models.CharField(_("key"), max_length=64)
    out_trade_no = models.CharField(_("out_trade_no / order number"), max_length=64)
    transaction_id = models.CharField(_("provider transaction id / SMP subscription id"), max_length=64, blank=True)
    out_refund_no = models.CharField(_("out_refund_no"), max_length=64, blank=True)
    refund_id = models.CharField(_("provider refund id"), max_length=64, blank=True)
    amount_fen = models.BigIntegerField(_("amount (fen)"))
    charge = models.CharField(_("SMP charge"), max_length=20, blank=True)
    occurred_at = models.DateTimeField(_("at"))
    raw = models.TextField(_("line as in the file"))

    class Meta:
        verbose_name = _("statement line")
        verbose_name_plural = _("statement lines")
        ordering = ["statement", "line_no"]
        constraints = [
            models.UniqueConstraint(fields=["statement", "line_no"], name="statementline_unique_line"),
        ]
        indexes = [
            models.Index(fields=["statement", "kind", "match_key"], name="statementline_key"),
            models.Index(fields=["out_trade_no"], name="statementline_trade_no"),
        ]

    def __str__(self) -> str:
        return f"{self.statement} line {self.line_no}"


class ReconciliationRun(models.Model):
    """The comparison of one day; at most one per day, replaced when the day is run again."""

    day = models.DateField(_("day"), unique=True)
    started_at = models.DateTimeField(_("started at"))
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    triggered_by = models.CharField(_("run by"), max_length=150, blank=True)
    statements = models.ManyToManyField(Statement, related_name="runs", blank=True, verbose_name=_("statements"))
    matched = models.PositiveIntegerField(_("matched"), default=0)
    missing_at_provider = models.PositiveIntegerField(_("missing at the provider"), default=0)
    missing_here = models.PositiveIntegerField(_("missing here"), default=0)
    amount_differs = models.PositiveIntegerField(_("amount differs"), default=0)
    paid_not_provisioned = models.PositiveIntegerField(_("paid, not provisioned"), default=0)
    provisioned_not_paid = models.PositiveIntegerField(_("provisioned, not paid"), default=0)
    notes = models.TextField(_("notes"), blank=True)

    class Meta:
        verbose_name = _("reconciliation run")
        verbose_name_plural = _("reconciliation runs")
        ordering = ["-day"]

    def __str__(self) -> str:
        return f"reconciliation {self.day}"

    @property
    def discrepancies(self) -> int:
        return (
            self.missing_at_provider
            + self.missing_here
            + self.amount_differs
            + self.paid_not_provisioned
            + self.provisioned_not_paid
        )


class ReconciliationItem(models.Model):
    """What the comparison found for one key of one source on the run's day."""

    run = models.ForeignKey(ReconciliationRun, on_delete=models.CASCADE, related_name="items")
    outcome = models.CharField(_("outcome"), max_length=24, choices=Outcome.choices)
    source = models.CharField(_("source"), max_length=16, choices=StatementSource.choices)
    kind = models.CharField(_("kind"), max_length=16, choices=StatementLineKind.choices)
    order_no = models.CharField(_("order number"), max_length=64, blank=True)
    reference = models.CharField(_("reference"), max_length=64, blank=True)
    our_amount_fen = models.BigIntegerField(_("our amount (fen)"), null=True, blank=True)
    their_amount_fen = models.BigIntegerField(_("their amount (fen)"), null=True, blank=True)
    statement_line_no = models.PositiveIntegerField(_("statement line"), null=True, blank=True)
    detail = models.CharField(_("detail"), max_length=255, blank=True)

    class Meta:
        verbose_name = _("reconciliation item")
        verbose_name_plural = _("reconciliation items")
        ordering = ["run", "pk"]
        indexes = [
            models.Index(fields=["run", "outcome", "source"], name="reconitem_run_outcome"),
            models.Index(fields=["outcome", "source"], name="reconitem_outcome"),
            models.Index(fields=["order_no"], name="reconitem_order_no"),
        ]

    def __str__(self) -> str:
        return f"{self.source} {self.reference or self.order_no}: {self.outcome}"
