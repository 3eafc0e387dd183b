"""Django admin: admins configure products; orders are shown, never edited (docs/domain.md, Products)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from ipvas.actors import Actor, ActorKind
from lifecycle.placing import order_create
from lifecycle.transitions import lock_order, transit
from orders.constants import Channel, FailureCode, OrderStatus, PaymentMethod, ProductKind
from orders.models import Order, Product
from tests.factories import OrderFactory

pytestmark = pytest.mark.django_db

EN = {"HTTP_ACCEPT_LANGUAGE": "en"}
EPG = Actor(ActorKind.EPG_CLIENT, "admin-products")
ALL_METHODS = [m.value for m in PaymentMethod]


@pytest.fixture
def superuser_client(client):
    admin = get_user_model().objects.create_superuser("root", email="", password="unused-password-1")
    client.force_login(admin)
    return client


def product_form(**overrides: Any) -> dict[str, Any]:
    """The add form as an admin fills it in; lists are the check boxes ticked."""
    data: dict[str, Any] = {
        "code": "VIP-WEEKEND",
        "name": "Weekend pass",
        "description": "",
        "kind": ProductKind.MONTHLY,
        "is_active": "on",
        "price_fen": "2500",
        "view_hours": "",
        "smp_product_code": "SMP-VIP-WEEKEND",
        "smp_zero_price_package_code": "SMP-VIP-WEEKEND-0",
        "crm_activity_code": "MKT-VIP-WEEKEND",
        "channels": [Channel.EPG, Channel.CRM],
        "payment_methods": ALL_METHODS,
        "on_sale_from_0": "",
        "on_sale_from_1": "",
        "on_sale_until_0": "",
        "on_sale_until_1": "",
        # Asked for by the admin history of product changes (ignored where there is none).
        "change_reason": "new product for the weekend campaign",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def add_product(client, **overrides: Any):
    return client.post(reverse("admin:orders_product_add"), product_form(**overrides), **EN)


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        (
            {"kind": ProductKind.PER_VIEW, "view_hours": ""},
            "view_hours",
            "A per-view product needs its viewing hours (for example 48).",
        ),
        ({"view_hours": "48"}, "view_hours", "Only per-view products have viewing hours; leave this empty."),
        ({"price_fen": "-1"}, "price_fen", "The price cannot be negative."),
        (
            {
                "on_sale_from_0": "2026-12-01",
                "on_sale_from_1": "00:00:00",
                "on_sale_until_0": "2026-11-01",
                "on_sale_until_1": "00:00:00",
            },
            "on_sale_until",
            "The on-sale window must end after it starts.",
        ),
        ({"code": "VIP-MONTH"}, "code", "Product with this Code already exists."),
        (
            {"channels": [Channel.EPG], "payment_methods": [PaymentMethod.CASH, PaymentMethod.WECHAT_QR]},
            "payment_methods",
            "Cash is only taken in business halls: add the CRM channel.",
        ),
        ({"crm_activity_code": ""}, "crm_activity_code", "Cash sales need the CRM marketing-activity code."),
        (
            {"smp_zero_price_package_code": ""},
            "smp_zero_price_package_code",
            "WeChat Pay and Alipay need the SMP zero-price package code.",
        ),
        ({"channels": []}, "channels", "This field is required."),
        ({"code": "has space"}, "code", "Use 1-32 letters, digits"),
        ({"code": "vip-month"}, "code", "VIP-MONTH is a product already"),
        ({"price_fen": "99999999999"}, "price_fen", "At most 10000000 fen (100000.00 yuan)."),
        (
            {"price_fen": "0"},
            "price_fen",
            "WeChat Pay and Alipay take no payment of 0: choose only the phone bill or cash for a free product.",
        ),
        (
            {"kind": ProductKind.PER_VIEW, "view_hours": "32767", "payment_methods": [PaymentMethod.PHONE_BILL]},
            "view_hours",
            "At most 720 hours (30 days).",
        ),
    ],
    ids=[
        "per_view-without-hours",
        "hours-on-monthly",
        "negative-price",
        "window-ends-before-it-starts",
        "duplicate-code",
        "cash-without-crm",
        "cash-without-activity-code",
        "qr-without-zero-price-package",
        "no-channel",
        "bad-code",
        "code-differing-only-in-case",
        "price-beyond-reason",
        "free-by-a-payment-provider",
        "hours-beyond-reason",
    ],
)
def test_the_product_form_refuses_with_a_clear_field_message(superuser_client, demo, overrides, field, message):
    before = set(Product.objects.values_list("code", flat=True))

    response = add_product(superuser_client, **overrides)

    assert response.status_code == 200  # the form again, not a redirect
    errors = response.context["adminform"].form.errors
    assert field in errors, errors
    assert any(message in str(e) for e in errors[field]), errors[field]
    assert message in response.content.decode()
    assert set(Product.objects.values_list("code", flat=True)) == before


@pytest.mark.parametrize(("field", "value"), [("code", "VIP-Q3"), ("kind", ProductKind.YEARLY)])
def test_a_sold_products_code_and_kind_cannot_change(superuser_client, demo, run_tasks, field, value):
    """Entitlements keep the product's code (the EPG asks by it) and periods its kind: changed after a sale,
    the customers' paid periods would answer "not entitled" under the new code."""
    order_create(channel=Channel.EPG, product_code="VIP-QUARTER", tv_account="tv1001", actor=EPG)
    product = Product.objects.get(code="VIP-QUARTER")
    form = product_form(**{
        "code": product.code, "name": product.name, "kind": product.kind, "price_fen": str(product.price_fen),
        "smp_product_code": product.smp_product_code, "crm_activity_code": product.crm_activity_code,
        "smp_zero_price_package_code": product.smp_zero_price_package_code, "channels": product.channels,
        "payment_methods": product.payment_methods, field: value,
    })  # fmt: skip

    response = superuser_client.post(reverse("admin:orders_product_change", args=[product.pk]), form, **EN)

    assert response.status_code == 200, "saved"
    errors = response.context["adminform"].form.errors
    assert "has been sold: make a new product" in str(errors[field]), errors
    product.refresh_from_db()
    assert (product.code, product.kind) == ("VIP-QUARTER", ProductKind.QUARTERLY)


