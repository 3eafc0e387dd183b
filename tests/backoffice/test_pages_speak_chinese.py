"""Every admin page in zh-Hans, the default language, shows no English and no key hash (issue #12, items 4-8).

The back office is lived first (tests/backoffice/lived.py: a finished demo day, today's orders of every kind,
refunds, work items, subscriptions, PINs, admin's own changes); then every page is read the way a member of
staff reads it: every model's list, a change form of each, its add form where adding is allowed, admin's
own pages (refund, work item, reconciliation upload and discrepancy, subscription cancel, the dashboard,
histories), the sign-in. tests/support/english.py says what counts as English.
"""

from __future__ import annotations

import re

import pytest
from django.contrib import admin
from django.test import Client
from django.urls import reverse

from billing.models import WorkItem
from epg_api.models import EpgClient
from orders.models import Order, Product
from tests.backoffice.lived import live
from tests.support.english import english_words

pytestmark = pytest.mark.django_db

ZH = {"HTTP_ACCEPT_LANGUAGE": "zh-hans"}
# Fields that show data as it was received or stored, byte for byte (a provider's notification, a task's
# arguments, an event's raw details): what is in them is the outside system's, not admin's words.
RAW_DATA = frozenset(
    {
        "field-headers",
        "field-body",
        "field-decoded",
        "field-kwargs",
        "field-data",
        "field-text",
        "field-raw",
        "field-code",
    }
)
# Data of the lived demo that is written in Latin letters (a user name).
DATA_WORDS = frozenset({"admin"})
KEY_HASH = re.compile(r"sha512\$|\$\$[0-9a-f]{16}")


@pytest.fixture
def staff() -> Client:
    lived = live()
    client = Client()
    client.force_login(lived.staff)
    client.lived = lived  # type: ignore[attr-defined]
    return client


def admin_pages() -> list[str]:
    """Every page of admin with something on it: lists, change and add forms, and admin's own pages."""
    pages = [reverse("admin:index"), reverse("reports:dashboard"), reverse("admin:password_change")]
    labels = sorted({model._meta.app_label for model in admin.site._registry})
    pages += [reverse("admin:app_list", args=[label]) for label in labels]
    for model, model_admin in admin.site._registry.items():
        opts = model._meta
        pages.append(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))
        first = model_admin.get_queryset(_request()).order_by("-pk").first()
        if first is not None:
            shown = getattr(first, "prefix", first.pk)  # an EPG client by its key's prefix, as admin links it
            pages.append(reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[shown]))
            pages.append(reverse(f"admin:{opts.app_label}_{opts.model_name}_history", args=[shown]))
        if model_admin.has_add_permission(_request()):
            pages.append(reverse(f"admin:{opts.app_label}_{opts.model_name}_add"))
    for order in Order.objects.all():
        pages.append(reverse("admin:orders_order_change", args=[order.pk]))
        if order.status == "completed":
            pages.append(reverse("admin:orders_order_refund", args=[order.pk]))
    for item in WorkItem.objects.all():
        pages.append(reverse("admin:billing_workitem_act", args=[item.pk]))
        pages.append(reverse("admin:billing_workitem_change", args=[item.pk]))
    pages.append(reverse("admin:billing_workitem_changelist") + "?state=all")
    pages.append(reverse("admin:billing_reconciliationrun_upload"))
    from billing.models import Discrepancy
    from orders.models import Subscription

    for discrepancy in Discrepancy.objects.all():
        pages.append(reverse("admin:billing_discrepancy_act", args=[discrepancy.pk]))
    for subscription in Subscription.objects.all():
        pages.append(reverse("admin:orders_subscription_cancel", args=[subscription.pk]))
    product = Product.objects.get(code="VIP-YEAR")
    pages.append(reverse("admin:orders_product_history", args=[product.pk]))
    return list(dict.fromkeys(pages))


def _request():  # type: ignore[no-untyped-def]
    from django.contrib.auth import get_user_model
    from django.test import RequestFactory

    request = RequestFactory().get("/admin/")
    request.user = get_user_model().objects.filter(is_superuser=True).first()
    return request


def test_every_admin_page_speaks_chinese_and_shows_no_key_hash(staff):
    problems: dict[str, list] = {}
    pages = admin_pages()
    assert len(pages) > 120, len(pages)
    # An API key's prefix is random letters and digits; now and then all of them lower-case letters.
    data_words = DATA_WORDS | set(EpgClient.objects.values_list("prefix", flat=True))
    for url in pages:
        response = staff.get(url, **ZH)
        assert response.status_code == 200, (url, response.status_code)
        html = response.content.decode()
        words = english_words(html, allowed=frozenset(data_words), skip_classes=RAW_DATA)
        if words:
            problems[url] = words[:8]
        assert not KEY_HASH.search(html), f"{url} shows an API key's hash"
    assert not problems, "English on Chinese pages:\n" + "\n".join(
        f"{url}: {word!r} in {context!r}" for url, words in problems.items() for word, context in words
    )


def test_the_admin_index_lists_the_work_first_and_the_sandbox_last(staff):
    html = staff.get(reverse("admin:index"), **ZH).content.decode()
    captions = re.findall(r'<caption>\s*<a href="[^"]*" class="section"[^>]*>([^<]+)</a>', html)
    assert captions[0] == "报表"  # the dashboard, on top of the index (templates/admin/index.html)
    assert captions[1:5] == ["订单与自动续费", "资金", "对账", "工单"], captions
    assert captions[-1].startswith("沙箱"), captions


def test_the_sign_in_has_admins_look_and_no_sign_up(db):
    html = Client().get("/accounts/login/", **ZH).content.decode()
    assert "admin/css/base.css" in html and 'id="site-name"' in html
    assert "/accounts/signup/" not in html and "注册" not in html
    assert english_words(html) == []


def test_a_clerk_for_a_sign_in_account_that_has_one_is_refused_in_chinese(staff):
    """Django's unique message names the field: it said 具有 User 的 营业员 已存在."""
    from channels_crm.models import Clerk

    existing = Clerk.objects.select_related("user", "store").get(staff_id="clerk01")
    answer = staff.post(
        reverse("admin:channels_crm_clerk_add"),
        {"user": existing.user.pk, "staff_id": "clerk99", "name": "王五", "store": existing.store.pk,
         "virtual_staff_id": "V0099", "role": "clerk"},
        **ZH,
    )  # fmt: skip

    assert answer.status_code == 200
    assert "具有 登录账号 的 营业员 已存在" in answer.content.decode()
    assert not Clerk.objects.filter(staff_id="clerk99").exists()
