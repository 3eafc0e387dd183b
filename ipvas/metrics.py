"""Prometheus metrics: request latency per endpoint (django-prometheus), orders per status,
payment notification outcomes, retries, queue depth. Served at /metrics/: in production only
with ``Authorization: Bearer <METRICS_TOKEN>`` (404 while no token is set, 401 without it).

Under gunicorn with several processes set PROMETHEUS_MULTIPROC_DIR: counters
are then summed across processes. Queue depth is read from the broker when
scraped; orders per status at most every METRICS_ORDERS_MAX_AGE_SECONDS
(``snapshot``).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from django.conf import settings
from django.core.cache import cache
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from ipvas.cache_errors import CACHE_ERRORS
from ipvas.queues import routed_queues
from ipvas.secrets_compare import same_secret

logger = logging.getLogger(__name__)
T = TypeVar("T")

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
        elif settings.BROKER_IS_RABBITMQ:
            try:
                from ipvas.celery import app

                with app.connection_for_read(connect_timeout=1) as connection:
                    channel = connection.default_channel
                    for queue in sorted(routed_queues()):
                        # A passive declare asks how many messages are ready, and creates nothing.
                        family.add_metric([queue], channel.queue_declare(queue, passive=True).message_count)
            except Exception as exc:  # noqa: BLE001 - a broker outage must not break the scrape
                logger.warning("metrics: queue depth unavailable: %s", exc)
        yield family


_snapshots: dict[str, tuple[float, Any]] = {}


def snapshot(name: str, compute: Callable[[], T], *, max_age_seconds: float) -> T:
    """``compute()`` made at most once every ``max_age_seconds`` per process, and shared by every process
    through the cache, for gauges that cost a query: a scrape (or ten scrapers) must not cost a GROUP BY
    over the orders each time. With the cache down, each process computes it once per period."""
    now = time.monotonic()
    kept = _snapshots.get(name)
    if kept is not None and now - kept[0] < max_age_seconds:
        return kept[1]
    key = f"metrics:snapshot:{name}"
    try:
        value = cache.get(key)
        if value is None:
            value = compute()
            cache.set(key, value, max(1, int(max_age_seconds)))
    except CACHE_ERRORS as exc:
        logger.warning("metrics: cache unavailable (%r); %s computed in this process", exc, name)
        value = compute()
    _snapshots[name] = (now, value)
    return value


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
        if not token and settings.PRODUCTION:
            raise Http404("/metrics/ needs METRICS_TOKEN in production")  # closed until an operator opens it
        if token and not same_secret(request.headers.get("Authorization", ""), f"Bearer {token}"):
            return HttpResponse(status=401, headers={"WWW-Authenticate": "Bearer"})
        return HttpResponse(generate_latest(registry(collectors)), content_type=CONTENT_TYPE_LATEST)

    return view
