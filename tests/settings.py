"""Settings for the test suite: the embedded defaults, made deterministic.

The outbox is not relayed on commit: tests run due work themselves
(``tests.support.tasks.run_due_tasks``), so time travel decides what runs.
With DATABASE_URL / REDIS_URL / CELERY_BROKER_URL in the environment the same
suite runs against PostgreSQL and Redis, and the integration tier with them.
"""

import os
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

_BASE = Path(__file__).resolve().parent.parent


def _apart(worker: str) -> None:
    """pytest-xdist runs the suite in processes gw0, gw1…: each gets its own var/ directory (keys, file broker)
    and, on Redis, its own databases (cache and broker), as pytest-django gives each its own test database.
    Done once, in the environment, so that the Celery workers and servers a test starts inherit it."""
    if os.environ.get("IPVAS_TEST_PROCESS") == worker:
        return
    os.environ["IPVAS_TEST_PROCESS"] = worker
    os.environ["IPVAS_VAR_DIR"] = str(_BASE / "var" / "test" / worker)
    index = int(worker.removeprefix("gw") or 0)
    # Redis has 16 databases: each process gets a block of them, the base ones in the first block.
    block = 16 // max(1, int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "2")))
    for name in ("REDIS_URL", "CELERY_BROKER_URL"):
        url = urlsplit(os.environ.get(name, ""))
        if url.scheme == "redis" and index:
            base = int(url.path.strip("/") or 0)
            if base >= block:
                raise RuntimeError(f"{name}: database {base} is past the first block ({block}) of process {worker}")
            os.environ[name] = urlunsplit(url._replace(path=f"/{base + block * index}"))


if os.environ.get("PYTEST_XDIST_WORKER"):
    _apart(os.environ["PYTEST_XDIST_WORKER"])
os.environ.setdefault("IPVAS_VAR_DIR", str(_BASE / "var" / "test"))
os.environ.setdefault("IPVAS_SANDBOX", "1")
os.environ.setdefault("OUTBOX_RELAY_ON_COMMIT", "0")
os.environ.setdefault("CELERY_BROKER_URL", "memory://")
os.environ.setdefault("SMP_TIMEOUT_SECONDS", "0.5")
os.environ.setdefault("SMP_SIMULATOR_SLOW_SECONDS", "1")
# The TV pages waiting for their order ask every 0.3 s, not 1.5: the browser tests wait for them
# (tests/tv/test_browser.py checks that the page keeps to the setting).
os.environ.setdefault("TV_POLL_MILLISECONDS", "300")

from ipvas.settings import *  # noqa: E402,F403
from ipvas.settings import REDIS_URL  # noqa: E402

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Django's test Client builds its middleware anew for each client, and WhiteNoise with the finders walked every
# static file each time (60 ms a client, a sixth of a lifecycle test's time). In tests it finds a file when it
# is asked for (WhiteNoise's development mode): the same files, served the same way.
WHITENOISE_AUTOREFRESH = True
if not REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "tests"}}

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    # A test database in a file, not Django's shared-cache memory one: there a browser test's live server and
    # the test's own thread meet table locks that fail at once ("database table is locked"), while a file
    # database waits for the lock (``timeout``), as the embedded set-up itself does.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}  # noqa: F405
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":  # noqa: F405
    # Django's PostgreSQL, but a committed test's database is emptied with DELETE, not TRUNCATE: ten times faster
    # for the few rows a test leaves (tests/postgresql/base.py says why).
    DATABASES["default"]["ENGINE"] = "tests.postgresql"  # noqa: F405
