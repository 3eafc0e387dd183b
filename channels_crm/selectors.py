"""What a clerk may see: orders of their store (a manager) or their own (a clerk); the subscriptions of the
customer at the counter, by mobile number."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from django.core.exceptions import ValidationError
from django.db.models import Count, Q, QuerySet, Sum
from django.utils import timezone

from billing.models import LedgerEntry, LedgerKind, Provider
from channels_crm.models import Clerk
from orders import subscription_selectors
from orders.constants import Channel, OrderStatus, PaymentMethod
from orders.models import Order, Subscription
from orders.validation import ORDER_NO_RE, normalize_mainland_mobile


def visible_orders(clerk: Clerk) -> QuerySet[Order]:
    orders = Order.objects.filter(channel=Channel.CRM, store_code=clerk.store.code)
    if not clerk.is_manager:
        orders = orders.filter(clerk=clerk.user)
    return orders.select_related("product", "clerk__clerk")


def order_for_clerk(clerk: Clerk, order_no: str) -> Order | None:
    return visible_orders(clerk).select_related("entitlement", "subscription").filter(order_no=order_no).first()


def today_bounds(now: datetime | None = None) -> tuple[datetime, datetime]:
    local = timezone.localtime(now or timezone.now())
    start = timezone.make_aware(datetime.combine(local.date(), time.min))
    return start, start + timedelta(days=1)


def order_history(clerk: Clerk, *, query: str = "", limit: int = 100) -> list[Order]:
    """Today's orders; with a query (a mobile number in any usual writing, or an order number), any day's."""
    orders = visible_orders(clerk)
    query = query.strip()
    if query:
        try:
            orders = orders.filter(phone=normalize_mainland_mobile(query))
        except ValidationError:
            # Not a number: an order number, or nothing (what is typed never reaches the query as it is).
            orders = orders.filter(order_no=query) if ORDER_NO_RE.match(query) else orders.none()
    else:
        start, end = today_bounds()
        orders = orders.filter(created_at__gte=start, created_at__lt=end)
    return list(orders.order_by("-created_at")[:limit])


def _method_label(method: str, provider: str) -> str:
    """A payment code's takings are WeChat Pay's or Alipay's: the line names which (docs/interfaces.md §10)."""
    if method == PaymentMethod.PAYMENT_CODE and provider in Provider.values:
        return f"{PaymentMethod(method).label} · {Provider(provider).label}"
    return str(PaymentMethod(method).label)


def shift_totals(clerk: Clerk) -> list[dict[str, object]]:
    """Today's money per payment method and provider (and per clerk for a manager), from the ledger:
    what was taken minus what went back, so the cash line is the cash to hand over. A cash sale that failed is
    not in it: its page told the clerk to give the cash back to the customer at the counter (the ledger says so
    only when someone confirms it in admin, lifecycle.manual)."""
    start, end = today_bounds()
    rows = (
        LedgerEntry.objects.filter(order__in=visible_orders(clerk), created_at__gte=start, created_at__lt=end)
        .exclude(order__status=OrderStatus.FAILED, order__payment_method=PaymentMethod.CASH)
        .values("method", "provider", "order__clerk__clerk__name", "order__clerk__clerk__staff_id")
        .annotate(
            count=Count("pk", filter=Q(kind=LedgerKind.PAYMENT)),
            given_back=Count("pk", filter=~Q(kind=LedgerKind.PAYMENT)),
            amount_fen=Sum("amount_fen"),
        )
        .order_by("order__clerk__clerk__staff_id", "method", "provider")
    )
    return [
        {
            "payment_method": row["method"],
            "provider": row["provider"],
            "method_label": _method_label(row["method"], row["provider"]),
            "clerk_name": row["order__clerk__clerk__name"] or row["order__clerk__clerk__staff_id"] or "",
            "count": row["count"],
            # The sales whose money went back (a refund, a reversal, a payback): the amount is net of them.
            "given_back": row["given_back"],
            "amount_fen": row["amount_fen"] or 0,
        }
        for row in rows
    ]


# --- subscriptions -----------------------------------------------------------------------------
#
# Orders stay in their store (a clerk sees their own, a manager the store's), but a clerk sees a customer's
# subscriptions wherever they were bought (the TV, another business hall): cancel works on every channel
# (docs/interfaces.md §8), and the customer standing at the counter must be able to stop a renewal they
# started on the TV. What keeps this from being a browse of everybody's subscriptions: the clerk must type
# the customer's full mobile number (no list without one, no partial match), the same number a sale starts
# from; a subscription is reached only through that number (its cancel page asks for both); and every
# cancel records the clerk and the store in the subscription's events.


def customer_subscriptions(*, phone: str) -> list[Subscription]:
    """The subscriptions of the mobile number ``phone`` (normalised), newest first, from any channel or store:
    the same for every clerk and manager."""
    return subscription_selectors.subscriptions_of_phone(phone=phone)


def customer_subscription(*, subscription_no: str, phone: str) -> Subscription | None:
    return subscription_selectors.subscription_of_phone(subscription_no=subscription_no, phone=phone)
