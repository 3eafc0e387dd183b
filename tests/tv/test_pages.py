"""The TV pages without a browser: the session binds them to one account and one EPG client, they carry the
framing rules of that client, their forms carry the session's token, every actionable item names its action,
and every shipped script is ES5 (old set-top box browsers)."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import pyjsparser
import pytest
from django.test import Client

from epg_api.models import EpgClient, TvSession
from orders.models import Order
from tests.epg_api.support import Api, new_api_key, settle

TV_STATIC = Path(__file__).resolve().parents[2] / "tv" / "static" / "tv"
BACK = "https://epg.example.com/back"


def launch(api: Api, **body: object) -> Client:
    """A set-top box's browser with the session open."""
    answer = api.post("/tv-sessions/", {"tv_account": "tv1001", "return_url": BACK, **body})
    assert answer.status_code == 201, answer.content
    browser = Client()
    assert browser.get(urlsplit(answer.json()["url"]).path).status_code == 302
    return browser


def token_of(html: str) -> str:
    return re.search(r'name="token" value="([0-9a-f]+)"', html).group(1)


def place(browser: Client, method: str = "wechat_qr", product: str = "VIP-MONTH") -> Order:
    page = browser.get(f"/tv/products/{product}/").content.decode()
    answer = browser.post(f"/tv/products/{product}/order/", {"method": method, "token": token_of(page)})
    assert answer.status_code == 302, answer.content.decode()[:500]
    settle()
    return Order.objects.order_by("-pk").first()


# --- the session binds the pages -------------------------------------------------------------------


def test_orders_made_on_the_tv_are_the_clients_epg_orders(api, other_api):
    browser = launch(api)
    order = place(browser)

    assert (order.channel, order.tv_account, order.origin_kind) == ("epg", "tv1001", "epg_client")
    assert order.origin_id == TvSession.objects.get().client_id
    assert api.get(f"/orders/{order.order_no}/").status_code == 200
    assert other_api.get(f"/orders/{order.order_no}/").status_code == 404


def test_the_session_reaches_only_its_own_accounts_orders_of_its_own_client(api, other_api):
    browser = launch(api)
    others = [
        api.create("tv1002").json()["order_no"],  # same client, another account
        other_api.create("tv1001").json()["order_no"],  # same account, another client
    ]
    settle()
    for order_no in others:
        for path in ("", "status.json", "qr.png"):
            assert browser.get(f"/tv/orders/{order_no}/{path}").status_code == 404
        page = browser.get("/tv/products/VIP-MONTH/").content.decode()
        answer = browser.post(f"/tv/orders/{order_no}/confirm/", {"method": "phone_bill", "token": token_of(page)})
        assert answer.status_code == 404
    assert Order.objects.filter(status="awaiting_payment").count() == 2
    assert Client().get("/tv/").status_code == 403  # no cookie, no pages


def test_a_form_without_the_sessions_token_is_refused(api):
    browser = launch(api)
    other = launch(api)
    foreign = token_of(other.get("/tv/products/VIP-MONTH/").content.decode())

    for token in ("", "0" * 32, foreign):
        answer = browser.post("/tv/products/VIP-MONTH/order/", {"method": "phone_bill", "token": token})
        assert answer.status_code == 403
    assert not Order.objects.exists()


def test_a_session_for_one_product_stays_on_it(api):
    browser = launch(api, product_code="VIP-YEAR")

    assert 'data-action="product:' not in browser.get("/tv/").content.decode()  # the method screen first
    assert browser.get("/tv/products/VIP-MONTH/")["Location"] == "/tv/"
    page = browser.get("/tv/").content.decode()
    answer = browser.post("/tv/products/VIP-MONTH/order/", {"method": "phone_bill", "token": token_of(page)})
    assert answer.status_code == 404 and not Order.objects.exists()


def test_per_view_only_for_the_content_named(api):
    browser = launch(api)

    assert "PPV-MOVIE" not in browser.get("/tv/").content.decode()
    assert browser.get("/tv/products/PPV-MOVIE/").status_code == 404


