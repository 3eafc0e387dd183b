from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ipvas.fields import ChoiceListField
from ipvas.money import fen_to_yuan
from orders.constants import (
    CHANNEL_METHODS,
    PERIOD_MONTHS,
    PROVIDER_METHODS,
    Channel,
    PaymentMethod,
    ProductKind,
    SalesChannel,
)

# What a product may ask, at most: beyond it a number typed wrong (a price in fen typed twice, say).
MAX_PRICE_FEN = 10_000_000  # 100,000.00 yuan
MAX_VIEW_HOURS = 720  # 30 days

code_validator = RegexValidator(
    r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}\Z",
    _("Use 1-32 letters, digits, '_', '.' or '-', starting with a letter or digit."),
)


class ProductQuerySet(models.QuerySet["Product"]):
    def on_sale(self, at: datetime | None = None) -> ProductQuerySet:
        at = at or timezone.now()
        return self.filter(
            Q(on_sale_from__isnull=True) | Q(on_sale_from__lte=at),
            Q(on_sale_until__isnull=True) | Q(on_sale_until__gt=at),
            is_active=True,
        )


class Product(models.Model):
    """A value-added TV product, configured by admins in Django admin."""

    code = models.CharField(_("code"), max_length=32, unique=True, validators=[code_validator])
    name = models.CharField(_("name"), max_length=100)
    description = models.TextField(_("description"), blank=True)
    kind = models.CharField(_("kind"), max_length=16, choices=ProductKind.choices)
    price_fen = models.IntegerField(_("price (fen)"), help_text=_("Integer fen: 1 yuan = 100 fen. 2500 is 25.00 yuan."))
    view_hours = models.PositiveSmallIntegerField(
        _("viewing hours"),
        null=True,
        blank=True,
        help_text=_("Per-view products only: how long the content can be watched (usually 48)."),
    )
    smp_product_code = models.CharField(_("SMP product code"), max_length=64)
    smp_zero_price_package_code = models.CharField(
        _("SMP zero-price package code"),
        max_length=64,
        blank=True,
        help_text=_("Subscribed after a WeChat Pay or Alipay payment, so the user is not charged twice."),
    )
    crm_activity_code = models.CharField(
        _("CRM marketing-activity code"),
        max_length=64,
        blank=True,
        help_text=_("Needed for cash sales in business halls."),
    )
    channels = ChoiceListField(_("channels"), choices_enum=SalesChannel)
    payment_methods = ChoiceListField(_("payment methods"), choices_enum=PaymentMethod)
    on_sale_from = models.DateTimeField(_("on sale from"), null=True, blank=True)
    on_sale_until = models.DateTimeField(_("on sale until"), null=True, blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    renewable = models.BooleanField(
        _("renewable"),
        default=False,
        help_text=_(
            "Monthly, quarterly and yearly products only: may be bought with automatic renewal "
            "(连续包月/包季/包年), which the customer must choose; it is never pre-selected."
        ),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    objects = ProductQuerySet.as_manager()

    class Meta:
        verbose_name = _("product")
        verbose_name_plural = _("products")
        ordering = ["price_fen", "code"]
        constraints = [
            models.CheckConstraint(
                condition=Q(price_fen__gte=0),
                name="product_price_not_negative",
                violation_error_message=_("The price cannot be negative."),
            ),
            models.CheckConstraint(
                condition=Q(kind=ProductKind.PER_VIEW, view_hours__gte=1)
                | (~Q(kind=ProductKind.PER_VIEW) & Q(view_hours__isnull=True)),
                name="product_view_hours_only_per_view",
                violation_error_message=_("Per-view products, and only they, need viewing hours."),
            ),
            models.CheckConstraint(
                condition=~Q(kind=ProductKind.PER_VIEW, renewable=True),
                name="product_per_view_not_renewable",
                violation_error_message=_("A per-view product cannot renew."),
            ),
            models.CheckConstraint(
                condition=Q(on_sale_from__isnull=True)
                | Q(on_sale_until__isnull=True)
                | Q(on_sale_until__gt=models.F("on_sale_from")),
                name="product_sale_window_ordered",
                violation_error_message=_("The on-sale window must end after it starts."),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"

    @property
    def period_months(self) -> int | None:
        return PERIOD_MONTHS.get(self.kind)

    @property
    def price_yuan(self) -> str:
        return fen_to_yuan(self.price_fen)

    def methods_on(self, channel: str) -> list[str]:
        """The payment methods this product may be paid with on ``channel``, in display order."""
        if channel not in self.channels:
            return []
        return [m for m in CHANNEL_METHODS[channel] if m in self.payment_methods]

    def is_on_sale(self, channel: str, at: datetime | None = None) -> bool:
        at = at or timezone.now()
        return (
            self.is_active
            and channel in self.channels
            and (self.on_sale_from is None or self.on_sale_from <= at)
            and (self.on_sale_until is None or at < self.on_sale_until)
        )

    def _twin_in_another_case(self, was: dict[str, str] | None) -> str | None:
        """Another product's code that differs from this one's only in case; asked when the code is new (a
        pair made before the rule may still be edited, to take one off sale)."""
        if not self.code or (was is not None and was["code"] == self.code):
            return None
        others = Product.objects.filter(code__iexact=self.code).exclude(pk=self.pk).exclude(code=self.code)
        return others.values_list("code", flat=True).first()

    def _keep_what_was_sold(self, was: dict[str, str] | None, add: Callable[[str, str], None]) -> None:
        """A sold product's code and kind stay: entitlements keep the code (the EPG asks by it), periods the kind."""
        if was is None or not self.orders.exists():
            return
        for field in ("code", "kind"):
            if getattr(self, field) != was[field]:
                add(field, _("This product has been sold: make a new product, and take this one off sale."))

    def clean(self) -> None:
        errors: dict[str, list[str]] = {}

        def add(field: str, message: str) -> None:
            errors.setdefault(field, []).append(message)

        if self.price_fen is not None and self.price_fen < 0:
            add("price_fen", _("The price cannot be negative."))
        if self.price_fen is not None and self.price_fen > MAX_PRICE_FEN:
            add(
                "price_fen",
                _("At most %(fen)d fen (%(yuan)s yuan).") % {"fen": MAX_PRICE_FEN, "yuan": fen_to_yuan(MAX_PRICE_FEN)},
            )
        if self.price_fen == 0 and set(self.payment_methods or []) & PROVIDER_METHODS:
            add(
                "price_fen",
                _("WeChat Pay and Alipay take no payment of 0: choose only the phone bill or cash for a free product."),
            )
        # The product as stored, before this change (None for a new one).
        was = Product.objects.filter(pk=self.pk).values("code", "kind").first() if self.pk is not None else None
        # "TD <code>" and the EPG's look-ups take a code in any case: two codes differing only in it would be one.
        twin = self._twin_in_another_case(was)
        if twin:
            add("code", _("%(code)s is a product already: codes differing only in case are one code.") % {"code": twin})
        self._keep_what_was_sold(was, add)
        if self.kind == ProductKind.PER_VIEW:
            if not self.view_hours:
                add("view_hours", _("A per-view product needs its viewing hours (for example 48)."))
            elif self.view_hours > MAX_VIEW_HOURS:
                add(
                    "view_hours",
                    _("At most %(hours)d hours (%(days)d days).")
                    % {"hours": MAX_VIEW_HOURS, "days": MAX_VIEW_HOURS // 24},
                )
        elif self.view_hours is not None:
            add("view_hours", _("Only per-view products have viewing hours; leave this empty."))
        if self.renewable and self.kind == ProductKind.PER_VIEW:
            add("renewable", _("A per-view product cannot renew: only monthly, quarterly and yearly ones do."))
        if self.on_sale_from and self.on_sale_until and self.on_sale_until <= self.on_sale_from:
            add("on_sale_until", _("The on-sale window must end after it starts."))
        methods = set(self.payment_methods or [])
        channels = set(self.channels or [])
        if not channels:
            add("channels", _("Choose at least one channel."))
        if not methods:
            add("payment_methods", _("Choose at least one payment method."))
        if PaymentMethod.CASH in methods:
            if Channel.CRM not in channels:
                add("payment_methods", _("Cash is only taken in business halls: add the CRM channel."))
            if not self.crm_activity_code:
                add("crm_activity_code", _("Cash sales need the CRM marketing-activity code."))
        if PaymentMethod.PHONE_BILL_SMS in methods and Channel.EPG not in channels:
            add("payment_methods", _("SMS confirmation is only used on the TV: add the EPG channel."))
        if PaymentMethod.PAYMENT_CODE in methods and Channel.CRM not in channels:
            add("payment_methods", _("Payment codes are only scanned in business halls: add the CRM channel."))
        if methods & PROVIDER_METHODS and not self.smp_zero_price_package_code:
            add(
                "smp_zero_price_package_code",
                _("WeChat Pay and Alipay need the SMP zero-price package code."),
            )
        for channel in channels:
            if methods and not self.methods_on(channel):
                add(
                    "payment_methods",
                    _("No chosen payment method is available on channel %(channel)s.")
                    % {"channel": Channel(channel).label},
                )
        if errors:
            raise ValidationError(errors)
