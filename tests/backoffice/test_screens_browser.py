"""Every kind of admin page in a real browser, in Chinese and in English at 1280 px (issue #12): screenshots in
test-artifacts/backoffice/ for a person to look at, and what a browser can check by itself — nothing wider than
the window, the order page's history and ledger not cut off, no script error.

Debian's Chromium through Playwright; skipped where /usr/bin/chromium is missing, failing instead in CI.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from billing.models import Discrepancy, ProviderContract, ReconciliationRun, WorkItem, WorkItemKind
from orders.models import Order, Product, PurchasePin, Subscription
from tests.backoffice.lived import STAFF, live
from tests.support.browser import chromium_launched

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "backoffice"
WIDTH = 1280
LANGUAGES = {"zh": "zh-CN", "en": "en-US"}


def pages() -> list[tuple[str, str]]:
    """(name, address) of one page of each kind, with the demo's data on it."""
    wechat = Order.objects.filter(payment_method="wechat_qr", status="completed").order_by("-pk").first()
    cash_refund = WorkItem.objects.filter(kind=WorkItemKind.CASH_PAYBACK).first()
    product = Product.objects.get(code="VIP-YEAR")
    subscription = Subscription.objects.first()
    client = get_epg_client()
    return [
        ("index", reverse("admin:index")),
        ("orders", reverse("admin:orders_order_changelist")),
        ("order-qr-paid", reverse("admin:orders_order_change", args=[wechat.pk])),
        ("order-cash-refunded", reverse("admin:orders_order_change", args=[cash_refund.order_id])),
        ("order-refund", reverse("admin:orders_order_refund", args=[wechat.pk])),
        ("subscriptions", reverse("admin:orders_subscription_changelist")),
        ("subscription", reverse("admin:orders_subscription_change", args=[subscription.pk])),
        ("subscription-cancel", reverse("admin:orders_subscription_cancel", args=[subscription.pk])),
        ("products", reverse("admin:orders_product_changelist")),
        ("product", reverse("admin:orders_product_change", args=[product.pk])),
        ("product-add", reverse("admin:orders_product_add")),
        ("product-history", reverse("admin:orders_product_history", args=[product.pk])),
        ("purchase-pins", reverse("admin:orders_purchasepin_changelist")),
        ("purchase-pin", reverse("admin:orders_purchasepin_change", args=[PurchasePin.objects.first().pk])),
        ("contracts", reverse("admin:billing_providercontract_changelist")),
        ("contract", reverse("admin:billing_providercontract_change", args=[ProviderContract.objects.first().pk])),
        ("ledger", reverse("admin:billing_ledgerentry_changelist")),
        ("payments", reverse("admin:billing_payment_changelist")),
        ("work-items", reverse("admin:billing_workitem_changelist")),
        ("work-item-act", reverse("admin:billing_workitem_act", args=[cash_refund.pk])),
        ("work-item", reverse("admin:billing_workitem_change", args=[cash_refund.pk])),
        ("reconciliation-runs", reverse("admin:billing_reconciliationrun_changelist")),
        (
            "reconciliation-run",
            reverse("admin:billing_reconciliationrun_change", args=[ReconciliationRun.objects.first().pk]),
        ),
        ("reconciliation-upload", reverse("admin:billing_reconciliationrun_upload")),
        ("reconciliation-items", reverse("admin:billing_reconciliationitem_changelist")),
        ("discrepancies", reverse("admin:billing_discrepancy_changelist")),
        ("discrepancy", reverse("admin:billing_discrepancy_change", args=[Discrepancy.objects.first().pk])),
        ("discrepancy-act", reverse("admin:billing_discrepancy_act", args=[Discrepancy.objects.first().pk])),
        ("epg-clients", reverse("admin:epg_api_epgclient_changelist")),
        ("epg-client", reverse("admin:epg_api_epgclient_change", args=[client.prefix])),
        ("epg-client-add", reverse("admin:epg_api_epgclient_add")),
        ("admin-history", reverse("admin:admin_logentry_changelist")),
        ("authenticators", reverse("admin:backoffice_staffauthenticator_changelist")),
        ("groups", reverse("admin:auth_group_changelist")),
        ("group", reverse("admin:auth_group_change", args=[get_group().pk])),
        ("sandbox-accounts", reverse("admin:sandbox_simsmpaccount_changelist")),
        ("dashboard", reverse("reports:dashboard")),
    ]


def get_epg_client():  # type: ignore[no-untyped-def]
    from epg_api.models import EpgClient

    return EpgClient.objects.get(name="某某 IPTV EPG")


def get_group():  # type: ignore[no-untyped-def]
    from django.contrib.auth.models import Group

    return Group.objects.get(name="营业厅主管")


@pytest.fixture(scope="module")
def chromium() -> Iterator[object]:
    with chromium_launched() as browser:
        yield browser


