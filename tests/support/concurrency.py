"""Real concurrency in tests: PostgreSQL's row locks across connections, threads released together."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

import pytest
from django.db import connection


def require_postgresql() -> None:
    """Skip on SQLite; in CI (``CI`` set) fail instead, so that a missing PostgreSQL is never a green run."""
    if connection.vendor != "postgresql":
        why = f"needs PostgreSQL row locks across connections, not {connection.vendor}"
        if os.environ.get("CI"):
            pytest.fail(why, pytrace=False)
        pytest.skip(why)


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
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    return errors
