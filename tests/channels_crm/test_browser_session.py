"""The clerk's session and the pages already open (a review of the counter pages in Chromium, 2026-12-07):
a session that ends while a payment code is being charged, and the CRM opening our pages again while an
order's page is open. Fixtures and helpers are those of tests/channels_crm/test_browser.py (the live server
with the demo data, no worker: the test runs the due work itself)."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from billing.models import PaymentCodeUse
from orders.constants import OrderStatus
from orders.models import Order
from tests.channels_crm import test_browser
from tests.channels_crm.test_browser_payment_code import awaiting_payment, scanner_types
from tests.support.tasks import run_due_tasks

# The counter PC's browser in Chinese, as the business halls use it, and the rest of test_browser.py's fixtures.
browser, site, shot, counter_page = (
    test_browser.browser,
    test_browser.site,
    test_browser.shot,
    test_browser.counter_page,
)
CLERK, COUNTER_PC = test_browser.CLERK, test_browser.COUNTER_PC
order_no_shown, wait_for = test_browser.order_no_shown, test_browser.wait_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def scan_after_the_crm_opened_our_pages(page, site: str, clerk: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    """The CRM opens our pages in another window with ``clerk``'s ticket; then the scanner types a paid WeChat
    Pay code into the order page open before."""
    other = page.context.new_page()
    other.goto(f"{site}/sandbox/crm/launch/?{urlencode(clerk)}")
    other.locator("#id_phone").wait_for()
    other.close()  # its sign-in is what counts (the cookies); a page left open beside slows the screenshots
    page.bring_to_front()
    page.locator("#id_code").focus()
    scanner_types(page, "134567890123450000")


def test_the_charging_page_says_so_when_the_session_ends(site, counter_page, shot):
    """The clerk's session ends (shift over: CRM_SESSION_SECONDS, or signed out elsewhere) while the customer
    confirms in WeChat: the page shows the signed-out page. Before, status.json's 401 was taken for a network
    error: the page polled on, silently, saying 正在扣取微信付款码… whatever became of the order, and a clerk
    told nothing would ask the customer to pay another way."""
    page = counter_page
    order_no = awaiting_payment(page, site)
    scanner_types(page, "134567890123450001")  # the customer confirms in the app
    wait_for(page, page.locator(".code-box"))
    page.context.clear_cookies(name="sessionid")  # the session is over; the CSRF cookie stays
    run_due_tasks()
    page.wait_for_timeout(8_000)  # four polls or more
    shot(page, "after-session-end")
    assert Order.objects.get(order_no=order_no).status == OrderStatus.PAYMENT_PENDING
    body = page.inner_text("body")
    assert "已退出登录" in body or "登录已失效" in body, f"the page still says: {body[:300]}"


def test_a_scan_after_the_crm_opened_the_pages_again_goes_through(site, counter_page, shot):
    """The CRM opens our pages with a new ticket of the same clerk (its menu again, a second CRM window) while
    the customer holds up the code: the scan in the page already open goes through. Before, the sign-in
    renewed the CSRF token, and the scan got Django's bare 403 "CSRF验证失败. 请求被中断", with no way back."""
    page = counter_page
    order_no = awaiting_payment(page, site)
    scan_after_the_crm_opened_our_pages(page, site, CLERK)
    page.wait_for_load_state()
    shot(page, "scan-after-second-sign-in")
    body = page.inner_text("body")
    assert "CSRF" not in body, f"the clerk sees: {body[:200]}"
    assert page.locator(".order-head").count() == 1, "no way back to the order"
    assert PaymentCodeUse.objects.exists()
    run_due_tasks()
    assert Order.objects.get(order_no=order_no).status == OrderStatus.COMPLETED


def test_a_form_sent_after_another_clerk_signed_in_says_so_and_leads_back(site, counter_page, shot):
    """Another clerk's ticket opens our pages on the same PC: the page open before sends its scan with the
    old session's token. The clerk sees, in Chinese, that nothing was taken, and a way back to the order."""
    page = counter_page
    order_no = awaiting_payment(page, site)
    # The page's own poll would find the first clerk's session gone and show the signed-out page: here the
    # scan comes first.
    page.route("**/status.json", lambda route: route.abort())
    scan_after_the_crm_opened_our_pages(page, site, {**CLERK, "staff_id": "clerk02", "name": "另一位"})
    page.locator("h1", has_text="此页面已过期").wait_for()  # the answer to the scan, loaded
    shot(page, "scan-after-another-clerk-signed-in")
    body = page.inner_text("body")
    assert "此页面已过期" in body and "没有扣款" in body and "CSRF" not in body, body[:300]
    assert not PaymentCodeUse.objects.exists()
    # The way back is the page the scan came from (for the first clerk, once signed in again).
    href = page.get_by_role("link", name="重新打开页面").get_attribute("href")
    assert href.endswith(f"/crm/orders/{order_no}/"), href
