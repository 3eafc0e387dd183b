"""Automatic renewal at the counter (docs/interfaces.md §8): which products the clerk may sell with it, and
its terms in the plain words the clerk reads to the customer, before the sale and on the receipt."""

from __future__ import annotations

from django.conf import settings
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext, pgettext

from orders.constants import AUTO_RENEW_METHODS, Channel, PaymentMethod, ProductKind
from orders.models import Product

EVERY_PERIOD = {
    ProductKind.MONTHLY: gettext_lazy("Renews automatically every month at ¥%(price)s until cancelled."),
    ProductKind.QUARTERLY: gettext_lazy("Renews automatically every 3 months at ¥%(price)s until cancelled."),
    ProductKind.YEARLY: gettext_lazy("Renews automatically every year at ¥%(price)s until cancelled."),
}


def counter_renewal_methods(product: Product) -> list[str]:
    """How an auto-renewing order of ``product`` can be paid at the counter (Order.methods_allowed)."""
    return [m for m in product.methods_on(Channel.CRM) if m in AUTO_RENEW_METHODS]


def renews_at_the_counter(product: Product) -> bool:
    """Whether the clerk may offer automatic renewal: the product is renewable, and the counter can take a
    payment that renews (an auto-renewing order with no method left would only expire)."""
    return product.renewable and product.kind in EVERY_PERIOD and bool(counter_renewal_methods(product))


def terms(*, kind: str, price_yuan: str, methods: list[str]) -> list[str]:
    """The terms, one sentence each: how often and at what price, how it is paid, the reminder, how to cancel."""
    days = settings.RENEWAL_REMINDER_DAYS
    return [
        str(EVERY_PERIOD[kind]) % {"price": price_yuan},
        _("Payment at each renewal: %(methods)s, without a new confirmation.")
        % {"methods": pgettext("list separator", ", ").join(str(PaymentMethod(m).label) for m in methods)},
        ngettext(
            "A reminder SMS is sent %(days)d day before each renewal.",
            "A reminder SMS is sent %(days)d days before each renewal.",
            days,
        )
        % {"days": days},
        _("Cancel any time: reply TD to the SMS, at a business-hall counter, or on the TV."),
    ]
