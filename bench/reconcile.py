"""Benchmark of the daily reconciliation: a day of 100,000 paid orders against statements of the same size.

    .venv/bin/python bench/reconcile.py [--orders 100000] [--baseline 10000] [--repeats 3]

Runs against the database of DATABASE_URL (the embedded SQLite by default),
in a database of its own that it creates and drops (``bench_reconcile_*``, a
temporary file for SQLite): it never touches the data of the set-up.

For each size it builds one day directly with ``bulk_create`` (orders paid by
WeChat Pay, their payments and ledger entries, the WeChat Pay trade bill and
the SMP list with one row per order, an empty Alipay statement so that every
source is compared, a few discrepancies planted), then times
``reconcile_day`` (statements already imported, ``fetch=False``), and the
import of a WeChat Pay trade bill file of that size. Prints min/median/max
over the repeats, the time per order against the baseline size, the peak of
Python allocations during one run (tracemalloc) and the process's peak RSS
(``ru_maxrss``).
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import statistics
import string
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
WORKDIR = Path(tempfile.mkdtemp(prefix="bench-reconcile-"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ipvas.settings")
os.environ.setdefault("IPVAS_VAR_DIR", str(WORKDIR / "var"))
os.environ.setdefault("CELERY_BROKER_URL", "memory://")
os.environ["OUTBOX_RELAY_ON_COMMIT"] = "0"

import django  # noqa: E402

django.setup()

from django.db import connection, transaction  # noqa: E402
from django.test.utils import setup_databases, teardown_databases  # noqa: E402

from billing.models import LedgerEntry, Payment, ReconciliationRun, Statement, StatementLine  # noqa: E402
from billing.reconciliation.bulk import insert_rows  # noqa: E402
from billing.reconciliation.days import day_bounds  # noqa: E402
from billing.reconciliation.importer import LINE_FIELDS, statement_import  # noqa: E402
from billing.reconciliation.services import reconcile_day  # noqa: E402
from ipvas.money import fen_to_yuan  # noqa: E402
from orders.models import Order, Product  # noqa: E402

BATCH = 5000
LEDGER_FIELDS = (
    "order", "payment", "kind", "amount_fen", "method", "provider", "provider_ref", "idempotency_key", "actor_kind",
    "actor_id", "note", "created_at",
)  # fmt: skip
PRICE = 2500
ALPHABET = string.ascii_letters + string.digits
WECHAT_HEADER = (
    "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,"
    "应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,"
    "手续费,费率,订单金额,申请退款金额,费率备注"
)


def mib(n: float) -> str:
    return f"{n / (1 << 20):.1f}"


def maxrss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


class Day:
    """One synthetic day of ``size`` orders paid by WeChat Pay, all provisioned."""

    def __init__(self, day: date, size: int, product: Product) -> None:
        self.day, self.size, self.product = day, size, product
        self.rng = random.Random(f"{day}:{size}")
        self.start, _ = day_bounds(day)
        # A few of each discrepancy, planted at fixed positions.
        self.lost_at_wechat = set(range(7, size, 997))
        self.other_amount = set(range(11, size, 1009))
        self.not_subscribed = set(range(13, size, 1013))

    def moment(self, i: int) -> datetime:
        return self.start + timedelta(seconds=i * 86000 / self.size)

    def order_no(self, i: int) -> str:
        stamp = self.moment(i).strftime("%Y%m%d%H%M%S")
        return stamp + "".join(self.rng.choice(ALPHABET) for _ in range(10))

    def wechat_line(self, i: int, order_no: str, txn: str) -> str:
        amount = fen_to_yuan(PRICE + (100 if i in self.other_amount else 0))
        when = self.moment(i).strftime("%Y-%m-%d %H:%M:%S")
        fields = [
            when, "wx8888888888888888", "1900000001", "0", "", txn, order_no, "oSandbox" + txn[-12:], "NATIVE",
            "SUCCESS", "OTHERS", "CNY", amount, "0.00", "0", "0", "0.00", "0.00", "", "", "VIP 影视会员 · 包月", "",
            "0.15000", "0.60%", amount, "0.00", "",
        ]  # fmt: skip
        return ",".join("`" + field for field in fields)

    def rows(self) -> Iterator[tuple[int, str, str]]:
        self.rng.seed(f"{self.day}:{self.size}")
        for i in range(self.size):
            yield i, self.order_no(i), f"4200{self.day:%Y%m%d}{i:016d}"

    def build(self) -> None:
        statements = {
            source: Statement.objects.create(
                source=source, day=self.day, sha256=f"{source}-{self.day}-{self.size}".ljust(64, "0")
            )
            for source in ("wechatpay", "alipay", "smp")
        }
        rows = self.rows()
        while batch := [next(rows, None) for _ in range(BATCH)]:
            batch = [row for row in batch if row is not None]
            if not batch:
                break
            with transaction.atomic():
                self._batch(batch, statements)
        for statement in statements.values():
            statement.row_count = statement.lines.count()
            statement.save(update_fields=["row_count"])

    def _batch(self, batch: list[tuple[int, str, str]], statements: dict[str, Statement]) -> None:
        orders = Order.objects.bulk_create(
            Order(
                order_no=order_no,
                channel="epg",
                tv_account=f"tv{i:07d}",
                phone="13800000001",
                product=self.product,
                amount_fen=PRICE,
                status="completed",
                payment_method="wechat_qr",
                status_changed_at=self.moment(i),
                origin_kind="epg_client",
                origin_id="bench",
            )
            for i, order_no, _ in batch
        )
        payments = Payment.objects.bulk_create(
            Payment(
                order=order,
                method="wechat_qr",
                provider="wechatpay",
                out_trade_no=order.order_no,
                amount_fen=PRICE,
                status="paid",
                provider_txn_id=txn,
                paid_at=self.moment(i),
            )
            for order, (i, _, txn) in zip(orders, batch, strict=True)
        )
        # Ledger entries and statement lines need no primary key back: straight to the table
        # (billing.reconciliation.bulk), with the day's time as created_at.
        insert_rows(
            LedgerEntry,
            LEDGER_FIELDS,
            [
                (order.pk, payment.pk, "payment", PRICE, "wechat_qr", "wechatpay", payment.provider_txn_id,
                 f"wechatpay:payment:{payment.provider_txn_id}", "provider", "bench", "", self.moment(i))
                for order, payment, (i, _, _) in zip(orders, payments, batch, strict=True)
            ],
        )  # fmt: skip
        wechat, smp = statements["wechatpay"], statements["smp"]
        insert_rows(
            StatementLine,
            LINE_FIELDS,
            [
                (wechat.pk, i + 2, "payment", order_no, order_no, txn, "", "",
                 PRICE + (100 if i in self.other_amount else 0), "", "", "", self.moment(i),
                 self.wechat_line(i, order_no, txn))
                for i, order_no, txn in batch
                if i not in self.lost_at_wechat
            ],
        )  # fmt: skip
        insert_rows(
            StatementLine,
            LINE_FIELDS,
            [
                (smp.pk, i + 2, "subscription", order_no, order_no, f"SUB{i:016X}", "", "", 0, "prepaid",
                 f"tv{i:07d}", "SMP-BENCH", self.moment(i),
                 f"subscribed,{order_no},tv{i:07d},SMP-BENCH,prepaid,0,{self.moment(i).isoformat()},SUB{i:016X}")
                for i, order_no, _ in batch
                if i not in self.not_subscribed
            ],
        )  # fmt: skip

    def write_wechat_bill(self, path: Path) -> None:
        """The same day as a WeChat Pay trade bill file, for the import figure."""
        count = total = 0
        with path.open("wb") as out:
            out.write(WECHAT_HEADER.encode() + b"\r\n")
            for i, order_no, txn in self.rows():
                if i not in self.lost_at_wechat:
                    out.write(self.wechat_line(i, order_no, txn).encode() + b"\r\n")
                    count += 1
                    total += PRICE + (100 if i in self.other_amount else 0)
            out.write(
                "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额\r\n".encode()
            )
            # The totals add up, as WeChat Pay's do (the import checks them): every row's fee is 0.15000.
            amount, fees = fen_to_yuan(total), fen_to_yuan(count * 15) + "000"
            out.write(f"`{count},`{amount},`0.00,`0.00,`{fees},`{amount},`0.00\r\n".encode())

    def expected(self) -> dict[str, int]:
        return {
            "missing_at_provider": len(self.lost_at_wechat),
            "amount_differs": len(self.other_amount - self.lost_at_wechat),
            "paid_not_provisioned": len(self.not_subscribed),
            "missing_here": 0,
            "provisioned_not_paid": 0,
            "duplicate": 0,
            "provisioned_differs": 0,
            "revoked_not_unsubscribed": 0,
            "unsubscribed_not_revoked": 0,
        }


def timed(work: Callable[[], Any], repeats: int) -> tuple[list[float], Any]:
    times, result = [], None
    for _ in range(repeats):
        began = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - began)
    return times, result


def traced_peak(work: Callable[[], Any]) -> int:
    tracemalloc.start()
    try:
        work()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def spread(times: list[float]) -> str:
    return f"{min(times):7.2f} {statistics.median(times):7.2f} {max(times):7.2f}"


def measure(size: int, day: date, repeats: int, product: Product) -> dict[str, Any]:
    synthetic = Day(day, size, product)
    began = time.perf_counter()
    synthetic.build()
    built = time.perf_counter() - began
    rss_built = maxrss_bytes()

    def run() -> ReconciliationRun:
        return reconcile_day(day, fetch=False, triggered_by="bench")

    times, last = timed(run, repeats)
    counts = {outcome: getattr(last, outcome) for outcome in synthetic.expected()}
    assert counts == synthetic.expected(), (counts, synthetic.expected())
    expected = synthetic.expected()
    matched = (size - expected["missing_at_provider"] - expected["amount_differs"]) + (
        size - expected["paid_not_provisioned"]
    )
    assert last.matched == matched, (last.matched, matched)
    assert last.complete, last.source_states()
    peak = traced_peak(run)
    items = ReconciliationRun.objects.get(day=day).items.count()

    bill = WORKDIR / f"wechat-{size}.csv"
    synthetic.write_wechat_bill(bill)

    def import_bill() -> Statement:
        Statement.objects.filter(source="wechatpay", day=day).delete()
        with bill.open("rb") as stream:
            return statement_import(source="wechatpay", day=day, stream=stream, file_name=bill.name)

    import_times, imported = timed(import_bill, repeats)
    import_peak = traced_peak(import_bill)
    assert imported.row_count == size - len(synthetic.lost_at_wechat)
    return {
        "size": size,
        "built": built,
        "times": times,
        "peak": peak,
        "items": items,
        "rss_built": rss_built,
        "rss_after": maxrss_bytes(),
        "import_times": import_times,
        "import_peak": import_peak,
        "bill_bytes": bill.stat().st_size,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--baseline", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    options = parser.parse_args()

    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        db["TEST"]["NAME"] = str(WORKDIR / "bench.sqlite3")
    else:
        db["TEST"]["NAME"] = f"bench_reconcile_{db['NAME']}"
    print(f"setting up a benchmark database ({db['ENGINE'].rsplit('.', 1)[-1]}, {db['TEST']['NAME']}) ...")
    old = setup_databases(verbosity=0, interactive=False, aliases={"default"})
    try:
        vendor = f"{connection.vendor} {connection.Database.sqlite_version if connection.vendor == 'sqlite' else ''}"
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SHOW server_version")
                vendor = f"postgresql {cursor.fetchone()[0]}"
        product = Product.objects.create(
            code="BENCH",
            name="Bench product",
            kind="monthly",
            price_fen=PRICE,
            smp_product_code="SMP-BENCH",
            smp_zero_price_package_code="SMP-BENCH-0",
            channels=["epg"],
            payment_methods=["wechat_qr"],
        )
        results = [
            measure(size, date(2026, 11, 10 + n), options.repeats, product)
            for n, size in enumerate((options.baseline, options.orders))
        ]
    finally:
        teardown_databases(old, verbosity=0)
    print(f"\ndatabase: {vendor.strip()}; CPUs: {os.cpu_count()}; repeats: {options.repeats}")
    print("orders   | reconcile_day s (min median max) | µs/order (median) | items   | peak traced MiB | build s")
    for r in results:
        per = statistics.median(r["times"]) / r["size"] * 1e6
        print(
            f"{r['size']:>8,} | {spread(r['times'])}          | {per:17.1f} | {r['items']:>7,} | "
            f"{mib(r['peak']):>15} | {r['built']:7.1f}"
        )
    print("orders   | import of the WeChat Pay bill s (min median max) | file MiB | peak traced MiB")
    for r in results:
        print(
            f"{r['size']:>8,} | {spread(r['import_times'])}                          | {mib(r['bill_bytes']):>8} | "
            f"{mib(r['import_peak']):>15}"
        )
    base, big = results
    ratio = (statistics.median(big["times"]) / big["size"]) / (statistics.median(base["times"]) / base["size"])
    print(f"time per order, {big['size']:,} against {base['size']:,}: x{ratio:.2f} (1.00 = linear)")
    print(
        f"peak RSS (ru_maxrss): {mib(base['rss_built'])} MiB after building {base['size']:,}, "
        f"{mib(base['rss_after'])} after its runs; {mib(big['rss_built'])} after building {big['size']:,}, "
        f"{mib(big['rss_after'])} after its runs"
    )


if __name__ == "__main__":
    main()