def test_auto_renew_is_off_until_turned_on_and_offers_what_renews(api):
    browser = launch(api)
    off = browser.get("/tv/products/VIP-MONTH/").content.decode()
    on = browser.get("/tv/products/VIP-MONTH/?renew=1").content.decode()

    assert 'aria-checked="false"' in off and 'name="renew"' not in off
    assert 'aria-checked="true"' in on
    # The QR codes renew too: they sign the provider's deduction contract in the same scan.
    assert re.findall(r'data-action="method:(\w+)"', on) == ["wechat_qr", "alipay_qr", "phone_bill", "phone_bill_sms"]
    page = browser.get("/tv/products/VIP-MONTH/?renew=1").content.decode()
    refused = browser.post("/tv/products/VIP-MONTH/order/", {"method": "cash", "renew": "1", "token": token_of(page)})
    assert refused.status_code == 302 and not Order.objects.exists()  # not a renewing method: back to the screen
    order = place_renewing(browser, page)
    assert order.auto_renew is True


def place_renewing(browser: Client, page: str) -> Order:
    browser.post("/tv/products/VIP-MONTH/order/", {"method": "phone_bill", "renew": "1", "token": token_of(page)})
    return Order.objects.get()


# --- framing, headers, the markup -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "result"),
    [
        ("title=%D6%D0%CE%C4", "title=%D6%D0%CE%C4&result=cancel"),  # 中文 as a GBK page's form encodes it
        ("vod&from=menu", "vod&from=menu&result=cancel"),  # a bare flag
        ("path=a%2Fb%20c", "path=a%2Fb%20c&result=cancel"),  # the EPG's own choice of encoding
        ("result=old&x=1", "x=1&result=cancel"),  # ours replaces a pair of the same name
        ("", "result=cancel"),
    ],
)
def test_the_way_back_adds_to_the_epgs_query_and_changes_nothing_of_it(api, query, result):
    """§9: return_url "with result=cancel added to its query". The query used to be decoded and encoded again:
    a GBK page's text came back as U+FFFD, a bare flag as 'vod=', %20 as '+' (found by a TV review)."""
    import html

    browser = launch(api, return_url=f"https://epg.example.com/vas/back.jsp?{query}".rstrip("?"))
    page = browser.get("/tv/").content.decode()
    href = html.unescape(re.search(r'<a class="back" href="([^"]+)" data-action="back"', page)[1])
    assert href == f"https://epg.example.com/vas/back.jsp?{result}"


def test_the_same_method_posted_twice_places_one_order(api):
    """A double OK (the form sent twice): one order, and both answers lead to it (found by a TV review)."""
    browser = launch(api)
    token = token_of(browser.get("/tv/products/VIP-MONTH/").content.decode())
    first = browser.post("/tv/products/VIP-MONTH/order/", {"method": "phone_bill", "token": token})
    again = browser.post("/tv/products/VIP-MONTH/order/", {"method": "phone_bill", "token": token})
    settle()
    assert Order.objects.count() == 1 and first["Location"] == again["Location"]
    # Another choice (auto-renewal on) is another order.
    browser.post("/tv/products/VIP-MONTH/order/", {"method": "phone_bill", "token": token, "renew": "1"})
    assert Order.objects.count() == 2


# --- found by a review of the TV pages (2026-12-06) ---------------------------------------------------------


def _terms_of(page: str) -> str:
    return re.sub(r"<[^>]+>", " ", re.search(r'<ul class="terms">(.*?)</ul>', page, re.S)[1])


@pytest.mark.parametrize(("locale", "others"), [("en", ("WeChat", "Alipay")), ("zh-Hans", ("微信", "支付宝"))])
def test_the_renewal_terms_consented_to_name_the_method_chosen(api, locale, others):
    """The confirmation screen is where the viewer consents to automatic renewal, after choosing how to pay:
    its terms said each renewal is paid by every method the product offers, not by the one chosen."""
    browser = launch(api, locale=locale)
    token = token_of(browser.get("/tv/products/VIP-MONTH/?renew=1").content.decode())
    browser.post("/tv/products/VIP-MONTH/order/", {"method": "phone_bill", "token": token, "renew": "1"})
    settle()
    order = Order.objects.get()
    assert order.auto_renew and order.status == "awaiting_payment"
    terms = _terms_of(browser.get(f"/tv/orders/{order.order_no}/?method=phone_bill").content.decode())
    assert not any(word in terms for word in others), terms  # renewals charge the phone bill, nothing else


