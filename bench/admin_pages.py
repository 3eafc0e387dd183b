"""The back office at a year's volume: every admin list, its filters, sorts, searches, date drill-down and a far
page, the change pages, the sales dashboard (a day, a month, a year) and every CSV, each timed in-process.

    .venv/bin/python bench/admin_pages.py --build                 # make the data (bench/admin_data.sql), then time
    .venv/bin/python bench/admin_pages.py --json after.json       # time, and keep the figures
    .venv/bin/python bench/admin_pages.py --compare before.json   # time, beside an earlier run's figures

BENCH_ADMIN_DATABASE_URL names its database (``postgres://postgres@127.0.0.1:5432/ipvas_bench_admin`` by default,
never DATABASE_URL's); it is created if missing, and ``--build`` drops and makes it again first (``--orders``,
1,200,000; ``--subscriptions``, 200,000: about 3 minutes on two cores; timing every page, about 10).
The pages are asked through Django's test client as a superuser, with the middleware of every request; each
page twice when the first answer took under 2 s (the better time is kept),
with a statement timeout of 60 s (a page that hits it says so). Beside each time: the number of statements
and the slowest one, to EXPLAIN. The figures are server time, without a browser's.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import timedelta
from html import unescape
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/ipvas_bench_admin"
os.environ["DATABASE_URL"] = os.environ.get("BENCH_ADMIN_DATABASE_URL", DEFAULT_URL)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ipvas.settings")
os.environ.setdefault("IPVAS_VAR_DIR", str(ROOT / "var" / "bench" / "admin"))
os.environ.setdefault("CELERY_BROKER_URL", "memory://")
os.environ["ADMIN_REQUIRE_MFA"] = "0"
os.environ["DEBUG"] = "0"
os.environ.setdefault("LOG_LEVEL", "ERROR")
SQL = ROOT / "bench" / "admin_data.sql"
TIMEOUT_MS = 60_000
AGAIN_UNDER_S = 2.0


@dataclass
class Timing:
    label: str
    url: str
    status: int
    ms: float
    queries: int
    slowest_ms: float
    slowest_sql: str


def ensure_database(url: str) -> None:
    import psycopg

    base, name = url.rsplit("/", 1)
    with psycopg.connect(base + "/postgres", autocommit=True) as conn:
        if not conn.execute("select 1 from pg_database where datname = %s", (name,)).fetchone():
            conn.execute(f'create database "{name}"')


def build(url: str, *, orders: int, subscriptions: int) -> None:
    import psycopg

    base, name = url.rsplit("/", 1)
    with psycopg.connect(base + "/postgres", autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')
        conn.execute(f'create database "{name}"')
    env = dict(os.environ)
    started = time.monotonic()
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    subprocess.run([sys.executable, "manage.py", "seed_demo"], cwd=ROOT, env=env, check=True, capture_output=True)
    subprocess.run(
        ["psql", url, "-q", "-v", f"orders={orders}", "-v", f"subscriptions={subscriptions}", "-f", str(SQL)],
        cwd=ROOT,
        check=True,
    )
    print(f"built {orders:,} orders, {subscriptions:,} subscriptions in {time.monotonic() - started:.0f} s", flush=True)


class Bench:
    def __init__(self) -> None:
        import django

        django.setup()
        from django.contrib.auth.models import User
        from django.db import connection
        from django.db.backends.signals import connection_created
        from django.test import Client

        def limit(sender: Any, connection: Any, **kwargs: Any) -> None:
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute(f"SET statement_timeout = {TIMEOUT_MS}")

        connection_created.connect(limit)
        user, _ = User.objects.get_or_create(username="bench-admin", defaults={"is_staff": True, "is_superuser": True})
        self.client = Client(HTTP_HOST="127.0.0.1")
        self.client.force_login(user)
        self.connection = connection
        self.timings: list[Timing] = []

    def get(self, label: str, url: str) -> tuple[Timing, str]:
        best: Timing | None = None
        body = ""
        for _attempt in range(2):
            timing, body = self._once(label, url)
            if best is None or timing.ms < best.ms:
                best = timing
            if timing.ms >= AGAIN_UNDER_S * 1000 or timing.status >= 400:
                break
        assert best is not None
        self.timings.append(best)
        shown = f"{best.ms:8.0f} ms {best.queries:4d} q  slowest {best.slowest_ms:6.0f} ms"
        print(f"{shown}  {best.status}  {label}  {url}", flush=True)
        return best, body

    def _once(self, label: str, url: str) -> tuple[Timing, str]:
        from django.db import OperationalError

        statements: list[tuple[float, str]] = []

        def record(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
            started = time.perf_counter()
            try:
                return execute(sql, params, many, context)
            finally:
                statements.append(((time.perf_counter() - started) * 1000, sql))

        started = time.perf_counter()
        body = ""
        try:
            with self.connection.execute_wrapper(record):
                response = self.client.get(url)
                if getattr(response, "streaming", False):
                    body = b"".join(response.streaming_content).decode("utf-8", "replace")[:2000]
                else:
                    body = response.content.decode("utf-8", "replace")
            status = response.status_code
        except OperationalError as exc:
            status = 599 if "statement timeout" in str(exc) else 598
            self.connection.close()
        ms = (time.perf_counter() - started) * 1000
        slowest = max(statements, default=(0.0, ""))
        return Timing(label, url, status, ms, len(statements), slowest[0], slowest[1][:400]), body


# --- what an operator clicks, read off the page ----------------------------------------------------

FILTER_BLOCK = re.compile(r'<details data-filter-title="([^"]*)"[^>]*>(.*?)</details>', re.S)
LINK = re.compile(r'<a href="(\?[^"]*)"')
SORT = re.compile(r'<th scope="col" class="sortable column-([\w-]+)[^"]*">.*?<a href="(\?o=[^"]*)"', re.S)
HIERARCHY = re.compile(r'<nav class="toplinks">(.*?)</nav>', re.S)


def filter_links(html: str) -> list[tuple[str, str]]:
    """(filter title, query) for the first and the last choice of every filter (its first is "All")."""
    out = []
    for title, block in FILTER_BLOCK.findall(html):
        links = [unescape(link) for link in LINK.findall(block)][1:]
        for link in dict.fromkeys(links[:1] + links[-1:]):
            out.append((unescape(title), link))
    return out


def sort_links(html: str) -> list[tuple[str, str]]:
    return [(column, unescape(link)) for column, link in SORT.findall(html)]


def hierarchy_link(html: str, skip_back: bool = True) -> str | None:
    found = HIERARCHY.search(html)
    if not found:
        return None
    links = [unescape(link) for link in LINK.findall(found.group(1))]
    # The first link of a drilled-down level goes back up: take the last (the latest year, month or day).
    return links[-1] if links else None


def samples() -> dict[str, Any]:
    from django.db.models import Count

    from billing.models import Payment, ReconciliationRun
    from orders.models import Order, OrderEvent, Subscription

    order = Order.objects.order_by("pk")[Order.objects.count() // 3]
    busiest = OrderEvent.objects.values("order").order_by().annotate(n=Count("pk"))
    busy_order = busiest.order_by("-n").values_list("order", flat=True).first()
    subscription = Subscription.objects.order_by("pk").first()
    payment = Payment.objects.filter(status="paid", provider="wechatpay").order_by("pk").first()
    run = ReconciliationRun.objects.order_by("-day").first()
    return {
        "order": order,
        "busy_order": busy_order,
        "subscription": subscription,
        "payment": payment,
        "run": run,
    }


SEARCHES: dict[str, list[tuple[str, Any]]] = {
    # model -> (what is typed, how to find a value from the samples)
    "orders.order": [
        ("order no", lambda s: s["order"].order_no),
        ("mobile", lambda s: s["order"].phone),
        ("mobile as written", lambda s: f"{s['order'].phone[:3]} {s['order'].phone[3:7]} {s['order'].phone[7:]}"),
        ("tv account", lambda s: s["order"].tv_account),
    ],
    "orders.subscription": [
        ("subscription no", lambda s: s["subscription"].subscription_no),
        ("tv account", lambda s: s["subscription"].tv_account),
        ("mobile", lambda s: s["subscription"].phone),
    ],
    "orders.entitlement": [
        ("tv account", lambda s: s["order"].tv_account),
        ("order no", lambda s: s["order"].order_no),
    ],
    "billing.payment": [
        ("out_trade_no", lambda s: s["payment"].out_trade_no),
        ("provider txn", lambda s: s["payment"].provider_txn_id),
    ],
    "billing.ledgerentry": [("order no", lambda s: s["payment"].out_trade_no)],
    "billing.refund": [("order no", lambda s: s["order"].order_no)],
    "billing.smsconfirmation": [("mobile", lambda s: s["order"].phone), ("order no", lambda s: s["order"].order_no)],
    "billing.workitem": [("order no", lambda s: s["order"].order_no)],
    "billing.paymentnotification": [("out_trade_no", lambda s: s["payment"].out_trade_no)],
    "billing.providercontract": [("order no", lambda s: s["order"].order_no)],
    "billing.reconciliationitem": [("order no", lambda s: s["payment"].out_trade_no)],
    "billing.discrepancy": [("order no", lambda s: s["payment"].out_trade_no)],
    "billing.statementline": [("out_trade_no", lambda s: s["payment"].out_trade_no)],
    "admin.logentry": [("words", lambda s: "order 5")],
}


def changelists(bench: Bench, only: str | None) -> None:
    from django.contrib import admin

    found = samples()
    for model, model_admin in admin.site._registry.items():
        key = model._meta.label_lower
        if only and not re.search(only, key):
            continue
        base = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        _timing, html = bench.get(f"{key}: list", base)
        for title, query in filter_links(html):
            bench.get(f"{key}: filter {title}", base + query)
        for column, query in sort_links(html):
            bench.get(f"{key}: sort {column}", base + query)
        for what, value in SEARCHES.get(key, []):
            term = value(found)
            bench.get(f"{key}: search {what}", base + "?" + f"q={term}".replace(" ", "+"))
        bench.get(f"{key}: page 1000", base + "?p=999")
        if model_admin.date_hierarchy:
            page, level = html, 0
            while (link := hierarchy_link(page)) is not None and level < 3:
                level += 1
                _t, page = bench.get(f"{key}: date level {level}", base + link)
                if level == 3:
                    break
        latest = model._default_manager.order_by("-pk").values_list("pk", flat=True).first()
        if latest is not None:
            bench.get(f"{key}: change page", f"{base}{latest}/change/")
    if not only or re.search(only, "orders.order"):
        bench.get("orders.order: change page, 600 events", f"/admin/orders/order/{found['busy_order']}/change/")
        order = found["order"]
        bench.get("orders.order: change page, a third in", f"/admin/orders/order/{order.pk}/change/")
    if not only or re.search(only, "orders.subscription"):
        first = found["subscription"].pk
        bench.get("orders.subscription: change page, first", f"/admin/orders/subscription/{first}/change/")
    if not only or re.search(only, "billing.reconciliationrun"):
        run = found["run"]
        bench.get("billing.reconciliationrun: a day's CSV", f"/admin/billing/reconciliationrun/{run.pk}/export/")


def dashboards(bench: Bench) -> None:
    from django.utils import timezone

    from backoffice.reports.tables import TABLES

    today = timezone.localdate()
    ranges = {
        "a day": (today - timedelta(days=1), today - timedelta(days=1)),
        "30 days": (today - timedelta(days=29), today),
        "a year": (today - timedelta(days=365), today),
    }
    for label, (start, end) in ranges.items():
        query = f"?start={start.isoformat()}&end={end.isoformat()}"
        bench.get(f"dashboard: {label}", "/admin/reports/" + query)
        if label == "a year":
            for table in TABLES:
                bench.get(f"dashboard CSV {table}: {label}", f"/admin/reports/{query}&export={table}")
    bench.get("admin index", "/admin/")


def print_table(timings: list[Timing], before: dict[str, Any] | None) -> None:
    rows = sorted(timings, key=lambda t: -t.ms)
    print()
    if before:
        print("| page | before | after | statements |")
        print("|---|---:|---:|---:|")
        for t in rows:
            old = before.get(t.label)
            was = f"{old['ms']:,.0f} ms" if old else "-"
            print(f"| {t.label} | {was} | {t.ms:,.0f} ms | {t.queries} |")
    else:
        print("| page | time | statements | slowest statement |")
        print("|---|---:|---:|---:|")
        for t in rows:
            print(f"| {t.label} | {t.ms:,.0f} ms | {t.queries} | {t.slowest_ms:,.0f} ms |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", action="store_true", help="empty the database and make a year's data first")
    parser.add_argument("--orders", type=int, default=1_200_000)
    parser.add_argument("--subscriptions", type=int, default=200_000)
    parser.add_argument(
        "--only",
        help="a regular expression of the models to time (app.model); the dashboard and its CSV files when it matches"
        " 'dashboard' (--only dashboard: those alone)",
    )
    parser.add_argument("--json", help="write the figures to this file")
    parser.add_argument("--compare", help="an earlier run's --json: print its figure beside each")
    parser.add_argument("--slowest", type=int, default=10, help="print the SQL of the N slowest pages' statements")
    args = parser.parse_args()
    url = os.environ["DATABASE_URL"]
    if args.build:
        build(url, orders=args.orders, subscriptions=args.subscriptions)
    else:
        ensure_database(url)
    bench = Bench()
    changelists(bench, args.only)
    if not args.only or re.search(args.only, "dashboard"):
        dashboards(bench)
    before = {t["label"]: t for t in json.loads(Path(args.compare).read_text())} if args.compare else None
    print_table(bench.timings, before)
    print("\nThe slowest statements:")
    for t in sorted(bench.timings, key=lambda t: -t.slowest_ms)[: args.slowest]:
        print(f"\n{t.slowest_ms:,.0f} ms  {t.label}  {t.url}\n  {t.slowest_sql}")
    if args.json:
        Path(args.json).write_text(json.dumps([asdict(t) for t in bench.timings], ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
