"""Every flow of the TV pages (docs/interfaces.md §9) at 1280x720, by the remote control's keys alone:
arrows, OK (Enter), Back (Backspace or Escape), digits. No click, no pointer. Screenshots: test-artifacts/tv/."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import requests
from django.utils import timezone, translation

from billing.models import Payment
from epg_api.models import TvSession
from ipvas.actors import Actor, ActorKind
from lifecycle.paying import order_cancel
from lifecycle.placing import order_create
from orders.constants import FailureCode, OrderStatus
from orders.models import Order, PurchasePinEvent
from tests.support.page_clock import stop_the_page_clock
from tests.support.tasks import run_due_tasks
from tests.tv.support import (
    SHOTS,
    active_id,
    decode_qr,
    focused,
    new_session,
    open_tv,
    press,
    press_to_load,
    return_url,
    sandbox_post,
    type_digits,
    wait_for,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def choose(page, action: str, key: str = "ArrowDown") -> None:  # type: ignore[no-untyped-def]
    """Move the focus with ``key`` until the item ``action`` has it (at most ten presses)."""
    for _ in range(10):
        if focused(page) == action:
            return
        press(page, key)
    raise AssertionError(f"{action} never got the focus; it is on {focused(page)!r}")


def start_order(page, method: str) -> None:  # type: ignore[no-untyped-def]
    """On the payment-method screen: choose ``method``, then wait for the confirmation screen."""
    choose(page, f"method:{method}")
    press_to_load(page)
    wait_for(page, ".screen-confirm")


# --- the purchases ---------------------------------------------------------------------------


def test_per_view_paid_by_phone_bill(site, epg_key, tv, shot):
    page = tv
    page.goto(new_session(site, epg_key, content_id="MOVIE-001"))
    page.locator(".screen-home").wait_for()
    assert focused(page) == "product:PPV-MOVIE"
    assert [h.inner_text() for h in page.locator(".group h2").all()] == ["按次", "包月", "包季", "包年"]
    shot(page, "1-products")

    press(page, "ArrowRight")
    assert focused(page) == "product:VIP-MONTH"  # the nearest item to the right
    press(page, "ArrowLeft")
    assert focused(page) == "product:PPV-MOVIE"
    press_to_load(page)
    page.locator(".screen-product").wait_for()
    assert "MOVIE-001" in page.inner_text("main")
    assert page.locator("[data-action=auto-renew]").count() == 0  # per view: nothing renews
    shot(page, "2-methods")

    start_order(page, "phone_bill")
    assert focused(page) == "confirm"
    shot(page, "3-confirm")

    press_to_load(page)
    wait_for(page, ".screen-success")
    assert focused(page) == "watch"
    order = Order.objects.get()
    assert order.order_no in page.inner_text("main")
    shot(page, "4-success")

    press_to_load(page)
    assert page.url == f"{return_url(site)}&result=success&order_no={order.order_no}"
    assert (order.channel, order.content_id, order.payment_method) == ("epg", "MOVIE-001", "phone_bill")
    assert page.console_errors == []


def test_monthly_by_wechat_qr_scanned_from_the_screen(site, epg_key, tv, shot):
    page = tv
    page.goto(new_session(site, epg_key))
    page.locator(".screen-home").wait_for()
    assert page.locator(".kind-per_view").count() == 0  # no content named: no per-view products
    assert focused(page) == "product:VIP-MONTH"
    press_to_load(page)
    toggle = page.locator("[data-action=auto-renew]")
    assert toggle.get_attribute("aria-checked") == "false"  # never pre-selected
    assert focused(page) == "method:wechat_qr"
    shot(page, "1-methods")

    start_order(page, "wechat_qr")
    shot(page, "2-confirm")
    press_to_load(page)
    wait_for(page, ".screen-qr")
    page.wait_for_function("() => document.querySelector('img.qr').naturalWidth > 0")
    order = Order.objects.get()
    payment = Payment.objects.get(order=order, method="wechat_qr")
    text = page.inner_text("main")
    assert "¥25.00" in text and order.order_no in text
    assert page.locator("[data-left]").inner_text().startswith(("02:", "03:"))
    screen = shot(page, "3-qr")

    assert decode_qr(screen.read_bytes()) == payment.qr_code_url  # what a phone's camera reads off the TV
    paid = sandbox_post(site, "wechatpay/pay/", {"out_trade_no": payment.out_trade_no})
    assert paid["delivered"] is True

    wait_for(page, ".screen-success")
    assert focused(page) == "watch"
    shot(page, "4-success")
    order.refresh_from_db()
    assert (order.status, order.origin_id, order.auto_renew) == ("completed", order.origin_id, False)
    assert page.console_errors == []


def test_monthly_renewing_automatically_confirmed_by_sms(site, epg_key, tv, shot):
    page = tv
    page.goto(new_session(site, epg_key))
    page.locator(".screen-home").wait_for()
    press_to_load(page)
    press(page, "ArrowUp")
    assert focused(page) == "auto-renew"
    assert "¥25.00" in page.inner_text(".terms")  # what turning it on means, before it is turned on
    press_to_load(page)
    assert focused(page) == "auto-renew"
    terms = page.inner_text(".terms")
    assert "¥25.00" in terms and "TD" in terms and "5" in terms  # all its terms, in plain words
    assert page.locator("[data-action=auto-renew]").get_attribute("aria-checked") == "true"
    methods = page.locator("[data-action^='method:']").evaluate_all("els => els.map(e => e.dataset.action)")
    # Only what renews (Order.methods_allowed): the QR codes sign the deduction contract in the same scan.
    assert methods == ["method:wechat_qr", "method:alipay_qr", "method:phone_bill", "method:phone_bill_sms"]
    shot(page, "1-auto-renew-on")

    start_order(page, "phone_bill_sms")
    assert "TD" in page.inner_text(".terms")
    shot(page, "2-confirm")
    press_to_load(page)
    wait_for(page, ".screen-sms")
    text = page.inner_text("main")
    assert "138****0001" in text and "Y" in text
    shot(page, "3-sms")

    sandbox_post(site, "sms/reply/", {"from": "13800000001", "text": "Y"})
    wait_for(page, ".screen-success")
    order = Order.objects.get()
    assert order.auto_renew and order.subscription is not None
    shot(page, "4-success")
    assert page.console_errors == []


def test_a_session_for_one_product_starts_on_its_payment_method_screen(site, epg_key, tv, shot):
    page = tv
    page.goto(new_session(site, epg_key, product_code="PPV-MOVIE", content_id="MOVIE-002"))
    page.locator(".screen-product").wait_for()
    assert "MOVIE-002" in page.inner_text("main")
    shot(page, "1-methods")

    press_to_load(page, "Backspace")  # Back on the first screen: back to the EPG
    assert page.url == f"{return_url(site)}&result=cancel"


def test_a_waiting_screen_asks_about_its_order_at_the_configured_rate(site, epg_key, tv, settings):
    """TV_POLL_MILLISECONDS: the screen asks about its order that often, and moves on at the first answer that
    needs another screen. The page's clock is Playwright's and stands still unless the test moves it."""
    settings.TV_POLL_MILLISECONDS = 1500  # the default (the suite runs with 300)
    page = tv
    asks: list[str] = []
    page.on("request", lambda request: asks.append(request.url) if request.url.endswith("/status.json") else None)
    stop_the_page_clock(page.context)
    page.goto(new_session(site, epg_key, product_code="VIP-MONTH"))
    page.locator(".screen-product").wait_for()
    choose(page, "method:phone_bill")
    press_to_load(page)
    page.locator(".screen-checking").wait_for()
    assert page.locator("body").get_attribute("data-poll-every") == "1500"

    page.clock.run_for(1490)
    page.wait_for_timeout(300)  # real time: an ask started by then would have been seen
    assert asks == []
    page.clock.run_for(20)  # 1.51 s: the first ask; the pre-check has not run, the screen stays
    page.wait_for_timeout(300)
    assert len(asks) == 1 and page.locator(".screen-checking").count() == 1

    run_due_tasks()  # the pre-check passes
    page.clock.run_for(1490)
    page.wait_for_timeout(300)
    assert len(asks) == 1 and page.locator(".screen-checking").count() == 1
    page.clock.run_for(20)  # the second ask: the order is waiting for the confirmation
    page.locator(".screen-confirm").wait_for(timeout=5000)


def test_back_is_not_undone_by_an_answer_that_comes_while_the_page_is_being_left(site, epg_key, tv):
    """The viewer presses Back on the QR screen; before the next page comes, the screen's ask about its order
    answers that the order needs another screen. That answer must not reload the screen (which would cancel
    the way back and show the cancelled order): the viewer lands where Back leads, the payment methods."""
    page = tv
    stop_the_page_clock(page.context)
    page.goto(new_session(site, epg_key, product_code="VIP-MONTH"))
    page.locator(".screen-product").wait_for()
    choose(page, "method:wechat_qr")
    press_to_load(page)
    run_due_tasks()  # the pre-check passes
    page.clock.run_for(310)  # the checking screen asks, and moves on
    page.locator(".screen-confirm").wait_for(timeout=5000)
    press_to_load(page)
    page.locator(".screen-qr").wait_for()
    order = Order.objects.get()

    asked, left = [], []  # requests held on their way: the screen's ask about its order, and the way back
    page.route("**/status.json", lambda route: asked.append(route))
    page.route("**/back/", lambda route: left.append(route))
    page.clock.run_for(310)  # the screen asks about its order...
    page.wait_for_timeout(300)  # (real time, for the request to reach its route)
    assert len(asked) == 1
    press(page, "Backspace")  # ...and the viewer presses Back before the answer comes
    page.wait_for_timeout(300)
    assert len(left) == 1
    order_cancel(order_id=order.pk, actor=Actor.system("test"))  # what the way back does at the server
    asked[0].continue_()  # the answer: the order needs another screen
    page.wait_for_timeout(500)
    try:
        left[0].continue_()
    except Exception:  # noqa: S110  the page reloaded meanwhile and the way back was cancelled: checked below
        pass
    page.locator(".screen-product").wait_for(timeout=5000)
    assert page.locator(".screen-product").count() == 1


# --- Back, everywhere ------------------------------------------------------------------------


def test_back_everywhere(site, epg_key, tv, shot):
    page = tv
    page.goto(new_session(site, epg_key))
    page.locator(".screen-home").wait_for()
    press_to_load(page)
    page.locator(".screen-product").wait_for()
    press_to_load(page, "Escape")  # product -> products
    page.locator(".screen-home").wait_for()
    assert focused(page) == "product:VIP-MONTH"

    press_to_load(page)
    start_order(page, "wechat_qr")
    press_to_load(page, "Backspace")  # confirmation -> methods, the order cancelled
    page.locator(".screen-product").wait_for()
    assert Order.objects.get().status == OrderStatus.CANCELLED

    start_order(page, "alipay_qr")
    press_to_load(page)
    wait_for(page, ".screen-qr")
    shot(page, "1-alipay-qr")
    press_to_load(page, "Escape")  # QR -> methods, the order cancelled
    page.locator(".screen-product").wait_for()
    assert Order.objects.order_by("-pk").first().status == OrderStatus.CANCELLED

    start_order(page, "phone_bill_sms")
    press_to_load(page)
    wait_for(page, ".screen-sms")
    press_to_load(page, "Backspace")  # SMS -> methods, the order cancelled
    page.locator(".screen-product").wait_for()
    assert Order.objects.order_by("-pk").first().status == OrderStatus.CANCELLED

    press_to_load(page, "Backspace")
    page.locator(".screen-home").wait_for()
    press_to_load(page, "Backspace")  # the first screen -> the EPG, cancelled
    assert page.url == f"{return_url(site)}&result=cancel"
    assert page.console_errors == []


# --- failures ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tv_account", "method", "code"),
    [
        ("tv1003", "phone_bill", "account_suspended"),
        ("tv1004", "phone_bill", "account_in_arrears"),
        ("tv9999", "phone_bill", "account_not_found"),
        ("tv1002", "phone_bill", "insufficient_balance"),
    ],
)
def test_a_refusal_shows_its_reason_and_the_way_back(site, epg_key, tv, shot, tv_account, method, code):
    page = tv
    page.goto(new_session(site, epg_key, tv_account=tv_account))
    page.locator(".screen-home").wait_for()
    press_to_load(page)
    choose(page, f"method:{method}")
    press_to_load(page)
    wait_for(page, ".screen-confirm, .screen-failure")
    if page.locator(".screen-confirm").count():
        press_to_load(page)
    wait_for(page, ".screen-failure")
    order = Order.objects.get()
    assert order.failure_code == code
    with translation.override("zh-hans"):
        assert order.failure_message in page.inner_text(".reason")
    assert focused(page) == "home"
    shot(page, "1-failure")
    press_to_load(page)
    page.locator(".screen-home").wait_for()
    assert page.console_errors == []


def test_an_sms_declined(site, epg_key, tv, shot):
    page = tv
    page.goto(new_session(site, epg_key))
    page.locator(".screen-home").wait_for()
    press_to_load(page)
    start_order(page, "phone_bill_sms")
    press_to_load(page)
    wait_for(page, ".screen-sms")
    sandbox_post(site, "sms/reply/", {"from": "13800000001", "text": "N"})
    wait_for(page, ".screen-failure")
    assert "短信" in page.inner_text(".reason")
    shot(page, "1-declined")
    assert Order.objects.get().failure_code == "sms_declined"


def test_qr_timeout_counts_down_then_fails(site, epg_key, tv, shot, settings):
    settings.PAYMENT_WINDOW_SECONDS = 3
    page = tv
    page.goto(new_session(site, epg_key))
    page.locator(".screen-home").wait_for()
    press_to_load(page)
    start_order(page, "wechat_qr")
    press_to_load(page)
    page.locator(".screen-qr").wait_for()
    page.wait_for_function("() => document.querySelector('[data-left]').textContent === '00:00'", timeout=8_000)
    assert page.inner_text("[data-left-label]") == "已到时间，正在确认支付结果…"
    shot(page, "1-countdown-ended")
    wait_for(page, ".screen-failure")
    assert "订单未在规定时间内支付。" in page.inner_text(".reason")
    assert focused(page) == "home"
    shot(page, "2-expired")
    assert page.console_errors == []


def test_every_failure_code_has_its_screen(site, epg_key, tv, shot):
    """Each §1 failure code, on the result screen of an order of this session: its message and a way back."""
    page = tv
    page.goto(new_session(site, epg_key))
    page.locator(".screen-home").wait_for()
    client_id = TvSession.objects.get().client_id
    for code in FailureCode.values:
        order = order_create(
            channel="epg", product_code="VIP-MONTH", tv_account="tv1001", actor=Actor(ActorKind.EPG_CLIENT, client_id)
        )
        status = OrderStatus.REJECTED if code.startswith("account") else OrderStatus.FAILED
        Order.objects.filter(pk=order.pk).update(status=status, failure_code=code, deadline_at=None)
        page.goto(f"{site}/tv/orders/{order.order_no}/")
        page.locator(".screen-failure").wait_for()
        with translation.override("zh-hans"):
            assert page.inner_text(".reason") == str(FailureCode(code).label)  # the §1 message, in Chinese
        assert focused(page) == "home"
        shot(page, code)
    assert page.console_errors == []


# --- the purchase PIN ----------------------------------------------------------------------------


def test_purchase_pin_right_wrong_and_locked(site, epg_key, tv, shot):
    sandbox_post(site, "accounts/tv1001/purchase-pin/", {"pin": "1234"})
    page = tv
    page.goto(new_session(site, epg_key))
    page.locator(".screen-home").wait_for()
    press_to_load(page)
    start_order(page, "wechat_qr")
    assert active_id(page) == "pin"  # the PIN first, before any payment
    shot(page, "1-pin-asked")

    type_digits(page, "1111")
    assert focused(page) == "confirm"  # four digits typed: OK is next
    press_to_load(page)
    page.locator("#pin-error").wait_for()
    assert "错误" in page.inner_text("#pin-error")
    shot(page, "2-pin-wrong")

    type_digits(page, "12")
    press(page, "Backspace")  # deletes a digit, does not go back
    assert page.locator("#pin").input_value() == "1"
    type_digits(page, "234")
    press_to_load(page)
    wait_for(page, ".screen-qr")
    shot(page, "3-pin-right")

    press_to_load(page, "Backspace")
    start_order(page, "phone_bill")
    for _ in range(5):
        type_digits(page, "9999")
        press_to_load(page)
    page.locator(".alert", has_text="锁定").wait_for()
    assert focused(page) == "home"
    assert page.locator("#pin").count() == 0
    shot(page, "4-locked")
    actions = list(PurchasePinEvent.objects.order_by("at", "pk").values_list("action", flat=True))
    assert actions == ["set", "wrong", "wrong", "wrong", "wrong", "wrong", "wrong", "locked"]
    assert Order.objects.filter(status__in=["provisioning", "completed"]).count() == 0
    assert page.console_errors == []


# --- the session --------------------------------------------------------------------------------


def test_launch_url_once_then_used_expired_unknown(site, epg_key, browser, shot):
    url = new_session(site, epg_key)
    first = open_tv(browser)
    assert first.goto(url).status == 200
    first.locator(".screen-home").wait_for()

    again = open_tv(browser)
    answer = again.goto(url)
    assert answer.status == 410
    assert "该链接已使用过" in again.inner_text("h1")
    assert focused(again) == "back"
    shot(again, "1-used")
    press_to_load(again)
    assert again.url == f"{return_url(site)}&result=cancel"

    late = new_session(site, epg_key)
    TvSession.objects.filter(launched_at__isnull=True).update(launch_expires_at=timezone.now() - timedelta(seconds=1))
    answer = again.goto(late)
    assert answer.status == 410 and "该链接已过期" in again.inner_text("h1")
    shot(again, "2-expired")

    answer = again.goto(f"{site}/tv/launch/not-a-token/")
    assert answer.status == 403 and "该链接无效" in again.inner_text("h1")
    shot(again, "3-unknown")

    TvSession.objects.filter(launched_at__isnull=False).update(expires_at=timezone.now() - timedelta(seconds=1))
    answer = first.goto(f"{site}/tv/")
    assert answer.status == 403 and "本次购买已结束" in first.inner_text("h1")
    shot(first, "4-session-ended")
    first.context.close()
    again.context.close()


def test_the_session_cannot_reach_another_accounts_order(site, epg_key, tv, shot):
    other = requests.post(
        f"{site}/api/epg/v1/orders/",
        data=json.dumps({"tv_account": "tv1002", "product_code": "VIP-MONTH"}),
        headers={"Authorization": f"Api-Key {epg_key}", "Content-Type": "application/json"},
        timeout=10,
    ).json()["order_no"]
    page = tv
    page.goto(new_session(site, epg_key, tv_account="tv1001"))
    page.locator(".screen-home").wait_for()
    answer = page.goto(f"{site}/tv/orders/{other}/")
    assert answer.status == 404
    assert "tv1002" not in page.content() and "没有找到该订单" in page.inner_text("main")
    shot(page, "1-not-found")
    assert page.request.get(f"{site}/tv/orders/{other}/status.json").status == 404
    assert page.request.get(f"{site}/tv/orders/{other}/qr.png").status == 404


# --- other screens, languages and weights ---------------------------------------------------------


@pytest.mark.parametrize("size", [(1920, 1080), (720, 576)], ids=["1080p", "576p"])
def test_screens_scale_with_the_tv(site, epg_key, browser, shot, size):
    page = open_tv(browser, size)
    page.goto(new_session(site, epg_key, content_id="MOVIE-001"))
    page.locator(".screen-home").wait_for()
    root = page.evaluate("() => parseFloat(getComputedStyle(document.documentElement).fontSize)")
    assert root == pytest.approx(24 * size[0] / 1280 if size[0] / size[1] <= 16 / 9 else 24 * size[1] / 720, 0.02)
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
    shot(page, "1-products")
    press_to_load(page)
    page.locator(".screen-product").wait_for()
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
    shot(page, "2-methods")
    page.context.close()


def test_english_with_locale_en(site, epg_key, tv, shot):
    page = tv
    page.goto(new_session(site, epg_key, locale="en", content_id="MOVIE-001"))
    page.locator(".screen-home").wait_for()
    assert page.inner_text("h1") == "Choose a product"
    assert page.evaluate("() => document.documentElement.lang") == "en"
    shot(page, "1-products")
    press_to_load(page)
    assert "Pay with" in page.inner_text("main")
    shot(page, "2-methods")


WEIGHT = """() => {
  const nav = performance.getEntriesByType('navigation')[0];
  // What the screen loads, not its polls of the order (a few dozen bytes each).
  const loaded = performance.getEntriesByType('resource').filter(e => e.initiatorType !== 'xmlhttprequest');
  const parts = [nav, ...loaded];
  const name = e => e.name.replace(location.origin, '') + ' ' + e.decodedBodySize;
  return {bytes: parts.reduce((n, e) => n + e.decodedBodySize, 0), files: parts.length, names: parts.map(name)};
}"""


def test_each_screen_is_light(site, epg_key, tv):
    """The total weight of each screen (HTML, style, script, images), written to test-artifacts/tv/weights.txt."""
    page = tv
    weights = {}

    def weigh(name: str) -> None:
        page.wait_for_load_state("load")
        weights[name] = page.evaluate(WEIGHT)

    page.goto(new_session(site, epg_key, content_id="MOVIE-001"))
    page.locator(".screen-home").wait_for()
    weigh("products")
    press_to_load(page)
    weigh("payment method")
    start_order(page, "wechat_qr")
    weigh("confirm")
    press_to_load(page)
    wait_for(page, ".screen-qr")
    page.wait_for_function("() => document.querySelector('img.qr').naturalWidth > 0")
    weigh("QR code")
    press_to_load(page, "Backspace")
    start_order(page, "phone_bill_sms")
    press_to_load(page)
    wait_for(page, ".screen-sms")
    weigh("SMS")
    sandbox_post(site, "sms/reply/", {"from": "13800000001", "text": "Y"})
    wait_for(page, ".screen-success")
    weigh("result")

    lines = [
        f"{name}: {w['bytes']} bytes in {w['files']} files ({', '.join(w['names'])})" for name, w in weights.items()
    ]
    (SHOTS / "weights.txt").write_text("\n".join(lines) + "\n")
    for name, weight in weights.items():
        assert weight["bytes"] < 30_000, (name, weight)
        assert weight["files"] <= 5, (name, weight)  # the page, its style, its script, the QR code, the favicon


def test_ok_pressed_twice_on_a_payment_method_places_one_order(site, epg_key, tv, monkeypatch):
    """The remote's OK bounces, or is pressed again while the next screen is slow to come: each press used to
    place an order (both pre-checked at the SMP, one left waiting for a payment); the second is the first
    (lifecycle.placing.order_create_or_repeat). Placing takes 0.4 s here, so that the race is not left to
    chance (found by a TV review)."""
    import time

    from lifecycle import placing

    create = placing.order_create

    def slow_order_create(**kwargs):  # type: ignore[no-untyped-def]
        time.sleep(0.4)
        return create(**kwargs)

    monkeypatch.setattr(placing, "order_create", slow_order_create)
    tv.goto(new_session(site, epg_key, product_code="VIP-MONTH"))
    tv.locator(".screen-product").wait_for()
    assert focused(tv) == "method:wechat_qr"
    press(tv, "Enter")
    tv.wait_for_timeout(100)
    press(tv, "Enter")  # OK again: the next screen has not come yet
    tv.locator(".screen-checking, .screen-confirm").first.wait_for()
    tv.wait_for_timeout(1000)

    assert Order.objects.count() == 1, [(o.order_no, o.status) for o in Order.objects.all()]


FOCUSED_VISIBLE = """() => {
  const el = document.activeElement;
  const r = el.getBoundingClientRect();
  const inside = r.top >= 0 && r.left >= 0 && r.bottom <= window.innerHeight && r.right <= window.innerWidth;
  // what the viewer sees at the item's centre and near its bottom edge: the item itself, not something on top
  const x = r.left + r.width / 2;
  const hits = [r.top + r.height / 2, r.bottom - 2].map(y => {
    const top = document.elementFromPoint(x, y);
    return !!top && (top === el || el.contains(top));
  });
  return {inside, uncovered: hits.every(Boolean), rect: [r.top, r.bottom], vh: window.innerHeight,
          action: el.getAttribute('data-action')};
}"""


@pytest.mark.parametrize("locale", ["zh-Hans", "en"])
def test_every_payment_method_is_visible_when_focused_with_auto_renew_on(site, epg_key, tv, locale):
    """§9: "the focused item ... is always visible". With automatic renewal on, the last payment method sat under
    the fixed key help (and in English below the screen); the content now scrolls between header and key help
    (found by a TV review)."""
    page = tv
    page.goto(new_session(site, epg_key, product_code="VIP-MONTH", locale=locale))
    page.locator(".screen-product").wait_for()
    press(page, "ArrowUp")
    assert focused(page) == "auto-renew"
    press_to_load(page)  # turn automatic renewal on
    assert page.locator("[data-action=auto-renew]").get_attribute("aria-checked") == "true"
    seen = []
    for _ in range(8):
        press(page, "ArrowDown")
        state = page.evaluate(FOCUSED_VISIBLE)
        seen.append(state)
        if state["action"] == "method:phone_bill_sms":
            break
    assert seen[-1]["action"] == "method:phone_bill_sms", seen
    hidden = [s for s in seen if not (s["inside"] and s["uncovered"])]
    assert hidden == [], hidden
