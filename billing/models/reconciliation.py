"""The daily three-way reconciliation: the providers' and the SMP's statements, and what comparing them found.

A ``Statement`` is one imported file (WeChat Pay's trade bill, Alipay's
business-detail CSV or the SMP's provisioning list) for one day, kept line by
line. A ``ReconciliationRun`` is the comparison of one day, at most one per
day: running a day again replaces it; it says which sources it compared. Its
``ReconciliationItem`` rows say what was found, one per statement line or
ledger row (out_trade_no, out_refund_no or order number). A ``Discrepancy``
is what a person must look at: one per discrepancy found, kept across the
runs of its day (which replace their items), closed when a later run matches
it or when a person resolves it with a reason; ``DiscrepancyEvent`` is its
history. Amounts are integer fen, signed: money going back is negative.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from ipvas.appendonly import AppendOnlyModel


class StatementSource(models.TextChoices):
    WECHATPAY = "wechatpay", _("WeChat Pay trade bill")
    ALIPAY = "alipay", _("Alipay business detail")
    SMP = "smp", _("SMP provisioning list")


class StatementLineKind(models.TextChoices):
    PAYMENT = "payment", _("payment")
    REFUND = "refund", _("refund")
    SUBSCRIPTION = "subscription", _("subscription")
    UNSUBSCRIPTION = "unsubscription", _("unsubscription")
    # WeChat Pay's REVOKED row: a payment code's trade given back by its reverse after it was paid.
    REVERSAL = "reversal", _("reversal")


class Outcome(models.TextChoices):
    """What the comparison found for one line; every value but ``matched`` is a discrepancy."""

    MATCHED = "matched", _("matched")
    MISSING_AT_PROVIDER = "missing_at_provider", _("missing at the provider")
    MISSING_HERE = "missing_here", _("missing here")
    AMOUNT_DIFFERS = "amount_differs", _("amount differs")
    DUPLICATE = "duplicate", _("listed more than once")
    PAID_NOT_PROVISIONED = "paid_not_provisioned", _("paid, not provisioned")
    PROVISIONED_NOT_PAID = "provisioned_not_paid", _("provisioned, not paid")
    PROVISIONED_DIFFERS = "provisioned_differs", _("provisioned on another account or product")
    REVOKED_NOT_UNSUBSCRIBED = "revoked_not_unsubscribed", _("taken back here, still subscribed at the SMP")
    UNSUBSCRIBED_NOT_REVOKED = "unsubscribed_not_revoked", _("ended at the SMP, still entitled here")


DISCREPANCY_OUTCOMES: tuple[str, ...] = tuple(value for value in Outcome.values if value != Outcome.MATCHED)
# What a discrepancy may be beyond an item's outcome: a source that the day's comparison never had.
NOT_COMPARED = "not_compared"


class SourceState(models.TextChoices):
    """What became of a source in a run: compared (its statement, or nothing when it had none), or not."""

    COMPARED = "compared", _("compared")
    NO_STATEMENT = "no_statement", _("compared: no statement that day")
    MISSING = "missing", _("missing: not compared")
    REFUSED = "refused", _("refused: not compared")


COMPARED_STATES = frozenset({SourceState.COMPARED, SourceState.NO_STATEMENT})


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
            # A file with rows is imported once, whatever the day; one without (a day without trades) is the
            # same bytes every quiet day.
            models.UniqueConstraint(
                fields=["source", "sha256"], condition=Q(row_count__gt=0), name="statement_unique_file"
            ),
            models.UniqueConstraint(fields=["source", "day"], name="statement_one_per_day"),
        ]

    def __str__(self) -> str:
        return f"{self.get_source_display()} {self.day}"


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
    # The SMP's lines only: the account and the SMP's product code it subscribed (or unsubscribed).
    tv_account = models.CharField(_("TV account"), max_length=64, blank=True)
    product_code = models.CharField(_("SMP product code"), max_length=64, blank=True)
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
            models.Index(fields=["transaction_id"], name="statementline_txn"),
            models.Index(fields=["out_refund_no"], name="statementline_refund_no"),
        ]

    def __str__(self) -> str:
        return f"{self.statement} #{self.line_no}"


SOURCE_STATE_FIELDS: dict[str, str] = {
    StatementSource.WECHATPAY: "wechatpay_state",
    StatementSource.ALIPAY: "alipay_state",
    StatementSource.SMP: "smp_state",
}


class ReconciliationRun(models.Model):
    """The comparison of one day; at most one per day, replaced when the day is run again.

    A day is clean only when every source was compared and nothing differs:
    a source that was missing or refused is never a clean day.
    """

    day = models.DateField(_("day"), unique=True)
    started_at = models.DateTimeField(_("started at"))
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    triggered_by = models.CharField(_("run by"), max_length=150, blank=True)
    statements = models.ManyToManyField(Statement, related_name="runs", blank=True, verbose_name=_("statements"))
    wechatpay_state = models.CharField(
        _("WeChat Pay"), max_length=16, choices=SourceState.choices, default=SourceState.MISSING
    )
    alipay_state = models.CharField(
        _("Alipay"), max_length=16, choices=SourceState.choices, default=SourceState.MISSING
    )
    smp_state = models.CharField(_("SMP"), max_length=16, choices=SourceState.choices, default=SourceState.MISSING)
    matched = models.PositiveIntegerField(_("matched"), default=0)
    missing_at_provider = models.PositiveIntegerField(_("missing at the provider"), default=0)
    missing_here = models.PositiveIntegerField(_("missing here"), default=0)
    amount_differs = models.PositiveIntegerField(_("amount differs"), default=0)
    duplicate = models.PositiveIntegerField(_("listed more than once"), default=0)
    paid_not_provisioned = models.PositiveIntegerField(_("paid, not provisioned"), default=0)
    provisioned_not_paid = models.PositiveIntegerField(_("provisioned, not paid"), default=0)
    provisioned_differs = models.PositiveIntegerField(_("provisioned on another account or product"), default=0)
    revoked_not_unsubscribed = models.PositiveIntegerField(_("taken back here, still subscribed at the SMP"), default=0)
    unsubscribed_not_revoked = models.PositiveIntegerField(_("ended at the SMP, still entitled here"), default=0)
    notes = models.TextField(_("notes"), blank=True)
    # Why each fetched statement refused was refused, {source: [line_no, code, {facts}]}
    # (billing.reconciliation.refusals): rendered when shown, in the reader's language. The notes say it in
    # English, as the logs do. None when nothing was refused.
    refusals = models.JSONField(_("refusals"), null=True, blank=True)

    class Meta:
        verbose_name = _("reconciliation run")
        verbose_name_plural = _("reconciliation runs")
        ordering = ["-day"]

    def __str__(self) -> str:
        return f"{self._meta.verbose_name} {self.day}"

    @property
    def discrepancies(self) -> int:
        return sum(getattr(self, outcome) for outcome in DISCREPANCY_OUTCOMES)

    def counts(self) -> dict[str, int]:
        """{outcome: count} of the discrepancies found, those with none left out."""
        return {outcome: getattr(self, outcome) for outcome in DISCREPANCY_OUTCOMES if getattr(self, outcome)}

    def source_states(self) -> dict[str, str]:
        return {source: getattr(self, field) for source, field in SOURCE_STATE_FIELDS.items()}

    @property
    def uncompared(self) -> list[str]:
        """The sources this run did not compare (missing or refused), in the order of SOURCE_STATE_FIELDS."""
        return [source for source, state in self.source_states().items() if state not in COMPARED_STATES]

    @property
    def complete(self) -> bool:
        return not self.uncompared

    @property
    def clean(self) -> bool:
        return self.complete and self.discrepancies == 0


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
    # What explains the outcome, as [[message code, {arguments}], ...] (billing.reconciliation.details):
    # rendered when shown, in the reader's language. None when there is nothing to say.
    explanation = models.JSONField(_("explanation"), null=True, blank=True)
    # The other day that this line was paired with, when it straddles midnight.
    paired_day = models.DateField(_("paired with the day"), null=True, blank=True)

    class Meta:
        verbose_name = _("reconciliation item")
        verbose_name_plural = _("reconciliation items")
        ordering = ["run", "pk"]
        indexes = [
            models.Index(fields=["run", "outcome", "source"], name="reconitem_run_outcome"),
            models.Index(fields=["outcome", "source"], name="reconitem_outcome"),
            models.Index(fields=["order_no"], name="reconitem_order_no"),
            models.Index(fields=["reference"], name="reconitem_reference"),
        ]

    def __str__(self) -> str:
        return f"{self.get_source_display()} {self.reference or self.order_no}: {self.get_outcome_display()}"

    @property
    def detail(self) -> str:
        from billing.reconciliation.details import render

        return render(self.explanation)


class DiscrepancyStatus(models.TextChoices):
    OPEN = "open", _("open")
    MATCHED_LATER = "matched_later", _("closed: a later run matched it")
    RESOLVED = "resolved", _("resolved by a person")


class Discrepancy(models.Model):
    """A discrepancy that a person must look at: one per (day, source, kind, outcome, order, reference).

    Opened by the run that first finds it, refreshed by every later run of
    its day that finds it again, closed (``matched_later``) by the first run
    that does not, or by a run of the next or previous day that pairs it
    across midnight; a person may annotate it or resolve it with a reason. A
    discrepancy that a person resolved stays resolved when it is found again.
    It holds its own copy of what the item said: runs replace their items.
    """

    day = models.DateField(_("day"))
    source = models.CharField(_("source"), max_length=16, choices=StatementSource.choices)
    kind = models.CharField(_("kind"), max_length=16, choices=StatementLineKind.choices, blank=True)
    outcome = models.CharField(
        _("category"), max_length=24, choices=[*Outcome.choices, (NOT_COMPARED, _("statement not compared"))]
    )
    order_no = models.CharField(_("order number"), max_length=64, blank=True)
    reference = models.CharField(_("reference"), max_length=64, blank=True)
    our_amount_fen = models.BigIntegerField(_("our amount (fen)"), null=True, blank=True)
    their_amount_fen = models.BigIntegerField(_("their amount (fen)"), null=True, blank=True)
    statement_line_no = models.PositiveIntegerField(_("statement line"), null=True, blank=True)
    explanation = models.JSONField(_("explanation"), null=True, blank=True)
    status = models.CharField(
        _("status"), max_length=16, choices=DiscrepancyStatus.choices, default=DiscrepancyStatus.OPEN
    )
    opened_at = models.DateTimeField(_("opened at"))
    last_seen_at = models.DateTimeField(_("last found at"))
    # The run that last found it (runs are replaced, so not a foreign key).
    seen_in_run = models.PositiveBigIntegerField(_("last found by run"), default=0)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    closed_by = models.CharField(_("closed by"), max_length=150, blank=True)
    resolution = models.CharField(_("resolution"), max_length=255, blank=True)
    last_note = models.CharField(_("last note"), max_length=255, blank=True)

    class Meta:
        verbose_name = _("reconciliation discrepancy")
        verbose_name_plural = _("reconciliation discrepancies")
        ordering = ["-day", "source", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["day", "source", "kind", "outcome", "order_no", "reference"], name="discrepancy_unique"
            ),
        ]
        indexes = [
            models.Index(fields=["status", "day"], name="discrepancy_status_day"),
            models.Index(fields=["order_no"], name="discrepancy_order_no"),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.get_source_display()} {self.reference or self.order_no}: {self.get_outcome_display()}"

    @property
    def detail(self) -> str:
        from billing.reconciliation.details import render

        return render(self.explanation)


class DiscrepancyAction(models.TextChoices):
    OPENED = "opened", _("opened by a run")
    REOPENED = "reopened", _("found again by a run")
    MATCHED = "matched", _("matched by a later run")
    PAIRED = "paired", _("paired with a line of another day")
    ANNOTATED = "annotated", _("annotated")
    RESOLVED = "resolved", _("resolved")


class DiscrepancyEvent(AppendOnlyModel):
    """The history of a discrepancy: who did what, when, and why. Written once."""

    discrepancy = models.ForeignKey(Discrepancy, on_delete=models.PROTECT, related_name="events")
    at = models.DateTimeField(_("at"))
    action = models.CharField(_("action"), max_length=16, choices=DiscrepancyAction.choices)
    actor_kind = models.CharField(_("by"), max_length=16)
    actor_id = models.CharField(_("by id"), max_length=150, blank=True)
    note = models.CharField(_("note"), max_length=255, blank=True)

    class Meta:
        verbose_name = _("discrepancy event")
        verbose_name_plural = _("discrepancy events")
        ordering = ["discrepancy", "at", "pk"]

    def __str__(self) -> str:
        return f"{self.discrepancy_id} {self.get_action_display()}"
