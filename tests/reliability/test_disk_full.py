"""The disk of ``var/`` full under the embedded set-up, with orders in flight (issue #11's fault campaign).

The embedded IPVAS (SQLite, the file-system broker and cache, all under
``var/``: tests/reliability/stack.py with no server) runs on a small tmpfs
mounted for the test (root only; elsewhere the test skips and says why), used
by customers over HTTP. The disk is then filled to the last byte for a while:

* every request answers, and what cannot be written is a clear 503 with
  ``Retry-After`` (never a 500 or an HTML page on the API);
* nothing is half-written: SQLite's integrity check passes, every message
  file in the broker's queue is whole JSON, nothing was set aside as unreadable
  and no partial message is left being written;
* once space is back, a new order completes, every order ends and the books
  balance (tests.reliability.support.check_money).
"""

from __future__ import annotations

import errno
import json
import os
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from tests.reliability.services import cannot_run
from tests.reliability.stack import Customers, Stack
from tests.reliability.support import record
from tests.reliability.test_dependency_faults import settle

pytestmark = [pytest.mark.integration]
TMPFS_MB = 96
FULL_SECONDS = 5


def fill(path: Path) -> int:
    """Write until the file system refuses one more byte; returns how many were written."""
    written = 0
    with open(path, "wb", buffering=0) as filler:
        for chunk in (1 << 20, 1 << 12, 1):
            block = b"\0" * chunk
            while True:
                try:
                    written += filler.write(block) or 0
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    break
    return written


@pytest.fixture
def small_var(tmp_path):
    if os.geteuid() != 0:
        cannot_run("mounting a small tmpfs for var/ needs root")
    mount = tmp_path / "var"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_MB}m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        cannot_run(f"cannot mount a tmpfs here: {done.stderr.decode()[-200:]}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_var_full_under_the_embedded_set_up_answers_clearly_writes_nothing_half_and_recovers(small_var):
    stack = Stack(name="diskfull", var_dir=small_var, worker_concurrency=2)
    filler = small_var / "filler"
    try:
        stack.start()
        customers = Customers(stack, prefix=f"d{int(time.time()) % 10**5}x")
        plans = customers.add(6, ["phone_bill", "wechat_qr", "phone_bill_sms", "alipay_qr", "cash", "phone_bill"])
        customers.drive(plans, seconds=1.5)
        in_flight = customers.in_flight(plans)

        filled_at = time.monotonic()
        written = fill(filler)
        before = dict(customers.figures)
        customers.drive(plans, seconds=FULL_SECONDS)
        full = {k: v - before.get(k, 0) for k, v in customers.figures.items() if v != before.get(k, 0)}
        api_answer = customers._call(  # one request as a vendor would send it, to see the answer's shape
            "POST", "/api/epg/v1/orders/", json={"tv_account": plans[0].account, "product_code": "VIP-MONTH"},
            headers=customers.api,
        )  # fmt: skip
        survived = {name: stack.alive(name) for name in ("web", "worker", "beat")}
        filler.unlink()
        back_at = time.monotonic()

        recovered = customers.probe(timeout=120)
        books = settle(stack, customers, plans + customers.plans[-1:], timeout=150)
        settled = time.monotonic() - back_at
    finally:
        stack.stop()

    database = sqlite3.connect(small_var / "ipvas.sqlite3")
    integrity = database.execute("PRAGMA integrity_check").fetchone()[0]
    database.close()
    broker = small_var / "broker"
    unreadable = []
    for message in (broker / "queue").iterdir():
        try:
            json.loads(message.read_bytes())
        except ValueError:
            unreadable.append(message.name)
    set_aside = sorted(p.name for p in (broker / "bad").iterdir())
    half_written = sorted(p.name for p in (broker / "writing").iterdir())

    result = {
        "kind": f"disk of var/ full (embedded: SQLite, file broker and cache on a {TMPFS_MB} MB tmpfs)",
        "fault": "disk_full",
        "orders": len(plans),
        "in_flight": in_flight,
        "down_seconds": round(back_at - filled_at, 1),
        "bytes_filled": written,
        "answers_while_full": full,
        "api_answer_while_full": [api_answer.status_code, api_answer.headers.get("Retry-After"), api_answer.text[:200]]
        if hasattr(api_answer, "status_code")
        else repr(api_answer),
        "processes_survived": survived,
        "recovered_seconds": None if recovered is None else round(recovered, 1),
        "settled_seconds": round(settled, 1),
        "statuses": books.get("statuses", {}),
        "sqlite_integrity": integrity,
        "broker_unreadable": unreadable,
        "broker_set_aside": set_aside,
        "broker_half_written": half_written,
        "books": books,
    }
    result["ok"] = (
        integrity == "ok"
        and not unreadable
        and not set_aside
        and not half_written
        and not books.get("problems")
        and not books.get("unsettled")
        and recovered is not None
        and "answers 500" not in full
    )
    record("fault-disk_full", **result)

    assert survived == {"web": True, "worker": True, "beat": True}, result
    assert "answers 500" not in full, result
    assert hasattr(api_answer, "status_code") and api_answer.status_code == 503, result
    assert api_answer.headers.get("Retry-After") and api_answer.json()["error"]["code"] == "service_unavailable"
    assert integrity == "ok"
    assert unreadable == [] and set_aside == [] and half_written == []
    assert books.get("problems") == [] and books.get("unsettled") == 0, books
    assert recovered is not None, result
