"""Real concurrency in tests: PostgreSQL's row locks across connections, threads released together."""

from __future__ import annotations

import fcntl
import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.db import connection

# A race of more threads than this holds the machine's PostgreSQL to itself: two test workers each
# racing fifty threads open more than PostgreSQL's 100 connections, and the loser's thread meets
# "sorry, too many clients already" where the test asked about locks.
FEW_CONNECTIONS = 10
_depth = 0  # how deep this process is in connections_for(); the outermost holds the file lock


def require_postgresql() -> None:
    """Skip on SQLite; in CI (``CI`` set) fail instead, so that a missing PostgreSQL is never a green run."""
    if connection.vendor != "postgresql":
        why = f"needs PostgreSQL row locks across connections, not {connection.vendor}"
        if os.environ.get("CI"):
            pytest.fail(why, pytrace=False)
        pytest.skip(why)


@contextmanager
def connections_for(count: int) -> Iterator[None]:
    """Let ``count`` threads open a connection each without running the server out of them.

    Beyond ``FEW_CONNECTIONS``, waits until no other test process on this machine (the other xdist
    worker, another checkout's run against the same server) is racing many threads, by a file lock
    named after the server. Re-entrant within a process; nothing to wait for on SQLite.
    """
    global _depth
    if count <= FEW_CONNECTIONS or connection.vendor != "postgresql":
        yield
        return
    if _depth:  # this process holds the lock already
        _depth += 1
        try:
            yield
        finally:
            _depth -= 1
        return
    server = "-".join(str(connection.settings_dict.get(key) or "local") for key in ("HOST", "PORT"))
    with (Path(tempfile.gettempdir()) / f"ipvas-tests-connections-{server}.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _depth = 1
        try:
            yield
        finally:
            _depth = 0
            fcntl.flock(lock, fcntl.LOCK_UN)


def run_in_threads(n: int, work: Callable[[threading.Barrier], object]) -> list[BaseException]:
    """Run ``work(barrier)`` in ``n`` threads, each on its own connection; return their errors."""
    barrier = threading.Barrier(n, timeout=30)
    errors: list[BaseException] = []

    def target() -> None:
        try:
            work(barrier)
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()
        finally:
            connection.close()

    threads = [threading.Thread(target=target) for _ in range(n)]
    with connections_for(n):
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    return errors
