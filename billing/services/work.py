"""The stuck-work queue: what the system could not settle by itself."""

from __future__ import annotations

import logging

from django.db import IntegrityError, transaction

from billing.models import WorkItem
from orders.models import Order

logger = logging.getLogger(__name__)


def work_item_open(*, order: Order, kind: str, detail: str) -> WorkItem | None:
    """Open an item for a person, once per order and kind while unresolved."""
    existing = WorkItem.objects.filter(order=order, kind=kind, resolved_at__isnull=True).first()
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            item = WorkItem.objects.create(order=order, kind=kind, detail=detail[:255])
    except IntegrityError:
        return WorkItem.objects.filter(order=order, kind=kind, resolved_at__isnull=True).first()
    logger.error("order %s needs a person: %s (%s)", order.order_no, kind, detail)
    return item
