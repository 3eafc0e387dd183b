"""The purchase PIN in the EPG API (docs/interfaces.md §9): with a PIN set, POST /orders/ needs
``purchase_pin``, checked after the input checks; the fifth wrong entry locks purchases for 15 minutes
(403 ``purchase_pin_locked`` with ``Retry-After``); every set, clear, wrong entry and lock is audited."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from ipvas.actors import Actor, ActorKind
from lifecycle.pins import pin_check, pin_clear, pin_set
from orders.models import Order, PurchasePin, PurchasePinEvent
from tests.epg_api.support import Api, error_of, settle

BODY = {"tv_account": "tv1001", "product_code": "VIP-MONTH"}


def set_pin(tv_account: str, pin: str | None) -> None:
    """Through the sandbox, as an integrator does."""
    response = Client().post(
        f"/sandbox/accounts/{tv_account}/purchase-pin/", data=json.dumps({"pin": pin}), content_type="application/json"
    )
    assert response.status_code == 200, response.content


def create(api: Api, pin: object = ..., **extra: object):  # type: ignore[no-untyped-def]
    body = {**BODY, **extra}
    if pin is not ...:
        body["purchase_pin"] = pin
    headers = {}
    if "key" in body:
        headers["Idempotency-Key"] = body.pop("key")
    return api.post("/orders/", body, **headers)


def actions(tv_account: str = "tv1001") -> list[str]:
    return list(
        PurchasePinEvent.objects.filter(tv_account=tv_account).order_by("at", "pk").values_list("action", flat=True)
    )


def test_no_pin_no_question(api):
    assert create(api).status_code == 201
    assert create(api, pin="1234").status_code == 201  # a PIN given where none is set is not an error


def test_with_a_pin_orders_need_it(api):
    set_pin("tv1001", "1234")

    error_of(create(api), 403, "purchase_pin_required")
    error_of(create(api, pin=None), 403, "purchase_pin_required")
    error_of(create(api, pin="4321"), 403, "purchase_pin_wrong")
    assert not Order.objects.exists()
    assert create(api, pin="1234").status_code == 201
    assert create(api, tv_account="tv1002").status_code == 201  # another household: no PIN
    assert actions() == ["set", "wrong"]


@pytest.mark.parametrize("pin", ["123", "12345", "12a4", 1234, "１２３４"])
def test_a_pin_that_is_not_4_digits_is_bad_input(api, pin):
    set_pin("tv1001", "1234")

    assert "purchase_pin" in error_of(create(api, pin=pin), 400, "invalid")["fields"]
    assert actions() == ["set"]  # not a wrong entry


def test_the_input_checks_come_first(api):
    set_pin("tv1001", "1234")

    error_of(create(api, tv_account="tv 1001"), 400, "invalid")
    error_of(create(api, product_code="NOPE"), 404, "product_not_found")
    assert actions() == ["set"]


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"product_code": "PPV-MOVIE"}, "content_id"),  # §2: a per-view product needs its content_id
        ({"content_id": "MOVIE-1"}, "content_id"),  # §2: refused for a period product
        ({"product_code": "PPV-MOVIE", "content_id": "MOVIE-1", "auto_renew": True}, "auto_renew"),  # §8
    ],
)
def test_the_products_own_input_checks_come_before_the_pin_too(api, extra, field):
    """The checks that need the product (§2's content_id, §8's auto_renew) are input checks as well: a 400
    with or without a PIN typed, and a PIN sent with bad input is not judged, so five of them lock nothing."""
    set_pin("tv1001", "1234")

    assert field in error_of(create(api, **extra), 400, "invalid")["fields"]
    for _ in range(5):
        assert field in error_of(create(api, pin="0000", **extra), 400, "invalid")["fields"]
    assert actions() == ["set"] and not Order.objects.exists()
    assert create(api, pin="1234").status_code == 201  # not locked


def test_the_fifth_wrong_entry_locks_purchases_for_15_minutes(api, time_machine):
    time_machine.move_to(timezone.now(), tick=False)
    set_pin("tv1001", "1234")
    for _ in range(4):
        error_of(create(api, pin="0000"), 403, "purchase_pin_wrong")

    fifth = create(api, pin="0000")

    error_of(fifth, 403, "purchase_pin_locked")
    assert fifth["Retry-After"] == "900"
    right_but_locked = create(api, pin="1234")
    error_of(right_but_locked, 403, "purchase_pin_locked")
    assert right_but_locked["Retry-After"] == "900"
    assert actions() == ["set", "wrong", "wrong", "wrong", "wrong", "wrong", "locked"]

    time_machine.shift(timedelta(minutes=14, seconds=50))
    assert create(api, pin="1234")["Retry-After"] == "10"
    time_machine.shift(timedelta(seconds=11))
    assert create(api, pin="1234").status_code == 201


def test_a_right_entry_forgets_the_wrong_ones(api):
    set_pin("tv1001", "1234")
    for _ in range(4):
        create(api, pin="0000")
    assert create(api, pin="1234").status_code == 201
    for _ in range(4):
        error_of(create(api, pin="0000"), 403, "purchase_pin_wrong")
    assert PurchasePin.objects.get().failed_attempts == 4


def test_the_pin_is_not_part_of_the_idempotency_comparison(api):
    first = create(api, key="k-1")
    set_pin("tv1001", "1234")

    again = create(api, pin="9999", key="k-1")  # a replay: the same order, no new purchase, no PIN asked

    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["order_no"] == first.json()["order_no"]
    assert create(api, pin="1234", key="k-2").status_code == 201
    assert create(api, key="k-2").status_code == 200
    assert actions() == ["set"]


def test_clearing_the_pin_lifts_the_lock(api):
    set_pin("tv1001", "1234")
    for _ in range(5):
        create(api, pin="0000")
    set_pin("tv1001", None)

    assert create(api).status_code == 201
    assert actions() == ["set", *["wrong"] * 5, "locked", "cleared"]


def test_the_pin_is_stored_hashed(db):
    pin_set(tv_account="tv1001", pin="1234", actor=Actor(ActorKind.CLERK, "clerk01"))

    row = PurchasePin.objects.get()
    assert "1234" not in row.pin_hash and row.pin_hash.startswith(("md5$", "pbkdf2_sha256$", "argon2"))
    assert (row.set_by_kind, row.set_by_id) == ("clerk", "clerk01")


def test_renewals_and_clerk_orders_never_need_it(api, demo):
    """Only the EPG API and the TV pages call pin_check: the clerk's order and a renewal go through."""
    from lifecycle.placing import order_create

    set_pin("tv1001", "1234")
    order = order_create(
        channel="crm", product_code="VIP-MONTH", phone="13800000001", actor=Actor(ActorKind.CLERK, "c")
    )
    settle()
    order.refresh_from_db()
    assert order.status == "awaiting_payment"
    pin_check(tv_account="tv9999", pin=None, actor=Actor.system(), channel="tv")  # no PIN there: nothing asked


