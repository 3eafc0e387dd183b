"""Every clerk page in zh-Hans shows no English (issue #12, item 6), and what the clerk reads says what happened
(items 10 and 11): the order in every status, the receipt, the history, subscriptions, the purchase PIN, the
payment code, and the pages a clerk meets when signed out or refused."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.test import Client

from orders.models import Order
from sandbox import faults
from tests.channels_crm.support import cancel, new_order, pay, settle, sign_in, text_of
from tests.support.english import english_words

pytestmark = pytest.mark.django_db

ZH = {"HTTP_ACCEPT_LANGUAGE": "zh-hans"}
# The language switch at the foot of every page names each language in its own words.
DATA_WORDS = frozenset({"English"})


# The sign-in refusal's technical reason, kept on the page for the CRM's engineers (under "details").
TECHNICAL = frozenset({"tech-detail"})


def chinese(client: Client, url: str, status: int = 200, **query: str) -> str:
    response = client.get(url, query, **ZH)
    assert response.status_code == status, (url, response.status_code)
    html = response.content.decode()
    words = english_words(html, allowed=DATA_WORDS, skip_classes=TECHNICAL)
    assert not words, f"{url}: {words[:10]}"
    return html


def order_page(client: Client, order: Order) -> str:
    order.refresh_from_db()
    return chinese(client, f"/crm/orders/{order.order_no}/")


def scan(client: Client, order: Order, code: str) -> None:
    client.post(f"/crm/orders/{order.order_no}/pay-code/", {"code": code})


def test_every_clerk_page_speaks_chinese(clerk, clock):
    chinese(clerk, "/crm/orders/new/")
    assert "请输入 11 位中国大陆手机号码" in text_of(
        clerk.post("/crm/orders/new/", {"product": "VIP-MONTH", "phone": "12"}, **ZH).content.decode()
    )

    # Each status of an order, as the clerk sees it.
    awaiting = new_order(clerk, "13800000001", "VIP-YEAR")
    order_page(clerk, awaiting)
    qr = new_order(clerk, "13800000001")
    pay(clerk, qr, "wechat_qr")
    settle()
    order_page(clerk, qr)
    confirming = new_order(clerk, "13800000001")
    scan(clerk, confirming, "134567890123450001")  # the customer confirms in the app
    settle()
    order_page(clerk, confirming)
    cash = new_order(clerk, "13800000001")
    pay(clerk, cash, "cash", cash_received="yes")
    settle()
    order_page(clerk, cash)  # completed
    chinese(clerk, f"/crm/orders/{cash.order_no}/receipt/")
    movie = Order.objects.get(
        order_no=clerk.post(
            "/crm/orders/new/", {"product": "PPV-MOVIE", "phone": "13800000001", "content_id": "MOVIE-1"}
        )["Location"]
        .rstrip("/")
        .rsplit("/", 1)[-1]
    )
    settle()
    pay(clerk, movie, "phone_bill")
    settle()
    assert "MOVIE-1" in text_of(order_page(clerk, movie))
    chinese(clerk, f"/crm/orders/{movie.order_no}/receipt/")
    unknown = new_order(clerk, "13900000009")
    order_page(clerk, unknown)  # rejected
    short = new_order(clerk, "13800000002", "VIP-YEAR")
    pay(clerk, short, "phone_bill")
    settle()
    order_page(clerk, short)  # failed
    cancelled = new_order(clerk, "13800000001")
    cancel(clerk, cancelled)
    order_page(clerk, cancelled)
    expired = new_order(clerk, "13800000001")
    pay(clerk, expired, "alipay_qr")
    settle()
    clock.shift(timedelta(minutes=4))
    settle()
    order_page(clerk, expired)
    declined = new_order(clerk, "13800000001")
    scan(clerk, declined, "134567890123450002")
    settle()
    order_page(clerk, declined)

    # The SMP down: pre-checking, retrying.
    faults.set_mode("smp", "down")
    waiting = new_order(clerk, "13800000001")
    assert waiting.status == "prechecking"
    order_page(clerk, waiting)
    faults.set_mode("smp", "ok")

    chinese(clerk, "/crm/orders/")
    chinese(clerk, "/crm/orders/", q="13800000001")
    chinese(clerk, "/crm/orders/", q="nothing")

    # Subscriptions: sold at the counter with automatic renewal, found by number, cancelled.
    renewing = clerk.post("/crm/orders/new/", {"product": "VIP-MONTH", "phone": "13800000001", "auto_renew": "yes"})
    renewing = Order.objects.get(order_no=renewing["Location"].rstrip("/").rsplit("/", 1)[-1])
    settle()
    order_page(clerk, renewing)
    pay(clerk, renewing, "phone_bill")
    settle()
    order_page(clerk, renewing)
    chinese(clerk, f"/crm/orders/{renewing.order_no}/receipt/")
    chinese(clerk, "/crm/subscriptions/")
    chinese(clerk, "/crm/subscriptions/", phone="13800000001")
    chinese(clerk, "/crm/subscriptions/", phone="13900000000")
    chinese(clerk, "/crm/subscriptions/", phone="12")
    renewing.refresh_from_db()
    number = renewing.subscription.subscription_no
    chinese(clerk, f"/crm/subscriptions/{number}/cancel/", phone="13800000001")
    clerk.post(f"/crm/subscriptions/{number}/cancel/", {"phone": "13800000001", "customer_asked": "yes"})
    chinese(clerk, "/crm/subscriptions/", phone="13800000001")
    chinese(clerk, f"/crm/subscriptions/{number}/cancel/", phone="13800000001")

    # The purchase PIN: none, set, wrong input.
    chinese(clerk, "/crm/purchase-pin/")
    chinese(clerk, "/crm/purchase-pin/", tv_account="tv1001")
    clerk.post(
        "/crm/purchase-pin/",
        {"tv_account": "tv1001", "action": "set", "pin": "1357", "pin_again": "1357", "customer_present": "yes"},
    )
    chinese(clerk, "/crm/purchase-pin/", tv_account="tv1001")
    chinese(clerk, "/crm/purchase-pin/", tv_account="!!")

    # Signed out, not a clerk, a refused ticket.
    chinese(Client(), "/crm/orders/new/", status=401)
    chinese(Client(), "/crm/sso/", status=403, ticket="forged")


def test_an_unknown_mobile_number_is_said_to_be_unknown_to_the_smp(clerk):
    order = new_order(clerk, "13900000009")
    text = text_of(order_page(clerk, order))
    assert "业管平台中没有与该手机号码绑定的电视账号" in text and "电视账号不存在" not in text
    assert order.failure_code == "account_not_found"  # the code stays the contract's (§1)


def test_while_the_smp_is_down_the_page_says_it_is_retrying_and_the_clerk_can_cancel(clerk, clock):
    faults.set_mode("smp", "down")
    order = new_order(clerk, "13800000001")
    status = json.loads(clerk.get(f"/crm/orders/{order.order_no}/status.json").content)
    assert status["status"] == "prechecking" and status["retries"] >= 1
    text = text_of(order_page(clerk, order))
    assert "业管平台暂未响应" in text and "取消此订单" in text

    assert cancel(clerk, order).status_code == 302
    order.refresh_from_db()
    assert order.status == "cancelled"
    faults.set_mode("smp", "ok")
    clock.shift(timedelta(seconds=30))
    settle()  # the pre-check's retry finds the order cancelled and leaves it so
    order.refresh_from_db()
    assert order.status == "cancelled"


def test_a_charge_and_a_cancel_are_confirmed_first(clerk):
    order = new_order(clerk, "13800000001", "VIP-YEAR")
    html = order_page(clerk, order)
    assert 'name="charge_agreed"' in html and "客户同意从 138****0001 的话费中扣除 ¥248.00" in text_of(html)

    pay(clerk, order, "phone_bill", charge_agreed="")
    order.refresh_from_db()
    assert order.status == "awaiting_payment"  # not charged without the tick
    assert clerk.post(f"/crm/orders/{order.order_no}/cancel/").status_code == 302
    order.refresh_from_db()
    assert order.status == "awaiting_payment"  # not cancelled without the confirmation

    cancel(clerk, order)
    order.refresh_from_db()
    assert order.status == "cancelled"


def test_a_per_view_product_is_sold_at_the_counter_for_the_programme_named(clerk):
    page = text_of(chinese(clerk, "/crm/orders/new/"))
    assert "单片点播" in page and "节目编号" in page
    refused = clerk.post("/crm/orders/new/", {"product": "PPV-MOVIE", "phone": "13800000001"}, **ZH)
    assert refused.status_code == 200 and "请输入客户要观看的节目编号" in text_of(refused.content.decode())

    placed = clerk.post("/crm/orders/new/", {"product": "PPV-MOVIE", "phone": "13800000001", "content_id": "MOVIE-9"})
    order = Order.objects.get(order_no=placed["Location"].rstrip("/").rsplit("/", 1)[-1])
    assert (order.content_id, order.amount_fen) == ("MOVIE-9", 500)
    # A period product takes no programme, whatever the form sent.
    placed = clerk.post("/crm/orders/new/", {"product": "VIP-MONTH", "phone": "13800000001", "content_id": "X"})
    assert Order.objects.get(order_no=placed["Location"].rstrip("/").rsplit("/", 1)[-1]).content_id == ""


def test_the_clerk_pages_say_the_same_in_english(clerk):
    """The English pages name the same things (the language switch at the foot of every page)."""
    order = new_order(clerk, "13900000009")
    text = text_of(clerk.get(f"/crm/orders/{order.order_no}/", HTTP_ACCEPT_LANGUAGE="en").content.decode())
    assert "The SMP knows no TV account bound to this mobile number." in text


@pytest.fixture
def clerk(demo) -> Client:
    return sign_in()
