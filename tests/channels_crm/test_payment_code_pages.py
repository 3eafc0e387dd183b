"""The clerk's payment-code field (docs/interfaces.md §10) through Django's test client: the page, the
refusals, each result, cancel while confirming, and the shift totals by provider. The browser, with a
scanner's typing: test_browser_payment_code.py."""

from __future__ import annotations

import re
from datetime import timedelta

from django.test import Client
from django.utils import timezone

from billing.models import Payment
from ipvas.actors import Actor, ActorKind
from lifecycle.manual import refund_by_admin
from orders.models import Order
from sandbox import faults
from sandbox.models import SimTrade
from tests.channels_crm.support import new_order, page, settle, text_of

WECHAT_PAID = "134567890123450000"
ALIPAY_PAID = "281234567890120000"
FINANCE = Actor(ActorKind.ADMIN, "finance")


def page_en(client: Client, order: Order) -> str:
    """The order page in English: the new strings' Chinese comes with the translation pass."""
    response = client.get(f"/crm/orders/{order.order_no}/", HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    return response.content.decode()


def scan(client: Client, order: Order, code: str, **headers: str):
    return client.post(f"/crm/orders/{order.order_no}/pay-code/", {"code": code}, **headers)


def flash(html: str) -> str:
    return " ".join(text_of(m) for m in re.findall(r'<p class="flash[^"]*"[^>]*>.*?</p>', html, re.S))


def totals_text(html: str) -> str:
    table = re.search(r'<table class="totals">.*?</table>', html, re.S)
    assert table, html
    return text_of(table.group(0))


def test_the_scan_field_comes_first_and_has_the_focus(clerk):
    order = new_order(clerk, "13800000001")

    html = page_en(clerk, order)

    form = re.search(r'<form [^>]*class="pay-code".*?</form>', html, re.S)
    assert form, html
    assert f'action="/crm/orders/{order.order_no}/pay-code/"' in form.group(0)
    field = re.search(r"<input id=\"id_code\"[^>]*>", form.group(0), re.S).group(0)
    for attribute in ('name="code"', "autofocus", 'inputmode="numeric"', 'autocomplete="off"'):
        assert attribute in field, attribute
    assert html.index('class="pay-code"') < html.index('class="pay-cash"')  # before every other method
    assert 'data-wechatpay="1[0-5][0-9]{16}"' in form.group(0)
    assert "Scan the customer's WeChat Pay or Alipay payment code" in text_of(form.group(0)).replace("&#x27;", "'")


def test_a_code_that_is_nobodys_is_refused_and_the_order_stays(clerk):
    order = new_order(clerk, "13800000001")

    response = scan(clerk, order, "991234567890120000", HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 302
    html = page_en(clerk, order)
    assert "not a WeChat Pay or Alipay payment code" in flash(html)
    order.refresh_from_db()
    assert order.status == "awaiting_payment"
    assert 'class="pay-code"' in html  # scan again
    assert not Payment.objects.exists()


def test_a_paid_code_completes_and_the_page_names_the_provider(clerk):
    order = new_order(clerk, "13800000001")

    assert scan(clerk, order, WECHAT_PAID).status_code == 302
    pending = text_of(page_en(clerk, order))
    assert "Charging the WeChat Pay payment code" in pending
    assert "Payment code (WeChat Pay / Alipay) · WeChat Pay" in pending
    settle()

    order.refresh_from_db()
    assert order.status == "completed"
    done = text_of(page_en(clerk, order))
    assert "Done: the product is active" in done and "Payment code (WeChat Pay / Alipay) · WeChat Pay" in done
    assert scan(clerk, order, WECHAT_PAID).status_code == 302  # the scanner's second Enter: nothing more
    assert "flash" not in page(clerk, order)
    assert SimTrade.objects.count() == 1
    # The receipt names the provider too (it said only "payment code (WeChat Pay / Alipay)").
    receipt = clerk.get(f"/crm/orders/{order.order_no}/receipt/", HTTP_ACCEPT_LANGUAGE="en")
    assert "Payment code (WeChat Pay / Alipay) · WeChat Pay" in text_of(receipt.content.decode())


def test_a_declined_code_shows_why(clerk):
    order = new_order(clerk, "13800000001")
    scan(clerk, order, "281234567890120004")  # Alipay, insufficient funds
    settle()

    text = text_of(page_en(clerk, order))
    assert "The payment was declined." in text
    assert "ACQ.BUYER_BALANCE_NOT_ENOUGH" in text
    assert "The customer may pay another way" in text


def test_while_the_customer_confirms_the_clerk_can_cancel(clerk):
    order = new_order(clerk, "13800000001")
    scan(clerk, order, "134567890123450001")
    settle()

    html = page(clerk, order)
    assert 'class="code-box"' in html and "data-expires-at" in html
    assert f'action="/crm/orders/{order.order_no}/cancel/"' in html
    # Not "nothing has been charged": the code may be charged by now (found by a counter review).
    assert "正在扣款付款码" in text_of(html) and "尚未扣费" not in text_of(html)
    clerk.post(f"/crm/orders/{order.order_no}/cancel/", {"confirm": "yes"})
    settle()

    order.refresh_from_db()
    assert order.status == "cancelled"
    assert SimTrade.objects.get(out_trade_no=order.order_no).status == "REVOKED"
    assert "cancelled at WeChat Pay or Alipay" in text_of(page_en(clerk, order))


def test_shift_totals_show_payment_codes_by_provider(clerk):
    for code in (WECHAT_PAID, ALIPAY_PAID, "134567890123460000"):
        scan(clerk, new_order(clerk, "13800000001"), code)
    settle()

    totals = totals_text(clerk.get("/crm/orders/", HTTP_ACCEPT_LANGUAGE="en").content.decode())

    assert "Payment code (WeChat Pay / Alipay) · WeChat Pay 2 ¥50.00" in totals
    assert "Payment code (WeChat Pay / Alipay) · Alipay 1 ¥25.00" in totals


def test_shift_totals_say_how_many_sales_money_went_back_for(clerk):
    """The amount is what was taken less what went back; the count of sales says how many of them went back,
    so that the two agree (a review found "2 ¥25.00" for two sales, one refunded)."""
    orders = [new_order(clerk, "13800000001") for _ in range(2)]
    for order in orders:
        scan(clerk, order, WECHAT_PAID if order is orders[0] else "134567890123460000")
    settle()
    refund_by_admin(order_id=orders[0].pk, reason="the customer changed their mind", actor=FINANCE)
    settle()

    totals = totals_text(clerk.get("/crm/orders/", HTTP_ACCEPT_LANGUAGE="en").content.decode())
    assert "WeChat Pay 2 (1 given back) ¥25.00" in totals, totals
    totals = totals_text(clerk.get("/crm/orders/").content.decode())
    assert "2 （其中 1 笔已退回） ¥25.00" in totals, totals


def test_a_reverse_the_provider_has_not_answered_is_said_so_and_the_page_follows_it(clerk, time_machine):
    """The customer never confirms; at the end of the window WeChat Pay does not answer the reverse either. The
    page says the payment is being cancelled (not that it was), and follows it until WeChat Pay answers. Before,
    it said "cancelled" while the reverse was being retried, and never changed (found by a counter review)."""
    time_machine.move_to(timezone.now(), tick=False)
    order = new_order(clerk, "13800000001")
    scan(clerk, order, "134567890123450003")  # the customer is asked to confirm, and never does
    settle()
    faults.set_mode("wechatpay", "down")
    time_machine.shift(timedelta(seconds=61))
    settle()
    order.refresh_from_db()
    assert order.status == "expired"
    html = page_en(clerk, order)
    assert "is being cancelled at WeChat Pay or Alipay" in text_of(html)
    assert 'data-status="expired:reversing"' in html  # the page polls on

    faults.set_mode("wechatpay", "ok")
    for _ in range(6):
        time_machine.shift(timedelta(seconds=10))
        settle()
    html = page_en(clerk, order)
    assert Payment.objects.get(order=order).status == "reversed"
    assert "The payment was cancelled at WeChat Pay or Alipay" in text_of(html) and "data-poll" not in html
    status = clerk.get(f"/crm/orders/{order.order_no}/status.json").json()["status"]
    assert status == "expired"
