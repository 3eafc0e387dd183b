"""The sales dashboard (backoffice.reports): every figure against a fixture computed by hand.

The fixture: 16 orders over three local days (2025-03-10 .. 12, Asia/Shanghai),
both channels, every payment method, two stores, refunds, a reversal and cash
paid back; a sale at 23:30 local time (15:30 UTC, same date) and one at 07:30
(23:30 UTC the day before); and orders just outside the range on both sides,
one of them refunded inside it. The expected figures below were worked out on
paper from the table in ``build_sales_fixture``, not by running the code.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import translation

from backoffice.reports import charts, queries
from backoffice.reports.queries import ClerkCash, FunnelLoss, FunnelStage, SalesRow, StoreCash
from billing.models import LedgerEntry, LedgerKind, Provider
from channels_crm.models import Clerk, Store
from ipvas.actors import ActorKind
from ipvas.money import fen_to_yuan
from orders.constants import Channel, OrderStatus, PaymentMethod, ProductKind
from orders.models import Order, OrderEvent, Product
from tests.factories import OrderFactory, ProductFactory

pytestmark = pytest.mark.django_db

EN = {"HTTP_ACCEPT_LANGUAGE": "en"}
LOCAL = ZoneInfo("Asia/Shanghai")
S = OrderStatus
M = PaymentMethod

D0, D1, D2, D3, D4 = (date(2025, 3, 9) + timedelta(days=n) for n in range(5))
RANGE = {"start": D1.isoformat(), "end": D3.isoformat()}

# Events, as (action, from, to): the transitions of orders.models.Order.
PASS = ("precheck_passed", S.PRECHECKING, S.AWAITING_PAYMENT)
REJECT = ("reject", S.PRECHECKING, S.REJECTED)
START = ("start_payment", S.AWAITING_PAYMENT, S.PAYMENT_PENDING)
PAID = ("payment_confirmed", S.PAYMENT_PENDING, S.PROVISIONING)
DIRECT = ("payment_confirmed", S.AWAITING_PAYMENT, S.PROVISIONING)  # phone bill charged at once
DONE = ("complete", S.PROVISIONING, S.COMPLETED)
IDLE = ("expire", S.AWAITING_PAYMENT, S.EXPIRED)
UNPAID = ("expire", S.PAYMENT_PENDING, S.EXPIRED)
DECLINED = ("fail", S.PAYMENT_PENDING, S.FAILED)
NOT_PROVISIONED = ("refunded", S.PROVISIONING, S.REFUNDED)
GIVEN_BACK = ("refunded", S.COMPLETED, S.REFUNDED)

PROVIDER_OF = {
    M.WECHAT_QR: Provider.WECHATPAY,
    M.ALIPAY_QR: Provider.ALIPAY,
    M.PHONE_BILL: Provider.SMP,
    M.PHONE_BILL_SMS: Provider.SMP,
    M.CASH: Provider.CRM,
}


def at(day: date, hh: int, mm: int, ss: int = 0) -> datetime:
    return datetime.combine(day, time(hh, mm, ss), tzinfo=LOCAL)


@dataclass
class Fixture:
    products: dict[str, Product]
    orders: dict[str, Order]


def make_clerk(username: str, staff_id: str, name: str, store: Store):
    user = get_user_model().objects.create_user(username, password="unused-password-1")
    Clerk.objects.create(user=user, staff_id=staff_id, name=name, store=store, virtual_staff_id=f"V{staff_id}")
    return user


def make_order(
    *,
    channel: str,
    product: Product,
    created: datetime,
    status: str,
    method: str = "",
    failure: str = "",
    clerk=None,
    store: str = "",
    events: tuple[tuple[str, str, str], ...] = (),
) -> Order:
    with time_machine.travel(created, tick=False):
        order = OrderFactory(
            channel=channel,
            product=product,
            status=status,
            payment_method=method,
            failure_code=failure,
            clerk=clerk,
            store_code=store,
            deadline_at=None,
            origin_kind=ActorKind.CLERK if channel == Channel.CRM else ActorKind.EPG_CLIENT,
        )
    for n, (action, source, target) in enumerate(events, start=1):
        OrderEvent.objects.create(
            order=order,
            at=created + timedelta(seconds=n),
            from_status=source,
            to_status=target,
            action=action,
            actor_kind=ActorKind.SYSTEM,
        )
    return order


def money(order: Order, when: datetime, kind: str, amount_fen: int, method: str | None = None) -> LedgerEntry:
    method = method or order.payment_method
    with time_machine.travel(when, tick=False):
        return LedgerEntry.objects.create(
            order=order,
            kind=kind,
            amount_fen=amount_fen,
            method=method,
            provider=PROVIDER_OF[method],
            provider_ref=f"{order.order_no}-{kind}",
            idempotency_key=f"test:{kind}:{order.order_no}",
            actor_kind=ActorKind.SYSTEM,
        )


def build_sales_fixture(d1: date = D1) -> Fixture:
    """The hand-computed fixture; ``d1`` is its first day (the browser test moves it to this week).

    | order | channel | created (local) | product | status | method | ledger (local, fen) |
    |---|---|---|---|---|---|---|
    | E1 | epg | d1 09:00 | MON | completed | wechat | d1 09:01 +2500 |
    | E2 | epg | d1 23:30 | PV | refunded after completing | alipay | d1 23:30 +500; d3 09:00 -500 |
    | E3 | epg | d1 10:00 | MON | completed | phone bill | d1 10:00 +2500 |
    | C1 | crm S001/C001 | d1 15:00 | MON | completed | cash | d1 15:01 +2500 |
    | C2 | crm S001/C002 | d1 16:00 | YR | completed | cash | d1 16:01 +19900 |
    | C3 | crm S002/C003 | d1 17:00 | MON | completed | wechat | d1 17:01 +2500 |
    | E4 | epg | d2 07:30 (d1 23:30 UTC) | YR | completed | SMS | d2 07:31 +19900 |
    | E5 | epg | d2 12:00 | MON | rejected account_in_arrears | - | - |
    | E6 | epg | d2 13:00 | MON | expired payment_timeout (QR shown) | wechat | - |
    | E7 | epg | d2 14:00 | PV | expired payment_timeout (idle) | - | - |
    | E11 | epg | d2 18:00 | MON | refunded provisioning_failed | phone bill | d2 18:01 +2500; 18:30 -2500 reversal |
    | C4 | crm S001/C001 | d2 10:00 | MON | refunded provisioning_failed | cash | d2 10:01 +2500; 15:00 -2500 payback |
    | E8 | epg | d3 10:00 | MON | refunded provisioning_failed | wechat | d3 10:01 +2500; 10:30 -2500 |
    | E9 | epg | d3 11:00 | MON | prechecking | - | - |
    | E10 | epg | d3 11:30 | PV | failed sms_declined | SMS | - |
    | C5 | crm S002/C003 | d3 09:30 | MON | completed | phone bill | d3 09:31 +2500 |
    | X1 | epg | d0 23:59:59 | MON | refunded | wechat | d0 23:59:59 +2500; d2 09:00 -2500 |
    | X2 | epg | d4 00:00 (d3 16:00 UTC) | MON | completed | alipay | d4 00:00:30 +2500 |
    """
    d0, d2, d3, d4 = (d1 + timedelta(days=n) for n in (-1, 1, 2, 3))
    mon = ProductFactory(code="MON", name="Monthly movies", price_fen=2500)
    pv = ProductFactory(code="PV", name="Film per view", kind=ProductKind.PER_VIEW, view_hours=48, price_fen=500)
    yr = ProductFactory(code="YR", name="体育年包", kind=ProductKind.YEARLY, price_fen=19900)
    s1 = Store.objects.create(code="S001", name="东城营业厅")
    s2 = Store.objects.create(code="S002", name="西城营业厅")
    c001 = make_clerk("crm-c001", "C001", "张三", s1)
    c002 = make_clerk("crm-c002", "C002", "李四", s1)
    c003 = make_clerk("crm-c003", "C003", "王五", s2)
    epg, crm = Channel.EPG, Channel.CRM
    o: dict[str, Order] = {}

    o["E1"] = make_order(
        channel=epg, product=mon, created=at(d1, 9, 0), status=S.COMPLETED, method=M.WECHAT_QR,
        events=(PASS, START, PAID, DONE),
    )  # fmt: skip
    money(o["E1"], at(d1, 9, 1), LedgerKind.PAYMENT, 2500)
    o["E2"] = make_order(
        channel=epg, product=pv, created=at(d1, 23, 30), status=S.REFUNDED, method=M.ALIPAY_QR,
        failure="provisioning_failed", events=(PASS, START, PAID, DONE, GIVEN_BACK),
    )  # fmt: skip
    money(o["E2"], at(d1, 23, 30), LedgerKind.PAYMENT, 500)
    money(o["E2"], at(d3, 9, 0), LedgerKind.REFUND, -500)
    o["E3"] = make_order(
        channel=epg, product=mon, created=at(d1, 10, 0), status=S.COMPLETED, method=M.PHONE_BILL,
        events=(PASS, DIRECT, DONE),
    )  # fmt: skip
    money(o["E3"], at(d1, 10, 0), LedgerKind.PAYMENT, 2500)
    o["C1"] = make_order(
        channel=crm, product=mon, created=at(d1, 15, 0), status=S.COMPLETED, method=M.CASH,
        clerk=c001, store="S001", events=(PASS, START, PAID, DONE),
    )  # fmt: skip
    money(o["C1"], at(d1, 15, 1), LedgerKind.PAYMENT, 2500)
    o["C2"] = make_order(
        channel=crm, product=yr, created=at(d1, 16, 0), status=S.COMPLETED, method=M.CASH,
        clerk=c002, store="S001", events=(PASS, START, PAID, DONE),
    )  # fmt: skip
    money(o["C2"], at(d1, 16, 1), LedgerKind.PAYMENT, 19900)
    o["C3"] = make_order(
        channel=crm, product=mon, created=at(d1, 17, 0), status=S.COMPLETED, method=M.WECHAT_QR,
        clerk=c003, store="S002", events=(PASS, START, PAID, DONE),
    )  # fmt: skip
    money(o["C3"], at(d1, 17, 1), LedgerKind.PAYMENT, 2500)

    o["E4"] = make_order(
        channel=epg, product=yr, created=at(d2, 7, 30), status=S.COMPLETED, method=M.PHONE_BILL_SMS,
        events=(PASS, START, PAID, DONE),
    )  # fmt: skip
    money(o["E4"], at(d2, 7, 31), LedgerKind.PAYMENT, 19900)
    o["E5"] = make_order(
        channel=epg, product=mon, created=at(d2, 12, 0), status=S.REJECTED, failure="account_in_arrears",
        events=(REJECT,),
    )  # fmt: skip
    o["E6"] = make_order(
        channel=epg, product=mon, created=at(d2, 13, 0), status=S.EXPIRED, method=M.WECHAT_QR,
        failure="payment_timeout", events=(PASS, START, UNPAID),
    )  # fmt: skip
    o["E7"] = make_order(
        channel=epg, product=pv, created=at(d2, 14, 0), status=S.EXPIRED, failure="payment_timeout",
        events=(PASS, IDLE),
    )  # fmt: skip
    o["E11"] = make_order(
        channel=epg, product=mon, created=at(d2, 18, 0), status=S.REFUNDED, method=M.PHONE_BILL,
        failure="provisioning_failed", events=(PASS, DIRECT, NOT_PROVISIONED),
    )  # fmt: skip
    money(o["E11"], at(d2, 18, 1), LedgerKind.PAYMENT, 2500)
    money(o["E11"], at(d2, 18, 30), LedgerKind.REVERSAL, -2500)
    o["C4"] = make_order(
        channel=crm, product=mon, created=at(d2, 10, 0), status=S.REFUNDED, method=M.CASH,
        failure="provisioning_failed", clerk=c001, store="S001", events=(PASS, START, PAID, NOT_PROVISIONED),
    )  # fmt: skip
    money(o["C4"], at(d2, 10, 1), LedgerKind.PAYMENT, 2500)
    money(o["C4"], at(d2, 15, 0), LedgerKind.CASH_PAYBACK, -2500)

    o["E8"] = make_order(
        channel=epg, product=mon, created=at(d3, 10, 0), status=S.REFUNDED, method=M.WECHAT_QR,
        failure="provisioning_failed", events=(PASS, START, PAID, NOT_PROVISIONED),
    )  # fmt: skip
    money(o["E8"], at(d3, 10, 1), LedgerKind.PAYMENT, 2500)
    money(o["E8"], at(d3, 10, 30), LedgerKind.REFUND, -2500)
    o["E9"] = make_order(channel=epg, product=mon, created=at(d3, 11, 0), status=S.PRECHECKING)
    o["E10"] = make_order(
        channel=epg, product=pv, created=at(d3, 11, 30), status=S.FAILED, method=M.PHONE_BILL_SMS,
        failure="sms_declined", events=(PASS, START, DECLINED),
    )  # fmt: skip
    o["C5"] = make_order(
        channel=crm, product=mon, created=at(d3, 9, 30), status=S.COMPLETED, method=M.PHONE_BILL,
        clerk=c003, store="S002", events=(PASS, DIRECT, DONE),
    )  # fmt: skip
    money(o["C5"], at(d3, 9, 31), LedgerKind.PAYMENT, 2500)

    # Just outside the range on both sides; X1's refund falls inside it.
    o["X1"] = make_order(
        channel=epg, product=mon, created=at(d0, 23, 59, 59), status=S.REFUNDED, method=M.WECHAT_QR,
        failure="provisioning_failed", events=(PASS, START, PAID, NOT_PROVISIONED),
    )  # fmt: skip
    money(o["X1"], at(d0, 23, 59, 59), LedgerKind.PAYMENT, 2500)
    money(o["X1"], at(d2, 9, 0), LedgerKind.REFUND, -2500)
    o["X2"] = make_order(
        channel=epg, product=mon, created=at(d4, 0, 0), status=S.COMPLETED, method=M.ALIPAY_QR,
        events=(PASS, START, PAID, DONE),
    )  # fmt: skip
    money(o["X2"], at(d4, 0, 0, 30), LedgerKind.PAYMENT, 2500)
    return Fixture(products={"MON": mon, "PV": pv, "YR": yr}, orders=o)


@pytest.fixture
def sales() -> Fixture:
    return build_sales_fixture()


@pytest.fixture
def en():
    with translation.override("en"):
        yield


# --- the expected figures, worked out by hand ----------------------------------------------

BY_DAY = [
    SalesRow("2025-03-10", "2025-03-10", orders=6, completed=5, gross_fen=30400, refunds_fen=0),
    SalesRow("2025-03-11", "2025-03-11", orders=6, completed=1, gross_fen=24900, refunds_fen=-7500),
    SalesRow("2025-03-12", "2025-03-12", orders=4, completed=1, gross_fen=5000, refunds_fen=-3000),
]
BY_CHANNEL = [
    SalesRow("epg", "TV (EPG)", orders=11, completed=3, gross_fen=30400, refunds_fen=-8000),
    SalesRow("crm", "Business hall (CRM)", orders=5, completed=4, gross_fen=29900, refunds_fen=-2500),
    SalesRow("renewal", "Automatic renewal", orders=0, completed=0, gross_fen=0, refunds_fen=0),
]
BY_PRODUCT = [
    SalesRow("YR", "体育年包", orders=2, completed=2, gross_fen=39800, refunds_fen=0),
    SalesRow("MON", "Monthly movies", orders=11, completed=5, gross_fen=20000, refunds_fen=-10000),
    SalesRow("PV", "Film per view", orders=3, completed=0, gross_fen=500, refunds_fen=-500),
]
BY_METHOD = [
    SalesRow("wechat_qr", "WeChat Pay QR code", orders=4, completed=2, gross_fen=7500, refunds_fen=-5000),
    SalesRow("alipay_qr", "Alipay QR code", orders=1, completed=0, gross_fen=500, refunds_fen=-500),
    SalesRow("phone_bill", "Phone bill", orders=3, completed=2, gross_fen=7500, refunds_fen=-2500),
    SalesRow("phone_bill_sms", "Phone bill with SMS confirmation", orders=2, completed=1, gross_fen=19900),
    SalesRow("cash", "Cash", orders=3, completed=2, gross_fen=24900, refunds_fen=-2500),
    SalesRow("payment_code", "Payment code (WeChat Pay / Alipay)", orders=0, completed=0),  # every method has a row
    SalesRow("", "No method chosen", orders=3, completed=0),
]
BY_STORE = [
    SalesRow("S001", "东城营业厅", orders=3, completed=2, gross_fen=24900, refunds_fen=-2500),
    SalesRow("S002", "西城营业厅", orders=2, completed=2, gross_fen=5000, refunds_fen=0),
]
FUNNEL = [
    FunnelStage("created", "Created", 11, "100.0%", "100.0%"),
    FunnelStage("precheck_passed", "Pre-check passed", 9, "81.8%", "81.8%"),
    FunnelStage("payment_started", "Payment started", 8, "72.7%", "88.9%"),
    FunnelStage("completed", "Completed", 4, "36.4%", "50.0%"),
]
LOSSES = [  # (reached, failure code, orders): E9 under way, E5; E7; E8 and E11, E6, E10
    ("created", "", 1),
    ("created", "account_in_arrears", 1),
    ("precheck_passed", "payment_timeout", 1),
    ("payment_started", "provisioning_failed", 2),
    ("payment_started", "payment_timeout", 1),
    ("payment_started", "sms_declined", 1),
]
CASH_D1 = [
    StoreCash(
        "S001",
        "东城营业厅",
        [ClerkCash("C001", "张三", 1, 2500, 0), ClerkCash("C002", "李四", 1, 19900, 0)],
    )
]
CASH_D2 = [StoreCash("S001", "东城营业厅", [ClerkCash("C001", "张三", 1, 2500, -2500)])]


def test_the_expected_figures_agree_with_each_other():
    """The hand-computed tables are one set of books: every breakdown sums to the same totals."""
    totals = {(r.gross_fen, r.refunds_fen) for r in (queries.total_row(t, "") for t in (BY_DAY, BY_CHANNEL))}
    totals |= {(queries.total_row(BY_PRODUCT, "").gross_fen, queries.total_row(BY_PRODUCT, "").refunds_fen)}
    totals |= {(queries.total_row(BY_METHOD, "").gross_fen, queries.total_row(BY_METHOD, "").refunds_fen)}
    assert totals == {(60300, -10500)}
    assert {queries.total_row(t, "").orders for t in (BY_DAY, BY_CHANNEL, BY_PRODUCT, BY_METHOD)} == {16}
    assert queries.total_row(BY_STORE, "").net_fen == BY_CHANNEL[1].net_fen == 27400


# --- the selectors ----------------------------------------------------------------------------


def test_revenue_and_orders_per_local_day(sales, en):
    assert queries.revenue_by_day(D1, D3) == BY_DAY
    assert [r.net_fen for r in BY_DAY] == [30400, 17400, 2000]


def test_a_sale_at_2330_local_time_counts_on_its_local_day_and_0730_on_the_next(sales, en):
    (first,) = queries.revenue_by_day(D1, D1)
    (second,) = queries.revenue_by_day(D2, D2)
    assert first.gross_fen == 30400  # E2's 500 at 23:30 (15:30 UTC) is in
    assert second.gross_fen == 24900  # E4's 19900 at 07:31 (23:31 UTC the day before) is in
    assert queries.revenue_by_day(D4, D4)[0] == SalesRow("2025-03-13", "2025-03-13", 1, 1, 2500, 0)
    assert queries.revenue_by_day(D0, D0)[0] == SalesRow("2025-03-09", "2025-03-09", 1, 0, 2500, 0)


def test_days_without_sales_are_rows_of_zeros(sales, en):
    rows = queries.revenue_by_day(date(2025, 3, 1), date(2025, 3, 3))
    assert rows == [SalesRow(d, d) for d in ("2025-03-01", "2025-03-02", "2025-03-03")]


def test_revenue_per_channel(sales, en):
    assert queries.revenue_by_channel(D1, D3) == BY_CHANNEL


def test_revenue_per_product_best_first(sales, en):
    assert queries.revenue_by_product(D1, D3) == BY_PRODUCT


def test_revenue_per_payment_method(sales, en):
    assert queries.revenue_by_method(D1, D3) == BY_METHOD


def test_revenue_per_store_of_business_hall_sales(sales, en):
    assert queries.revenue_by_store(D1, D3) == BY_STORE


def test_the_epg_funnel_and_the_failure_codes_that_lose_orders(sales, en):
    funnel = queries.epg_funnel(D1, D3)
    assert funnel.stages == FUNNEL
    assert [(x.stage, x.failure_code, x.orders) for x in funnel.losses] == LOSSES
    assert funnel.losses[0] == FunnelLoss("created", "Created", "Pre-check passed", "", "Still under way", 1)
    assert funnel.losses[1].reason == "This account is in arrears; please pay the outstanding bill first."
    assert sum(x.orders for x in funnel.losses) == FUNNEL[0].orders - FUNNEL[-1].orders


def test_the_funnel_of_an_empty_range():
    funnel = queries.epg_funnel(D1, D3)
    assert [(s.orders, s.of_created) for s in funnel.stages] == [(0, "-")] * 4
    assert funnel.losses == []


def test_end_of_shift_cash_per_store_and_clerk(sales):
    assert queries.cash_totals_by_store(D1) == CASH_D1
    assert queries.cash_totals_by_store(D2) == CASH_D2
    assert queries.cash_totals_by_store(D3) == []
    (store,) = CASH_D1
    assert (store.sales, store.taken_fen, store.paid_back_fen, store.net_fen) == (2, 22400, 0, 22400)


def test_percentages_are_rounded_half_up_in_integers():
    assert queries.percent(1, 8) == "12.5%"
    assert queries.percent(1, 3) == "33.3%"
    assert queries.percent(2, 3) == "66.7%"
    assert queries.percent(1, 2000) == "0.1%"  # 0.05% rounds up
    assert queries.percent(0, 0) == "-"


# --- the dashboard page ---------------------------------------------------------------------


@pytest.fixture
def staff_client(client):
    user = get_user_model().objects.create_user("boss", password="unused-password-1", is_staff=True)
    client.force_login(user)
    return client


URL = "/admin/reports/"


def test_the_dashboard_lives_under_the_admin_site():
    assert reverse("reports:dashboard") == URL


def test_the_dashboard_renders_every_table_and_chart_for_staff(staff_client, sales):
    response = staff_client.get(URL, {**RANGE, "day": D1.isoformat()}, **EN)
    assert response.status_code == 200
    page = response.content.decode()
    assert "Sales dashboard" in page
    for key in ("revenue_by_day", "revenue_by_channel", "revenue_by_product", "revenue_by_method"):
        assert f'id="table-{key}"' in page
    for key in ("revenue_by_store", "funnel", "funnel_losses", "cash_totals"):
        assert f'id="table-{key}"' in page
    for chart in ("revenue-by-day", "orders-by-day", "revenue-by-channel", "revenue-by-product"):
        assert '<svg xmlns="http://www.w3.org/2000/svg" class="chart' in page
        assert f'id="chart-{chart}"' in page
        assert f'<title id="chart-{chart}-title">' in page
    assert 'id="chart-revenue-by-method"' in page and 'id="chart-revenue-by-store"' in page
    assert 'id="chart-funnel"' in page
    # The range's totals, and figures of the tables in yuan.
    assert "603.00" in page and "-105.00" in page and "498.00" in page
    assert "2025-03-10 · Net revenue: 304.00" in page  # a point's tooltip in the line chart
    assert "东城营业厅" in page and "张三" in page
    assert "reports/reports.css" in page
    assert "<script" not in page.split('id="content-main"')[1].split("</main>")[0]


def test_the_dashboard_is_refused_to_anyone_not_staff(client):
    assert client.get(URL).status_code == 302
    clerk = get_user_model().objects.create_user("clerk", password="unused-password-1")
    client.force_login(clerk)
    response = client.get(URL, RANGE)
    assert response.status_code == 302
    assert "login" in response["Location"]
    assert client.get(URL, {**RANGE, "export": "revenue_by_day"}).status_code == 302


def test_the_admin_index_links_to_the_dashboard(staff_client):
    page = staff_client.get("/admin/", **EN).content.decode()
    assert f'href="{URL}"' in page
    assert "Sales dashboard" in page


def test_the_range_defaults_to_the_last_30_local_days(staff_client, time_machine):
    time_machine.move_to(at(D3, 0, 30), tick=False)  # 16:30 UTC on D2: the local day is D3
    response = staff_client.get(URL, **EN)
    assert response.context["range"] == {"start": D3 - timedelta(days=29), "end": D3, "day": D3}
    assert response.context["form"]["start"].value() == "2025-02-11"


def test_an_impossible_range_is_explained_and_the_default_shown(staff_client, time_machine):
    time_machine.move_to(at(D3, 12, 0), tick=False)
    response = staff_client.get(URL, {"start": "2025-03-12", "end": "2025-03-10"}, **EN)
    assert response.status_code == 200
    assert "The range must end on or after its first day." in response.content.decode()
    assert response.context["range"]["end"] == D3
    response = staff_client.get(URL, {"start": "2023-01-01", "end": "2025-03-10"}, **EN)
    assert "Choose at most 366 days." in response.content.decode()
    response = staff_client.get(URL, {"start": "not a date"}, **EN)
    assert response.status_code == 200


def test_the_shift_day_defaults_to_the_last_day_of_the_range(staff_client, sales):
    response = staff_client.get(URL, {"start": D1.isoformat(), "end": D2.isoformat()}, **EN)
    assert response.context["range"]["day"] == D2
    response = staff_client.get(URL, {**RANGE, "day": D1.isoformat()}, **EN)
    assert response.context["range"]["day"] == D1


def _add_orders(count: int) -> None:
    """``count`` more orders with money, spread over products, channels, methods, stores and days."""
    products = [ProductFactory(code=f"Q{n}", price_fen=100 * (n + 1)) for n in range(4)]
    stores = [Store.objects.get_or_create(code=f"Q{n}")[0] for n in range(3)]
    clerks = [
        Clerk.objects.filter(staff_id=f"Q{n}").first() or make_clerk(f"q{n}", f"Q{n}", f"Q{n}", stores[n])
        for n in range(3)
    ]
    methods = list(PaymentMethod)
    for n in range(count):
        crm = n % 2 == 0
        order = make_order(
            channel=Channel.CRM if crm else Channel.EPG,
            product=products[n % 4],
            created=at(D1 + timedelta(days=n % 3), 8 + n % 12, n % 60),
            status=S.COMPLETED,
            method=methods[n % 5],
            clerk=getattr(clerks[n % 3], "user", clerks[n % 3]) if crm else None,
            store=stores[n % 3].code if crm else "",
            events=(PASS, START, PAID, DONE),
        )
        money(order, at(D1 + timedelta(days=n % 3), 20, n % 60), LedgerKind.PAYMENT, order.amount_fen)


def _dashboard_queries(client) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(URL, {**RANGE, "day": D1.isoformat()}, **EN)
    assert response.status_code == 200
    return len(captured.captured_queries)


def test_the_dashboard_makes_as_many_queries_for_100_orders_as_for_10(staff_client, django_assert_max_num_queries):
    _add_orders(10)
    with_10 = _dashboard_queries(staff_client)
    _add_orders(90)
    assert Order.objects.count() == 100
    with django_assert_max_num_queries(with_10):
        response = staff_client.get(URL, {**RANGE, "day": D1.isoformat()}, **EN)
    assert response.status_code == 200
    assert with_10 <= 19  # 13 for the sales figures (the four breakdowns in two), 6 for the subscription figures


# --- CSV export ------------------------------------------------------------------------------


def export(client, table: str, **params: str) -> tuple[bytes, list[list[str]], object]:
    response = client.get(URL, {**RANGE, **params, "export": table}, **EN)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    body = b"".join(response.streaming_content)
    assert body.startswith(b"\xef\xbb\xbf")  # the BOM, so that Excel reads UTF-8
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    return body, rows, response


SALES_HEADER = ["Orders", "Completed orders", "Payments (yuan)", "Refunds (yuan)", "Net revenue (yuan)"]


def sales_cells(row: SalesRow) -> list[str]:
    return [
        str(row.orders),
        str(row.completed),
        fen_to_yuan(row.gross_fen),
        fen_to_yuan(row.refunds_fen),
        fen_to_yuan(row.net_fen),
    ]


def test_csv_of_revenue_per_day_written_out_by_hand(staff_client, sales):
    body, rows, response = export(staff_client, "revenue_by_day")
    assert response["Content-Disposition"] == 'attachment; filename="ipvas-revenue_by_day-2025-03-10-2025-03-12.csv"'
    assert rows == [
        ["Day", *SALES_HEADER],
        ["2025-03-10", "6", "5", "304.00", "0.00", "304.00"],
        ["2025-03-11", "6", "1", "249.00", "-75.00", "174.00"],
        ["2025-03-12", "4", "1", "50.00", "-30.00", "20.00"],
    ]
    assert body.endswith(b"\r\n")


@pytest.mark.parametrize(
    ("table", "first", "expected"),
    [
        ("revenue_by_channel", ["Channel"], [[r.label, *sales_cells(r)] for r in BY_CHANNEL]),
        ("revenue_by_product", ["Product code", "Product"], [[r.key, r.label, *sales_cells(r)] for r in BY_PRODUCT]),
        ("revenue_by_method", ["Payment method"], [[r.label, *sales_cells(r)] for r in BY_METHOD]),
        ("revenue_by_store", ["Store code", "Store"], [[r.key, r.label, *sales_cells(r)] for r in BY_STORE]),
    ],
)
def test_csv_of_each_sales_table(staff_client, sales, table, first, expected):
    _, rows, _ = export(staff_client, table)
    assert rows == [[*first, *SALES_HEADER], *expected]


def test_csv_keeps_chinese_names_readable(staff_client, sales):
    body, _, _ = export(staff_client, "revenue_by_store")
    assert "东城营业厅".encode() in body


def test_csv_of_the_funnel(staff_client, sales):
    _, rows, _ = export(staff_client, "funnel")
    assert rows == [
        ["Stage", "Orders", "Of created", "Of the previous stage"],
        ["Created", "11", "100.0%", "100.0%"],
        ["Pre-check passed", "9", "81.8%", "81.8%"],
        ["Payment started", "8", "72.7%", "88.9%"],
        ["Completed", "4", "36.4%", "50.0%"],
    ]


def test_csv_of_the_funnel_losses(staff_client, sales):
    _, rows, _ = export(staff_client, "funnel_losses")
    timeout = "The order was not paid in time."
    not_activated = "The product could not be activated; any money taken is returned."
    assert rows == [
        ["Reached", "Did not reach", "Failure code", "Reason", "Orders"],
        ["Created", "Pre-check passed", "", "Still under way", "1"],
        [
            "Created",
            "Pre-check passed",
            "account_in_arrears",
            "This account is in arrears; please pay the outstanding bill first.",
            "1",
        ],
        ["Pre-check passed", "Payment started", "payment_timeout", timeout, "1"],
        ["Payment started", "Completed", "provisioning_failed", not_activated, "2"],
        ["Payment started", "Completed", "payment_timeout", timeout, "1"],
        ["Payment started", "Completed", "sms_declined", "The order was declined by SMS reply.", "1"],
    ]


def test_csv_of_the_cash_totals_of_a_shift(staff_client, sales):
    header = [
        "Store code",
        "Store",
        "Clerk",
        "Clerk name",
        "Cash sales",
        "Cash taken (yuan)",
        "Cash paid back (yuan)",
        "Cash to hand over (yuan)",
    ]
    _, rows, response = export(staff_client, "cash_totals", day=D1.isoformat())
    assert response["Content-Disposition"] == 'attachment; filename="ipvas-cash_totals-2025-03-10.csv"'
    assert rows == [
        header,
        ["S001", "东城营业厅", "C001", "张三", "1", "25.00", "0.00", "25.00"],
        ["S001", "东城营业厅", "C002", "李四", "1", "199.00", "0.00", "199.00"],
        ["S001", "东城营业厅", "Store total", "", "2", "224.00", "0.00", "224.00"],
    ]
    _, rows, _ = export(staff_client, "cash_totals", day=D2.isoformat())
    assert rows == [
        header,
        ["S001", "东城营业厅", "C001", "张三", "1", "25.00", "-25.00", "0.00"],
        ["S001", "东城营业厅", "Store total", "", "1", "25.00", "-25.00", "0.00"],
    ]
    _, rows, _ = export(staff_client, "cash_totals", day=D3.isoformat())
    assert rows == [header]


def test_each_table_on_the_page_links_to_its_csv(staff_client):
    page = staff_client.get(URL, RANGE, **EN).content.decode()
    for table in ("revenue_by_day", "revenue_by_store", "funnel", "funnel_losses", "cash_totals"):
        assert f"export={table}" in page


def test_an_unknown_table_is_404_and_a_bad_range_400(staff_client):
    assert staff_client.get(URL, {**RANGE, "export": "salaries"}).status_code == 404
    response = staff_client.get(URL, {"start": "2025-03-12", "end": "2025-03-10", "export": "funnel"})
    assert response.status_code == 400


# --- the charts ---------------------------------------------------------------------------------


def test_nice_steps_and_scales_are_integers():
    assert [charts.nice_step(s) for s in (0, 1, 5, 6, 11, 30400, 99999)] == [1, 1, 1, 2, 5, 10000, 20000]
    scale = charts.make_scale([30400, 17400, -2500], 200, 0, money=True)
    assert (scale.low, scale.high, scale.step) == (-10000, 40000, 10000)
    assert scale.ticks == [-10000, 0, 10000, 20000, 30000, 40000]
    assert charts.format_tick(20000, scale, money=True) == "200"
    assert charts.format_tick(250, charts.make_scale([300], 0, 1, money=True), money=True) == "2.50"
    assert charts.make_scale([], 0, 1, money=False).ticks == [0, 1, 2, 3, 4, 5]


def test_a_line_chart_is_accessible_svg_labelled_in_yuan():
    with translation.override("en"):
        svg = _revenue_chart()
    with translation.override("zh-hans"):
        assert ">元</text>" in _revenue_chart()
    assert svg.startswith('<svg xmlns="http://www.w3.org/2000/svg" class="chart chart-line" id="c1"')
    assert 'role="img" aria-labelledby="c1-title c1-desc"' in svg
    assert '<title id="c1-title">Revenue &lt;per&gt; day</title>' in svg
    assert "2025-03-11 · Net: -2.50" in svg
    assert ">yuan</text>" in svg
    assert "<script" not in svg


def _revenue_chart() -> str:
    return charts.line_chart(
        chart_id="c1",
        title="Revenue <per> day",
        labels=["2025-03-10", "2025-03-11"],
        series=[charts.Series("Net", [30400, -250])],
    )


def test_a_single_day_and_an_empty_bar_chart_still_draw():
    assert "<circle" in charts.line_chart(chart_id="c", title="t", labels=["d"], series=[charts.Series("s", [0])])
    svg = charts.bar_chart(chart_id="b", title="t", labels=[], series=[charts.Series("s", [])])
    assert svg.endswith("</svg>")
    name = "a product with a name far too long for the label area"
    svg = charts.hbar_chart(chart_id="h", title="t", labels=[name], values=[-500])
    assert "a product with a name…" in svg and f"<title>{name}</title>" in svg and "-5.00" in svg
    assert charts.shorten("体育年包体育年包体育年包体育年包") == "体育年包体育年包体育年包体…"


def test_the_dashboard_speaks_chinese_by_default(staff_client, sales):
    response = staff_client.get(URL, RANGE)
    assert response.status_code == 200
    page = response.content.decode()
    assert 'lang="zh-hans"' in page
    assert "电视（EPG）" in page  # the channel's label, translated already
    response = staff_client.get(URL, {**RANGE, "export": "revenue_by_channel"})
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    assert rows[1] == ["电视（EPG）", "11", "3", "304.00", "-80.00", "224.00"]
