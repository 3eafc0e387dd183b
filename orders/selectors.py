"""Reads of ordering data, including the entitlement check (the hot path).

The entitlement check answers from a per-account cache entry holding every
live entitlement of the account. A change deletes the entry after its
transaction commits, and again a moment later, so that a reader who read
the old rows just before the commit cannot leave them in the cache.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from ipvas.actors import ActorKind
from ipvas.cache_errors import CACHE_ERRORS
from ipvas.errors import NotFound
from ipvas.rows import the_row
from orders.constants import ACTIVE_STATUSES, Channel, OrderStatus, ProductKind
from orders.models import Entitlement, Order, Product
from orders.models.order import PER_VIEW_UNDER_WAY

logger = logging.getLogger(__name__)

# ``entitlement_check(cached=NOT_READ)``: the caller has not read the account's cache entry.
NOT_READ: Any = object()


# What a change of an account's entitlements leaves in its cache entry for a few seconds (forget_entitlements):
# a reader takes it for a miss and reads the database, and cannot store over it (``cache.add``), so a reader
# that loaded the rows before the change committed cannot put the old rows back. (Until issue #17 this was a
# second delete two seconds later, in a Celery task of its own for every change.)
STALE = "stale"
STALE_SECONDS = 5


def entitlements_cache_key(tv_account: str) -> str:
    """The cache entry of the account's live entitlements (a caller may read it with other entries)."""
    return f"ent:v1:{tv_account}"


def _load(tv_account: str, now: datetime) -> list[dict[str, Any]]:
    rows = (
        Entitlement.objects.filter(tv_account=tv_account, revoked_at__isnull=True, ends_at__gt=now)
        .order_by("starts_at", "pk")
        .values("product_code", "kind", "starts_at", "ends_at", "content_id")
    )
    return list(rows)


def entitlement_check(
    *, tv_account: str, product_code: str = "", content_id: str = "", cached: Any = NOT_READ
) -> tuple[bool, list[dict[str, Any]]]:
    """(entitled now, the account's live entitlements that match). A per-view entitlement matches only its content.

    The account's live entitlements (current and stacked ones) come from its cache entry, which a miss fills
    from the database. ``cached`` is that entry when the caller read it already (None: it was not there).
    With the cache unreachable they come from the database and nothing is cached.
    """
    now = timezone.now()
    seconds = settings.ENTITLEMENT_CACHE_SECONDS
    rows = None
    if seconds:
        try:
            rows = cache.get(entitlements_cache_key(tv_account)) if cached is NOT_READ else cached
        except CACHE_ERRORS:
            logger.warning("cache unreachable: the entitlements of %s are read from the database", tv_account)
            seconds = 0
    if rows is None or rows == STALE:
        stale = rows == STALE
        rows = _load(tv_account, now)
        if seconds and not stale:
            try:
                # Only where nothing is: not over the mark of a change that committed since the rows were read.
                cache.add(entitlements_cache_key(tv_account), rows, seconds)
            except CACHE_ERRORS:
                logger.warning("cache unreachable: the entitlements of %s were not cached", tv_account)
    matching = [
        row
        for row in rows
        if row["ends_at"] > now  # the entry may have been cached before it ended
        and (not product_code or row["product_code"] == product_code)
        and (not content_id or not row["content_id"] or row["content_id"] == content_id)
    ]
    entitled = any(
        row["starts_at"] <= now and (not row["content_id"] or row["content_id"] == content_id) for row in matching
    )
    return entitled, matching


def forget_entitlements(tv_account: str) -> bool:
    """The account's entitlements changed (called after the change commits): its entry becomes ``STALE``.

    With the cache unreachable it is logged, not raised, and False: this runs among the commit's other
    follow-ups (the outbox relay), which must still run; the caller asks again (orders.services).
    """
    try:
        if settings.ENTITLEMENT_CACHE_SECONDS:
            cache.set(entitlements_cache_key(tv_account), STALE, STALE_SECONDS)
        else:  # nothing is cached, nor read from the cache
            cache.delete(entitlements_cache_key(tv_account))
    except CACHE_ERRORS:
        logger.warning("cache unreachable: the cached entitlements of %s were not marked stale", tv_account)
        return False
    return True


