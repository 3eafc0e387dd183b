"""Fixed-window counters in the shared cache (Redis in production).

``hit`` counts one event and refuses it past the limit. On Redis, ``add``
(SET NX) and ``incr`` (INCRBY) are atomic, so under any concurrency exactly
``limit`` events in a window get through.
"""

from __future__ import annotations

import time

from django.core.cache import cache

from ipvas.errors import RateLimited


def hit(scope: str, identity: str, *, limit: int, window_seconds: int, message: str = "") -> None:
    window = int(time.time() // window_seconds)
    key = f"rl:{scope}:{identity}:{window}"
    cache.add(key, 0, timeout=window_seconds + 5)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=window_seconds + 5)
        count = 1
    if count > limit:
        retry_after = max(1, int((window + 1) * window_seconds - time.time()) + 1)
        raise RateLimited(message or None, retry_after=retry_after)
