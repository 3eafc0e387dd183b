"""The TV pages driven with the remote's keys in Chromium at 1280x720 (a review of 2026-12-07): Back after
paying in the phone, a per-view order left open, the renewal switch's words. The fixtures are those of
tests/tv (the live server with the demo data, no worker: the test runs the due work itself)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import requests
from django.utils import timezone

from orders.constants import OrderStatus
from orders.models import Order
from tests.support.tasks import run_due_tasks
from tests.tv.support import focused, new_session, press, press_to_load, sandbox_post, to_qr_screen, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _order_no(page) -> str:  # type: ignore[no-untyped-def]
    return page.url.split("/orders/")[1].split("/")[0]


def test_back_on_the_qr_screen_after_paying_shows_the_purchase_not_the_methods_again(site, epg_key, tv, shot):
    """The viewer pays with the phone and presses Back before the screen's next poll (1.5 s). The order is
    paid, so Back cannot cancel it: the purchase's own screen shows. Before, the viewer was sent to the
    payment-method screen with no word of the purchase, and two more OKs bought the product a second time."""
    page = tv
    order_no = to_qr_screen(page, site, epg_key)
    # The poll's answer is held up (a slow network, or simply the 1.5 s between two polls): the screen still
    # shows the QR code when the viewer presses Back.
    page.route("**/status.json", lambda route: route.abort())
    sandbox_post(site, "wechatpay/pay/", {"out_trade_no": order_no})  # paid in WeChat
    run_due_tasks()
    assert page.locator(".screen-qr").count() == 1
    press_to_load(page, "Escape")  # Back
    page.unroute("**/status.json")
    shot(page, "after-back")
    assert Order.objects.get(order_no=order_no).status == OrderStatus.COMPLETED
    # Expected: the paid order's own screen (success, with Watch now), not a fresh payment-method screen.
    assert page.locator(".screen-product").count() == 0, "a paid order's Back shows the payment methods again"

    page.locator(".screen-success").wait_for()


def test_an_abandoned_per_view_order_is_not_called_already_bought(site, epg_key, tv, shot, time_machine):
    """A per-view order left waiting for payment (the viewer pressed the remote's Home key on the confirm or
    QR screen, or the EPG API placed one) blocks the same content (§1: one in-flight per-view order per
    account and content): the next is refused already_subscribed, and its message now says an earlier order
    is still open. Before, it said the viewer could already watch the film, though nothing was paid."""
    headers = {"Authorization": f"Api-Key {epg_key}"}
    body = {"tv_account": "tv1001", "product_code": "PPV-MOVIE", "content_id": "MOVIE-LEFT"}
    answer = requests.post(f"{site}/api/epg/v1/orders/", json=body, headers=headers, timeout=10)
    assert answer.status_code == 201, answer.text
    run_due_tasks()
    assert Order.objects.get(order_no=answer.json()["order_no"]).status == OrderStatus.AWAITING_PAYMENT
    # A minute later (past placing.REPEAT_WINDOW, within ORDER_IDLE_SECONDS) the viewer tries again on the TV.
    time_machine.move_to(timezone.now() + timedelta(seconds=60), tick=True)

    page = tv
    page.goto(new_session(site, epg_key, content_id="MOVIE-LEFT", product_code="PPV-MOVIE"))
    page.locator(".screen-product").wait_for()
    press_to_load(page)
    wait_for(page, ".screen-confirm, .screen-failure")
    shot(page, "second-try")
    text = page.inner_text("main")
    assert "可直接观看" not in text and "无需重复购买" not in text, f"told the film is already bought: {text}"
    assert "已有一笔订单正在进行中" in text, text


def test_the_auto_renew_switch_says_on_not_activated(site, epg_key, tv, shot):
    """The switch reads 开 / 关. Before, the project catalogue's "On" = 已开通 ("activated", for the clerk's
    order page; LOCALE_PATHS wins over an app's locale) made the consent screen read 自动续费 已开通, as if a
    subscription were active already."""
    page = tv
    page.goto(new_session(site, epg_key, product_code="VIP-MONTH"))
    page.locator(".screen-product").wait_for()
    press(page, "ArrowUp")
    assert focused(page) == "auto-renew"
    press_to_load(page)
    page.locator("[data-action=auto-renew][aria-checked=true]").wait_for()
    shot(page, "renew-on")
    state = page.locator("[data-action=auto-renew] .state").inner_text().strip()
    assert state == "开", f"the switch reads {state!r}"


def test_ok_on_the_qr_screen_checks_again_and_gives_nothing_up(site, epg_key, tv, shot):
    """The QR screen's focused item checks again: an impatient OK keeps the order (Back, the remote's key,
    still cancels it). Before, Back was the focused item, and OK cancelled the order the viewer was paying."""
    page = tv
    order_no = to_qr_screen(page, site, epg_key)
    assert focused(page) == "refresh"
    shot(page, "qr-focus")

    press_to_load(page)  # OK

    wait_for(page, ".screen-qr")
    assert _order_no(page) == order_no
    assert Order.objects.get(order_no=order_no).status == OrderStatus.PAYMENT_PENDING
    press_to_load(page, "Escape")  # Back
    assert Order.objects.get(order_no=order_no).status == OrderStatus.CANCELLED
