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
    assert order["payment_methods"] == ["wechat_qr", "alipay_qr", "phone_bill", "phone_bill_sms"]
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
    for method in ("cash", "payment_code"):  # §8: phone bill (with or without SMS) and the QR codes only
        assert "method" in error_of(api.choose(number, method), 400, "invalid")["fields"]
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
    # Read by any client, acted on by none: the subscription is what a customer cancels (§8).
    for client in (api, other_api):
        error_of(client.post(f"/orders/{newest['order_no']}/cancel/"), 404, "not_found")
        error_of(client.post(f"/orders/{newest['order_no']}/payment/", {"method": "phone_bill"}), 404, "not_found")
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
    for too_large in (2**31, 2**63, 10**30):  # more than the column holds: 400, not a 500
        assert sandbox("/smp/accounts/tv1001/", {"balance_fen": too_large})[0] == 400
    assert sandbox("/smp/accounts/tv1001/", {"balance_fen": 2**31 - 1})[1]["balance_fen"] == 2**31 - 1
    assert sandbox("/smp/accounts/tv1001/", {"phone": "123"})[0] == 400


# --- WeChat Pay and Alipay: one scan on the TV pays and signs; renewal by deduction (issue #14) -----------


def _sandbox_ok(path: str, body: dict) -> dict:
    status, answer = sandbox(path, body)
    assert status == 200, answer
    return answer


@pytest.mark.parametrize("method,provider", [("wechat_qr", "wechatpay"), ("alipay_qr", "alipay")])
def test_the_whole_life_of_a_subscription_paid_by_a_qr_code(api, demo, frozen, method, provider):
    from datetime import date

    from billing.models import Discrepancy, ProviderContract, ReconciliationItem
    from billing.models.reconciliation import Outcome
    from billing.reconciliation.services import reconcile_day
    from sandbox.models import SimTrade

    # Scan once on the TV: the QR code pays the first period and signs the deduction contract.
    created = api.post("/orders/", {"tv_account": "tv1001", "product_code": "VIP-MONTH", "auto_renew": True})
    settle()
    number = created.json()["order_no"]
    api.pay_with(number, method)
    order = api.order(number)
    assert order["status"] == "payment_pending" and order["payment"]["qr_code_url"]
    paid = _sandbox_ok(f"/{provider}/pay/", {"out_trade_no": order["payment"]["out_trade_no"]})
    assert paid["delivered"] and paid["contract_delivered"]
    settle()
    order = api.order(number)
    assert order["status"] == "completed" and order["subscription_no"]
    subscription_no = order["subscription_no"]
    sub = api.get(f"/subscriptions/{subscription_no}/").json()
    assert (sub["status"], sub["payment_method"], sub["consent"]["method"]) == ("active", method, method)
    contract = ProviderContract.objects.get(subscription__subscription_no=subscription_no)
    assert contract.status == "signed"

    # A renewal by deduction: the reminder (and WeChat Pay's pre-deduction notice), then the deduction.
    _sandbox_ok(f"/subscriptions/{subscription_no}/advance/", {"to": "reminder"})
    settle()
    assert api.get(f"/subscriptions/{subscription_no}/").json()["reminder_sent_at"]
    _sandbox_ok(f"/subscriptions/{subscription_no}/advance/", {"to": "renewal"})
    settle()
    (renewal,) = api.get(f"/subscriptions/{subscription_no}/").json()["renewals"]
    if provider == "wechatpay":  # accepted; WeChat Pay's payment notification says it was taken
        assert api.order(renewal["order_no"])["status"] == "payment_pending"
        assert _sandbox_ok("/wechatpay/pay/", {"out_trade_no": renewal["order_no"]})["delivered"]
        settle()
    sub = api.get(f"/subscriptions/{subscription_no}/").json()
    (renewal,) = sub["renewals"]
    assert (renewal["status"], renewal["amount_fen"], sub["status"]) == ("completed", 2500, "active")
    assert renewal["period_start"] == api.order(number)["entitlement"]["ends_at"]  # from exactly the old end
    deduction = SimTrade.objects.get(out_trade_no=renewal["order_no"])
    assert deduction.deducted_under == contract.provider_contract_id

    # The user ends the contract in the payment app.
    assert _sandbox_ok(f"/{provider}/contracts/terminate/", {"subscription_no": subscription_no}) == {
        "delivered": True,
        "status_code": 200,
    }
    sub = api.get(f"/subscriptions/{subscription_no}/").json()
    assert (sub["status"], sub["cancel_channel"], sub["next_renewal_at"]) == ("cancelled", "provider", None)
    contract.refresh_from_db()
    assert (contract.status, contract.ended_by) == ("terminated", "user")

    # And that day reconciles: the payment and the deduction are in the provider's bill and our ledger.
    frozen.move_to("2026-12-06 09:00:00+08:00")
    run = reconcile_day(date(2026, 12, 5), triggered_by="test")
    items = ReconciliationItem.objects.filter(run=run, source=provider)
    matched = set(items.filter(outcome=Outcome.MATCHED).values_list("order_no", flat=True))
    assert {number, renewal["order_no"]} <= matched
    assert not Discrepancy.objects.filter(day=date(2026, 12, 5), source=provider).exists()