def test_a_pair_of_codes_made_before_the_case_rule_can_still_be_taken_off_sale(superuser_client, demo):
    """Two codes that differ only in case, made before the rule (the database's unique index is by case):
    the one to retire is still saved, unticked; only a new code is held to the rule."""
    month = demo["VIP-MONTH"]
    twin = Product.objects.create(
        code="vip-month", name="Month (old)", kind=month.kind, price_fen=month.price_fen, channels=[Channel.EPG],
        payment_methods=[PaymentMethod.PHONE_BILL], smp_product_code="SMP-OLD",
    )  # fmt: skip
    form = product_form(
        code="vip-month", name="Month (old)", price_fen=str(month.price_fen), channels=[Channel.EPG],
        payment_methods=[PaymentMethod.PHONE_BILL], is_active=None, change_reason="retired: a twin of VIP-MONTH",
    )  # fmt: skip

    response = superuser_client.post(reverse("admin:orders_product_change", args=[twin.pk]), form, **EN)

    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    assert Product.objects.get(pk=twin.pk).is_active is False


def test_an_unsold_products_code_may_be_corrected(superuser_client):
    add_product(superuser_client)
    product = Product.objects.get(code="VIP-WEEKEND")

    response = superuser_client.post(
        reverse("admin:orders_product_change", args=[product.pk]), product_form(code="VIP-WEEKENDS"), **EN
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    assert Product.objects.filter(pk=product.pk, code="VIP-WEEKENDS").exists()


def test_a_valid_product_is_saved_and_its_price_shown_in_yuan(superuser_client):
    response = add_product(superuser_client)

    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    product = Product.objects.get(code="VIP-WEEKEND")
    assert (product.kind, product.price_fen, product.view_hours) == (ProductKind.MONTHLY, 2500, None)
    assert product.channels == [Channel.EPG, Channel.CRM]
    assert product.payment_methods == ALL_METHODS

    page = superuser_client.get(reverse("admin:orders_product_change", args=[product.pk]), **EN)
    assert page.status_code == 200
    assert "¥25.00" in page.content.decode()


def test_a_per_view_product_with_its_hours_and_only_phone_bill_is_accepted(superuser_client):
    response = add_product(
        superuser_client,
        code="PPV-CONCERT",
        kind=ProductKind.PER_VIEW,
        view_hours="48",
        price_fen="800",
        smp_zero_price_package_code="",
        crm_activity_code="",
        payment_methods=[PaymentMethod.PHONE_BILL, PaymentMethod.PHONE_BILL_SMS],
        on_sale_from_0="2026-11-01",
        on_sale_from_1="00:00:00",
        on_sale_until_0="2026-12-01",
        on_sale_until_1="00:00:00",
    )
    assert response.status_code == 302
    product = Product.objects.get(code="PPV-CONCERT")
    assert (product.view_hours, product.price_yuan) == (48, "8.00")
    assert product.on_sale_until - product.on_sale_from == timedelta(days=30)


# --- orders: read-only -----------------------------------------------------------------


@pytest.fixture
def orders(demo, time_machine) -> dict[str, Order]:
    time_machine.move_to("2026-11-25 12:00:00+08:00", tick=False)
    made = {
        "completed": OrderFactory(
            product=demo["VIP-MONTH"],
            status=OrderStatus.COMPLETED,
            payment_method=PaymentMethod.WECHAT_QR,
            deadline_at=None,
        ),
        "failed_crm": OrderFactory(
            product=demo["VIP-YEAR"],
            channel=Channel.CRM,
            status=OrderStatus.FAILED,
            payment_method=PaymentMethod.CASH,
            failure_code=FailureCode.CRM_ACTIVITY_FAILED,
            deadline_at=None,
        ),
        "awaiting_old": OrderFactory(product=demo["PPV-MOVIE"], content_id="m42"),
    }
    # created_at is set on insert; move one order back three days the way the database sees it.
    Order.objects.filter(pk=made["awaiting_old"].pk).update(created_at=timezone.now() - timedelta(days=3))
    return made


def listed(response) -> set[str]:
    return {o.order_no for o in response.context["cl"].result_list}


def test_the_order_list_renders_with_each_filter(superuser_client, orders):
    url = reverse("admin:orders_order_changelist")
    everything = superuser_client.get(url, **EN)
    assert everything.status_code == 200
    assert listed(everything) == {o.order_no for o in orders.values()}

    midnight = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    cases: list[tuple[dict[str, Any], set[str]]] = [
        ({"status__exact": "completed"}, {"completed"}),
        ({"status__exact": "awaiting_payment"}, {"awaiting_old"}),
        ({"channel__exact": "crm"}, {"failed_crm"}),
        ({"product__id__exact": orders["awaiting_old"].product_id}, {"awaiting_old"}),
        ({"payment_method__exact": "cash"}, {"failed_crm"}),
        ({"failure_code__exact": "crm_activity_failed"}, {"failed_crm"}),
        # "Today" and "Past 7 days" of the created_at filter, as its own links put them.
        (
            {"created_at__gte": str(midnight), "created_at__lt": str(midnight + timedelta(days=1))},
            {"completed", "failed_crm"},
        ),
        (
            {"created_at__gte": str(midnight - timedelta(days=7)), "created_at__lt": str(midnight + timedelta(days=1))},
            {"completed", "failed_crm", "awaiting_old"},
        ),
        ({"created_at__year": "2026", "created_at__month": "11", "created_at__day": "22"}, {"awaiting_old"}),
        ({"q": orders["completed"].order_no}, {"completed"}),
        ({"q": "tv1001"}, {"completed", "failed_crm", "awaiting_old"}),
        # A mobile number as people write it is the number the orders keep.
        ({"q": "138 0000 0001"}, {"completed", "failed_crm", "awaiting_old"}),
        ({"q": "+86 138-0000-0001"}, {"completed", "failed_crm", "awaiting_old"}),
        ({"q": "139 0000 0001"}, set()),
    ]
    for query, names in cases:
        response = superuser_client.get(url, query, **EN)
        assert response.status_code == 200, query
        # The admin answers an unknown filter with a redirect to ?e=1; these must all be known.
        assert listed(response) == {orders[n].order_no for n in names}, query


def test_the_order_page_shows_its_transition_history(superuser_client, demo, run_tasks):
    order = order_create(
        channel="epg", product_code="VIP-MONTH", tv_account="tv1001", actor=Actor(ActorKind.EPG_CLIENT, "vendor-a")
    )
    run_tasks()
    with transaction.atomic():
        locked = lock_order(order.pk)
        transit(locked, locked.cancel, actor=Actor(ActorKind.ADMIN, "ops-anna"), reason="changed mind")

    page = superuser_client.get(reverse("admin:orders_order_change", args=[order.pk]), **EN)

    assert page.status_code == 200
    html = page.content.decode()
    assert "transition history" in html.lower()
    assert "¥25.00" in html and "2500" not in html  # the amount in yuan, as everywhere else in admin
    # Every row, in the order it happened: who did what, from which status to which, and why.
    marks = ["vendor-a", "Pre-check passed", "ops-anna", "changed mind"]
    positions = [html.find(mark) for mark in marks]
    assert -1 not in positions, dict(zip(marks, positions, strict=True))
    assert positions == sorted(positions)
    assert "138****0001" in superuser_client.get(reverse("admin:orders_order_changelist"), **EN).content.decode()


def test_orders_cannot_be_added_changed_or_deleted_from_admin(superuser_client, orders):
    order = orders["completed"]
    row = Order.objects.filter(pk=order.pk).values().get()

    assert superuser_client.get(reverse("admin:orders_order_add"), **EN).status_code == 403
    assert superuser_client.post(reverse("admin:orders_order_add"), {"order_no": "X"}, **EN).status_code == 403
    change = superuser_client.post(
        reverse("admin:orders_order_change", args=[order.pk]), {"amount_fen": "1", "tv_account": "evil"}, **EN
    )
    assert change.status_code == 403
    assert superuser_client.get(reverse("admin:orders_order_delete", args=[order.pk]), **EN).status_code == 403
    assert (
        superuser_client.post(reverse("admin:orders_order_delete", args=[order.pk]), {"post": "yes"}, **EN).status_code
        == 403
    )
    superuser_client.post(
        reverse("admin:orders_order_changelist"),
        {"action": "delete_selected", "_selected_action": [o.pk for o in orders.values()], "post": "yes"},
        **EN,
    )

    assert Order.objects.count() == len(orders)
    assert Order.objects.filter(pk=order.pk).values().get() == row


def test_a_non_staff_user_is_sent_away_from_admin(client, db):
    anonymous = client.get("/admin/", follow=True, **EN)
    assert anonymous.redirect_chain[-1] == ("/accounts/login/?next=%2Fadmin%2F", 302)
    assert anonymous.status_code == 200

    someone = get_user_model().objects.create_user("someone", password="unused-password-1")
    client.force_login(someone)
    for path in ("/admin/", reverse("admin:orders_order_changelist"), reverse("admin:orders_product_add")):
        response = client.get(path, follow=True, **EN)
        # Sent to the admin's sign-in, which refuses a signed-in user who is not staff.
        assert response.redirect_chain == [(f"/admin/login/?next={path}", 302)], path
        assert response.status_code == 403, path
    assert client.post(reverse("admin:orders_product_add"), product_form(), **EN).status_code == 302
    assert not Product.objects.filter(code="VIP-WEEKEND").exists()


def test_the_order_list_query_count_does_not_grow_with_the_orders(
    superuser_client, demo, django_assert_max_num_queries
):
    url = reverse("admin:orders_order_changelist")
    products = list(demo.values())

    def make(n: int) -> None:
        for i in range(n):
            OrderFactory(
                product=products[i % len(products)],
                status=OrderStatus.COMPLETED,
                payment_method=PaymentMethod.PHONE_BILL,
                deadline_at=None,
            )

    make(3)
    with CaptureQueriesContext(connection) as few:
        assert superuser_client.get(url, **EN).status_code == 200
    make(27)
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = superuser_client.get(url, **EN)
    assert len(response.context["cl"].result_list) == 30
