"""Whatever an EPG sends that is wrong: the contract's error shape, the right status, and no change.

docs/interfaces.md §2: 400 invalid input (with ``fields``), 401, 404 unknown
product or order, 409 state or idempotency conflict, 429 too many requests;
never a 500 for bad input.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.http import HttpResponse
from django.test import Client

from billing.models import Payment
from epg_api.models import EpgClient, IdempotencyRecord
from ipvas.models import OutboxMessage
from orders.models import Order, OrderEvent
from sandbox.models import SimSmpProduct, SimTrade
from tests.epg_api.support import Api, error_of, new_api_key, settle
from tests.factories import ProductFactory

NOW = "2026-11-25 12:00:20+08:00"
ON_POSTGRESQL = "postgresql" in django_settings.DATABASES["default"]["ENGINE"]


@pytest.fixture
def frozen(time_machine):
    time_machine.move_to(NOW, tick=False)
    return time_machine


def snapshot() -> dict[str, int]:
    return {
        "orders": Order.objects.count(),
        "events": OrderEvent.objects.count(),
        "payments": Payment.objects.count(),
        "trades": SimTrade.objects.count(),
        "idempotency": IdempotencyRecord.objects.count(),
        "outbox": OutboxMessage.objects.count(),
    }


@contextmanager
def nothing_changes() -> Iterator[None]:
    before = snapshot()
    yield
    assert snapshot() == before


@pytest.fixture
def awaiting(api: Api, frozen) -> dict:
    return api.place("tv1001", "VIP-MONTH")


def misanswered(cases: dict[Any, Callable[[], HttpResponse]], status: int, field: str | None = None) -> list:
    """Each case that was not answered ``status`` in the error shape (naming ``field``), with what it got."""
    wrong = []
    for case, send in cases.items():
        response = send()
        try:
            error = error_of(response, status)
            assert field is None or field in error["fields"], error
        except (AssertionError, ValueError) as exc:
            wrong.append((case, response.status_code, str(exc)[:200]))
    return wrong


# --- creating an order ----------------------------------------------------------------


def test_unknown_product_is_a_404(api):
    with nothing_changes():
        error_of(api.create("tv1001", "NO-SUCH-PRODUCT"), 404)


@pytest.mark.parametrize(
    "product",
    [
        {"is_active": False},
        {"channels": ["crm"], "payment_methods": ["cash"]},
        {"on_sale_from": "2099-01-01T00:00:00+08:00"},
    ],
    ids=["inactive", "crm-only", "not-yet-on-sale"],
)
def test_product_not_sold_on_the_tv_is_a_404(api, product):
    ProductFactory(code="HIDDEN", **product)

    with nothing_changes():
        error_of(api.create("tv1001", "HIDDEN"), 404)


def test_per_view_without_content_id_is_a_400(api):
    with nothing_changes():
        error = error_of(api.create("tv1001", "PPV-MOVIE"), 400)

    assert list(error["fields"]) == ["content_id"]


@pytest.mark.parametrize("product", ["VIP-MONTH", "VIP-QUARTER", "VIP-YEAR"])
def test_period_product_with_content_id_is_a_400(api, product):
    with nothing_changes():
        error = error_of(api.create("tv1001", product, "m42"), 400)

    assert list(error["fields"]) == ["content_id"]


def test_bad_content_id_is_a_400(api):
    values = ["", "m 42", "m42/1", "片42", "m" * 65, "m42;drop", " m42"]

    with nothing_changes():
        wrong = misanswered({v: lambda v=v: api.create("tv1001", "PPV-MOVIE", v) for v in values}, 400, "content_id")

    assert wrong == []


def test_bad_tv_account_is_a_400(api):
    values = ["", "tv 1", "tv#1", "电视", "tv1001 ", " tv1001", "tv/1", "x" * 65, "tv1001\t", "ｔｖ1001", "tv1001'"]

    with nothing_changes():
        wrong = misanswered({v: lambda v=v: api.create(v, "VIP-MONTH") for v in values}, 400, "tv_account")

    assert wrong == []


@pytest.mark.parametrize(
    ("product", "tv_account", "content_id", "field"),
    [("VIP-MONTH", "tv1001\n", None, "tv_account"), ("PPV-MOVIE", "tv1001", "m42\n", "content_id")],
)
def test_trailing_newline_is_not_part_of_an_identifier(api, product, tv_account, content_id, field):
    with nothing_changes():
        error = error_of(api.create(tv_account, product, content_id), 400)

    assert field in error["fields"]
    error_of(api.entitlements(tv_account="tv1001\n"), 400)


def test_longest_and_widest_tv_account_is_accepted(api):
    tv_account = "Aa0_.-@" + "z" * 57

    response = api.create(tv_account, "VIP-MONTH")

    assert response.status_code == 201
    assert response.json()["tv_account"] == tv_account


@pytest.mark.parametrize("field", ["tv_account", "product_code", "content_id"])
def test_values_that_are_not_strings_are_a_400(api, field):
    base = {"tv_account": "tv1001", "product_code": "PPV-MOVIE", "content_id": "m42"}
    values = [1001, 10.5, None, True, ["tv1001"], {"id": "tv1001"}]

    with nothing_changes():
        wrong = misanswered({repr(v): lambda v=v: api.post("/orders/", {**base, field: v}) for v in values}, 400, field)

    assert wrong == []


def test_missing_fields_are_a_400_naming_them(api):
    with nothing_changes():
        error = error_of(api.post("/orders/", {}), 400)

    assert {"tv_account", "product_code"} <= set(error["fields"])


def test_malformed_json_or_not_an_object_is_a_400(api):
    raws = ['{"tv_account": "tv1001", "product_code": ', "not json", "", "{'tv_account': 'tv1001'}", "\xff"]
    not_objects = [[{"tv_account": "tv1001", "product_code": "VIP-MONTH"}], "tv1001", 42, None, True]

    with nothing_changes():
        wrong = misanswered({raw: lambda raw=raw: api.post("/orders/", raw=raw) for raw in raws}, 400)
        wrong += misanswered({repr(b): lambda b=b: api.post("/orders/", raw=json.dumps(b)) for b in not_objects}, 400)

    assert wrong == []


def test_a_form_body_is_refused_in_the_error_shape(api):
    with nothing_changes():
        response = api.client.post(
            "/api/epg/v1/orders/",
            data={"tv_account": "tv1001", "product_code": "VIP-MONTH"},
            HTTP_AUTHORIZATION=f"Api-Key {api.key}",
        )
        error_of(response, response.status_code)

    assert response.status_code in (400, 415)


# --- unknown orders, and other clients' orders ------------------------------------------


def order_calls(api: Api, order_no: str):
    return [
        api.get(f"/orders/{order_no}/"),
        api.post(f"/orders/{order_no}/payment/", {"method": "wechat_qr"}),
        api.post(f"/orders/{order_no}/cancel/"),
        api.get(f"/orders/{order_no}/qr.png"),
    ]


def test_unknown_order_is_a_404_everywhere(api, awaiting):
    numbers = ["20261125120020NOSUCHORD", "x", "A" * 33, "..", "%E8%AE%A2%E5%8D%95", awaiting["order_no"].lower()]

    with nothing_changes():
        for order_no in numbers:
            for response in order_calls(api, order_no):
                error_of(response, 404)


def test_order_number_with_a_nul_character_is_a_404(api, awaiting):
    api.client = Client(raise_request_exception=False)

    for response in order_calls(api, "ab%00cd"):
        error_of(response, 404)


def test_another_clients_order_is_a_404_and_stays_as_it_is(api, other_api, awaiting):
    no = awaiting["order_no"]
    api.pay_with(no, "wechat_qr")
    seen = api.order(no)

    with nothing_changes():
        for response in order_calls(other_api, no):
            error_of(response, 404)
        error_of(other_api.post(f"/orders/{no}/payment/", {"method": "alipay_qr"}), 404)

    assert api.order(no) == seen


# --- choosing a payment method -------------------------------------------------------------


def test_method_not_offered_on_the_tv_is_a_400(api, awaiting):
    no = awaiting["order_no"]
    methods = ["cash", "bitcoin", "", "WECHAT_QR", " wechat_qr", None, 1, ["wechat_qr"]]
    bodies = [{}, [], "wechat_qr", {"Method": "wechat_qr"}]

    with nothing_changes():
        wrong = misanswered({repr(m): lambda m=m: api.choose(no, m) for m in methods}, 400, "method")
        wrong += misanswered(
            {repr(b): lambda b=b: api.post(f"/orders/{no}/payment/", raw=json.dumps(b)) for b in bodies}, 400, "method"
        )
        wrong += misanswered({"not json": lambda: api.post(f"/orders/{no}/payment/", raw="{method: x}")}, 400)

    assert wrong == []
    assert api.order(no) == awaiting


@pytest.mark.parametrize("method", ["alipay_qr", "phone_bill_sms"])
def test_method_the_product_is_configured_without_is_a_400(api, frozen, method):
    product = ProductFactory(code="NO-ALIPAY", payment_methods=["wechat_qr", "phone_bill", "cash"])
    assert SimSmpProduct.objects.filter(code=product.smp_product_code).exists()  # the sandbox's SMP sells it
    order = api.place("tv1001", "NO-ALIPAY")
    assert order["payment_methods"] == ["wechat_qr", "phone_bill"]

    with nothing_changes():
        error = error_of(api.choose(order["order_no"], method), 400)

    assert list(error["fields"]) == ["method"]
    assert api.order(order["order_no"]) == order


@pytest.mark.parametrize("method", ["wechat_qr", "alipay_qr", "phone_bill", "phone_bill_sms"])
def test_choosing_while_prechecking_is_a_409(api, frozen, method):
    no = api.create("tv1001", "VIP-MONTH").json()["order_no"]

    with nothing_changes():
        error_of(api.choose(no, method), 409, "invalid_state")


@pytest.mark.parametrize("method", ["phone_bill", "phone_bill_sms"])
def test_switching_from_a_qr_code_to_the_phone_bill_is_a_409(api, awaiting, method):
    api.pay_with(awaiting["order_no"], "wechat_qr")
    pending = api.order(awaiting["order_no"])

    with nothing_changes():
        error_of(api.choose(awaiting["order_no"], method), 409, "invalid_state")

    assert api.order(awaiting["order_no"]) == pending


def test_switching_from_sms_to_a_qr_code_is_a_409(api, awaiting):
    api.pay_with(awaiting["order_no"], "phone_bill_sms")
    pending = api.order(awaiting["order_no"])

    with nothing_changes():
        error_of(api.choose(awaiting["order_no"], "wechat_qr"), 409, "invalid_state")

    assert api.order(awaiting["order_no"]) == pending


def test_cancelling_twice_is_a_409(api, awaiting):
    assert api.cancel(awaiting["order_no"]).status_code == 200

    with nothing_changes():
        error_of(api.cancel(awaiting["order_no"]), 409, "invalid_state")


# --- API keys ---------------------------------------------------------------------------------


ENDPOINTS = [
    ("get", "/products/"),
    ("get", "/entitlements/?tv_account=tv1001"),
    ("post", "/orders/"),
    ("get", "/orders/{no}/"),
    ("post", "/orders/{no}/payment/"),
    ("post", "/orders/{no}/cancel/"),
    ("get", "/orders/{no}/qr.png"),
]


def call(client: Client, method: str, path: str, no: str, **headers: str):
    url = "/api/epg/v1" + path.format(no=no)
    if method == "get":
        return client.get(url, **headers)
    body = {"tv_account": "tv1001", "product_code": "VIP-MONTH", "method": "wechat_qr"}
    return client.post(url, data=json.dumps(body), content_type="application/json", **headers)


def test_missing_or_wrong_key_is_a_401_everywhere(api, awaiting):
    authorizations = [
        None,
        "",
        "Api-Key",
        "Api-Key ",
        "Api-Key wrong.key",
        "Bearer {key}",
        "{key}",
        "Api-Key {key}x",
        "Token {key}",
        "Api-Key " + "k" * 300,
    ]

    with nothing_changes():
        for authorization in authorizations:
            headers = {} if authorization is None else {"HTTP_AUTHORIZATION": authorization.format(key=api.key)}
            for method, path in ENDPOINTS:
                response = call(Client(), method, path, awaiting["order_no"], **headers)
                error_of(response, 401)
                assert response["WWW-Authenticate"].startswith("Api-Key"), (authorization, method, path)

    assert api.order(awaiting["order_no"]) == awaiting


def test_a_revoked_key_is_a_401_at_once(api, awaiting):
    assert api.entitlements(tv_account="tv1001").status_code == 200  # the key is cached now
    client = EpgClient.objects.get(name="EPG test vendor")
    client.revoked = True
    client.save()

    with nothing_changes():
        for method, path in ENDPOINTS:
            response = call(Client(), method, path, awaiting["order_no"], HTTP_AUTHORIZATION=f"Api-Key {api.key}")
            error_of(response, 401)
            assert response["WWW-Authenticate"].startswith("Api-Key")


def test_a_deleted_client_is_a_401_at_once(api, awaiting):
    assert api.products().status_code == 200
    key = new_api_key("Short-lived")
    short = Api(key)
    assert short.products().status_code == 200
    EpgClient.objects.get(name="Short-lived").delete()

    error_of(short.products(), 401)
    assert api.products().status_code == 200


# --- Idempotency-Key -------------------------------------------------------------------------


def test_same_key_and_body_answers_the_same_order(api, frozen):
    first = api.create("tv1001", "VIP-MONTH", **{"Idempotency-Key": "k-1"})
    assert first.status_code == 201

    with nothing_changes():
        again = api.create("tv1001", "VIP-MONTH", **{"Idempotency-Key": "k-1"})
        reordered = api.post(
            "/orders/", raw='{ "product_code":"VIP-MONTH",   "tv_account":"tv1001"}', **{"Idempotency-Key": "k-1"}
        )

    assert again.status_code == 200
    assert again.json() == first.json()
    assert reordered.status_code == 200
    assert reordered.json()["order_no"] == first.json()["order_no"]
    assert Order.objects.count() == 1


def test_same_key_answers_the_order_as_it_is_now(api, frozen):
    first = api.create("tv1001", "VIP-MONTH", **{"Idempotency-Key": "k-1"}).json()
    settle()

    again = api.create("tv1001", "VIP-MONTH", **{"Idempotency-Key": "k-1"})

    assert again.status_code == 200
    assert again.json()["order_no"] == first["order_no"]
    assert again.json()["status"] == "awaiting_payment"


@pytest.mark.parametrize(
    "other",
    [("tv1002", "VIP-MONTH", None), ("tv1001", "VIP-YEAR", None), ("tv1001", "PPV-MOVIE", "m42")],
)
def test_same_key_with_another_body_is_a_409(api, frozen, other):
    assert api.create("tv1001", "VIP-MONTH", **{"Idempotency-Key": "k-1"}).status_code == 201

    with nothing_changes():
        error_of(api.create(*other, **{"Idempotency-Key": "k-1"}), 409, "idempotency_conflict")


def test_keys_belong_to_one_client(api, other_api, frozen):
    mine = api.create("tv1001", "VIP-MONTH", **{"Idempotency-Key": "k-1"})
    theirs = other_api.create("tv1001", "VIP-MONTH", **{"Idempotency-Key": "k-1"})

    assert (mine.status_code, theirs.status_code) == (201, 201)
    assert mine.json()["order_no"] != theirs.json()["order_no"]


def test_different_keys_make_different_orders(api, frozen):
    first = api.create("tv1001", "VIP-MONTH", **{"Idempotency-Key": "k-1"})
    second = api.create("tv1001", "VIP-MONTH", **{"Idempotency-Key": "k-2"})

    assert (first.status_code, second.status_code) == (201, 201)
    assert Order.objects.count() == 2


def test_key_of_64_characters_is_accepted_and_65_is_a_400(api, frozen):
    assert api.create("tv1001", "VIP-MONTH", **{"Idempotency-Key": "k" * 64}).status_code == 201

    with nothing_changes():
        error = error_of(api.create("tv1001", "VIP-MONTH", **{"Idempotency-Key": "k" * 65}), 400)

    assert "Idempotency-Key" in error["fields"]


def test_key_with_a_nul_character_is_not_a_server_error(api, frozen):
    api.client = Client(raise_request_exception=False)

    response = api.create("tv1001", "VIP-MONTH", **{"Idempotency-Key": "k\x001"})

    assert "Idempotency-Key" in error_of(response, 400)["fields"]
    assert not Order.objects.exists()


def test_after_24_hours_the_key_starts_afresh(api, frozen):
    first = api.create("tv1001", "VIP-MONTH", **{"Idempotency-Key": "k-1"}).json()

    frozen.shift(timedelta(hours=24) - timedelta(seconds=1))
    assert api.create("tv1001", "VIP-MONTH", **{"Idempotency-Key": "k-1"}).status_code == 200
    frozen.shift(timedelta(seconds=2))
    fresh = api.create("tv1001", "VIP-MONTH", **{"Idempotency-Key": "k-1"})

    assert fresh.status_code == 201
    assert fresh.json()["order_no"] != first["order_no"]
    again = api.create("tv1001", "VIP-MONTH", **{"Idempotency-Key": "k-1"})
    assert (again.status_code, again.json()["order_no"]) == (200, fresh.json()["order_no"])


# --- throttling ------------------------------------------------------------------------------


def test_orders_per_client_are_throttled(api, other_api, frozen, settings):
    settings.EPG_ORDERS_PER_CLIENT_PER_MINUTE = 3
    for _ in range(3):
        assert api.create("tv1001", "VIP-MONTH").status_code == 201

    with nothing_changes():
        response = api.create("tv1001", "VIP-MONTH")
        error = error_of(response, 429)

    assert error["code"] == "rate_limited"
    assert 1 <= int(response["Retry-After"]) <= 61
    assert Order.objects.count() == 3
    # Another client has its own allowance, and the same key-holder may read.
    assert other_api.create("tv1001", "VIP-MONTH").status_code == 201
    assert api.products().status_code == 200

    frozen.shift(int(response["Retry-After"]))
    assert api.create("tv1001", "VIP-MONTH").status_code == 201


def test_the_sandbox_allows_an_integrators_test_run(api, frozen):
    assert django_settings.EPG_ORDERS_PER_CLIENT_PER_MINUTE >= 600
    assert django_settings.SMS_CONFIRMATIONS_PER_NUMBER_PER_HOUR >= 20
