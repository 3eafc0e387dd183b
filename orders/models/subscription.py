from __future__ import annotations

from datetime import datetime

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_fsm import ConcurrentTransitionMixin, FSMField, transition

from ipvas.actors import ActorKind
from ipvas.appendonly import AppendOnlyModel
from ipvas.money import fen_to_yuan
from orders.constants import (
    RENEWAL_METHODS,
    CancelChannel,
    Channel,
    NoticeKind,
    PaymentMethod,
    SubscriptionStatus,
)
from orders.events import subscription_action_label
from orders.models.order import mask_phone
from orders.models.product import Product

S = SubscriptionStatus


class Subscription(ConcurrentTransitionMixin, models.Model):
    """A continuous monthly, quarterly or yearly product (连续包月/包季/包年), docs/interfaces.md §8.

    It starts when an auto-renewing order completes and renews by renewal
    orders (channel ``renewal``), one period at a time. The status changes only
    by the transition methods below; ``lifecycle.subscriptions`` and
    ``lifecycle.renewals`` lock the row, call one, save and write the event.
    ``due_at`` is when the beat sweep must next look at it (a reminder, a
    renewal, a retry, the end of the paid period).
    """

    subscription_no = models.CharField(_("subscription number"), max_length=32, unique=True)
    tv_account = models.CharField(_("TV account"), max_length=64)
    phone = models.CharField(_("mobile number"), max_length=20, blank=True)
    product = models.ForeignKey(
        Product, on_delete=models.PROTECT, related_name="subscriptions", verbose_name=_("product")
    )
    status = FSMField(_("status"), max_length=16, choices=SubscriptionStatus.choices, default=S.ACTIVE, protected=True)
    payment_method = models.CharField(_("payment method"), max_length=16, choices=PaymentMethod.choices)
    renewal_price_fen = models.IntegerField(_("renewal price (fen)"))
    # Paid periods so far (the first is the order that started it); a renewal pays period ``periods + 1``.
    periods = models.PositiveIntegerField(_("paid periods"), default=1)
    current_period_end = models.DateTimeField(_("paid until"))
    next_reminder_at = models.DateTimeField(_("next reminder at"), null=True, blank=True)
    reminder_sent_at = models.DateTimeField(_("reminder sent at"), null=True, blank=True)
    next_renewal_at = models.DateTimeField(_("next renewal at"), null=True, blank=True)
    # The renewal was moved later than its usual time because its reminder went out late.
    renewal_moved = models.BooleanField(_("renewal moved by a late reminder"), default=False)
    consent_channel = models.CharField(_("consent given on"), max_length=8, choices=Channel.choices)
    consent_method = models.CharField(_("consent for"), max_length=16, choices=PaymentMethod.choices)
    consent_at = models.DateTimeField(_("consent given at"))
    # What proves it: the EPG client and request, the clerk, the SMS reply, the provider's contract.
    consent_evidence = models.JSONField(_("consent evidence"), default=dict, blank=True)
    contract_id = models.CharField(_("provider contract id"), max_length=64, blank=True)
    cancelled_at = models.DateTimeField(_("cancelled at"), null=True, blank=True)
    cancel_channel = models.CharField(
        _("cancelled on"), max_length=8, choices=CancelChannel.choices, blank=True, default=""
    )
    cancel_reason = models.CharField(_("why cancelled"), max_length=255, blank=True)
    ended_at = models.DateTimeField(_("ended at"), null=True, blank=True)
    smp_unsubscribed_at = models.DateTimeField(_("unsubscribed on the SMP at"), null=True, blank=True)
    due_at = models.DateTimeField(_("next look at"), null=True, blank=True)
    attempts = models.PositiveIntegerField(_("attempts of the step due"), default=0)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("subscription")
        verbose_name_plural = _("subscriptions")
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["due_at"], name="subscription_due", condition=Q(due_at__isnull=False)),
            models.Index(fields=["tv_account", "-created_at"], name="subscription_tv_account"),
            models.Index(fields=["phone", "-created_at"], name="subscription_phone"),
            models.Index(fields=["status", "next_renewal_at"], name="subscription_status_renewal"),
        ]
        constraints = [
            # docs/interfaces.md §8: at most one active subscription per account and product.
            models.UniqueConstraint(
                fields=["tv_account", "product"],
                condition=Q(status=S.ACTIVE),
                name="subscription_one_active_per_product",
            ),
            models.CheckConstraint(condition=Q(renewal_price_fen__gte=0), name="subscription_price_not_negative"),
            models.CheckConstraint(condition=Q(payment_method__in=RENEWAL_METHODS), name="subscription_method"),
        ]

    def __str__(self) -> str:
        return self.subscription_no

    @property
    def phone_masked(self) -> str | None:
        return mask_phone(self.phone)

    @property
    def renewal_price_yuan(self) -> str:
        return fen_to_yuan(self.renewal_price_fen)

    # --- the subscription's life (docs/interfaces.md §8) ----------------------------

    @transition(field=status, source=S.ACTIVE, target=S.CANCELLED)
    def cancel(self, *, channel: str, reason: str, now: datetime) -> None:
        self.cancelled_at = now
        self.cancel_channel = channel
        self.cancel_reason = reason[:255]
        self._renewals_off(now=now)

    @transition(field=status, source=S.ACTIVE, target=S.LAPSED)
    def lapse(self, *, now: datetime) -> None:
        """A renewal could not be charged before the paid period ends: nothing more is tried."""
        self._renewals_off(now=now)

    @transition(field=status, source=[S.CANCELLED, S.LAPSED], target=S.ENDED)
    def end(self, *, now: datetime) -> None:
        self.ended_at = now
        self.due_at = None
        self.attempts = 0

    def _renewals_off(self, *, now: datetime) -> None:
        self.next_reminder_at = None
        self.next_renewal_at = None
        self.due_at = self.current_period_end  # then it ends
        self.attempts = 0


