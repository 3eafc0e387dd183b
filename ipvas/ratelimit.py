"""Fixed-window counters in the shared cache (Redis in production).

``hit`` counts one event and refuses it past the limit. On Redis, INCR and
EXPIRE go in one MULTI/EXEC (``RedisCache.incr_expiring``: one round trip), so
under any concurrency exactly ``limit`` events in a window get through. The embedded file cache is not
atomic by itself; there every count is made under one file lock, which
serialises the web server's threads and the worker's processes alike.

When the cache cannot count (Redis unreachable), each limit fails as the table
``WHEN_THE_CACHE_IS_DOWN`` says, never with a server error:

* **open**: the event goes through, counted in this process's memory instead,
  so a runaway caller is still held to ``limit`` per process (the limit is
  then per process, not per installation). Orders and TV sessions per EPG
  client: an authenticated, revocable partner, and refusing every order while
  Redis restarts would stop the business.
* **closed**: refused with 503 ``service_unavailable`` and ``Retry-After``
  (``LimitUnavailable``). The confirmation SMS: each one goes to a real phone
  (someone else's, if the number is abused) and costs money; the EPG shows the
  other payment methods meanwhile. A scope not in the table fails closed.
"""

from __future__ import annotations

import fcntl
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.core.cache import cache, caches
from django.core.cache.backends.filebased import FileBasedCache
from django.utils.translation import gettext_lazy as _

from ipvas.cache_errors import CACHE_ERRORS
from ipvas.errors import LimitUnavailable, RateLimited
from ipvas.redis_cache import RedisCache

logger = logging.getLogger(__name__)

OPEN, CLOSED = "open", "closed"
WHEN_THE_CACHE_IS_DOWN = {
    "epg-orders": OPEN,  # EPG_ORDERS_PER_CLIENT_PER_MINUTE (the EPG API and the TV pages)
    "epg-tv-sessions": OPEN,  # the TV pages' sessions, under the same per-client limit
    "sms-number": CLOSED,  # SMS_CONFIRMATIONS_PER_NUMBER_PER_HOUR
    "sms-account": CLOSED,  # SMS_CONFIRMATIONS_PER_TV_ACCOUNT_PER_HOUR
    "sms-client": CLOSED,  # SMS_CONFIRMATIONS_PER_CLIENT_PER_MINUTE
}
CLOSED_RETRY_AFTER_SECONDS = 30
UNAVAILABLE_MESSAGES = {
    "sms": _("SMS confirmation is unavailable at the moment; please try again shortly or choose another method."),
}

_local_counts: dict[tuple[str, str], tuple[int, int, int]] = {}  # (window, its seconds, count)
_local_lock = threading.Lock()


def hit(scope: str, identity: str, *, limit: int, window_seconds: int, message: str = "") -> None:
    window = int(time.time() // window_seconds)
    key = f"rl:{scope}:{identity}:{window}"
    try:
        with _counting():
            count = _count(key, window_seconds)
    except CACHE_ERRORS as exc:
        if WHEN_THE_CACHE_IS_DOWN.get(scope, CLOSED) == CLOSED:
            logger.error("rate limit %s cannot count (%r): refused (fails closed)", scope, exc)
            unavailable = UNAVAILABLE_MESSAGES.get(scope.partition("-")[0])
            raise LimitUnavailable(unavailable, retry_after=CLOSED_RETRY_AFTER_SECONDS) from None
        logger.warning("rate limit %s cannot count in the cache (%r): counted in this process", scope, exc)
        count = _count_locally(scope, identity, window, window_seconds)
    if count > limit:
        retry_after = max(1, int((window + 1) * window_seconds - time.time()) + 1)
        raise RateLimited(message or None, retry_after=retry_after)


def _count(key: str, window_seconds: int) -> int:
    backend = caches["default"]
    if isinstance(backend, RedisCache):
        return backend.incr_expiring(key, window_seconds + 5)
    cache.add(key, 0, timeout=window_seconds + 5)
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=window_seconds + 5)
        return 1


@contextmanager
def _counting() -> Iterator[None]:
    """The file cache's get-then-set made atomic across threads and processes; nothing for Redis."""
    backend = caches["default"]
    if not isinstance(backend, FileBasedCache):
        yield
        return
    path = Path(backend._dir) / "ratelimit.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _count_locally(scope: str, identity: str, window: int, window_seconds: int) -> int:
    now = time.time()
    with _local_lock:
        if len(_local_counts) > 10_000:  # forget the windows that have passed
            for old in [k for k, (w, ws, _) in _local_counts.items() if (w + 1) * ws < now]:
                del _local_counts[old]
        seen_window, _, count = _local_counts.get((scope, identity), (window, window_seconds, 0))
        count = count + 1 if seen_window == window else 1
        _local_counts[(scope, identity)] = (window, window_seconds, count)
        return count
