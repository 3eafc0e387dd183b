"""``manage.py seed_demo``: the demo data of docs/interfaces.md §7, idempotent."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from orders.constants import Channel, PaymentMethod
from orders.models import Product
from sandbox.models import SimSmpAccount, SimSmpProduct
from tests.support import made_once

pytestmark = pytest.mark.django_db

EPG_METHODS = ["wechat_qr", "alipay_qr", "phone_bill", "phone_bill_sms"]
CRM_METHODS = ["cash", "phone_bill", "wechat_qr", "alipay_qr", "payment_code"]  # §10: payment codes at the counter


def seed() -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def table(model) -> list[dict]:
    return list(model.objects.order_by("pk").values())


def test_a_second_run_creates_nothing_and_changes_no_row():
    first = seed()
    assert "0 object(s) created" not in first
    before = {model: table(model) for model in (Product, SimSmpAccount, SimSmpProduct, get_user_model())}

    second = seed()

    assert "seed_demo: 0 object(s) created (all present already)" in second
    for model, rows in before.items():
        assert table(model) == rows, model.__name__


def test_a_run_leaves_what_an_admin_changed():
    seed()
    Product.objects.filter(code="VIP-MONTH").update(price_fen=1990, is_active=False)
    SimSmpAccount.objects.filter(tv_account="tv1002").update(balance_fen=5)
    seed()
    assert Product.objects.filter(code="VIP-MONTH").values_list("price_fen", "is_active").get() == (1990, False)
    assert SimSmpAccount.objects.get(tv_account="tv1002").balance_fen == 5


def test_the_products_are_those_of_the_contract():
    seed()
    products = {p.code: (p.kind, p.price_fen, p.view_hours, p.period_months) for p in Product.objects.all()}
    assert products == {
        "PPV-MOVIE": ("per_view", 500, 48, None),
        "VIP-MONTH": ("monthly", 2500, None, 1),
        "VIP-QUARTER": ("quarterly", 6800, None, 3),
        "VIP-YEAR": ("yearly", 24800, None, 12),
    }
    for product in Product.objects.all():
        assert product.is_active, product.code
        assert sorted(product.channels) == sorted([Channel.EPG, Channel.CRM]), product.code
        assert sorted(product.payment_methods) == sorted(m.value for m in PaymentMethod), product.code
        assert product.is_on_sale(Channel.EPG) and product.is_on_sale(Channel.CRM), product.code
        assert product.methods_on(Channel.EPG) == EPG_METHODS, product.code
        assert product.methods_on(Channel.CRM) == CRM_METHODS, product.code
        # What cash sales and the QR payments need is configured too.
        assert product.crm_activity_code and product.smp_zero_price_package_code, product.code
        product.full_clean()
        # The simulated SMP sells it, with the same zero-price package.
        assert SimSmpProduct.objects.filter(
            code=product.smp_product_code,
            zero_price_package_code=product.smp_zero_price_package_code,
            active=True,
        ).exists(), product.code


def test_the_simulated_smp_accounts_are_those_of_the_contract():
    seed()
    accounts = {
        a.tv_account: (a.phone, a.status, a.balance_fen, a.blocked_products) for a in SimSmpAccount.objects.all()
    }
    assert accounts == {
        "tv1001": ("13800000001", "active", 100000, []),
        "tv1002": ("13800000002", "active", 100, []),
        "tv1003": ("13800000003", "suspended", 0, []),
        "tv1004": ("13800000004", "in_arrears", 0, []),
    }


@pytest.mark.parametrize("run", ["first", "again"])
def test_the_demo_fixture_is_what_seed_demo_makes(db, request, settings, run):
    """The tests' ``demo`` fixture runs seed_demo once a process and then puts its rows back (tests/support/demo.py):
    either way, seed_demo finds everything it would make already there, and the rows are those it makes."""
    if run == "first":  # as if no test of this process had asked for the demo yet
        made_once._kept.pop(("demo", settings.SANDBOX), None)
    demo = request.getfixturevalue("demo")
    assert ("demo", settings.SANDBOX) in made_once._kept
    made = {model: table(model) for model in (Product, SimSmpAccount, SimSmpProduct)}
    assert "seed_demo: 0 object(s) created (all present already)" in seed()
    for model, rows in made.items():
        assert table(model) == rows, model.__name__
    assert sorted(demo) == ["PPV-MOVIE", "VIP-MONTH", "VIP-QUARTER", "VIP-YEAR"]


def test_the_demo_fixture_after_a_fixture_that_made_one_of_its_rows_leaves_that_row(db, request):
    """A row of the demo made before the fixture (an account with a balance of its own) stays as it was made,
    and the rest of the demo is there: the fixture runs seed_demo then, rather than putting its rows back."""
    SimSmpAccount.objects.create(tv_account="tv1001", phone="13900000009", status="active", balance_fen=7)
    request.getfixturevalue("demo")
    assert SimSmpAccount.objects.values_list("phone", "balance_fen").get(tv_account="tv1001") == ("13900000009", 7)
    assert sorted(SimSmpAccount.objects.values_list("tv_account", flat=True)) == [
        "tv1001",
        "tv1002",
        "tv1003",
        "tv1004",
    ]
    assert "seed_demo: 0 object(s) created (all present already)" in seed()