def test_a_deduction_the_provider_reports_that_we_never_asked_for_is_a_discrepancy(api, demo, frozen):
    from datetime import date, timedelta

    from django.utils import timezone

    from billing.models import Discrepancy
    from billing.models.reconciliation import Outcome
    from billing.reconciliation.services import reconcile_day
    from sandbox.models import SimTrade, SimTradeStatus

    SimTrade.objects.create(
        provider="alipay",
        out_trade_no="20261205110000UNKNOWN001",
        transaction_id="2026120522001999999999999",
        amount_fen=2500,
        description="续费",
        deducted_under="20261205999999999999",
        status=SimTradeStatus.PAID,
        expires_at=timezone.now() + timedelta(hours=2),
        paid_at=timezone.now(),
    )
    frozen.move_to("2026-12-06 09:00:00+08:00")
    reconcile_day(date(2026, 12, 5), triggered_by="test")
    item = Discrepancy.objects.get(day=date(2026, 12, 5), source="alipay")
    assert (item.outcome, item.reference or item.order_no, item.their_amount_fen) == (
        Outcome.MISSING_HERE,
        item.reference or "20261205110000UNKNOWN001",
        2500,
    )


@pytest.mark.parametrize(("first", "then"), [("wechat_qr", "alipay_qr"), ("alipay_qr", "wechat_qr")])
def test_an_auto_renewing_order_switches_between_the_two_qr_codes(api, demo, first, then):
    """§2: in payment_pending the two QR methods may be switched; §8 offers both to an auto-renewing order. Each
    QR code offers its provider's contract under a code of its own. Before, the second got a 500 (the two
    contracts' codes were both "C" + the order's number)."""
    created = api.post("/orders/", {"tv_account": "tv1001", "product_code": "VIP-MONTH", "auto_renew": True})
    settle()
    number = created.json()["order_no"]
    assert api.choose(number, first).status_code == 200
    response = api.choose(number, then)
    assert response.status_code == 200, response.content
    assert response.json()["payment"]["method"] == then and response.json()["payment"]["qr_code_url"]
    assert api.qr_png(number).status_code == 200


def test_a_renewal_deducted_under_its_contract_shows_no_qr_code(api, demo, frozen):
    """A renewal is a deduction under the contract (§8): its payment has no QR code, so neither qr_code_url nor
    qr_image_url (§2: qr.png is 404 when there is none). Before, a WeChat Pay renewal named an image that
    answered 404, and its qr_code_url was "" where Alipay's was null."""
    created = api.post("/orders/", {"tv_account": "tv1001", "product_code": "VIP-MONTH", "auto_renew": True})
    settle()
    order = api.pay_with(created.json()["order_no"], "wechat_qr")
    assert _sandbox_ok("/wechatpay/pay/", {"out_trade_no": order["payment"]["out_trade_no"]})["delivered"]
    settle()
    number = api.order(order["order_no"])["subscription_no"]
    for to in ("reminder", "renewal"):
        _sandbox_ok(f"/subscriptions/{number}/advance/", {"to": to})
        settle()
    renewal = Order.objects.get(subscription__subscription_no=number, channel=Channel.RENEWAL)
    shown = api.order(renewal.order_no)
    assert shown["status"] == "payment_pending", shown
    assert (shown["payment"]["qr_code_url"], shown["payment"]["qr_image_url"]) == (None, None), shown["payment"]
    assert api.qr_png(renewal.order_no).status_code == 404