def products_on_sale(*, channel: str, kind: str = "") -> list[Product]:
    """Active products sold on ``channel`` now, cheapest first."""
    products = Product.objects.on_sale()
    if kind:
        products = products.filter(kind=kind)
    return [p for p in products.order_by("price_fen", "code") if channel in p.channels]


def _epg_client_orders(*, order_no: str, client_id: str, renewals: bool) -> QuerySet[Order]:
    """The order ``order_no`` if this EPG client placed it, or (``renewals``) if it renews a subscription;
    others' orders do not exist for it."""
    mine = Q(origin_kind=ActorKind.EPG_CLIENT, origin_id=client_id)
    return Order.objects.filter(mine | Q(channel=Channel.RENEWAL) if renewals else mine, order_no=order_no)


def order_for_epg_client(*, order_no: str, client_id: str) -> Order | None:
    """An order the client may read, with what its answer shows: its own, or a renewal order (any EPG
    client reads those, docs/interfaces.md §8)."""
    orders = _epg_client_orders(order_no=order_no, client_id=client_id, renewals=True)
    return the_row(orders.select_related("product", "entitlement", "subscription"))


# What an order's answer to the EPG can change with (epg_api.serializers.order_etag), in this order: read as
# one row, without building the order, its product, entitlement and subscription (issue #17: a poll that
# finds the order unchanged needs no more, and most polls do).
ORDER_VERSION = (
    "pk",
    "updated_at",
    "status",
    "payment_method",
    "product__updated_at",
    "entitlement__pk",
    "entitlement__starts_at",
    "entitlement__ends_at",
    "entitlement__revoked_at",
    "subscription__subscription_no",
)


def order_version_for_epg_client(*, order_no: str, client_id: str) -> tuple | None:
    """The ORDER_VERSION row of the order ``order_for_epg_client`` would give, or None."""
    orders = _epg_client_orders(order_no=order_no, client_id=client_id, renewals=True)
    return the_row(orders.values_list(*ORDER_VERSION))


def order_id_for_epg_client(*, order_no: str, client_id: str) -> int | None:
    """The id of an order the client may act on (choose a payment, cancel): its own only. A renewal order
    is read by any client but acted on by none (its subscription is cancelled instead, §8). The id only: the
    step locks and reads the order itself."""
    orders = _epg_client_orders(order_no=order_no, client_id=client_id, renewals=False)
    return the_row(orders.values_list("pk", flat=True))


def product_for_sale(*, code: str, channel: str) -> Product:
    product = the_row(Product.objects.filter(code=code))
    if product is None or not product.is_on_sale(channel):
        raise NotFound(_("There is no product %(code)s on sale here.") % {"code": code}, code="product_not_found")
    return product


def per_view_taken(order: Order) -> str:
    """Why a per-view ``order`` must not be charged: the account can watch its content already (an
    entitlement of ours), or another order for the same content is under way. '' when neither.

    docs/interfaces.md §1 ``already_subscribed``: one in-flight per-view order per (account, content).
    """
    if not order.content_id or order.product.kind != ProductKind.PER_VIEW:  # the product read last: it may cost a query
        return ""
    if Entitlement.objects.filter(
        tv_account=order.tv_account,
        kind=ProductKind.PER_VIEW,
        content_id=order.content_id,
        revoked_at__isnull=True,
        ends_at__gt=timezone.now(),
    ).exists():
        return "the account can watch this content already"
    other = (
        Order.objects.filter(
            tv_account=order.tv_account,
            content_id=order.content_id,
            product__kind=ProductKind.PER_VIEW,
            status__in=list(ACTIVE_STATUSES),
        )
        .exclude(pk=order.pk)
        .exclude(status=OrderStatus.PRECHECKING)  # not yet allowed to pay: it meets this rule itself
        .values_list("order_no", flat=True)
        .first()
    )
    return f"order {other} {PER_VIEW_UNDER_WAY}" if other else ""
