"""Polling an order with ``If-None-Match``: 304 while its answer is the same, 200 as soon as it is not.

The EPG polls an order every 1-2 s while the TV waits (docs/interfaces.md §2); an unchanged order is
answered ``304 Not Modified`` with no body (issue #17). A client that sends no ``If-None-Match`` gets
what it always got. Every change the TV must see changes the ``ETag``: each step of the order, the
QR code of a new payment, the entitlement, the language of the answer.
"""

from __future__ import annotations

import pytest
from django.utils import timezone

from billing.models import Payment
from orders.models import Entitlement, Order
from tests.epg_api.support import Api, provider_pay, settle


def poll(api: Api, order_no: str, etag: str | None = None, **headers: str):
    if etag is not None:
        headers["If-None-Match"] = etag
    return api.get(f"/orders/{order_no}/", **headers)


def test_an_unchanged_order_is_answered_304_and_every_step_changes_the_etag(api):
    created = api.create()
    assert created.status_code == 201
    order_no = created.json()["order_no"]

    first = poll(api, order_no)
    assert first.status_code == 200 and first.json()["status"] == "prechecking"
    etag = first["ETag"]
    assert etag.startswith('W/"')

    again = poll(api, order_no, etag)
    assert again.status_code == 304
    assert again.content == b""
    assert again["ETag"] == etag

    seen = [etag]
    settle()  # the pre-check passes: awaiting_payment
    step = poll(api, order_no, etag)
    assert step.status_code == 200 and step.json()["status"] == "awaiting_payment"
    seen.append(step["ETag"])

    api.pay_with(order_no, "wechat_qr")  # a payment with its QR code
    step = poll(api, order_no, seen[-1])
    assert step.status_code == 200 and step.json()["payment"]["qr_code_url"]
    seen.append(step["ETag"])
    assert poll(api, order_no, seen[-1]).status_code == 304

    provider_pay("wechat_qr", step.json()["payment"]["out_trade_no"])
    settle()
    step = poll(api, order_no, seen[-1])
    assert step.status_code == 200 and step.json()["status"] == "completed"
    assert step.json()["entitlement"] is not None
    seen.append(step["ETag"])

    assert len(set(seen)) == len(seen)
    # Any of several tags, or any at all.
    assert poll(api, order_no, f'"other", {seen[-1]}').status_code == 304
    assert poll(api, order_no, "*").status_code == 304
    assert poll(api, order_no, seen[0]).status_code == 200


def test_an_entitlement_that_moves_changes_the_etag(api):
    """A refunded period moves the periods after it: the entitlement's dates change, not the order's row."""
    order = api.buy()
    etag = poll(api, order["order_no"])["ETag"]

    Entitlement.objects.filter(order__order_no=order["order_no"]).update(ends_at=timezone.now())

    moved = poll(api, order["order_no"], etag)
    assert moved.status_code == 200
    assert moved["ETag"] != etag


def test_the_answer_in_another_language_has_another_etag(api):
    order_no = api.create().json()["order_no"]
    chinese = poll(api, order_no, **{"Accept-Language": "zh-Hans"})
    english = poll(api, order_no, chinese["ETag"], **{"Accept-Language": "en"})
    assert english.status_code == 200
    assert english["ETag"] != chinese["ETag"]


def test_another_clients_order_is_404_whatever_the_etag(api, other_api):
    order_no = api.create().json()["order_no"]
    etag = poll(api, order_no)["ETag"]
    assert poll(other_api, order_no, etag).status_code == 404


def test_a_payment_or_product_that_changes_without_the_order_changes_the_etag(api):
    """A payment closed by a set-based UPDATE leaves the order's row (and updated_at) as it was; so does a
    product renamed in admin: the answer shows both, so the ETag moves with them."""
    order_no = api.create().json()["order_no"]
    settle()
    api.pay_with(order_no, "wechat_qr")
    shown = poll(api, order_no)
    assert shown.json()["payment"]["qr_code_url"]
    etag = shown["ETag"]

    Payment.objects.filter(order__order_no=order_no).update(status="closed")
    closed = poll(api, order_no, etag)
    assert closed.status_code == 200 and closed.json()["payment"]["qr_code_url"] is None  # no longer payable
    assert poll(api, order_no, closed["ETag"]).status_code == 304

    product = Order.objects.get(order_no=order_no).product
    product.name = "VIP 影视会员（新）"
    product.save()
    renamed = poll(api, order_no, closed["ETag"])
    assert renamed.status_code == 200 and renamed["ETag"] != closed["ETag"]


def test_the_etag_of_the_version_row_is_the_etag_of_the_answer_in_every_state(api):
    """A poll with If-None-Match tags the order from two rows read for it (no objects built), one without from
    the order read for its answer: for each kind of order the two must agree, or every poll would be a 200."""
    qr = api.place(product_code="VIP-QUARTER")["order_no"]
    api.pay_with(qr, "wechat_qr")  # a QR payment waiting
    bought = api.buy()["order_no"]  # completed, with its entitlement
    renewing = api.post("/orders/", {"tv_account": "tv1001", "product_code": "VIP-YEAR", "auto_renew": True})
    settle()
    api.pay_with(renewing.json()["order_no"], "phone_bill")
    settle()  # completed, with its subscription
    assert api.order(renewing.json()["order_no"])["subscription_no"]

    created = api.create(tv_account="tv1002").json()["order_no"]  # prechecking: no payment yet

    for order_no in (created, qr, bought, renewing.json()["order_no"]):
        answered = poll(api, order_no)  # tagged from the order read for the answer
        assert answered.status_code == 200
        assert poll(api, order_no, answered["ETag"]).status_code == 304, order_no  # tagged from its rows


@pytest.mark.parametrize("methods", [["phone_bill"], ["wechat_qr"], ["alipay_qr"], ["wechat_qr", "alipay_qr"]])
def test_the_answer_to_a_payment_choice_is_what_the_next_poll_answers(api, methods):
    """The choice answers with the payment it just wrote (not read again, issue #17): the same answer, field
    for field, as a poll right after, and a switch between QR codes shows the new one, not the one before."""
    order_no = api.place()["order_no"]
    for method in methods:
        chosen = api.pay_with(order_no, method)
        polled = poll(api, order_no)
        assert polled.status_code == 200
        assert chosen == polled.json()
        assert chosen["payment"]["method"] == method
    if len(methods) > 1:
        assert Payment.objects.filter(order__order_no=order_no).count() == 2
