"""The integration tier: PostgreSQL, Redis and a real Celery worker process.

Tests here are marked ``integration`` (see tests/conftest.py for when they
skip or fail), use ``transactional_db`` so that the worker sees committed
rows, and relay the outbox on commit as production does.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
QUEUES = "interactive,default,deadlines,provisioning,sms"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).is_relative_to(Path(__file__).parent):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(autouse=True)
def _relay_on_commit(settings):
    settings.OUTBOX_RELAY_ON_COMMIT = True


def _test_database_url() -> str:
    db = settings.DATABASES["default"]
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{user}{password}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


class Worker:
    def __init__(self, process: subprocess.Popen[bytes], name: str, log: Path) -> None:
        self.process = process
        self.name = name
        self.log = log

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def start_worker(
    *, concurrency: int = 2, extra_env: dict[str, str] | None = None, queues: str | None = QUEUES
) -> Worker:
    """A worker process on the test database; ``queues`` None: a plain worker (no ``-Q``: every declared queue).

    The test that starts it has the broker to itself: the session's shared worker, if it runs, is stopped
    first (and started again by the next test that asks for it), so that it takes none of this one's work.
    """
    if _services_missing():
        pytest.skip("integration services missing")
    stop_session_worker()
    return _start_worker(concurrency=concurrency, extra_env=extra_env, queues=queues)


def _start_worker(*, concurrency: int, extra_env: dict[str, str] | None, queues: str | None) -> Worker:
    from ipvas.celery import app

    ARTIFACTS.mkdir(exist_ok=True)
    name = f"test-{uuid.uuid4().hex[:8]}"
    log = ARTIFACTS / f"worker-{name}.log"
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "DATABASE_URL": _test_database_url(),
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "REDIS_URL": settings.REDIS_URL,
            "OUTBOX_RELAY_ON_COMMIT": "1",
            **(extra_env or {}),
        }
    )
    app.control.purge()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "ipvas",
            "worker",
            "-P",
            "prefork",
            "-c",
            str(concurrency),
            *(["-Q", queues] if queues else []),
            "-n",
            f"{name}@%h",
            "-l",
            "info",
            "--without-gossip",
            "--without-mingle",
        ],
        cwd=ROOT,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    worker = Worker(process, name, log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the Celery worker exited at start:\n{worker.output()[-3000:]}")
        if " ready." in worker.output():
            return worker
        time.sleep(0.2)
    stop_worker(worker)
    raise RuntimeError(f"the Celery worker was not ready in 60 s:\n{worker.output()[-3000:]}")


def stop_worker(worker: Worker, *, kill: bool = False) -> None:
    import signal

    if worker.process.poll() is None:
        if kill:
            os.killpg(worker.process.pid, signal.SIGKILL)
        else:
            worker.process.terminate()
        try:
            worker.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(worker.process.pid, signal.SIGKILL)
            worker.process.wait()
    try:
        os.killpg(worker.process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _services_missing() -> str:
    from tests.conftest import _integration_services_missing

    return _integration_services_missing()


class _SessionWorker:
    """The worker that the tests of the session share: started by the first test that asks for it, stopped
    when a test starts a worker of its own or wants none, started again by the next test that asks."""

    worker: Worker | None = None

    def running(self) -> Worker:
        if self.worker is None or self.worker.process.poll() is not None:
            if _services_missing():
                pytest.skip("integration services missing")
            self.worker = _start_worker(concurrency=2, extra_env=None, queues=QUEUES)
        return self.worker

    def stop(self) -> None:
        if self.worker is not None:
            stop_worker(self.worker)
            self.worker = None


_session_worker = _SessionWorker()


def stop_session_worker() -> None:
    """No worker of the session's runs after this (a test that counts on the broker's messages staying)."""
    _session_worker.stop()


@pytest.fixture
def celery_worker_process(django_db_setup, django_db_blocker) -> Worker:
    """The session's real worker on the test database, running (the only one: see start_worker)."""
    return _session_worker.running()


@pytest.fixture(scope="session", autouse=True)
def _session_worker_stopped_at_the_end(django_db_setup) -> Iterator[None]:
    """After the last test; before the test database is dropped (set up after it, so torn down before it: the
    worker's processes keep their connections, and PostgreSQL refuses to drop a database still in use)."""
    yield
    _session_worker.stop()


def wait_for(predicate: Callable[[], object], *, timeout: float = 20, interval: float = 0.1, what: str = "") -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate}")
