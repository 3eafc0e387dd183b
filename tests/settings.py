"""Settings for the test suite: the embedded defaults, made deterministic.

The outbox is not relayed on commit: tests run due work themselves
(``tests.support.tasks.run_due_tasks``), so time travel decides what runs.
With DATABASE_URL / REDIS_URL / CELERY_BROKER_URL in the environment the same
suite runs against PostgreSQL and Redis, and the integration tier with them.
"""

import os
from pathlib import Path

_BASE = Path(__file__).resolve().parent.parent
os.environ.setdefault("IPVAS_VAR_DIR", str(_BASE / "var" / "test"))
os.environ.setdefault("IPVAS_SANDBOX", "1")
os.environ.setdefault("OUTBOX_RELAY_ON_COMMIT", "0")
os.environ.setdefault("CELERY_BROKER_URL", "memory://")
os.environ.setdefault("SMP_TIMEOUT_SECONDS", "0.5")
os.environ.setdefault("SMP_SIMULATOR_SLOW_SECONDS", "1")

from ipvas.settings import *  # noqa: E402,F403
from ipvas.settings import REDIS_URL  # noqa: E402

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
if not REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "tests"}}
