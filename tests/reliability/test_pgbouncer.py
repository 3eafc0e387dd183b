"""Behind PgBouncer in transaction pooling mode (issue #17; docs/capacity.md puts one in front of the web and
worker processes of a national platform): orders of every way of paying complete and the books balance, and a
CSV export streamed over many transactions' time keeps its cursor.

The whole stack (web, worker, beat; tests/reliability/stack.py) runs with ``DATABASE_URL`` on a PgBouncer of
the test's own that gives each transaction a server connection round robin, so that whatever counts on staying
on one server connection between transactions fails here every time.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.services import OwnPgBouncer, OwnRedis, own_servers
from tests.reliability.stack import TERMINAL, Customers, Stack, running_stack

pytestmark = [pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]
METHODS = ["phone_bill", "wechat_qr", "alipay_qr", "phone_bill_sms", "cash"]
ITEMS = 5000

# In a process of the stack's settings: a reconciliation run of ITEMS items, several server connections opened
# in PgBouncer's pool for its round robin to go through, then the run's CSV export (what admin streams to the
# browser, outside any transaction of the request's) read to its end; prints the lines read.
EXPORT = f"""
import os, threading, django
django.setup()
import psycopg
from datetime import date
from django.utils import timezone
from backoffice.admin.reconciliation_export import item_rows
from billing.models import ReconciliationItem, ReconciliationRun

run = ReconciliationRun.objects.create(day=date(2020, 1, 1), started_at=timezone.now(), triggered_by="pgbouncer test")
ReconciliationItem.objects.bulk_create(
    ReconciliationItem(run=run, outcome="matched", source="wechatpay", kind="payment", order_no=f"T{{n:06d}}")
    for n in range({ITEMS})
)

def busy():
    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
        conn.execute("select pg_sleep(0.3)")

threads = [threading.Thread(target=busy) for _ in range(3)]
[thread.start() for thread in threads]
[thread.join() for thread in threads]
print(sum(1 for _ in item_rows(ReconciliationItem.objects.filter(run=run))))
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[tuple[Stack, OwnPgBouncer]]:
    with own_servers(OwnRedis) as servers:
        bouncer = OwnPgBouncer(servers["postgres"])
        try:
            var_dir = tmp_path_factory.mktemp("pgbouncer-var")
            with running_stack("pgbouncer", {**servers, "postgres": bouncer}, var_dir) as running:
                yield running, bouncer
        finally:
            bouncer.stop()


def test_orders_of_every_way_of_paying_complete_behind_pgbouncer(stack):
    running, bouncer = stack
    customers = Customers(running, prefix=f"pgb{int(time.time()) % 10**5}x")
    plans = customers.add(20, METHODS)
    books: dict[str, Any] = {}
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        customers.drive(plans, seconds=5, until_settled=True)
        books = running.check([p.order_no for p in plans if p.order_no])
        # Settled in the books, and seen so by the customers: a customer who paid in drive's last round has not
        # asked for the order since (it may have completed meanwhile); the next round asks.
        seen = all(p.status in TERMINAL for p in plans)
        if seen and not books.get("unsettled") and not books.get("refunds_under_way"):
            break

    not_completed = [f"{p.order_no} {p.method}: {p.status} {p.notes}" for p in plans if p.status != "completed"]
    assert not_completed == [], books.get("events_of_orders_not_completed", books)
    assert books.get("problems") == [] and books.get("smp_left_subscribed") == [], books
    pool = next(p for p in bouncer.pools() if p["database"] == "ipvas_pgbouncer")
    assert pool["pool_mode"] == "transaction"
    assert customers.figures.get("answers 500", 0) == 0, customers.figures


def test_a_streamed_csv_export_keeps_its_cursor_behind_pgbouncer(stack):
    running, _ = stack
    done = subprocess.run(
        [sys.executable, "-c", EXPORT], cwd=ROOT, env=running.env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert int(done.stdout.strip().splitlines()[-1]) == ITEMS + 1  # the header and every item