def test_the_result_screens_have_a_visible_back_item_and_the_language_is_said(api):
    """docs/interfaces.md §9: "Every screen also has a visible Back item, data-action="back"": the result
    screens of an order had none. And an English session's pages said Content-Language: zh-hans."""
    browser = launch(api, locale="en")
    token = token_of(browser.get("/tv/products/VIP-MONTH/").content.decode())
    browser.post("/tv/products/VIP-MONTH/order/", {"method": "phone_bill", "token": token})
    settle()
    done = Order.objects.get()
    browser.post(f"/tv/orders/{done.order_no}/confirm/", {"method": "phone_bill", "token": token})
    settle()
    browser.post("/tv/products/VIP-QUARTER/order/", {"method": "wechat_qr", "token": token})
    settle()
    failed = Order.objects.exclude(pk=done.pk).get()
    browser.post(f"/tv/orders/{failed.order_no}/back/", {"token": token})  # cancelled

    for order, screen in ((done, "screen-success"), (failed, "screen-failure")):
        answer = browser.get(f"/tv/orders/{order.order_no}/")
        page = answer.content.decode()
        assert screen in page and 'data-action="back"' in page, (Order.objects.get(pk=order.pk).status, screen)
        assert '<html lang="en">' in page and answer["Content-Language"] == "en"


def test_the_pages_may_be_framed_by_their_epg_clients_origins_only(api):
    browser = launch(api)
    bare = browser.get("/tv/")
    assert "frame-ancestors 'self'" in bare["Content-Security-Policy"]
    assert bare["X-Frame-Options"] == "SAMEORIGIN"

    EpgClient.objects.update(tv_frame_origins="https://epg.example.com\nhttp://10.0.0.8:8080")
    framed = browser.get("/tv/")

    policy = framed["Content-Security-Policy"]
    assert "frame-ancestors 'self' https://epg.example.com http://10.0.0.8:8080" in policy
    assert "script-src 'self'" in policy and "'unsafe-inline'" not in policy
    assert "X-Frame-Options" not in framed
    assert "no-cache" in framed["Cache-Control"] or "max-age=0" in framed["Cache-Control"]


def test_frame_origins_are_validated(db):
    from django.core.exceptions import ValidationError

    from epg_api.models import validate_origins

    validate_origins("https://epg.example.com\nhttp://10.0.0.8:8080\n")
    with pytest.raises(ValidationError):
        validate_origins("https://epg.example.com/path")
    with pytest.raises(ValidationError):
        validate_origins("*")


def test_the_cookie_travels_in_the_epgs_frame_in_production(api, settings):
    settings.SESSION_COOKIE_SECURE = True
    answer = api.post("/tv-sessions/", {"tv_account": "tv1001", "return_url": BACK})

    cookie = Client().get(urlsplit(answer.json()["url"]).path).cookies["ipvas_tv"]

    assert cookie["samesite"] == "None" and cookie["secure"] is True and cookie["httponly"] is True