def watch(page, problems: list[str]) -> None:  # type: ignore[no-untyped-def]
    def on_console(message) -> None:  # type: ignore[no-untyped-def]
        if message.type == "error" and not message.location.get("url", "").endswith("/favicon.ico"):
            problems.append(f"{page.url}: {message.text}")

    page.on("console", on_console)


def too_wide(page) -> int:  # type: ignore[no-untyped-def]
    """How many pixels the page is wider than the window (0: nothing to scroll sideways)."""
    return int(page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth"))


def list_cut_off(page) -> list[str]:  # type: ignore[no-untyped-def]
    """The headers of a change list that lie beyond the right edge of its box (scrolled out of sight)."""
    return page.evaluate(
        """() => {
            const box = document.querySelector('#changelist .results');
            if (!box) return [];
            const right = box.getBoundingClientRect().right;
            return [...box.querySelectorAll('thead th')]
              .filter(th => th.getBoundingClientRect().right > right + 1)
              .map(th => th.textContent.trim());
        }"""
    )


def history_cut_off(page) -> list[str]:  # type: ignore[no-untyped-def]
    """The headers of the order page's history and ledger that lie outside their box."""
    return page.evaluate(
        """() => [...document.querySelectorAll('.history-and-money .ham-part')].flatMap(part => {
            const box = part.getBoundingClientRect();
            return [...part.querySelectorAll('th')]
              .filter(th => th.getBoundingClientRect().right > box.right + 1 || th.getBoundingClientRect().width < 8)
              .map(th => th.textContent);
        })"""
    )


def test_every_kind_of_admin_page_at_1280_in_both_languages(chromium, live_server):
    live()
    staff = Client()
    staff.force_login(get_user_model().objects.get(username=STAFF))
    session = staff.cookies[settings.SESSION_COOKIE_NAME].value
    SHOTS.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    for language, locale in LANGUAGES.items():
        context = chromium.new_context(viewport={"width": WIDTH, "height": 900}, locale=locale)
        context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": session, "url": live_server.url}])
        page = context.new_page()
        watch(page, problems)
        for name, address in pages():
            response = page.goto(live_server.url + address)
            assert response is not None and response.status == 200, (name, response and response.status)
            page.screenshot(path=str(SHOTS / f"{language}-{name}.png"), full_page=True)
            if too_wide(page) > 1:
                problems.append(f"{language} {name}: {too_wide(page)} px wider than the window")
            if hidden := list_cut_off(page):
                problems.append(f"{language} {name}: the list's columns {hidden} are hidden beyond its box")
            if name.startswith("order-") and (cut := history_cut_off(page)):
                problems.append(f"{language} {name}: history or ledger cut off at {cut}")
        context.close()

        # Signed out: the sign-in, then the second factor, in admin's look.
        context = chromium.new_context(viewport={"width": WIDTH, "height": 900}, locale=locale)
        page = context.new_page()
        watch(page, problems)
        page.goto(f"{live_server.url}/admin/")
        page.screenshot(path=str(SHOTS / f"{language}-sign-in.png"), full_page=True)
        page.locator("input[name=login]").fill(STAFF)
        page.locator("input[name=password]").fill("unused-password-1")
        page.locator("button[type=submit]").click()
        page.wait_for_url("**/accounts/2fa/authenticate/**")
        page.screenshot(path=str(SHOTS / f"{language}-second-factor.png"), full_page=True)
        assert page.locator("#site-name").count() == 1  # admin's header, not allauth's bare page
        context.close()
    assert problems == [], "\n".join(problems)


def test_the_permission_picker_speaks_chinese(chromium, live_server):
    """Django's own script strings for the pickers of permissions and groups (SelectFilter2.js) that Django's
    Chinese leaves out ("Choose all %s", "Remove selected %s"…) come from our catalogue (locale/…/djangojs.po)."""
    root = get_user_model().objects.create_superuser("picker-root", email="", password="unused-password-1")
    staff = Client()
    staff.force_login(root)
    context = chromium.new_context(viewport={"width": WIDTH, "height": 900}, locale=LANGUAGES["zh"])
    session = staff.cookies[settings.SESSION_COOKIE_NAME].value
    context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": session, "url": live_server.url}])
    page = context.new_page()
    page.goto(f"{live_server.url}/admin/auth/group/add/")
    page.locator(".selector-chooseall").wait_for()

    said = page.evaluate(
        """() => [...document.querySelectorAll(
              '.selector-available-title, .selector-chosen-title, .selector-chooseall, .selector-clearall,'
              + ' .selector-add, .selector-remove, .selector .helptext')]
            .flatMap(e => [e.innerText, e.title || '']).join(' | ')"""
    )
    page.screenshot(path=str(SHOTS / "zh-group-permission-picker.png"), full_page=True)
    context.close()
    assert re.findall(r"[A-Za-z]{3,}", said) == [], said
    assert "全选" in said, said