def test_the_sandbox_sets_and_clears(demo):
    client = Client()
    for body, status in [
        ({"pin": "1234"}, 200),
        ({"pin": "5678"}, 200),
        ({"pin": None}, 200),
        ({"pin": None}, 200),
        ({"pin": "12"}, 400),
        ({"pin": 1234}, 400),
        ({}, 400),
    ]:
        answer = client.post(
            "/sandbox/accounts/tv1001/purchase-pin/", data=json.dumps(body), content_type="application/json"
        )
        assert answer.status_code == status, (body, answer.content)
    assert (
        client.post(
            "/sandbox/accounts/bad%20account/purchase-pin/", data="{}", content_type="application/json"
        ).status_code
        == 400
    )
    assert actions() == ["set", "changed", "cleared"]
    assert pin_clear(tv_account="tv1001", actor=Actor.system()) is False


def test_an_order_placed_on_the_tv_is_not_paid_through_the_api_around_the_pin(api):
    """§9: the TV pages ask the PIN before any payment, on the screen after the method's. An order placed there
    is an EPG order of the session's client, and its payment through §2 (POST payment/) asked for nothing: the
    phone bill was charged without the PIN (found by a review of the TV pages). It is 403 until the PIN was
    entered on the TV."""
    import re
    from urllib.parse import urlsplit

    set_pin("tv1001", "1234")
    answer = api.post("/tv-sessions/", {"tv_account": "tv1001", "return_url": "https://epg.example.com/b"})
    box = Client()
    box.get(urlsplit(answer.json()["url"]).path)
    token = re.search(r'name="token" value="([0-9a-f]+)"', box.get("/tv/products/VIP-YEAR/").content.decode())[1]
    box.post("/tv/products/VIP-YEAR/order/", {"method": "phone_bill", "token": token})
    settle()
    order = Order.objects.get()
    assert order.status == "awaiting_payment" and order.pin_pending

    error_of(api.post(f"/orders/{order.order_no}/payment/", {"method": "phone_bill"}), 403, "purchase_pin_required")
    order.refresh_from_db()
    assert order.status == "awaiting_payment" and not order.payments.exists()

    confirmed = box.post(
        f"/tv/orders/{order.order_no}/confirm/", {"method": "phone_bill", "pin": "1234", "token": token}
    )
    assert confirmed.status_code == 302
    settle()
    order.refresh_from_db()
    assert order.status == "completed" and not order.pin_pending
