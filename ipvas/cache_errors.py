"""What a failing cache raises, for the read paths that answer from the database when it is down.

The entitlement check and the API key check read Redis first; when Redis is
unreachable (restarting, a network fault) they answer from PostgreSQL and
write nothing to the cache, rather than fail the set-top box. Django's Redis
backend lets redis-py's errors through; the file cache (embedded mode)
raises OSError.
"""

from __future__ import annotations

from redis.exceptions import RedisError

CACHE_ERRORS: tuple[type[Exception], ...] = (RedisError, OSError)
