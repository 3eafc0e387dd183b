"""The clerk's pages in a real browser: Debian's Chromium driven by Playwright, against the live server.

The live server has no Celery worker, so the test runs the due work itself
while it waits for the page to move on (``wait_for``); the pages follow the
order on their own (they poll status.json), never by a reload from the test.
Every page visited is saved under test-artifacts/screenshots/.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
import requests
from django.contrib.auth import get_user_model
from django.core.management import call_command
from playwright.sync_api import expect

from ipvas.actors import Actor, ActorKind
from lifecycle.placing import order_create
from orders.models import Order
from sandbox.models import SimCrmActivity
from tests.support.browser import chromium_launched
from tests.support.tasks import run_due_tasks

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
CLERK = {"staff_id": "clerk01", "store_code": "NX-YC-001", "virtual_staff_id": "V0001", "name": "演示"}
PHONE = (360, 780)
COUNTER_PC = (1280, 800)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with chromium_launched() as chromium:
        yield chromium


@pytest.fixture
def site(live_server, transactional_db) -> str:
    call_command("seed_demo", stdout=io.StringIO())
    return live_server.url


class Shots:
    """Full-page screenshots named <test>-<step>.png."""

    def __init__(self, test_name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.test_name = test_name
        self.taken: list[Path] = []

    def __call__(self, page, step: str) -> None:  # type: ignore[no-untyped-def]
        path = SCREENSHOTS / f"{self.test_name}-{step}.png"
        page.screenshot(path=str(path), full_page=True)
        self.taken.append(path)


@pytest.fixture
def shot(request) -> Shots:
    return Shots(request.node.name)


def open_page(browser, size: tuple[int, int] = PHONE):  # type: ignore[no-untyped-def]
    context = browser.new_context(locale="zh-CN", viewport={"width": size[0], "height": size[1]})
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.console_errors = []  # type: ignore[attr-defined]

    def on_console(message) -> None:  # type: ignore[no-untyped-def]
        where = (message.location or {}).get("url", "")
        if message.type == "error" and not where.endswith("/favicon.ico"):  # no favicon: not the pages' fault
            page.console_errors.append(f"{message.text} at {where}")

    page.on("console", on_console)
    return page


@pytest.fixture
def phone_page(browser):  # type: ignore[no-untyped-def]
    page = open_page(browser)
    yield page
    page.context.close()


@pytest.fixture
def counter_page(browser):  # type: ignore[no-untyped-def]
    page = open_page(browser, COUNTER_PC)
    yield page
    page.context.close()


def wait_for(page, locator, *, seconds: float = 20) -> None:  # type: ignore[no-untyped-def]
    """Run the due work as the worker would until ``locator`` shows (the page polls and reloads itself)."""
    for _ in range(int(seconds * 5)):
        run_due_tasks()
        if locator.count() and locator.first.is_visible():
            return
        page.wait_for_timeout(200)
    raise AssertionError(f"{locator} did not appear in {seconds} s; the page says: {page.inner_text('body')[:500]}")


def sign_in(page, site: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{site}/sandbox/crm/launch/?{urlencode(CLERK)}")
    page.locator("h1", has_text="新订单").wait_for()
    assert page.url == f"{site}/crm/orders/new/"


def place_order(view, product: str, phone: str) -> None:  # type: ignore[no-untyped-def]
    """On the new-order page (a Page or a FrameLocator): choose the product, type the number, submit."""
    view.locator("label.choice", has_text=product).click()
    view.locator("#id_phone").fill(phone)
    view.get_by_role("button", name="校验并继续").click()


def order_no_shown(view) -> str:  # type: ignore[no-untyped-def]
    text = view.locator(".order-no").inner_text()
    match = re.search(r"[A-Za-z0-9]{16,32}", text)
    assert match, text
    return match.group(0)


# --- (a) a cash sale inside the simulated CRM's frame -------------------------------------------


def test_cash_sale_inside_the_crm_frame(site, phone_page, shot):
    page = phone_page
    page.goto(f"{site}/sandbox/crm/frame/?{urlencode(CLERK)}")
    frame = page.frame_locator("#ipvas-frame")
    frame.locator("h1", has_text="新订单").wait_for()
    assert "模拟 CRM" in page.locator(".crm-bar").inner_text()
    assert "VIP 影视会员 · 包月" in frame.locator(".choices").inner_text()
    shot(page, "1-new-order")

    place_order(frame, "VIP 影视会员 · 包月", "13800000001")
    frame.locator(".order-head").wait_for()
    shot(page, "2-prechecking")
    wait_for(page, frame.locator(".pay-cash"))
    assert "tv1001" in frame.locator(".facts").inner_text()
    shot(page, "3-awaiting-payment")

    frame.locator(".pay-cash input[name=cash_received]").check()
    shot(page, "4-cash-confirmed")
    frame.locator(".pay-cash button[type=submit]").click()
    frame.locator(".status-payment_pending, .status-provisioning, .status-completed").first.wait_for()
    shot(page, "5-cash-pending")
    wait_for(page, frame.locator(".result.success"))
    assert "办理成功，产品已开通" in frame.locator(".result.success").inner_text()
    order_no = order_no_shown(frame)
    shot(page, "6-completed")

    frame.get_by_role("link", name="打印小票").click()
    receipt = frame.locator(".receipt")
    receipt.wait_for()
    text = receipt.inner_text()
    for expected in (order_no, "VIP 影视会员 · 包月", "¥25.00", "NX-YC-001", "演示", "现金"):
        assert expected in text, expected
    shot(page, "7-receipt")

    order = Order.objects.get(order_no=order_no)
    assert (order.status, order.payment_method, order.store_code) == ("completed", "cash", "NX-YC-001")
    activity = SimCrmActivity.objects.get(order_no=order_no)
    assert (activity.activity_code, activity.virtual_staff_id) == ("MKT-VIP-MONTH", "V0001")
    assert page.console_errors == []


# --- (b) a QR sale the customer pays: the page moves on by itself -------------------------------


def test_qr_sale_completes_when_paid_without_a_reload(site, phone_page, shot):
    page = phone_page
    sign_in(page, site)
    place_order(page, "VIP 影视会员 · 包月", "13800000001")
    page.locator(".order-head").wait_for()
    wait_for(page, page.locator("form", has=page.locator("input[value=wechat_qr]")))
    shot(page, "1-awaiting-payment")

    page.get_by_role("button", name="微信扫码支付").click()
    qr = page.locator("img.qr")
    qr.wait_for()
    page.wait_for_function("() => document.querySelector('img.qr').naturalWidth > 0")
    assert page.locator(".countdown [data-left]").inner_text() != "--:--"
    assert "请客户使用微信扫码支付" in page.locator(".qr-box").inner_text()
    shot(page, "2-qr-shown")
    order_no = order_no_shown(page)
    loads = []
    page.on("load", lambda: loads.append(page.url))

    paid = requests.post(f"{site}/sandbox/wechatpay/pay/", json={"out_trade_no": order_no}, timeout=10)

    assert paid.status_code == 200 and paid.json()["delivered"] is True
    wait_for(page, page.locator(".result.success"))
    assert loads, "the page should have reloaded itself on the status change"
    assert "办理成功，产品已开通" in page.locator(".result.success").inner_text()
    shot(page, "3-completed")
    assert Order.objects.get(order_no=order_no).status == "completed"
    assert page.console_errors == []


# --- (c) a QR code nobody pays: the countdown ends, the order fails --------------------------


def test_qr_timeout_counts_down_and_shows_the_failure(site, phone_page, shot, settings):
    settings.PAYMENT_WINDOW_SECONDS = 3
    page = phone_page
    sign_in(page, site)
    place_order(page, "VIP 影视会员 · 包月", "13800000001")
    page.locator(".order-head").wait_for()
    wait_for(page, page.locator("form", has=page.locator("input[value=alipay_qr]")))

    page.get_by_role("button", name="支付宝扫码支付").click()
    page.locator("img.qr").wait_for()
    shot(page, "1-qr-shown")
    # The window ends before any work runs: the countdown alone reaches zero.
    expect(page.locator(".countdown [data-left]")).to_have_text("00:00", timeout=8_000)
    assert page.locator("[data-expired-text]").inner_text() == "已到时间，正在确认支付结果…"
    shot(page, "2-countdown-ended")

    wait_for(page, page.locator(".result.failure"))

    failure = page.locator(".result.failure").inner_text()
    assert "已超时" in failure and "订单未在规定时间内支付。" in failure
    new_order_button = page.get_by_role("link", name="新订单").last
    assert new_order_button.is_visible()
    shot(page, "3-expired")
    new_order_button.click()
    page.locator("h1", has_text="新订单").wait_for()
    assert page.console_errors == []


# --- (d) a wrong mobile number --------------------------------------------------------------


def test_a_wrong_mobile_number_shows_an_inline_error(site, phone_page, shot):
    page = phone_page
    sign_in(page, site)

    place_order(page, "VIP 影视会员 · 包月", "12345")

    error = page.locator("#phone-error")
    error.wait_for()
    assert error.inner_text() == "请输入 11 位中国大陆手机号码，例如 13800000001。"
    assert page.locator("#id_phone").get_attribute("aria-invalid") == "true"
    assert page.locator("#id_phone").input_value() == "12345"
    box = error.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE[0]
    shot(page, "1-error")
    assert not Order.objects.exists()


# --- (e) history search on the counter PC -------------------------------------------------


def test_history_search_by_mobile_number_on_the_counter_pc(site, counter_page, shot):
    page = counter_page
    sign_in(page, site)
    clerk = get_user_model().objects.get(username="crm-clerk01")
    for phone in ("13800000001", "13800000002", "13800000003"):
        order_create(
            channel="crm",
            product_code="VIP-MONTH",
            phone=phone,
            actor=Actor(ActorKind.CLERK, "clerk01"),
            clerk=clerk,
            store_code="NX-YC-001",
        )
    run_due_tasks()
    wanted = Order.objects.get(phone="13800000002")
    shot(page, "1-new-order")

    page.get_by_role("link", name="订单记录").click()
    page.locator("h1", has_text="今日订单").wait_for()
    assert page.locator("ul.orders li").count() == 3
    shot(page, "2-todays-orders")

    page.locator("input[name=q]").fill("13800000002")
    page.get_by_role("button", name="查询").click()
    page.locator("h1", has_text="查询结果").wait_for()

    rows = page.locator("ul.orders li")
    assert rows.count() == 1
    assert "138****0002" in rows.first.inner_text() and wanted.order_no in rows.first.inner_text()
    shot(page, "3-search-results")
    rows.first.locator("a").click()
    page.locator(".order-head").wait_for()
    assert order_no_shown(page) == wanted.order_no
    shot(page, "4-order")
    assert page.console_errors == []


# --- (f) an auto-renewing sale, its receipt, and the customer's subscription cancelled -----------------


def test_auto_renewing_sale_then_cancel_at_the_counter(site, phone_page, shot):
    from orders.models import Product, Subscription

    Product.objects.filter(code="VIP-YEAR").update(renewable=False)  # to see the choice go away
    page = phone_page
    sign_in(page, site)
    box = page.locator("fieldset.renew")
    tick = page.locator("input[name=auto_renew]")
    expect(box).to_be_visible()
    assert not tick.is_checked()  # never pre-selected
    expect(page.locator('[data-terms-for="VIP-MONTH"]')).to_contain_text("TD")
    shot(page, "1-new-order")

    page.locator("label.choice", has_text="VIP 影视会员 · 包年").click()
    expect(box).to_be_hidden()
    page.locator("label.choice", has_text="VIP 影视会员 · 包季").click()
    expect(page.locator('[data-terms-for="VIP-QUARTER"]')).to_be_visible()
    expect(page.locator('[data-terms-for="VIP-MONTH"]')).to_be_hidden()
    tick.check()
    page.locator("label.choice", has_text="VIP 影视会员 · 包月").click()
    assert not tick.is_checked()  # other terms now: the tick is cleared

    tick.check()
    page.locator("#id_phone").fill("13800000001")
    shot(page, "2-auto-renew-ticked")
    page.get_by_role("button", name="校验并继续").click()
    page.locator(".order-head").wait_for()
    wait_for(page, page.locator("form", has=page.locator("input[value=phone_bill]")))
    methods = page.locator("input[name=method]").evaluate_all("els => els.map(e => e.value)")
    assert methods == ["phone_bill", "wechat_qr", "alipay_qr"]  # what renews: the QR codes sign a contract
    expect(page.locator(".renew-terms")).to_contain_text("¥25.00")
    shot(page, "3-awaiting-payment")

    charge = page.locator("form", has=page.locator("input[value=phone_bill]"))
    charge.locator("input[name=charge_agreed]").check()  # the customer agrees to the charge (issue #12, item 11)
    charge.locator("button").click()
    wait_for(page, page.locator(".result.success"))
    order_no = order_no_shown(page)
    subscription = Subscription.objects.get(orders__order_no=order_no)
    assert subscription.subscription_no in page.locator(".result.success").inner_text()
    shot(page, "4-completed")

    page.get_by_role("link", name="打印小票").click()
    note = page.locator(".renew-note")
    note.wait_for()
    text = note.inner_text()
    for expected in (subscription.subscription_no, "¥25.00", "TD", "5"):
        assert expected in text, expected
    shot(page, "5-receipt")

    page.locator('nav.tabs a[href="/crm/subscriptions/"]').click()
    page.locator("input[name=phone]").fill("13800000001")
    page.locator("form.search button[type=submit]").click()
    card = page.locator(f'[data-subscription="{subscription.subscription_no}"]')
    card.wait_for()
    assert "VIP 影视会员 · 包月" in card.inner_text() and "¥25.00" in card.inner_text()
    shot(page, "6-subscriptions")

    card.locator("a.button").click()
    confirm = page.locator("form", has=page.locator("input[name=customer_asked]"))
    confirm.wait_for()
    confirm.locator("button[type=submit]").click()  # not ticked: the browser holds the form back
    assert page.locator("input[name=customer_asked]").evaluate("e => !e.validity.valid")
    assert Subscription.objects.get(pk=subscription.pk).status == "active"
    page.locator("input[name=customer_asked]").check()
    shot(page, "7-confirm-cancel")
    confirm.locator("button[type=submit]").click()
    page.locator(".flash.success").wait_for()
    card = page.locator(f'[data-subscription="{subscription.subscription_no}"]')
    assert card.locator(".status.sub-cancelled").count() == 1
    assert card.locator("a.button").count() == 0  # nothing left to cancel
    shot(page, "8-cancelled")

    subscription.refresh_from_db()
    assert (subscription.status, subscription.cancel_channel) == ("cancelled", "crm")
    assert subscription.events.get(action="cancel").actor_id == "clerk01"
    assert page.console_errors == []
