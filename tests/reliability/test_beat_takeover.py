"""Two beats, one schedule (issue #17): with BEAT_LOCK=redis (celery-redbeat) only the beat holding the lock
sends the schedule's tasks; ``kill -9`` of it, and the other takes over within the lock's timeout. Run against
a Redis started for the test on its own port; the beats are real ``celery beat`` processes. The figures (the
takeover, whether the schedule was sent twice) are kept in test-artifacts/reliability/scaleout-beat.json."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from tests.reliability.services import OwnRedis, stop_group
from tests.reliability.support import record

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
LOCK_TIMEOUT = 10  # BEAT_LOCK_TIMEOUT_SECONDS: the beat ticks every 2 s and renews it
RELAY_EVERY = 1  # OUTBOX_RELAY_INTERVAL_SECONDS: the entry counted here


@pytest.fixture
def own_redis():
    server = OwnRedis()
    yield server
    server.stop()


def start_beat(name: str, server: OwnRedis, tmp_path: Path) -> tuple[subprocess.Popen[bytes], Path]:
    ARTIFACTS.mkdir(exist_ok=True)
    log = ARTIFACTS / f"beat-{name}.log"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "REDIS_URL": server.url(0),
        "CELERY_BROKER_URL": server.url(1),
        "BEAT_LOCK": "redis",
        "BEAT_LOCK_TIMEOUT_SECONDS": str(LOCK_TIMEOUT),
        "OUTBOX_RELAY_INTERVAL_SECONDS": str(RELAY_EVERY),
        "IPVAS_VAR_DIR": str(tmp_path / name),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "ipvas", "beat", "-l", "info"],
        cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    return process, log


def holds_lock(log: Path) -> bool:
    return "beat: Acquired lock" in log.read_text(errors="replace")


def relayed(server: OwnRedis) -> int:
    """How many relay-outbox tasks beat has sent (no worker takes them off the broker's queue)."""
    return int(redis.Redis.from_url(server.url(1)).llen("default"))


def wait_until(check, timeout: float) -> float:  # type: ignore[no-untyped-def]
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if check():
            return time.monotonic() - start
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout} s")


def test_one_of_two_beats_sends_the_schedule_and_the_other_takes_over_when_it_is_killed(own_redis, tmp_path):
    beats = {name: start_beat(name, own_redis, tmp_path) for name in ("a", "b")}
    try:
        wait_until(lambda: any(holds_lock(log) for _, log in beats.values()), 60)
        time.sleep(1)
        active = [name for name, (_, log) in beats.items() if holds_lock(log)]
        assert len(active) == 1, active  # one lock, one beat ticking
        standby = "b" if active == ["a"] else "a"

        # Only one sends: over 8 s, about 8 relay rounds (every second), not 16.
        before = relayed(own_redis)
        time.sleep(8)
        sent = relayed(own_redis) - before

        beats[active[0]][0].send_signal(signal.SIGKILL)  # the active node dies, its lock left behind
        beats[active[0]][0].wait()
        took: float | None
        try:
            took = wait_until(lambda: holds_lock(beats[standby][1]), LOCK_TIMEOUT + 15)
        except AssertionError:
            took = None  # asserted below, once the figures are kept
        before = relayed(own_redis)
        time.sleep(4)
        resumed = relayed(own_redis) - before

        record(
            "scaleout-beat",
            kind="two beats sharing celery-redbeat's lock, the active one killed (kill -9)",
            ok=5 <= sent <= 11 and took is not None and took <= LOCK_TIMEOUT + 10 and resumed >= 2,
            lock_timeout_seconds=LOCK_TIMEOUT,
            takeover_seconds=None if took is None else round(took, 1),
            relayed_in_8_seconds=sent,
            schedule_sent_twice=sent > 11,  # both beats sending: about 16
            relayed_in_4_seconds_after_the_takeover=resumed,
        )
        assert 5 <= sent <= 11, sent
        assert took is not None, f"beat {standby} did not take the lock over within {LOCK_TIMEOUT + 15} s"
        assert took <= LOCK_TIMEOUT + 10, took
        assert resumed >= 2  # the schedule goes on from the other beat
    finally:
        for process, _ in beats.values():
            stop_group(process, timeout=15)