class Markup(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if "style" in values:
            self.problems.append(f"inline style on <{tag}>")
        if tag == "script" and not values.get("src"):
            self.problems.append("inline script")
        for name in ("src", "href", "action"):
            url = values.get(name) or ""
            if tag in ("script", "link", "img", "form") and re.match(r"^(https?:)?//", url):
                self.problems.append(f"<{tag} {name}={url}> from another origin")
        actionable = tag in ("a", "button") or (tag == "input" and values.get("type") != "hidden")
        if actionable and "data-action" not in values and "data-nav" not in values:
            self.problems.append(f"<{tag}> without data-action: {attrs}")


def screens(api: Api) -> dict[str, str]:
    """Every screen of an order, in both languages."""
    found = {}
    for locale in ("zh-Hans", "en"):
        browser = launch(api, content_id="MOVIE-001", locale=locale)
        found[f"home {locale}"] = browser.get("/tv/").content.decode()
        found[f"product {locale}"] = browser.get("/tv/products/VIP-MONTH/?renew=1").content.decode()
        order = place(browser)
        found[f"choose {locale}"] = browser.get(f"/tv/orders/{order.order_no}/").content.decode()
        found[f"confirm {locale}"] = browser.get(f"/tv/orders/{order.order_no}/?method=wechat_qr").content.decode()
        token = token_of(found[f"confirm {locale}"])
        browser.post(f"/tv/orders/{order.order_no}/confirm/", {"method": "wechat_qr", "token": token})
        found[f"qr {locale}"] = browser.get(f"/tv/orders/{order.order_no}/").content.decode()
        browser.post(f"/tv/orders/{order.order_no}/back/", {"token": token})
        order = place(browser, "phone_bill_sms")
        browser.post(f"/tv/orders/{order.order_no}/confirm/", {"method": "phone_bill_sms", "token": token})
        found[f"sms {locale}"] = browser.get(f"/tv/orders/{order.order_no}/").content.decode()
        browser.post(f"/tv/orders/{order.order_no}/back/", {"token": token})
        found[f"cancelled {locale}"] = browser.get(f"/tv/orders/{order.order_no}/").content.decode()
        found[f"ended {locale}"] = Client().get("/tv/").content.decode()
    return found


def test_every_screen_names_its_actions_and_loads_nothing_from_elsewhere(api):
    for name, html in screens(api).items():
        markup = Markup()
        markup.feed(html)
        assert markup.problems == [], (name, markup.problems)
        assert "data-focus" in html, name  # one item takes the focus when the screen opens


def test_english_by_locale(api):
    pages = screens(api)
    assert "选择产品" in pages["home zh-Hans"] and "Choose a product" in pages["home en"]
    assert "短信确认" in pages["sms zh-Hans"] and "Confirm by SMS" in pages["sms en"]


def test_a_pin_is_asked_on_the_tv_before_any_payment(api):
    from lifecycle.pins import pin_set
    from orders.models import PurchasePinEvent

    pin_set(tv_account="tv1001", pin="1234", actor=api_actor())
    browser = launch(api)
    order = place(browser, "phone_bill")
    page = browser.get(f"/tv/orders/{order.order_no}/?method=phone_bill").content.decode()
    assert 'name="pin"' in page
    token = token_of(page)

    for pin in ("", "0000"):
        again = browser.post(
            f"/tv/orders/{order.order_no}/confirm/", {"method": "phone_bill", "pin": pin, "token": token}
        )
        assert again.status_code == 200 and 'id="pin-error"' in again.content.decode()
    order.refresh_from_db()
    assert order.status == "awaiting_payment"
    done = browser.post(
        f"/tv/orders/{order.order_no}/confirm/", {"method": "phone_bill", "pin": "1234", "token": token}
    )
    assert done.status_code == 302
    order.refresh_from_db()
    assert order.status == "provisioning"
    wrong = PurchasePinEvent.objects.get(action="wrong")
    assert (wrong.actor_kind, wrong.data["channel"]) == ("epg_client", "tv")


def api_actor():  # type: ignore[no-untyped-def]
    from ipvas.actors import Actor

    return Actor.system("test")


# --- the scripts ------------------------------------------------------------------------------------

# ES5 has none of these; pyjsparser (an ES5.1 parser) still accepts a few of them.
NOT_ES5 = {
    ("VariableDeclaration", "kind"): {"let", "const"},
}


def walk(node: object):  # type: ignore[no-untyped-def]
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def test_every_shipped_script_is_es5():
    scripts = sorted(TV_STATIC.rglob("*.js"))
    assert scripts, "no script?"
    for script in scripts:
        source = script.read_text(encoding="utf-8")
        tree = pyjsparser.parse(source)  # raises on arrows, classes, template strings, destructuring, for-of
        for node in walk(tree):
            kind = node.get("type")
            assert not (kind == "VariableDeclaration" and node.get("kind") != "var"), (script.name, node.get("kind"))
            assert not (kind == "Property" and (node.get("method") or node.get("shorthand"))), script.name
            assert kind not in ("AssignmentPattern", "SpreadElement", "RestElement"), (script.name, kind)
        for later_api in ("fetch(", "Promise", "classList", ".closest(", ".forEach("):
            assert later_api not in source, (script.name, later_api)


def test_the_weights_are_small():
    """What a screen loads besides its HTML: the one stylesheet and the one script, a few KB each."""
    total = sum(path.stat().st_size for path in TV_STATIC.rglob("*") if path.is_file())
    assert total < 16_000, total


@pytest.fixture
def api(demo) -> Api:
    return Api(new_api_key("TV vendor"))


@pytest.fixture
def other_api(demo) -> Api:
    return Api(new_api_key("Another vendor"))
