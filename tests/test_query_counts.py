"""List endpoints and admin pages make as many queries for 50 rows as for 5.

Each row hangs on its own order of its own product, so that a relation read
row by row (an N+1) shows as a count that grows with the rows.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import timedelta
from itertools import count

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from billing.models import LedgerEntry, Payment, PaymentNotification, Refund, SmsConfirmation, SmsInbound, WorkItem
from billing.models.payments import PaymentStatus, Provider
from billing.models.work import WorkItemKind
from ipvas.actors import ActorKind
from orders.constants import OrderStatus, PaymentMethod
from orders.models import Entitlement, Order, OrderEvent
from tests.epg_api.support import Api, new_api_key
from tests.factories import OrderFactory, ProductFactory

pytestmark = pytest.mark.django_db
_serial = count()


def new_order(**fields: object) -> Order:
    return OrderFactory(product=ProductFactory(), status=OrderStatus.COMPLETED, deadline_at=None, **fields)


def new_payment(order: Order | None = None) -> Payment:
    order = order or new_order()
    return Payment.objects.create(
        order=order,
        method=PaymentMethod.WECHAT_QR,
        provider=Provider.WECHATPAY,
        out_trade_no=f"{order.order_no}P{next(_serial)}",
        amount_fen=order.amount_fen,
        status=PaymentStatus.PAID,
        paid_at=timezone.now(),
    )


def new_entitlement(order: Order | None = None, tv_account: str = "tv1001") -> Entitlement:
    order = order or new_order(tv_account=tv_account)
    start = timezone.now() - timedelta(days=1) + timedelta(seconds=next(_serial))
    return Entitlement.objects.create(
        order=order,
        tv_account=order.tv_account,
        product=order.product,
        product_code=order.product.code,
        kind=order.product.kind,
        starts_at=start,
        ends_at=start + timedelta(days=30),
    )


def new_ledger_entry() -> LedgerEntry:
    payment = new_payment()
    return LedgerEntry.objects.create(
        order=payment.order,
        payment=payment,
        kind="payment",
        amount_fen=payment.amount_fen,
        method=payment.method,
        provider=payment.provider,
        provider_ref=payment.out_trade_no,
        idempotency_key=f"test:payment:{payment.out_trade_no}",
        actor_kind=ActorKind.PROVIDER,
        actor_id="wechatpay",
    )


def new_refund() -> Refund:
    payment = new_payment()
    return Refund.objects.create(
        order=payment.order,
        payment=payment,
        provider=payment.provider,
        out_refund_no=f"RF{next(_serial)}",
        amount_fen=payment.amount_fen,
        reason="test",
        requested_by_kind=ActorKind.ADMIN,
    )


def new_work_item() -> WorkItem:
    return WorkItem.objects.create(order=new_order(), kind=WorkItemKind.REFUND_FAILED, detail="test")


def new_notification() -> PaymentNotification:
    payment = new_payment()
    return PaymentNotification.objects.create(
        provider=payment.provider,
        notification_id=f"EV{next(_serial)}",
        out_trade_no=payment.out_trade_no,
        payment=payment,
        body="{}",
        outcome="confirmed",
    )


def new_sms_confirmation() -> SmsConfirmation:
    # One pending confirmation per number at most (a constraint): these have been answered.
    return SmsConfirmation.objects.create(
        order=new_order(), phone="13800000001", text="Reply Y", expires_at=timezone.now(), status="confirmed"
    )


def new_sms_reply() -> SmsInbound:
    n = next(_serial)
    return SmsInbound.objects.create(
        digest=f"{n:064d}",
        sender="13800000001",
        text="Y",
        received_at=timezone.now(),
        confirmation=new_sms_confirmation(),
        outcome="confirmed",
    )


def queries(client: Client, path: str, **headers: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(path, **headers)
    assert response.status_code == 200, (path, response.status_code, response.content[:300])
    return len(captured.captured_queries)


def assert_constant(measure: Callable[[], int], add: Callable[[], object], *, first: int = 5, then: int = 50) -> None:
    for _ in range(first):
        add()
    measure()  # warm-up: what is read once per process (content types, sessions) is not the rows' cost
    few = measure()
    for _ in range(then - first):
        add()
    many = measure()
    assert many == few, f"{few} queries for {first} rows, {many} for {then}"


@pytest.fixture
def staff(django_user_model) -> Client:
    client = Client()
    client.force_login(django_user_model.objects.create_superuser("counter", "counter@example.com", "pw"))
    return client


ADMIN_PAGES = {
    "/admin/orders/order/": new_order,
    "/admin/orders/entitlement/": new_entitlement,
    "/admin/orders/product/": ProductFactory,
    "/admin/billing/payment/": new_payment,
    "/admin/billing/paymentnotification/": new_notification,
    "/admin/billing/ledgerentry/": new_ledger_entry,
    "/admin/billing/refund/": new_refund,
    "/admin/billing/workitem/": new_work_item,
    "/admin/billing/smsconfirmation/": new_sms_confirmation,
    "/admin/billing/smsinbound/": new_sms_reply,
}


@pytest.mark.parametrize("path", list(ADMIN_PAGES))
def test_admin_changelists(staff, path):
    assert_constant(lambda: queries(staff, path), ADMIN_PAGES[path])


def test_admin_changelist_of_orders_filtered_by_status(staff):
    assert_constant(lambda: queries(staff, "/admin/orders/order/?status__exact=completed"), new_order)


def test_admin_order_page_with_its_history_payments_and_entitlement(staff):
    order = new_order()
    new_entitlement(order)
    serial = count()

    def more_history() -> None:
        n = next(serial)
        OrderEvent.objects.create(
            order=order, at=timezone.now(), action=f"retry{n}", actor_kind=ActorKind.SYSTEM, from_status="completed"
        )
        payment = new_payment(order)
        LedgerEntry.objects.create(
            order=order,
            payment=payment,
            kind="payment",
            amount_fen=1,
            method=payment.method,
            provider=payment.provider,
            provider_ref=payment.out_trade_no,
            idempotency_key=f"test:history:{payment.out_trade_no}",
            actor_kind=ActorKind.SYSTEM,
        )

    assert_constant(lambda: queries(staff, f"/admin/orders/order/{order.pk}/change/"), more_history)


@pytest.fixture
def vendor(db) -> Api:
    call_command("seed_demo", stdout=io.StringIO())
    return Api(new_api_key("query counter"))


def test_epg_products(vendor):
    vendor.products()  # the key is verified and remembered

    assert_constant(lambda: queries(vendor.client, "/api/epg/v1/products/", **vendor._meta({})), ProductFactory)


def test_epg_entitlements_from_the_database(vendor, settings):
    settings.ENTITLEMENT_CACHE_SECONDS = 0  # every answer from the database: the cost that grows, if any
    vendor.entitlements(tv_account="tv1001")
    path = "/api/epg/v1/entitlements/?tv_account=tv1001"

    assert_constant(lambda: queries(vendor.client, path, **vendor._meta({})), new_entitlement)
    assert len(vendor.entitlements(tv_account="tv1001").json()["entitlements"]) == 50
