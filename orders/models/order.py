from __future__ import annotations

import functools
from datetime import datetime

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django_fsm import ConcurrentTransitionMixin, FSMField, TransitionNotAllowed, transition

from ipvas.actors import ActorKind
from ipvas.appendonly import AppendOnlyModel
from ipvas.money import fen_to_yuan
from orders.constants import (
    AUTO_RENEW_METHODS,
    QR_METHODS,
    TERMINAL_STATUSES,
    Channel,
    FailureCode,
    OrderStatus,
    PaymentMethod,
)
from orders.models.product import Product

S = OrderStatus

# Before the money moves an order may be cancelled: nothing was charged yet.
# A charge in flight (phone bill, a CRM cash activity) cannot be taken back; a payment code
# the customer is still confirming can (its provider order is reversed, lifecycle.payment_code).
CANCELLABLE_PENDING_METHODS = QR_METHODS | {PaymentMethod.PHONE_BILL_SMS, PaymentMethod.PAYMENT_CODE}


# An SMS confirmation that a newer one to the same number replaced (docs/interfaces.md §4): the code
# stays sms_timeout (§1), the message says what happened.
SMS_REPLACED = "replaced by a newer confirmation"
# A cash sale's failure_detail when the CRM never answered (its activity is reversed in case it was handled).
CRM_NO_ANSWER = "the CRM did not answer"
SMS_REPLACED_MESSAGE = _("A newer SMS confirmation to this number replaced this one; please order again.")
# account_not_found for an order placed by mobile number (the counter): the code stays (§1), the message is its own.
PHONE_NOT_FOUND_MESSAGE = _("The SMP knows no TV account bound to this mobile number.")
# already_subscribed (§1) for an order refused because of another order or a subscription, not content owned:
# the code stays, the message says which (orders.selectors.per_view_taken, lifecycle.precheck).
PER_VIEW_UNDER_WAY = "for the same content is under way"
PER_VIEW_UNDER_WAY_MESSAGE = _(
    "An earlier order for this content is still open; finish it, or try again when it has ended."
)
RENEWS_ALREADY = "the account renews this product already"
RENEWS_ALREADY_MESSAGE = _("This account already renews this product automatically.")
# product_not_available for an auto-renewing order of an account the SMP knows no mobile for (§8's reminders).
NO_MOBILE_TO_REMIND = "no bound mobile to send the renewal reminders to"
NO_MOBILE_TO_REMIND_MESSAGE = _(
    "The SMP gave no mobile number for this account, and automatic renewal sends its reminders there; "
    "order without automatic renewal."
)

# product_not_available for an order whose product is paid on its channel only with an SMS confirmation, of an
# account the SMP knows no mobile for: no method is left to pay with (lifecycle.precheck).
NO_MOBILE_TO_CONFIRM = "no bound mobile to send the SMS confirmation to, the only way this product is paid"
NO_MOBILE_TO_CONFIRM_MESSAGE = _(
    "The SMP gave no mobile number for this account, and this product is paid here only with an SMS "
    "confirmation sent to that number."
)


@functools.cache
def _columns() -> tuple[str, ...]:
    """An order's columns but its id (attribute names: ``product_id``)."""
    return tuple(field.attname for field in Order._meta.concrete_fields if not field.primary_key)


def _cancellable(order: Order) -> bool:
    # Before a payment method is chosen (the SMP's pre-check may still be retrying) nothing is charged.
    return order.status in (S.PRECHECKING, S.AWAITING_PAYMENT) or order.payment_method in CANCELLABLE_PENDING_METHODS


def _is_renewal(order: Order) -> bool:
    return order.channel == Channel.RENEWAL


def _switching_between_qr(order: Order) -> bool:
    return order.payment_method in QR_METHODS


def _a_renewal(order: Order) -> bool:
    return order.channel == Channel.RENEWAL


