"""Subscriptions through the EPG API and the sandbox (docs/interfaces.md §8), as an EPG vendor sees them."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from orders.constants import Channel
from orders.models import Order, Subscription
from sandbox.models import SimSmpAccount
from tests.epg_api.support import Api, error_of, settle

NOW = "2026-12-05 12:00:00+08:00"
SUBSCRIPTION_FIELDS = {
    "subscription_no",
    "tv_account",
    "phone_masked",
    "product",
    "status",
    "payment_method",
    "renewal_price_fen",
    "current_period_end",
    "next_reminder_at",
    "reminder_sent_at",
    "next_renewal_at",
    "renewals",
    "consent",
    "cancelled_at",
    "cancel_channel",
    "created_at",
}
RENEWAL_FIELDS = {"order_no", "status", "amount_fen", "failure", "period_start", "period_end", "created_at"}


@pytest.fixture
def frozen(time_machine):
    time_machine.move_to(NOW, tick=False)
    return time_machine


def sandbox(path: str, body: dict) -> tuple[int, dict]:
    response = Client().post(f"/sandbox{path}", data=json.dumps(body), content_type="application/json")
    return response.status_code, response.json()


def subscribe(api: Api, *, tv_account: str = "tv1001", product: str = "VIP-MONTH") -> dict:
    created = api.post("/orders/", {"tv_account": tv_account, "product_code": product, "auto_renew": True})
    assert created.status_code == 201, created.content
    assert created.json()["auto_renew"] is True and created.json()["subscription_no"] is None
    settle()
    order = api.order(created.json()["order_no"])
    assert order["payment_methods"] == ["phone_bill", "phone_bill_sms"]
    api.pay_with(order["order_no"], "phone_bill")
    settle()
    order = api.order(order["order_no"])
    assert order["status"] == "completed" and order["subscription_no"]
    return order


def test_products_say_whether_they_renew(api, demo):
    renewable = {p["code"]: p["renewable"] for p in api.products().json()["results"]}
    assert renewable == {"PPV-MOVIE": False, "VIP-MONTH": True, "VIP-QUARTER": True, "VIP-YEAR": True}


def test_a_subscription_is_listed_read_and_cancelled(api, demo, frozen):
    order = subscribe(api)

    listed = api.get("/subscriptions/", {"tv_account": "tv1001"})
    assert listed.status_code == 200
    (subscription,) = listed.json()["results"]
    assert set(subscription) == SUBSCRIPTION_FIELDS
    assert subscription | {"subscription_no": "", "current_period_end": "", "created_at": ""} == {
        "subscription_no": "",
        "tv_account": "tv1001",
        "phone_masked": "138****0001",
        "product": {"code": "VIP-MONTH", "name": "VIP 影视会员 · 包月", "kind": "monthly", "price_fen": 2500},
        "status": "active",
        "payment_method": "phone_bill",
        "renewal_price_fen": 2500,
        "current_period_end": "",
        "next_reminder_at": "2026-12-30T12:00:00+08:00",
        "reminder_sent_at": None,
        "next_renewal_at": "2027-01-04T12:00:00+08:00",
        "renewals": [],
        "consent": {"channel": "epg", "method": "phone_bill", "at": "2026-12-05T12:00:00+08:00"},
        "cancelled_at": None,
        "cancel_channel": None,
        "created_at": "",
    }
    assert subscription["subscription_no"] == order["subscription_no"]
    assert subscription["current_period_end"] == order["entitlement"]["ends_at"] == "2027-01-05T12:00:00+08:00"

    number = subscription["subscription_no"]
    assert api.get(f"/subscriptions/{number}/").json() == subscription
    cancelled = api.post(f"/subscriptions/{number}/cancel/")
    assert cancelled.status_code == 200
    body = cancelled.json()
    assert (body["status"], body["cancel_channel"]) == ("cancelled", "epg")
    assert (body["next_reminder_at"], body["next_renewal_at"]) == (None, None)
    assert body["current_period_end"] == subscription["current_period_end"]  # the paid period stays
    again = api.post(f"/subscriptions/{number}/cancel/").json()
    assert (again["cancelled_at"], again["cancel_channel"]) == (body["cancelled_at"], "epg")


def test_an_ended_subscription_cannot_be_cancelled(api, demo, frozen):
    number = subscribe(api)["subscription_no"]
    api.post(f"/subscriptions/{number}/cancel/")
    status, _body = sandbox(f"/subscriptions/{number}/advance/", {"to": "end"})
    assert status == 200
    settle()
    assert api.get(f"/subscriptions/{number}/").json()["status"] == "ended"
    error_of(api.post(f"/subscriptions/{number}/cancel/"), 409, "invalid_state")


def test_unknown_subscriptions_and_bad_queries(api, demo):
    error_of(api.get("/subscriptions/NOPE123/"), 404, "not_found")
    error_of(api.post("/subscriptions/NOPE123/cancel/"), 404, "not_found")
    error_of(api.get("/subscriptions/../"), 404)
    assert "tv_account" in error_of(api.get("/subscriptions/"), 400, "invalid")["fields"]
    assert "tv_account" in error_of(api.get("/subscriptions/", {"tv_account": "a b"}), 400, "invalid")["fields"]
    assert api.get("/subscriptions/", {"tv_account": "nobody"}).json() == {"results": []}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"tv_account": "tv1001", "product_code": "VIP-MONTH", "auto_renew": "true"}, "auto_renew"),
        ({"tv_account": "tv1001", "product_code": "VIP-MONTH", "auto_renew": 1}, "auto_renew"),
        ({"tv_account": "tv1001", "product_code": "VIP-MONTH", "auto_renew": None}, "auto_renew"),
        ({"tv_account": "tv1001", "product_code": "PPV-MOVIE", "content_id": "m1", "auto_renew": True}, "auto_renew"),
    ],
    ids=["string", "number", "null", "per-view"],
)
def test_auto_renew_must_be_a_boolean_for_a_renewable_product(api, demo, body, field):
    error = error_of(api.post("/orders/", body), 400, "invalid")
    assert field in error["fields"]
    assert not Order.objects.exists()


def test_auto_renew_on_a_product_that_does_not_renew(api, demo):
    demo["VIP-YEAR"].__class__.objects.filter(code="VIP-YEAR").update(renewable=False)
    body = {"tv_account": "tv1001", "product_code": "VIP-YEAR", "auto_renew": True}
    assert "auto_renew" in error_of(api.post("/orders/", body), 400, "invalid")["fields"]
    assert not Order.objects.exists()


def test_an_auto_renewing_order_refuses_other_methods(api, demo, frozen):
    created = api.post("/orders/", {"tv_account": "tv1001", "product_code": "VIP-MONTH", "auto_renew": True})
    settle()
    number = created.json()["order_no"]
    assert "method" in error_of(api.choose(number, "wechat_qr"), 400, "invalid")["fields"]
    assert api.order(number)["status"] == "awaiting_payment"


def test_the_idempotency_key_tells_auto_renew_apart(api, demo):
    plain = {"tv_account": "tv1001", "product_code": "VIP-MONTH"}
    assert api.post("/orders/", plain, **{"Idempotency-Key": "k1"}).status_code == 201
    assert api.post("/orders/", {**plain, "auto_renew": False}, **{"Idempotency-Key": "k1"}).status_code == 200
    renewing = {**plain, "auto_renew": True}
    error_of(api.post("/orders/", renewing, **{"Idempotency-Key": "k1"}), 409, "idempotency_conflict")


def test_a_year_of_renewals_in_the_sandbox_and_renewal_orders_readable_by_any_client(api, other_api, demo, frozen):
    number = subscribe(api)["subscription_no"]
    before = SimSmpAccount.objects.get(tv_account="tv1001").balance_fen

    for _ in range(3):
        status, body = sandbox(f"/subscriptions/{number}/advance/", {"to": "reminder"})
        assert status == 200, body
        settle()
        assert api.get(f"/subscriptions/{number}/").json()["reminder_sent_at"] is not None
        status, body = sandbox(f"/subscriptions/{number}/advance/", {"to": "renewal"})
        assert status == 200, body
        settle()

    subscription = api.get(f"/subscriptions/{number}/").json()
    assert len(subscription["renewals"]) == 3
    assert all(set(r) == RENEWAL_FIELDS and r["status"] == "completed" for r in subscription["renewals"])
    assert before - SimSmpAccount.objects.get(tv_account="tv1001").balance_fen == 3 * 2500
    newest = subscription["renewals"][0]
    assert newest["period_end"] == subscription["current_period_end"]
    seen_by_other = other_api.order(newest["order_no"])
    assert (seen_by_other["channel"], seen_by_other["status"]) == ("renewal", "completed")
    assert Order.objects.filter(channel=Channel.RENEWAL).count() == 3


def test_advance_refuses_what_cannot_come(api, demo, frozen):
    number = subscribe(api)["subscription_no"]
    status, body = sandbox(f"/subscriptions/{number}/advance/", {"to": "renewal"})
    assert (status, body["error"]["code"]) == (409, "invalid_state")  # before its reminder was sent
    assert sandbox(f"/subscriptions/{number}/advance/", {"to": "later"})[0] == 400
    assert sandbox("/subscriptions/NOPE/advance/", {"to": "end"})[0] == 404
    api.post(f"/subscriptions/{number}/cancel/")
    status, body = sandbox(f"/subscriptions/{number}/advance/", {"to": "reminder"})
    assert (status, body["error"]["code"]) == (409, "invalid_state")
    subscription = Subscription.objects.get(subscription_no=number)
    assert subscription.status == "cancelled"


def test_the_sandbox_smp_accounts(api, demo):
    assert sandbox("/smp/accounts/tv1001/", {"status": "arrears", "balance_fen": 5})[1] == {
        "tv_account": "tv1001",
        "status": "arrears",
        "balance_fen": 5,
        "phone": "13800000001",
    }
    assert sandbox("/smp/accounts/tv9009/", {"phone": "13900000009"})[1] == {
        "tv_account": "tv9009",
        "status": "active",
        "balance_fen": 0,
        "phone": "13900000009",
    }
    assert sandbox("/smp/accounts/tv1001/", {"status": "broken"})[0] == 400
    assert sandbox("/smp/accounts/tv1001/", {"balance_fen": "5"})[0] == 400
    assert sandbox("/smp/accounts/tv1001/", {"phone": "123"})[0] == 400
