"""Reads of subscriptions (docs/interfaces.md §8) for the channels' pages: a customer's, and those due to renew."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import QuerySet
from django.utils import timezone

from orders.constants import SubscriptionStatus
from orders.models import Subscription


def subscriptions_of_phone(*, phone: str, limit: int = 50) -> list[Subscription]:
    """Every subscription of the mobile number ``phone`` (normalised by the caller), newest first,
    whatever channel sold it."""
    if not phone:
        return []
    return list(
        Subscription.objects.filter(phone=phone).select_related("product").order_by("-created_at", "-pk")[:limit]
    )


def subscription_of_phone(*, subscription_no: str, phone: str) -> Subscription | None:
    """One subscription, only if it belongs to ``phone``: a page reaches it through the customer's number."""
    if not phone:
        return None
    return Subscription.objects.select_related("product").filter(subscription_no=subscription_no, phone=phone).first()


def renewal_due_within(
    subscriptions: QuerySet[Subscription], *, within: timedelta, now: datetime | None = None
) -> QuerySet[Subscription]:
    """Those of ``subscriptions`` that renew within ``within`` from now: active ones whose next renewal comes
    by then, overdue ones too (a renewal waiting for its reminder, or being retried)."""
    until = (now or timezone.now()) + within
    return subscriptions.filter(status=SubscriptionStatus.ACTIVE, next_renewal_at__lte=until)