class Order(ConcurrentTransitionMixin, models.Model):
    """One purchase of one product for one TV account.

    The status field is changed only by the transition methods below, each an
    arrow of the lifecycle in docs/interfaces.md §1. They hold guards and field
    changes only: ``lifecycle.transitions`` locks the row, calls one, saves, writes
    the ``OrderEvent`` and enqueues what must follow.
    ``ConcurrentTransitionMixin`` refuses to save a transition made from a
    stale status, as a second line behind the row lock.
    """

    order_no = models.CharField(_("order number"), max_length=32, unique=True)
    channel = models.CharField(_("channel"), max_length=8, choices=Channel.choices)
    tv_account = models.CharField(_("TV account"), max_length=64, blank=True)
    phone = models.CharField(_("mobile number"), max_length=20, blank=True)
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="orders", verbose_name=_("product"))
    content_id = models.CharField(_("content"), max_length=64, blank=True)
    amount_fen = models.IntegerField(_("amount (fen)"))
    status = FSMField(_("status"), max_length=20, choices=OrderStatus.choices, default=S.PRECHECKING, protected=True)
    payment_method = models.CharField(_("payment method"), max_length=16, choices=PaymentMethod.choices, blank=True)
    failure_code = models.CharField(_("failure code"), max_length=32, choices=FailureCode.choices, blank=True)
    failure_detail = models.CharField(_("failure detail"), max_length=255, blank=True)
    # When the system must next act on this order (a deadline, or the next
    # retry of an outside call); empty once the order is terminal.
    deadline_at = models.DateTimeField(_("next action due"), null=True, blank=True)
    status_changed_at = models.DateTimeField(_("status changed at"))
    attempts = models.PositiveIntegerField(_("attempts in this status"), default=0)
    # Who placed it: an EPG client (API key id) or a clerk in a store.
    origin_kind = models.CharField(_("placed by"), max_length=16, choices=ActorKind.choices)
    origin_id = models.CharField(_("placed by id"), max_length=150, blank=True)
    clerk = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="orders",
        verbose_name=_("clerk"),
    )
    store_code = models.CharField(_("store"), max_length=32, blank=True)
    # The CRM bills a cash sale under this id: the one of the ticket that opened the session in which the cash
    # was taken (a clerk's row holds their latest ticket's, perhaps of another store).
    virtual_staff_id = models.CharField(_("virtual staff id"), max_length=32, blank=True)
    # docs/interfaces.md §8: an order that starts a subscription when it completes (never on by default).
    auto_renew = models.BooleanField(_("renews automatically"), default=False)
    # Placed on the TV pages of a household with a purchase PIN, which asks for it on the next screen
    # (docs/interfaces.md §9): no payment starts until it was entered there (lifecycle.pins.pin_entered).
    pin_pending = models.BooleanField(_("purchase PIN still to be entered"), default=False)
    # The subscription it started (auto_renew) or renews (channel renewal), and the period a renewal pays for.
    subscription = models.ForeignKey(
        "orders.Subscription",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="orders",
        verbose_name=_("subscription"),
    )
    renewal_period = models.PositiveIntegerField(_("renewal of period"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("order")
        verbose_name_plural = _("orders")
        ordering = ["-created_at"]
        indexes = [
            models.Index(
                fields=["deadline_at"],
                name="order_due",
                condition=Q(deadline_at__isnull=False),
            ),
            models.Index(fields=["tv_account", "-created_at"], name="order_tv_account"),
            models.Index(fields=["phone", "-created_at"], name="order_phone"),
            models.Index(fields=["store_code", "-created_at"], name="order_store"),
            models.Index(fields=["status", "-created_at"], name="order_status"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(amount_fen__gte=0), name="order_amount_not_negative"),
            # At most one successful charge per period of a subscription, whatever is retried or raced.
            models.UniqueConstraint(
                fields=["subscription", "renewal_period"],
                condition=Q(status=S.COMPLETED, channel=Channel.RENEWAL),
                name="order_one_paid_renewal_per_period",
            ),
            # One renewal of a subscription in flight at a time.
            models.UniqueConstraint(
                fields=["subscription"],
                condition=Q(channel=Channel.RENEWAL) & ~Q(status__in=sorted(TERMINAL_STATUSES)),
                name="order_one_renewal_in_flight",
            ),
        ]

    def __str__(self) -> str:
        return self.order_no

    def save(self, *args, **kwargs) -> None:
        self.__dict__.pop("_columns_read", None)
        super().save(*args, **kwargs)

    def refresh_from_db(self, *args, **kwargs) -> None:
        self.__dict__.pop("_columns_read", None)
        super().refresh_from_db(*args, **kwargs)

    # An order read under its lock remembers its columns as read (lifecycle.transitions.lock_order);
    # a transition then writes only those that changed (issue #17: the UPDATE of every column was an
    # eighth of a payment notification's CPU). Any other save or refresh forgets them.
    def remember_columns(self) -> None:
        values = self.__dict__
        values["_columns_read"] = tuple(values[name] for name in _columns())

    def save_changes(self) -> None:
        """Save what changed since ``remember_columns`` (and ``updated_at``); all columns without it."""
        read = self.__dict__.get("_columns_read")
        if read is None:
            self.save()
            return
        values = self.__dict__
        self.save(
            update_fields=[name for name, old in zip(_columns(), read, strict=True) if values[name] != old]
            + ["updated_at"]
        )
        self.remember_columns()

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def amount_yuan(self) -> str:
        return fen_to_yuan(self.amount_fen)

    @property
    def phone_masked(self) -> str | None:
        return mask_phone(self.phone)

    def methods_allowed(self) -> list[str]:
        """The payment methods this order may be paid with (``methods_payable``). Before the pre-check the
        bound mobile is not known yet, and the SMS confirmation stays listed."""
        return self.methods_payable(with_mobile=bool(self.phone) or self.status == S.PRECHECKING)

    def methods_payable(self, *, with_mobile: bool) -> list[str]:
        """Its product's methods on its channel; an auto-renewing order only those a subscription renews by
        (docs/interfaces.md §8); without a bound mobile, not the SMS confirmation (no number to send it to)."""
        methods = self.product.methods_on(self.channel)
        if self.auto_renew:
            methods = [m for m in methods if m in AUTO_RENEW_METHODS]
        if not with_mobile:
            methods = [m for m in methods if m != PaymentMethod.PHONE_BILL_SMS]
        return methods

    @property
    def smp_idempotency_key(self) -> str:
        """What the SMP de-duplicates this order's subscribe on: the order number, or for a renewal the
        subscription's period (whichever renewal order pays it)."""
        if self.channel == Channel.RENEWAL and self.subscription_id:
            return f"{self.subscription.subscription_no}P{self.renewal_period}"
        return self.order_no

    @property
    def failure_message(self) -> str:
        if not self.failure_code:
            return ""
        if self.failure_code == FailureCode.SMS_TIMEOUT and self.failure_detail == SMS_REPLACED:
            return str(SMS_REPLACED_MESSAGE)
        if self.failure_code == FailureCode.ALREADY_SUBSCRIBED and self.failure_detail.endswith(PER_VIEW_UNDER_WAY):
            return str(PER_VIEW_UNDER_WAY_MESSAGE)
        if self.failure_code == FailureCode.ALREADY_SUBSCRIBED and self.failure_detail == RENEWS_ALREADY:
            return str(RENEWS_ALREADY_MESSAGE)
        if self.failure_code == FailureCode.PRODUCT_NOT_AVAILABLE and self.failure_detail == NO_MOBILE_TO_REMIND:
            return str(NO_MOBILE_TO_REMIND_MESSAGE)
        if self.failure_code == FailureCode.PRODUCT_NOT_AVAILABLE and self.failure_detail == NO_MOBILE_TO_CONFIRM:
            return str(NO_MOBILE_TO_CONFIRM_MESSAGE)
        if self.failure_code == FailureCode.ACCOUNT_NOT_FOUND and self.phone and not self.tv_account:
            # The clerk typed a mobile number: it is the number the SMP does not know, not a TV account.
            return str(PHONE_NOT_FOUND_MESSAGE)
        return str(FailureCode(self.failure_code).label)

    def _enter(self, *, deadline_at: datetime | None, now: datetime) -> None:
        self.deadline_at = deadline_at
        self.status_changed_at = now
        self.attempts = 0

    def _end(self, *, now: datetime, code: str = "", detail: str = "") -> None:
        if code and code not in FailureCode.values:
            raise ValidationError(f"unknown failure code {code!r}")
        self._enter(deadline_at=None, now=now)
        self.failure_code = code
        self.failure_detail = detail[:255]

    # --- the lifecycle (docs/interfaces.md §1) ---------------------------------

    @transition(field=status, source=S.PRECHECKING, target=S.AWAITING_PAYMENT)
    def precheck_passed(self, *, tv_account: str, phone: str, deadline_at: datetime, now: datetime) -> None:
        self.tv_account = tv_account
        self.phone = phone
        self._enter(deadline_at=deadline_at, now=now)

    @transition(field=status, source=S.PRECHECKING, target=S.REJECTED)
    def reject(self, *, code: str, detail: str = "", now: datetime) -> None:
        self._end(now=now, code=code, detail=detail)

    @transition(field=status, source=S.PRECHECKING, target=S.FAILED, conditions=[_a_renewal])
    def renewal_refused(self, *, code: str, detail: str = "", now: datetime) -> None:
        """A renewal's pre-check failed: §8 ends the renewal order ``failed`` with its §1 code (a customer's
        order ends ``rejected``)."""
        self._end(now=now, code=code, detail=detail)

    @transition(field=status, source=S.AWAITING_PAYMENT, target=S.PAYMENT_PENDING)
    def start_payment(self, *, payment_method: str, deadline_at: datetime, now: datetime) -> None:
        self.payment_method = payment_method
        self._enter(deadline_at=deadline_at, now=now)

    @transition(
        field=status,
        source=S.PAYMENT_PENDING,
        target=S.PAYMENT_PENDING,
        conditions=[_switching_between_qr],
    )
    def switch_payment(self, *, payment_method: str, deadline_at: datetime, now: datetime) -> None:
        if payment_method not in QR_METHODS:
            raise TransitionNotAllowed("only the QR methods can be switched between", object=self, method=None)
        self.payment_method = payment_method
        self._enter(deadline_at=deadline_at, now=now)

    @transition(field=status, source=[S.AWAITING_PAYMENT, S.PAYMENT_PENDING], target=S.PROVISIONING)
    def payment_confirmed(self, *, payment_method: str, now: datetime) -> None:
        """Paid (QR, cash) or confirmed (phone bill): subscribe on the SMP next, at once."""
        self.payment_method = payment_method
        self._enter(deadline_at=now, now=now)

    @transition(field=status, source=[S.PAYMENT_PENDING, S.PROVISIONING], target=S.FAILED)
    def fail(self, *, code: str, detail: str = "", now: datetime) -> None:
        self._end(now=now, code=code, detail=detail)

    @transition(field=status, source=[S.AWAITING_PAYMENT, S.PAYMENT_PENDING], target=S.EXPIRED)
    def expire(self, *, code: str, now: datetime, detail: str = "") -> None:
        self._end(now=now, code=code, detail=detail)

    @transition(
        field=status,
        source=[S.PRECHECKING, S.AWAITING_PAYMENT, S.PAYMENT_PENDING],
        target=S.CANCELLED,
        conditions=[_cancellable],
    )
    def cancel(self, *, now: datetime) -> None:
        self._end(now=now, code=FailureCode.CANCELLED)

    @transition(
        field=status,
        source=[S.PRECHECKING, S.AWAITING_PAYMENT, S.PAYMENT_PENDING, S.PROVISIONING],
        target=S.CANCELLED,
        conditions=[_is_renewal],
    )
    def cancel_renewal(self, *, now: datetime) -> None:
        """A renewal whose subscription was cancelled before its charge was sent (docs/interfaces.md §8): the
        phone-bill charge (provisioning) or the deduction under the contract (payment_pending) never goes out."""
        self._end(now=now, code=FailureCode.CANCELLED)

    @transition(field=status, source=S.PROVISIONING, target=S.COMPLETED)
    def complete(self, *, now: datetime) -> None:
        self._end(now=now)

    @transition(
        field=status,
        source=[S.PROVISIONING, S.EXPIRED, S.CANCELLED, S.COMPLETED],
        target=S.REFUNDED,
    )
    def refunded(self, *, code: str, detail: str = "", now: datetime) -> None:
        """The money taken for this order went back (automatically, or by an admin)."""
        self._end(now=now, code=code or self.failure_code, detail=detail)

    def retry_later(self, *, deadline_at: datetime) -> None:
        """Not a transition: the outside call failed, look again at ``deadline_at``."""
        self.deadline_at = deadline_at
        self.attempts += 1


class OrderEvent(AppendOnlyModel):
    """An append-only record of one thing that happened to an order."""

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="events")
    at = models.DateTimeField(_("at"), db_index=True)
    from_status = models.CharField(_("from"), max_length=20, choices=OrderStatus.choices, blank=True)
    to_status = models.CharField(_("to"), max_length=20, choices=OrderStatus.choices, blank=True)
    action = models.CharField(_("action"), max_length=40)
    actor_kind = models.CharField(_("by"), max_length=16, choices=ActorKind.choices)
    actor_id = models.CharField(_("by id"), max_length=150, blank=True)
    reason = models.CharField(_("why"), max_length=255, blank=True)
    data = models.JSONField(_("details"), default=dict, blank=True)

    class Meta:
        verbose_name = _("order event")
        verbose_name_plural = _("order events")
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return f"{self.order_id} {self.action} {self.from_status}->{self.to_status}"


def mask_phone(phone: str) -> str | None:
    """13800000001 -> 138****0001; what leaves the system and what logs show."""
    if not phone:
        return None
    if len(phone) < 8:
        return "*" * len(phone)
    return f"{phone[:3]}****{phone[-4:]}"
