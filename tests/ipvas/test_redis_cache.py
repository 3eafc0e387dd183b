"""The shared cache on Redis (ipvas.redis_cache): one ``redis.Redis`` per pool, in every process.

Django's backend made a new client for each cache call; ours keeps one per connection pool (issue #17).
It must stay correct where the web server's threads and the prefork worker's children use it.
"""

from __future__ import annotations

import os
import threading

import pytest
from django.core.cache import cache

pytestmark = pytest.mark.integration  # Redis itself (REDIS_URL)


def test_the_same_client_serves_every_call_of_a_kind():
    client = cache._cache.get_client("a", write=True)
    assert cache._cache.get_client("b", write=True) is client
    cache.set("redis-cache:x", {"n": 1}, 30)
    assert cache.get("redis-cache:x") == {"n": 1}
    assert cache.add("redis-cache:x", 2, 30) is False
    assert cache.add("redis-cache:n", 0, 30) is True
    assert cache.incr("redis-cache:n", 1) == 1
    cache.delete("redis-cache:x")
    assert cache.get("redis-cache:x") is None


def test_threads_share_it():
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            for j in range(50):
                cache.set(f"redis-cache:t{i}:{j}", j, 30)
                assert cache.get(f"redis-cache:t{i}:{j}") == j
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_a_forked_child_uses_connections_of_its_own():
    """A prefork worker's child inherits the client made before the fork: its pool starts afresh there."""
    cache.set("redis-cache:before-fork", "parent", 30)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        try:
            ok = cache.get("redis-cache:before-fork") == "parent"
            cache.set("redis-cache:from-child", "child", 30)
            os.write(write, b"1" if ok else b"0")
        finally:
            os._exit(0)
    os.close(write)
    answer = os.read(read, 1)
    os.waitpid(pid, 0)
    assert answer == b"1"
    assert cache.get("redis-cache:from-child") == "child"
    assert cache.get("redis-cache:before-fork") == "parent"  # the parent's connections still work


def test_a_rate_counter_counts_from_one_and_keeps_its_time_to_live():
    key = "redis-cache:rate"
    cache.delete(key)
    assert [cache.incr_expiring(key, 30) for _ in range(3)] == [1, 2, 3]
    client = cache._cache.get_client(key, write=True)
    assert 25 <= client.ttl(cache.make_key(key)) <= 30  # a counter never outlives its window
    assert cache.get(key) == 3  # the same value the cache's own calls read
