"""What the TV screens show, worked out from the order and its products; the views only choose and render."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext, pgettext

from billing.models import Payment
from orders.constants import (
    DEFAULT_VIEW_HOURS,
    PERIOD_MONTHS,
    QR_METHODS,
    Channel,
    OrderStatus,
    PaymentMethod,
    ProductKind,
)
from orders.models import Order, Product

# The kinds in the order the first screen shows them, each under its heading (按次, 包月, 包季, 包年).
KINDS = [ProductKind.PER_VIEW, ProductKind.MONTHLY, ProductKind.QUARTERLY, ProductKind.YEARLY]

EVERY_PERIOD = {
    ProductKind.MONTHLY: gettext_lazy("Renews automatically every month at ¥%(price)s until you cancel."),
    ProductKind.QUARTERLY: gettext_lazy("Renews automatically every 3 months at ¥%(price)s until you cancel."),
    ProductKind.YEARLY: gettext_lazy("Renews automatically every year at ¥%(price)s until you cancel."),
}


@dataclass(frozen=True)
class Tile:
    product: Product
    period: str


@dataclass
class Group:
    kind: str
    label: str
    tiles: list[Tile] = field(default_factory=list)


def groups(products: list[Product], *, content_id: str) -> list[Group]:
    """The products under their kind's heading; per-view ones only when the EPG named the content."""
    found = {kind: Group(kind, str(ProductKind(kind).label)) for kind in KINDS}
    for product in products:
        if product.kind == ProductKind.PER_VIEW and not content_id:
            continue
        found[product.kind].tiles.append(Tile(product, period_text(product)))
    return [group for group in found.values() if group.tiles]


def period_text(product: Product) -> str:
    if product.kind == ProductKind.PER_VIEW:
        hours = product.view_hours or DEFAULT_VIEW_HOURS
        return ngettext("Watch for %(hours)d hour", "Watch for %(hours)d hours", hours) % {"hours": hours}
    months = PERIOD_MONTHS[product.kind]
    return ngettext("%(months)d month", "%(months)d months", months) % {"months": months}


def methods_for(product: Product, *, auto_renew: bool) -> list[str]:
    """The methods an order of ``product`` on the TV would offer: ``Order.methods_allowed`` of such an order."""
    return Order(product=product, channel=Channel.EPG, auto_renew=auto_renew).methods_allowed()


def renews_on_tv(product: Product) -> bool:
    """Whether the TV offers automatic renewal: a renewable period product that some renewing method can pay."""
    return product.renewable and product.kind in EVERY_PERIOD and bool(methods_for(product, auto_renew=True))


def renewal_terms(product: Product, *, price_yuan: str | None = None, methods: list[str] | None = None) -> list[str]:
    """The terms of automatic renewal in plain words: how often and how much, how it is paid (by ``methods``:
    the one chosen, once it is; else each that can be), the reminder, how to cancel."""
    methods = methods or methods_for(product, auto_renew=True)
    days = settings.RENEWAL_REMINDER_DAYS
    return [
        str(EVERY_PERIOD[product.kind]) % {"price": price_yuan or product.price_yuan},
        _("Each renewal is paid by %(methods)s, without asking again.")
        % {"methods": pgettext("list separator", ", ").join(str(PaymentMethod(m).label) for m in methods)},
        ngettext(
            "An SMS reminds you %(days)d day before each renewal.",
            "An SMS reminds you %(days)d days before each renewal.",
            days,
        )
        % {"days": days},
        _("Cancel any time: reply TD to the SMS, on the TV, or at a business hall."),
    ]


def method_labels(methods: list[str]) -> list[tuple[str, str]]:
    return [(m, str(PaymentMethod(m).label)) for m in methods]


def screen_of(order: Order) -> str:
    """Which screen shows the order now."""
    status = order.status
    if status == OrderStatus.PRECHECKING:
        return "checking"
    if status == OrderStatus.AWAITING_PAYMENT:
        return "confirm"
    if status == OrderStatus.PAYMENT_PENDING and order.payment_method in QR_METHODS:
        return "qr"
    if status == OrderStatus.PAYMENT_PENDING and order.payment_method == PaymentMethod.PHONE_BILL_SMS:
        return "sms"
    if status in (OrderStatus.PAYMENT_PENDING, OrderStatus.PROVISIONING):
        return "waiting"
    if status == OrderStatus.COMPLETED:
        return "success"
    return "failure"


def screen_key(order: Order) -> str:
    """What the polling script compares: the page reloads when it changes (a paid auto-renewing order's
    success screen, too, when its subscription starts: its deduction contract's signing may come after)."""
    key = f"{screen_of(order)}:{order.payment_method}"
    return f"{key}:renews" if order.subscription_id else key


def seconds_left(order: Order, now: datetime | None = None) -> int:
    """Seconds left in the QR or SMS window of the order's pending payment."""
    payment = (
        Payment.objects.filter(order=order, method=order.payment_method).order_by("-created_at", "-pk").first()
        if order.payment_method
        else None
    )
    ends = payment.expires_at if payment is not None and payment.expires_at else order.deadline_at
    if ends is None:
        return 0
    return max(0, math.ceil((ends - (now or timezone.now())).total_seconds()))


def mmss(seconds: int) -> str:
    return f"{seconds // 60:02d}:{seconds % 60:02d}"
