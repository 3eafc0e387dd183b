"""What a clerk may see: orders of their store (a manager) or their own (a clerk)."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from django.core.exceptions import ValidationError
from django.db.models import Count, Q, QuerySet, Sum
from django.utils import timezone

from billing.models import LedgerEntry, LedgerKind
from channels_crm.models import Clerk
from orders.constants import Channel, PaymentMethod
from orders.models import Order
from orders.validation import normalize_mainland_mobile


def visible_orders(clerk: Clerk) -> QuerySet[Order]:
    orders = Order.objects.filter(channel=Channel.CRM, store_code=clerk.store.code)
    if not clerk.is_manager:
        orders = orders.filter(clerk=clerk.user)
    return orders.select_related("product", "clerk__clerk")


def order_for_clerk(clerk: Clerk, order_no: str) -> Order | None:
    return visible_orders(clerk).select_related("entitlement").filter(order_no=order_no).first()


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
            phone = normalize_mainland_mobile(query)
        except ValidationError:
            phone = query
        orders = orders.filter(Q(phone=phone) | Q(order_no=query))
    else:
        start, end = today_bounds()
        orders = orders.filter(created_at__gte=start, created_at__lt=end)
    return list(orders.order_by("-created_at")[:limit])


def shift_totals(clerk: Clerk) -> list[dict[str, object]]:
    """Today's money per payment method (and per clerk for a manager), from the ledger:
    what was taken minus what went back, so the cash line is the cash to hand over."""
    start, end = today_bounds()
    rows = (
        LedgerEntry.objects.filter(order__in=visible_orders(clerk), created_at__gte=start, created_at__lt=end)
        .values("method", "order__clerk__clerk__name", "order__clerk__clerk__staff_id")
        .annotate(count=Count("pk", filter=Q(kind=LedgerKind.PAYMENT)), amount_fen=Sum("amount_fen"))
        .order_by("order__clerk__clerk__staff_id", "method")
    )
    return [
        {
            "payment_method": row["method"],
            "method_label": PaymentMethod(row["method"]).label,
            "clerk_name": row["order__clerk__clerk__name"] or row["order__clerk__clerk__staff_id"] or "",
            "count": row["count"],
            "amount_fen": row["amount_fen"] or 0,
        }
        for row in rows
    ]
