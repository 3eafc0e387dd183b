"""Payment codes at the counter in a real browser (docs/interfaces.md §10): every sandbox outcome, typed as a
barcode scanner types (the digits, then Enter, into the focused field, no click), codes refused at once, a
code used twice, and a cancel while the customer confirms.

Debian's Chromium through Playwright against the live server, as test_browser.py (its fixtures); the
pages are in English (the new wording's Chinese comes with the translation pass). The live server has no
worker: the test runs the due work and moves the clock (the live server's too) while the page follows
the order by itself. Screenshots: test-artifacts/screenshots/test_code_*.png.
"""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlencode

import pytest
from playwright.sync_api import expect

from billing.models import Payment, PaymentCodeUse
from lifecycle.due import deadlines_sweep
from orders.models import Order
from sandbox.models import SimTrade
from tests.channels_crm import test_browser
from tests.support.tasks import run_due_tasks

# The browser, the live server with the demo data and the screenshots of test_browser.py, as fixtures here too.
browser, site, shot = test_browser.browser, test_browser.site, test_browser.shot
CLERK, COUNTER_PC, PHONE = test_browser.CLERK, test_browser.COUNTER_PC, test_browser.PHONE
order_no_shown, wait_for = test_browser.order_no_shown, test_browser.wait_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def counter(browser):  # type: ignore[no-untyped-def]
    """The counter PC's browser, in English."""
    context = browser.new_context(locale="en-US", viewport={"width": COUNTER_PC[0], "height": COUNTER_PC[1]})
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.console_errors = []  # type: ignore[attr-defined]
    page.on("console", lambda m: m.type == "error" and page.console_errors.append(m.text))  # type: ignore[attr-defined]
    yield page
    context.close()


@pytest.fixture
def clock(time_machine):
    from django.utils import timezone

    time_machine.move_to(timezone.now(), tick=True)
    return time_machine


def awaiting_payment(page, site: str) -> str:  # type: ignore[no-untyped-def]
    """Sign in, order VIP-MONTH for 13800000001, and wait for the scan field; returns the order number."""
    page.goto(f"{site}/sandbox/crm/launch/?{urlencode(CLERK)}")
    page.locator("#id_phone").wait_for()  # the new-order page, in either language
    page.locator("label.choice").filter(has_text="¥25.00").click()
    page.locator("#id_phone").fill("13800000001")
    page.locator("form button[type=submit]").first.click()
    page.locator(".order-head").wait_for()
    wait_for(page, page.locator("#id_code"))
    return order_no_shown(page)


def scanner_types(page, digits: str) -> None:  # type: ignore[no-untyped-def]
    """What a barcode scanner does: keystrokes into whatever has the focus, then Enter."""
    page.keyboard.type(digits, delay=5)
    page.keyboard.press("Enter")


