"""Gauges of ordering for /metrics/ (registered by ipvas/urls.py)."""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import Count
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from orders.constants import OrderStatus
from orders.models import Order


class OrdersCollector(Collector):
    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("ipvas_orders", "Orders by status", labels=["status"])
        counts = dict(Order.objects.values_list("status").annotate(n=Count("pk")).values_list("status", "n"))
        for status in OrderStatus.values:
            family.add_metric([status], counts.get(status, 0))
        yield family
