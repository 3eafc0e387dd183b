"""What a clerk may see: orders of their store (a manager) or their own (a clerk)."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from django.db.models import Count, Q, QuerySet, Sum
from django.utils import timezone

from channels_crm.models import Clerk
from orders.constants import Channel, OrderStatus, PaymentMethod
from orders.models import Order


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
    """Today's orders; with a query (mobile number or order number), any day's."""
    orders = visible_orders(clerk)
    query = query.strip()
    if query:
        orders = orders.filter(Q(phone=query) | Q(order_no=query))
    else:
        start, end = today_bounds()
        orders = orders.filter(created_at__gte=start, created_at__lt=end)
    return list(orders.order_by("-created_at")[:limit])


def shift_totals(clerk: Clerk) -> list[dict[str, object]]:
    """Today's completed sales per payment method (and per clerk for a manager): the cash to hand over."""
    start, end = today_bounds()
    rows = (
        visible_orders(clerk)
        .filter(created_at__gte=start, created_at__lt=end, status=OrderStatus.COMPLETED)
        .values("payment_method", "clerk__clerk__name", "clerk__clerk__staff_id")
        .annotate(count=Count("pk"), amount_fen=Sum("amount_fen"))
        .order_by("clerk__clerk__staff_id", "payment_method")
    )
    return [{**row, "method_label": PaymentMethod(row["payment_method"]).label} for row in rows]
