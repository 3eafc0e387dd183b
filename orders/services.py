"""Entitlements: our own record of what each provisioned order gives a TV account.

The entitlement check (orders.selectors) answers from a per-account cache entry;
every change forgets it after its transaction commits, and again a moment later.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from ipvas import outbox
from orders import selectors
from orders.constants import ProductKind
from orders.models import Entitlement, Order
from orders.periods import period_end

logger = logging.getLogger(__name__)


def entitlement_grant(
    *, order: Order, subscription_id: str, starts_at: datetime | None, ends_at: datetime | None
) -> Entitlement:
    """Record what the SMP subscribed (its period when it gave one, else the same rule it applies)."""
    product = order.product
    if starts_at is None or ends_at is None:
        now = timezone.now()
        latest = (
            Entitlement.objects.filter(
                tv_account=order.tv_account, product=product, revoked_at__isnull=True, ends_at__gt=now
            )
            .order_by("-ends_at")
            .values_list("ends_at", flat=True)
            .first()
        )
        starts_at = max(now, latest) if latest and not product.view_hours else now
        ends_at = period_end(start=starts_at, period_months=product.period_months, view_hours=product.view_hours)
    entitlement = Entitlement.objects.create(
        order=order,
        tv_account=order.tv_account,
        product=product,
        product_code=product.code,
        kind=product.kind,
        content_id=order.content_id,
        starts_at=starts_at,
        ends_at=ends_at,
        smp_subscription_id=subscription_id,
    )
    tv_account = order.tv_account
    transaction.on_commit(lambda: entitlements_changed(tv_account))
    return entitlement


def entitlement_revoke(*, order: Order) -> list[Entitlement]:
    """Take the order's period away; the account's later periods of the same product move earlier.

    A refunded period comes off the end of the stack (docs/domain.md: periods stack): with four
    months bought and the second refunded, the third and fourth move into the second and third,
    so that three paid months remain, without a hole. Returns the entitlements that moved (their
    orders' periods must move at the SMP too). Call inside the transaction, the order locked.
    """
    entitlement = Entitlement.objects.filter(order=order, revoked_at__isnull=True).first()
    if entitlement is None:
        return []
    now = timezone.now()
    entitlement.revoked_at = now
    entitlement.save(update_fields=["revoked_at"])
    moved = [] if entitlement.kind == ProductKind.PER_VIEW else _restack(entitlement, now)
    tv_account = order.tv_account
    transaction.on_commit(lambda: entitlements_changed(tv_account))
    return moved


def _restack(removed: Entitlement, now: datetime) -> list[Entitlement]:
    """Close the gap ``removed`` leaves: each later period of the product starts where the one before ends."""
    later = list(
        Entitlement.objects.select_for_update()
        .select_related("product")
        .filter(
            tv_account=removed.tv_account,
            product=removed.product,
            revoked_at__isnull=True,
            starts_at__gte=removed.starts_at,
        )
        .order_by("starts_at", "pk")
    )
    cursor = max(removed.starts_at, now)
    moved = []
    for entitlement in later:
        start = max(cursor, now) if entitlement.starts_at > cursor else entitlement.starts_at
        if start == entitlement.starts_at:
            cursor = entitlement.ends_at
            continue
        product = entitlement.product
        entitlement.starts_at = start
        entitlement.ends_at = period_end(start=start, period_months=product.period_months, view_hours=None)
        entitlement.save(update_fields=["starts_at", "ends_at"])
        moved.append(entitlement)
        cursor = entitlement.ends_at
    return moved


# A stale mark the cache did not take is asked again, growing to this wait, until the entry it must end has
# ended by its own timeout (ENTITLEMENT_CACHE_SECONDS after the change).
FORGET_AGAIN_MAX_SECONDS = 30


def entitlements_changed(tv_account: str) -> None:
    """Forget the cached entitlements of an account; called after the change commits. When the cache cannot
    be reached, asked again through the outbox until it is, or until an entry cached before the change has
    timed out: the check must not answer from before a refund or a purchase once the cache is back."""
    if selectors.forget_entitlements(tv_account) or not settings.ENTITLEMENT_CACHE_SECONDS:
        return
    until = timezone.now() + timedelta(seconds=settings.ENTITLEMENT_CACHE_SECONDS)
    _forget_later(tv_account, until, attempt=0)


def entitlements_forget_again(*, tv_account: str, until: str, attempt: int) -> str:
    if selectors.forget_entitlements(tv_account):
        return "forgotten"
    if timezone.now() >= datetime.fromisoformat(until):
        return "timed_out"  # what the cache holds from before the change has ended by itself
    _forget_later(tv_account, datetime.fromisoformat(until), attempt=attempt + 1)
    return "again"


def _forget_later(tv_account: str, until: datetime, *, attempt: int) -> None:
    from orders import tasks

    wait = timedelta(seconds=min(2**attempt, FORGET_AGAIN_MAX_SECONDS))
    with transaction.atomic():
        outbox.enqueue(
            tasks.forget_entitlements,
            kwargs={"tv_account": tv_account, "until": until.isoformat(), "attempt": attempt},
            due_at=timezone.now() + wait,
        )
