"""Rotating an EPG client's API key (docs/operations.md, "Rotating keys and secrets"): a new key for the same
client reaches the orders, Idempotency-Keys and TV sessions made with the old one, which keeps working until
its expiry (or is revoked at once). Before, a key was the client: the new key got 404 on the orders placed with
the old one, and a retry of an order under its Idempotency-Key made a second order."""

from __future__ import annotations

import io
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.conf import settings as django_settings
from django.core.cache import cache
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from epg_api.authentication import marker_key
from epg_api.models import EpgClient, IdempotencyRecord, TvSession
from orders.models import Order
from tests.epg_api.support import Api, error_of, provider_pay, settle
from tests.epg_api.test_entitlement_lean_path import served
from tests.tv.test_pages import place as place_on_the_tv

pytestmark = pytest.mark.django_db
ENTITLEMENTS = "/api/epg/v1/entitlements/?tv_account=tv1001"
BACK = "https://epg.example.com/back"


def rotate(name_or_prefix: str, *options: str) -> tuple[str, str]:
    """``manage.py rotate_epg_key``: what it printed, and the new key (its last line)."""
    out = io.StringIO()
    call_command("rotate_epg_key", name_or_prefix, *options, stdout=out)
    text = out.getvalue()
    return text, text.strip().splitlines()[-1].strip()


def row(api: Api) -> EpgClient:
    return EpgClient.objects.get(prefix=api.key.partition(".")[0])


def works(api: Api) -> dict[str, int]:
    """The key's answers: on a DRF view and on the entitlement check's lean path (the server's application)."""
    return {
        "products": api.products().status_code,
        "entitlements": served("GET", ENTITLEMENTS, HTTP_AUTHORIZATION=f"Api-Key {api.key}")[0],
    }


OK = {"products": 200, "entitlements": 200}
REFUSED = {"products": 401, "entitlements": 401}


@pytest.fixture
def frozen(time_machine):
    time_machine.move_to(timezone.now(), tick=False)
    return time_machine


def test_the_new_key_reaches_the_orders_placed_with_the_old_one(api):
    paying = api.place("tv1001", "VIP-MONTH")
    chosen = api.pay_with(paying["order_no"], "wechat_qr")  # the customer is paying: the EPG polls
    to_cancel = api.place("tv1002", "VIP-MONTH")
    text, key = rotate(api.key.partition(".")[0])
    new = Api(key)

    assert "Use it as 'Authorization: Api-Key <key>'" in text
    for order in (chosen, to_cancel):
        answer = new.get(f"/orders/{order['order_no']}/")
        assert answer.status_code == 200, answer.content
        assert answer.json() == api.order(order["order_no"])
    assert new.qr_png(paying["order_no"]).status_code == 200

    provider_pay("wechat_qr", chosen["payment"]["out_trade_no"])
    settle()
    assert new.order(paying["order_no"])["status"] == "completed"
    cancelled = new.cancel(to_cancel["order_no"])
    assert (cancelled.status_code, cancelled.json()["status"]) == (200, "cancelled")
    # Orders placed with the new key are the client's too: the old key sees them while it works.
    placed = new.place("tv1002", "VIP-MONTH")
    assert new.pay_with(placed["order_no"], "alipay_qr")["payment"]["method"] == "alipay_qr"
    assert api.order(placed["order_no"])["payment"]["method"] == "alipay_qr"
    assert {o.origin_id for o in Order.objects.all()} == {row(api).pk}


def test_an_order_retried_with_the_new_key_under_its_idempotency_key_is_the_same_order(api):
    first = api.create("tv1001", "VIP-MONTH", **{"Idempotency-Key": "order-42"})
    assert first.status_code == 201
    _text, key = rotate(api.key.partition(".")[0])

    again = Api(key).create("tv1001", "VIP-MONTH", **{"Idempotency-Key": "order-42"})

    assert again.status_code == 200, again.content
    assert again.json()["order_no"] == first.json()["order_no"]
    assert Order.objects.count() == 1
    other_body = Api(key).create("tv1002", "VIP-MONTH", **{"Idempotency-Key": "order-42"})
    assert other_body.status_code == 409, other_body.content  # the same key, another body: as with one key
    fresh = Api(key).create("tv1001", "VIP-MONTH", **{"Idempotency-Key": "order-43"})
    assert fresh.status_code == 201
    assert set(IdempotencyRecord.objects.values_list("client_id", flat=True)) == {row(api).pk}


def test_a_tv_session_opened_with_the_new_key_reaches_the_clients_orders(api):
    earlier = api.place("tv1001", "VIP-MONTH")
    _text, key = rotate(api.key.partition(".")[0])
    new = Api(key)

    answer = new.post("/tv-sessions/", {"tv_account": "tv1001", "return_url": BACK})
    assert answer.status_code == 201, answer.content
    browser = Client()
    assert browser.get(urlsplit(answer.json()["url"]).path).status_code == 302
    assert browser.get(f"/tv/orders/{earlier['order_no']}/").status_code == 200  # placed with the old key
    order = place_on_the_tv(browser)

    assert order.origin_id == row(api).pk
    assert api.get(f"/orders/{order.order_no}/").status_code == 200
    assert new.get(f"/orders/{order.order_no}/").status_code == 200
    assert TvSession.objects.get().client == row(new)  # the session is the new key's: revoking it ends it
    new_row = row(new)
    new_row.revoked = True
    new_row.save()
    assert browser.get("/tv/").status_code == 403


