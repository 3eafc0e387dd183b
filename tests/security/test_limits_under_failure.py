"""The abuse limits when their counter fails or races (issue #11, items 3 and 8; ipvas/ratelimit.py).

* The cache down: a limit that fails open still holds a caller to its limit in
  this process; one that fails closed refuses with 503 and ``Retry-After``.
* The embedded file cache counts under a file lock: at most ``limit`` of many
  concurrent events get through (the file cache's get-then-set alone let more).
"""

from __future__ import annotations

import threading

import pytest

from ipvas import ratelimit
from ipvas.errors import LimitUnavailable, RateLimited

DEAD_CACHE = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:9/0"}
}


@pytest.fixture(autouse=True)
def _fresh_local_counts(monkeypatch):
    monkeypatch.setattr(ratelimit, "_local_counts", {})


def test_a_limit_that_fails_open_still_counts_in_the_process(settings, window_start):
    settings.CACHES = DEAD_CACHE
    for _ in range(3):
        ratelimit.hit("epg-orders", "client-a", limit=3, window_seconds=60)
    ratelimit.hit("epg-orders", "client-b", limit=3, window_seconds=60)  # another client counts apart

    with pytest.raises(RateLimited) as refused:
        ratelimit.hit("epg-orders", "client-a", limit=3, window_seconds=60)
    assert refused.value.status == 429


@pytest.mark.parametrize("scope", ["sms-number", "sms-account", "sms-client", "a-scope-nobody-listed"])
def test_a_limit_that_fails_closed_refuses_with_503_and_retry_after(settings, scope):
    settings.CACHES = DEAD_CACHE

    with pytest.raises(LimitUnavailable) as refused:
        ratelimit.hit(scope, "13800000001", limit=5, window_seconds=3600)
    assert (refused.value.status, refused.value.code) == (503, "service_unavailable")
    assert refused.value.retry_after == ratelimit.CLOSED_RETRY_AFTER_SECONDS


def test_the_file_cache_lets_exactly_the_limit_through_under_concurrency(settings, tmp_path, window_start):
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache", "LOCATION": str(tmp_path)}
    }
    limit, threads, each = 40, 8, 15
    allowed: list[int] = []
    lock = threading.Lock()
    barrier = threading.Barrier(threads)

    def clerk() -> None:
        barrier.wait()
        for _ in range(each):
            try:
                ratelimit.hit("epg-orders", "client-c", limit=limit, window_seconds=3600)
            except RateLimited:
                continue
            with lock:
                allowed.append(1)

    workers = [threading.Thread(target=clerk) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)

    assert len(allowed) == limit
