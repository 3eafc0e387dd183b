"""The back office's lists at a year's volume (docs/performance.md, "The back office at a year's volume"): what
an operator searches, filters and sorts is answered by an index, not by reading a table of millions.

The tables here are small, so no time is measured (bench/admin_pages.py measures); what is held is the shape of
the SQL each page sends: exact comparisons that the indexes hold (no UPPER(), no LIKE), filter choices that do not
read the whole table, and the rows each search must find.
"""

from __future__ import annotations

import re
from datetime import date

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from billing.models import (
    LedgerEntry,
    Payment,
    ReconciliationItem,
    ReconciliationRun,
    SmsConfirmation,
    Statement,
    StatementLine,
)
from orders.constants import OrderStatus
from orders.models import Order
from tests import test_query_counts
from tests.factories import OrderFactory, ProductFactory
from tests.test_query_counts import new_entitlement

pytestmark = pytest.mark.django_db

# The superuser's client of tests/test_query_counts.py, as a fixture here too.
staff = test_query_counts.staff


def completed(**fields: object) -> Order:
    return OrderFactory(status=OrderStatus.COMPLETED, deadline_at=None, **fields)


def paid(order: Order, n: int) -> tuple[Payment, LedgerEntry]:
    """A payment of the order and its ledger entry."""
    payment = Payment.objects.create(
        order=order, method="wechat_qr", provider="wechatpay", out_trade_no=f"{order.order_no}P{n}",
        amount_fen=order.amount_fen, status="paid", provider_txn_id=f"4200{n:024d}", paid_at=timezone.now(),
    )  # fmt: skip
    entry = LedgerEntry.objects.create(
        order=order, payment=payment, kind="payment", amount_fen=payment.amount_fen, method=payment.method,
        provider=payment.provider, provider_ref=payment.provider_txn_id, idempotency_key=f"test:pay:{n}",
        actor_kind="provider",
    )  # fmt: skip
    return payment, entry


def listed(client: Client, path: str, params: dict[str, str]) -> tuple[set[int], list[str]]:
    """The rows a list shows, and the SQL it sent for them."""
    with CaptureQueriesContext(connection) as captured:
        response = client.get(path, params)
    assert response.status_code == 200, (path, params, response.status_code)
    return {row.pk for row in response.context["cl"].result_list}, [q["sql"] for q in captured.captured_queries]


def assert_indexed(sql: list[str]) -> None:
    for statement in sql:
        assert "UPPER(" not in statement and " LIKE " not in statement, statement


def test_orders_are_found_by_number_account_or_mobile_with_exact_comparisons(staff):
    mine = completed(tv_account="tv7001", phone="13900000001")
    other = completed(tv_account="tv7002", phone="13900000002")
    for term, found in [
        (mine.order_no, {mine.pk}),
        ("tv7001", {mine.pk}),
        ("13900000002", {other.pk}),
        ("139 0000 0002", {other.pk}),  # a mobile number as people write it
        (mine.order_no[:10], set()),  # in full: a part of a number finds nothing
    ]:
        rows, sql = listed(staff, "/admin/orders/order/", {"q": term})
        assert rows == found, term
        assert_indexed(sql)


def test_entitlements_are_found_through_their_orders_indexes(staff):
    mine = new_entitlement(completed(tv_account="tv7101"))
    other = new_entitlement(completed(tv_account="tv7102"))
    for term, found in [("tv7101", {mine.pk}), (other.order.order_no, {other.pk}), ("tv71", set())]:
        rows, sql = listed(staff, "/admin/orders/entitlement/", {"q": term})
        assert rows == found, term
        assert_indexed(sql)


def test_sms_confirmations_are_found_by_their_orders_mobile_or_number(staff):
    def confirmation(phone: str) -> SmsConfirmation:
        order = completed(phone=phone)
        return SmsConfirmation.objects.create(
            order=order, phone=order.phone, text="Reply Y", expires_at=timezone.now(), status="confirmed"
        )

    mine, other = confirmation("13900000011"), confirmation("13900000012")
    for term, found in [("13900000011", {mine.pk}), (other.order.order_no, {other.pk})]:
        rows, sql = listed(staff, "/admin/billing/smsconfirmation/", {"q": term})
        assert rows == found, term
        assert_indexed(sql)