class SubscriptionEvent(AppendOnlyModel):
    """An append-only record of one thing that happened to a subscription (who, what, why)."""

    subscription = models.ForeignKey(Subscription, on_delete=models.PROTECT, related_name="events")
    at = models.DateTimeField(_("at"), db_index=True)
    from_status = models.CharField(_("from"), max_length=16, choices=SubscriptionStatus.choices, blank=True)
    to_status = models.CharField(_("to"), max_length=16, choices=SubscriptionStatus.choices, blank=True)
    action = models.CharField(_("action"), max_length=40)
    actor_kind = models.CharField(_("by"), max_length=16, choices=ActorKind.choices)
    actor_id = models.CharField(_("by id"), max_length=150, blank=True)
    reason = models.CharField(_("why"), max_length=255, blank=True)
    data = models.JSONField(_("details"), default=dict, blank=True)

    class Meta:
        verbose_name = _("subscription event")
        verbose_name_plural = _("subscription events")
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return f"{self.subscription_id} {subscription_action_label(self.action)}"


class SubscriptionNotice(models.Model):
    """An SMS the subscriber gets: the reminder before a renewal, a renewal done, a lapse, an answer to TD.

    One reminder, renewal and lapse notice per period (unique), whatever is
    retried; each is handed to the gateway by ``lifecycle.tasks.send_notice``.
    """

    subscription = models.ForeignKey(
        Subscription, on_delete=models.PROTECT, related_name="notices", null=True, blank=True
    )
    kind = models.CharField(_("kind"), max_length=16, choices=NoticeKind.choices)
    period = models.PositiveIntegerField(_("period"), null=True, blank=True)
    phone = models.CharField(_("mobile number"), max_length=20)
    text = models.CharField(_("text"), max_length=500)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    gateway_message_id = models.CharField(_("gateway message id"), max_length=64, blank=True)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    gave_up_at = models.DateTimeField(_("given up at"), null=True, blank=True)
    # When its send was last tried or asked for: one untouched for long lost its chain (lifecycle.stalled).
    tried_at = models.DateTimeField(_("last tried at"), default=timezone.now)

    class Meta:
        verbose_name = _("subscription notice")
        verbose_name_plural = _("subscription notices")
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["subscription", "kind", "period"],
                condition=Q(kind__in=[NoticeKind.REMINDER, NoticeKind.RENEWED, NoticeKind.LAPSED]),
                name="notice_once_per_period",
            ),
        ]
        indexes = [
            # The stalled-work sweep's look for notices neither sent nor given up (a few among millions).
            models.Index(
                fields=["tried_at"],
                condition=Q(sent_at__isnull=True, gave_up_at__isnull=True),
                name="notice_unsent_tried",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.subscription_id or mask_phone(self.phone)}"
