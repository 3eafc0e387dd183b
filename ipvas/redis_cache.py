"""Django's Redis cache, with one ``redis.Redis`` per connection pool instead of one per operation.

Django's ``RedisCacheClient.get_client`` builds a new ``redis.Redis`` for every cache call; its
``__init__`` fills a table of some 170 response callbacks, which made three cache calls cost about
a millisecond of CPU in each order request (issue #17, cProfile of POST /orders/). A ``redis.Redis``
is safe to share between threads (each command takes a connection from the pool) and its pool
starts afresh in a forked child, so one per pool does the same work.
"""

from __future__ import annotations

from typing import Any

from django.core.cache.backends import redis as django_redis


class RedisCacheClient(django_redis.RedisCacheClient):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, Any] = {}

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        index = self._get_connection_pool_index(write)
        client = self._clients.get(index)
        if client is None:
            client = self._clients[index] = self._client(connection_pool=self._get_connection_pool(write))
        return client


class RedisCache(django_redis.RedisCache):
    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = RedisCacheClient

    def incr_expiring(self, key: str, timeout: int) -> int:
        """Add 1 to the counter ``key`` (0 when missing) and keep it ``timeout`` seconds from now: INCR and
        EXPIRE in one round trip, where ``add`` then ``incr`` took two (ipvas.ratelimit, issue #17)."""
        key = self.make_and_validate_key(key)
        # MULTI/EXEC: a counter is never left without its expiry, whatever happens to the connection.
        pipeline = self._cache.get_client(key, write=True).pipeline(transaction=True)
        pipeline.incr(key)
        pipeline.expire(key, timeout)
        count, _ = pipeline.execute()
        return count