def test_the_old_key_works_until_its_expiry_then_is_refused(api, frozen):
    assert works(api) == OK  # remembered in this process and in the cache
    text, key = rotate(api.key.partition(".")[0], "--old-expires-in-days", "7")
    expiry = row(api).expiry_date
    assert expiry == timezone.now() + timedelta(days=7)
    assert f"Key {row(api).prefix} expires at" in text

    frozen.move_to(expiry - timedelta(seconds=1), tick=False)
    assert works(api) == OK
    assert works(Api(key)) == OK
    frozen.move_to(expiry + timedelta(seconds=1), tick=False)
    assert works(api) == REFUSED  # although this process and the cache remember it for a minute
    assert works(Api(key)) == OK
    assert error_of(api.products(), 401)["message"]


def test_a_remembered_key_is_refused_from_its_expiry(api, frozen):
    # Before, a key verified a moment before its expiry was remembered for a minute past it (in this process
    # by the monotonic clock, in Redis by its own clock): with Redis it went on working after its expiry.
    client = row(api)
    client.expiry_date = timezone.now() + timedelta(hours=1)
    client.save()
    assert works(api) == OK  # verified and remembered, with its expiry

    frozen.move_to(client.expiry_date + timedelta(seconds=1), tick=False)
    assert works(api) == REFUSED


def test_a_later_keys_default_overlap_is_seven_days_and_an_earlier_expiry_stays(api, frozen):
    rotate(api.key.partition(".")[0])
    assert row(api).expiry_date == timezone.now() + timedelta(days=7)

    rotate(api.key.partition(".")[0], "--old-expires-in-days", "30")
    assert row(api).expiry_date == timezone.now() + timedelta(days=7)  # never later than it was
    _text, key = rotate(api.key.partition(".")[0], "--old-expires-in-days", "0")
    frozen.shift(timedelta(seconds=1))  # a key expires after its moment (the library's has_expired)
    assert works(api) == REFUSED
    assert works(Api(key)) == OK


def test_a_revoked_key_is_refused_at_once_and_the_clients_other_key_goes_on(api):
    _text, key = rotate(api.key.partition(".")[0])
    new = Api(key)
    order = api.place("tv1001", "VIP-MONTH")
    assert works(api) == works(new) == OK  # both remembered, their markers in the cache
    assert cache.get(marker_key(row(api).pk)) == cache.get(marker_key(row(new).pk)) == 1

    old = row(api)
    old.revoked = True
    old.save()

    assert works(api) == REFUSED
    assert works(new) == OK
    assert new.get(f"/orders/{order['order_no']}/").status_code == 200
    latest = row(new)
    latest.revoked = True
    latest.save()
    assert works(new) == REFUSED


@pytest.mark.skipif(not django_settings.REDIS_URL, reason="Redis itself: with REDIS_URL")
def test_a_revoked_key_is_refused_at_once_by_another_process_that_remembers_it_in_redis(api):
    from epg_api import authentication

    _text, key = rotate(api.key.partition(".")[0])
    new = Api(key)
    assert works(new) == OK
    authentication._VERIFIED.clear()  # another process: it knows the key from Redis only
    assert works(new) == OK

    latest = row(new)
    latest.revoked = True
    latest.save()

    assert works(new) == REFUSED
    assert works(api) == OK


def test_a_key_from_rotating_the_new_key_still_reaches_the_first_keys_orders(api):
    order = api.place("tv1001", "VIP-MONTH")
    _text, second = rotate(api.key.partition(".")[0])
    _text, third = rotate(second.partition(".")[0])

    assert row(Api(third)).acts_for == row(api)  # no chain: the client's first key
    for key in (api, Api(second)):
        expired = row(key)
        expired.revoked = True
        expired.save()
    answer = Api(third).get(f"/orders/{order['order_no']}/")
    assert answer.status_code == 200, answer.content
    assert works(Api(third)) == OK


def test_another_clients_key_still_gets_404_and_keeps_its_own_idempotency_keys(api, other_api):
    order = api.create("tv1001", "VIP-MONTH", **{"Idempotency-Key": "order-42"}).json()
    _text, key = rotate(api.key.partition(".")[0])

    error_of(other_api.get(f"/orders/{order['order_no']}/"), 404)
    error_of(other_api.cancel(order["order_no"]), 404)
    own = other_api.create("tv1001", "VIP-MONTH", **{"Idempotency-Key": "order-42"})
    assert own.status_code == 201 and own.json()["order_no"] != order["order_no"]
    error_of(Api(key).get(f"/orders/{own.json()['order_no']}/"), 404)


def test_by_name_every_usable_key_of_the_client_expires_and_a_name_of_two_clients_is_refused(api, frozen):
    _text, second = rotate("EPG test vendor", "--old-expires-in-days", "3")
    text, third = rotate("EPG test vendor")

    assert row(api).expiry_date == timezone.now() + timedelta(days=3)
    assert row(Api(second)).expiry_date == timezone.now() + timedelta(days=7)
    assert row(Api(third)).expiry_date is None
    assert text.count("expires at") == 2
    EpgClient.objects.create_key(name="EPG test vendor")
    with pytest.raises(CommandError, match="2 EPG clients are named"):
        rotate("EPG test vendor")
    with pytest.raises(CommandError, match="No EPG client"):
        rotate("nobody")
    with pytest.raises(CommandError, match="0 or more"):
        rotate("EPG test vendor", "--old-expires-in-days", "-1")
    assert EpgClient.objects.count() == 4