def test_the_entitlements_product_filter_lists_the_products_not_the_codes_the_rows_hold(staff):
    month, year = ProductFactory(code="VOL-MONTH"), ProductFactory(code="VOL-YEAR")
    kept = new_entitlement(completed(product=month))
    ProductFactory(code="VOL-NEVER")  # never sold: offered too, and finds nothing
    rows, sql = listed(staff, "/admin/orders/entitlement/", {})
    assert rows == {kept.pk}
    assert not [s for s in sql if "DISTINCT" in s and "orders_entitlement" in s], sql
    page = staff.get("/admin/orders/entitlement/").content.decode()
    for code in ("VOL-MONTH", "VOL-YEAR", "VOL-NEVER"):
        assert f"?product_code={code}" in page
    assert listed(staff, "/admin/orders/entitlement/", {"product_code": "VOL-MONTH"})[0] == {kept.pk}
    assert listed(staff, "/admin/orders/entitlement/", {"product_code": year.code})[0] == set()


def test_payments_and_ledger_entries_are_found_by_either_number_or_their_orders(staff):
    mine, other = completed(), completed()
    (pay, entry), (other_pay, other_entry) = paid(mine, 1), paid(other, 2)
    for term, found in [
        (pay.out_trade_no, {pay.pk}),
        (other_pay.provider_txn_id, {other_pay.pk}),
        (mine.order_no, {pay.pk}),
        (mine.order_no[:12], set()),
    ]:
        rows, sql = listed(staff, "/admin/billing/payment/", {"q": term})
        assert rows == found, term
        assert_indexed(sql)
    for term, found in [
        (other.order_no, {other_entry.pk}),
        (entry.provider_ref, {entry.pk}),
        ("test:pay:2", {other_entry.pk}),
    ]:
        rows, sql = listed(staff, "/admin/billing/ledgerentry/", {"q": term})
        assert rows == found, term
        assert_indexed(sql)


def test_statement_lines_and_reconciliation_items_are_found_by_their_numbers_exactly(staff):
    statement = Statement.objects.create(source="wechatpay", day=date(2026, 11, 24), sha256="0" * 64, row_count=2)
    line, refund = (
        StatementLine.objects.create(
            statement=statement,
            line_no=n,
            kind=kind,
            match_key=key,
            out_trade_no=f"T2026112400000{n}",
            transaction_id=f"42000000000000000000{n}",
            out_refund_no=refund_no,
            amount_fen=2500,
            occurred_at=timezone.now(),
            raw="...",
        )
        for n, kind, key, refund_no in [(1, "payment", "T20261124000001", ""), (2, "refund", "R1", "R2026112401")]
    )
    for term, found in [
        (line.out_trade_no, {line.pk}),
        (line.transaction_id, {line.pk}),
        (refund.out_refund_no, {refund.pk}),
        (line.out_trade_no[:10], set()),
    ]:
        rows, sql = listed(staff, "/admin/billing/statementline/", {"q": term})
        assert rows == found, term
        assert_indexed(sql)
    run = ReconciliationRun.objects.create(day=date(2026, 11, 24), started_at=timezone.now())
    mine, theirs = (
        ReconciliationItem.objects.create(
            run=run, outcome="missing_here", source="wechatpay", kind="payment", order_no=order_no, reference=ref
        )
        for order_no, ref in [("T20261124000001", "4200000000000000000001"), ("", "4200000000000000000002")]
    )
    for term, found in [
        (mine.order_no, {mine.pk}),
        (theirs.reference, {theirs.pk}),
        (theirs.reference[:8], set()),
    ]:
        rows, sql = listed(staff, "/admin/billing/reconciliationitem/", {"q": term})
        assert rows == found, term
        assert_indexed(sql)


@pytest.mark.parametrize(
    ("path", "sortable"),
    [
        ("/admin/orders/order/", {"order_no", "status", "tv_account", "created_at"}),
        ("/admin/billing/payment/", {"out_trade_no", "provider", "provider_txn_id", "created_at"}),
        ("/admin/billing/ledgerentry/", {"created_at", "order", "provider", "provider_ref"}),
    ],
)
def test_the_big_lists_offer_sorting_on_indexed_columns_only(staff, path, sortable):
    paid(completed(), 1)
    page = staff.get(path).content.decode()
    offered = set(re.findall(r'<th scope="col" class="sortable column-(\w+)', page))
    assert offered == sortable
