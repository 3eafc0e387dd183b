"""The stuck-work queue: what the system could not settle by itself."""

from __future__ import annotations

import logging

from django.db import IntegrityError, transaction
from django.db.models import QuerySet

from billing.models import WorkItem
from orders.models import Order

logger = logging.getLogger(__name__)

DETAIL_LENGTH = WorkItem._meta.get_field("detail").max_length


def work_item_open(*, order: Order, kind: str, detail: str) -> WorkItem | None:
    """Open an item for a person, once per order and kind while unresolved.

    Another problem of the same kind with the order while the item is open adds its detail to the item, on a
    line of its own and once (a contract that will not end, found after a notice that was not sent): the
    person who resolves the item sees everything it stands for.
    """
    detail = detail[:DETAIL_LENGTH]
    with transaction.atomic():
        open_items = WorkItem.objects.select_for_update().filter(order=order, kind=kind, resolved_at__isnull=True)
        existing = open_items.first()
        if existing is None:
            try:
                with transaction.atomic():
                    item = WorkItem.objects.create(order=order, kind=kind, detail=detail)
            except IntegrityError:  # opened at this moment by another
                existing = open_items.first()
            else:
                logger.error("order %s needs a person: %s (%s)", order.order_no, kind, detail)
                return item
        if existing is not None:
            _add_detail(existing, detail)
        return existing


def work_item_add(*, orders: QuerySet[Order], kind: str, detail: str) -> int:
    """Add ``detail`` to the open items of this kind of these orders, if any (none is opened); how many."""
    items = WorkItem.objects.select_for_update().filter(order__in=orders, kind=kind, resolved_at__isnull=True)
    with transaction.atomic():
        found = list(items)
        for item in found:
            _add_detail(item, detail[:DETAIL_LENGTH])
    return len(found)


def _add_detail(item: WorkItem, detail: str) -> None:
    if not detail or detail in item.detail.splitlines():
        return
    longer = f"{item.detail}\n{detail}" if item.detail else detail
    if len(longer) > DETAIL_LENGTH:
        logger.error("order %s needs a person: %s (%s; its item is full)", item.order_id, item.kind, detail)
        return
    item.detail = longer
    item.save(update_fields=["detail"])
    logger.error("order %s needs a person: %s (%s, added to its open item)", item.order_id, item.kind, detail)
