"""The scan field on the clerk's order page in a real browser (docs/interfaces.md §10, IPVAS note: "the digits
typed anywhere else on the page go to it"), found by a review of the counter (2026-12-06).

A clerk who ticked "the customer agrees to the charge on the phone bill" (or "I have received the cash") and
whose customer then shows a payment code instead scans it. crm.js sent a digit to the scan field only when the
focus was on no INPUT at all, and the checkboxes are INPUTs: the digits were lost, and the scanner's Enter
submitted the ticked form (a cash sale with no cash, or a phone-bill charge). Now only text fields keep them."""

from __future__ import annotations

import pytest

from billing.models import PaymentCodeUse
from orders.models import Order
from tests.channels_crm import test_browser
from tests.channels_crm.test_browser_payment_code import awaiting_payment, counter, scanner_types  # noqa: F401

browser, site, shot = test_browser.browser, test_browser.site, test_browser.shot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize(
    ("box", "method"),
    [("form.pay-bill input[name=charge_agreed]", "phone_bill"), ("form.pay-cash input[name=cash_received]", "cash")],
)
def test_a_scan_after_ticking_a_confirmation_goes_to_the_scan_field(site, counter, box, method):  # noqa: F811
    page = counter
    order_no = awaiting_payment(page, site)
    page.locator(box).click()  # ticked, then the customer changed their mind and shows a payment code
    scanner_types(page, "134567890123450000")
    page.wait_for_timeout(1500)

    order = Order.objects.get(order_no=order_no)
    body = page.inner_text("body")
    assert order.payment_method != method, f"{method} was taken instead; the page says: {body[:300]}"
    assert PaymentCodeUse.objects.filter(code="134567890123450000").exists(), (
        f"the scanned code went nowhere (status {order.status}); the page says: {body[:300]}"
    )
