"""Prometheus metrics: request latency per endpoint (django-prometheus), orders per status,
payment notification outcomes, retries, queue depth. Served at /metrics/.

Under gunicorn with several processes set PROMETHEUS_MULTIPROC_DIR: counters
are then summed across processes. Orders per status and queue depth are
read from the database and the broker when scraped.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from ipvas.queues import routed_queues
from ipvas.secrets_compare import same_secret

logger = logging.getLogger(__name__)

NOTIFICATIONS = Counter(
    "ipvas_payment_notifications", "Payment notifications received, by provider and outcome", ["provider", "outcome"]
)
RETRIES = Counter("ipvas_retries", "Outside calls retried later, by what was retried", ["what"])
TASK_RETRIES = Counter("ipvas_celery_task_retries", "Celery task retries, by task", ["task"])


class QueueCollector(Collector):
    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("ipvas_queue_depth", "Messages waiting in each Celery queue", labels=["queue"])
        broker = settings.CELERY_BROKER_URL
        if broker.startswith("redis"):
            try:
                import redis

                client = redis.Redis.from_url(broker, socket_timeout=1)
                for queue in sorted(routed_queues()):
                    family.add_metric([queue], client.llen(queue))
            except Exception as exc:  # noqa: BLE001 - a broker outage must not break the scrape
                logger.warning("metrics: queue depth unavailable: %s", exc)
        yield family


def registry(extra: Iterable[Collector] = ()) -> CollectorRegistry:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        reg = CollectorRegistry()
        multiprocess.MultiProcessCollector(reg)
    else:
        from prometheus_client import REGISTRY

        reg = CollectorRegistry()
        for collector in list(REGISTRY._collector_to_names):  # the process's own counters
            reg.register(collector)
    reg.register(QueueCollector())
    for collector in extra:
        reg.register(collector)
    return reg


def metrics_view(*collectors: Collector) -> Callable[[HttpRequest], HttpResponse]:
    """The /metrics/ endpoint, with the domain's own collectors (wired in ipvas/urls.py)."""

    @require_GET
    def view(request: HttpRequest) -> HttpResponse:
        token = settings.METRICS_TOKEN
        if token and not same_secret(request.headers.get("Authorization", ""), f"Bearer {token}"):
            return HttpResponse(status=401)
        return HttpResponse(generate_latest(registry(collectors)), content_type=CONTENT_TYPE_LATEST)

    return view