def work_while_time_passes(page, clock, locator, *, seconds: int, step: int = 5) -> None:  # type: ignore[no-untyped-def]
    """Move the clock ``step`` seconds at a time, running the due work, until ``locator`` shows. The page
    reloads when its order's status changes, by its own polls on its own clock (which does not travel, and
    asks at least every 2 s): after a step that changed a status it is given 4 s to follow; after one that
    changed none, the clock moves on at once."""
    seen = list(Order.objects.order_by("pk").values_list("status", flat=True))
    for _ in range(seconds // step + 2):
        run_due_tasks()
        if locator.count() and locator.first.is_visible():
            return
        statuses = list(Order.objects.order_by("pk").values_list("status", flat=True))
        if statuses != seen:
            seen = statuses
            try:
                locator.first.wait_for(timeout=4_000)
                return
            except Exception:  # noqa: S110  not yet: time passes
                pass
        clock.shift(timedelta(seconds=step))
        deadlines_sweep()
    raise AssertionError(f"{locator} did not appear; the page says: {page.inner_text('body')[:500]}")


def test_code_paid_at_once_wechatpay(site, counter, shot):
    page = counter
    order_no = awaiting_payment(page, site)
    assert page.evaluate("document.activeElement.id") == "id_code"  # focused: the scanner needs no click
    shot(page, "1-scan-field")

    scanner_types(page, "134567890123450000")
    wait_for(page, page.locator(".result.success"))

    assert "Done: the product is active" in page.locator(".result.success").inner_text()
    assert "Payment code (WeChat Pay / Alipay) · WeChat Pay" in page.locator(".facts").inner_text()
    shot(page, "2-completed")
    order = Order.objects.get(order_no=order_no)
    assert (order.status, order.payment_method) == ("completed", "payment_code")
    assert page.console_errors == []


def test_code_confirming_then_paid_alipay(site, counter, shot, clock):
    page = counter
    order_no = awaiting_payment(page, site)
    page.locator("h1, .order-head").first.click()  # the focus is elsewhere: the digits still find the field

    scanner_types(page, "281234567890120001")
    page.locator(".code-box").wait_for()
    run_due_tasks()
    expect(page.locator(".code-box")).to_contain_text("Charging the Alipay payment code")
    expect(page.locator(".code-box .countdown [data-left]")).not_to_have_text("--:--")
    shot(page, "1-customer-confirming")

    work_while_time_passes(page, clock, page.locator(".result.success"), seconds=15)

    shot(page, "2-completed")
    assert Order.objects.get(order_no=order_no).status == "completed"
    assert SimTrade.objects.get(out_trade_no=order_no).status == "SUCCESS"


@pytest.mark.parametrize(
    ("provider", "digits", "reason"),
    [("wechatpay", "134567890123450002", "TRADE_ERROR"), ("alipay", "281234567890120004", "BALANCE_NOT_ENOUGH")],
)
def test_code_declined(site, counter, shot, provider, digits, reason):
    page = counter
    order_no = awaiting_payment(page, site)

    scanner_types(page, digits)
    wait_for(page, page.locator(".result.failure"))

    failure = page.locator(".result.failure").inner_text()
    assert "The payment was declined." in failure and reason in failure
    assert "The customer may pay another way" in failure
    shot(page, f"{digits[-4:]}-declined")
    order = Order.objects.get(order_no=order_no)
    assert (order.status, order.failure_code) == ("failed", "payment_declined")
    assert SimTrade.objects.get(out_trade_no=order_no).provider == provider  # the code's provider, by its digits


def test_code_never_answered_is_reversed(site, counter, shot, clock):
    page = counter
    order_no = awaiting_payment(page, site)

    scanner_types(page, "134567890123450003")
    page.locator(".code-box").wait_for()
    run_due_tasks()
    shot(page, "1-no-answer-waiting")
    # Queried every 5 s, given up after 60 s: five seconds at a time until the reverse is shown.
    work_while_time_passes(page, clock, page.locator(".result.failure"), seconds=70)

    failure = page.locator(".result.failure").inner_text()
    assert "The order was not paid in time." in failure
    assert "cancelled at WeChat Pay or Alipay" in failure
    shot(page, "2-reversed-expired")
    order = Order.objects.get(order_no=order_no)
    assert (order.status, order.failure_code) == ("expired", "payment_timeout")
    assert SimTrade.objects.get(out_trade_no=order_no).status == "REVOKED"


def test_code_refused_at_once(site, counter, shot):
    page = counter
    order_no = awaiting_payment(page, site)
    error = page.locator("#code-error")

    scanner_types(page, "13456789012345abcd")
    expect(error).to_be_visible()
    assert "digits only" in error.inner_text()
    shot(page, "1-letters")
    scanner_types(page, "991234567890120000")  # the refused digits are selected: a new scan replaces them
    expect(error).to_contain_text("not a WeChat Pay or Alipay payment code")
    assert page.locator("#id_code").input_value() == "991234567890120000"
    shot(page, "2-wrong-prefix")
    scanner_types(page, "13456789012345000")  # 17 digits
    expect(error).to_contain_text("18 digits")
    assert page.locator("#id_code").get_attribute("aria-invalid") == "true"
    assert Order.objects.get(order_no=order_no).status == "awaiting_payment"
    assert not Payment.objects.exists()  # nothing was sent

    page.locator("#id_code").fill("")
    page.keyboard.type("2812", delay=5)
    expect(page.locator("#code-hint")).to_have_text("")
    page.keyboard.type("34567890120000", delay=5)
    expect(page.locator("#code-hint")).to_have_text("Alipay payment code")  # recognised by its prefix
    expect(error).to_be_hidden()
    shot(page, "3-recognised")


def test_code_used_twice_is_refused(site, counter, shot):
    page = counter
    awaiting_payment(page, site)
    scanner_types(page, "134567890123450000")
    wait_for(page, page.locator(".result.success"))

    page.get_by_role("link", name="New order").last.click()
    page.locator("#id_phone").wait_for()
    page.locator("label.choice").filter(has_text="¥25.00").click()
    page.locator("#id_phone").fill("13800000001")
    page.locator("form button[type=submit]").first.click()
    wait_for(page, page.locator("#id_code"))
    second = order_no_shown(page)
    scanner_types(page, "134567890123450000")

    flash = page.locator(".flash")
    flash.wait_for()
    assert "used already" in flash.inner_text()
    assert page.evaluate("document.activeElement.id") == "id_code"  # ready for a new code
    shot(page, "1-used-twice")
    assert Order.objects.get(order_no=second).status == "awaiting_payment"
    assert PaymentCodeUse.objects.count() == 1

    # The next code typed wrong: its own message, and the refusal of the code before is gone.
    scanner_types(page, "12345abc")
    assert "digits only" in page.locator("#code-error").inner_text()
    assert not flash.is_visible()
    shot(page, "2-next-code-wrong")


def test_code_cancelled_while_the_customer_confirms(site, counter, shot):
    page = counter
    order_no = awaiting_payment(page, site)
    scanner_types(page, "281234567890120001")
    page.locator(".code-box").wait_for()
    run_due_tasks()
    shot(page, "1-confirming")

    page.get_by_text("Cancel this order…").click()
    page.get_by_role("button", name="Yes, cancel the order").click()
    page.locator(".result.failure").wait_for()
    run_due_tasks()

    assert "Cancelled" in page.locator(".result.failure").inner_text()
    shot(page, "2-cancelled")
    assert Order.objects.get(order_no=order_no).status == "cancelled"
    assert SimTrade.objects.get(out_trade_no=order_no).status == "REVOKED"
    assert page.console_errors == []


def test_code_in_the_crm_frame_on_a_phone(site, browser, shot):
    """Inside the CRM's frame (the sandbox's), at phone size: the clerk's taps place the order, the frame
    keeps the focus, and the scanner's digits and Enter pay it."""
    context = browser.new_context(locale="en-US", viewport={"width": PHONE[0], "height": PHONE[1]})
    context.set_default_timeout(10_000)
    page = context.new_page()
    try:
        page.goto(f"{site}/sandbox/crm/frame/?{urlencode(CLERK)}")
        frame = page.frame_locator("#ipvas-frame")
        frame.locator("h1", has_text="New order").wait_for()
        frame.locator("label.choice").filter(has_text="¥25.00").click()
        frame.locator("#id_phone").fill("13800000001")
        frame.locator("form button[type=submit]").first.click()
        frame.locator(".order-head").wait_for()
        wait_for(page, frame.locator("#id_code"))
        assert frame.locator("#id_code").evaluate("e => e === document.activeElement")
        box = frame.locator(".pay-code").bounding_box()
        assert box is not None and box["width"] <= PHONE[0]
        shot(page, "1-frame-scan-field")

        scanner_types(page, "281234567890120000")
        wait_for(page, frame.locator(".result.success"))
        shot(page, "2-frame-completed")
    finally:
        context.close()
