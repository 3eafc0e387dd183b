"""The EPG API's messages in zh-Hans, the default (issue #12, item 6): every failure message of §1 and the
common errors of §2, asked for as an EPG does (no Accept-Language, and ``zh-hans``), say it in Chinese."""

from __future__ import annotations

import pytest
from django.utils import translation

from orders.constants import FailureCode, OrderStatus
from orders.models import Order
from orders.models.order import SMS_REPLACED
from tests.epg_api.support import API, error_of, settle
from tests.support.english import english_words

pytestmark = pytest.mark.django_db

# §1's messages name the replies a user types.
REPLIES = frozenset({"Y", "TD"})


def no_english(message: str) -> str:
    assert message and not english_words(f"<p>{message}</p>", allowed=REPLIES), message
    assert any("\u4e00" <= c <= "\u9fff" for c in message), message
    return message


@pytest.mark.parametrize("code", FailureCode.values)
def test_every_failure_message_of_section_1_is_chinese(code):
    with translation.override("zh-hans"):
        no_english(str(FailureCode(code).label))
        # The messages a code has of its own: a confirmation replaced by a newer one, a number the SMP
        # does not know (the clerk's orders name the customer by mobile number).
        order = Order(failure_code=code, phone="13900000009", tv_account="tv1001")
        no_english(order.failure_message)
        no_english(Order(failure_code=code, phone="13900000009").failure_message)
        no_english(Order(failure_code=code, failure_detail=SMS_REPLACED).failure_message)


def test_a_failed_order_carries_its_chinese_message(api):
    order = api.place(tv_account="tv9999")
    assert order["status"] == "rejected"
    assert no_english(order["failure"]["message"]) == "该电视账号不存在。"


@pytest.mark.parametrize("language", [{}, {"Accept-Language": "zh-hans"}])
def test_the_common_errors_of_section_2_are_chinese(api, settings, window_start, language):
    # 401: no key, a wrong key.
    bare = type(api)("")
    no_english(error_of(bare.get("/products/", **language), 401, "unauthorized")["message"])
    no_english(error_of(type(api)("AbCd1234.wrong").get("/products/", **language), 401)["message"])
    # 404: an unknown order, an unknown address, without the trailing slash.
    no_english(error_of(api.get("/orders/NOSUCHORDER/", **language), 404, "not_found")["message"])
    no_english(error_of(api.get("/nothing/", **language), 404, "not_found")["message"])
    no_english(error_of(api.get("/products", **language), 404, "not_found")["message"])
    # 405, 415, 400 (bad JSON, bad fields, a long Idempotency-Key).
    no_english(error_of(api.get("/orders/", **language), 405, "method_not_allowed")["message"])
    no_english(error_of(api.post("/orders/", raw="{", **language), 400, "invalid")["message"])
    invalid = error_of(api.post("/orders/", {"tv_account": "!", "product_code": ""}, **language), 400, "invalid")
    no_english(invalid["message"])
    for messages in invalid["fields"].values():
        for message in messages:
            no_english(message)
    long_key = error_of(api.create(**{"Idempotency-Key": "k" * 65, **language}), 400)
    for messages in long_key["fields"].values():
        for message in messages:
            no_english(message)
    # 409: a state conflict (cancel a cancelled order), an idempotency conflict.
    order_no = api.create(**language).json()["order_no"]
    settle()
    api.cancel(order_no)
    conflict = error_of(api.post(f"/orders/{order_no}/cancel/", **language), 409, "invalid_state")
    assert no_english(conflict["message"]) == "订单当前为“已取消”，无法取消。"
    api.create(**{"Idempotency-Key": "same-key", **language})
    other_body = {"tv_account": "tv1002", "product_code": "VIP-MONTH"}
    clash = api.post("/orders/", other_body, **{"Idempotency-Key": "same-key", **language})
    no_english(error_of(clash, 409, "idempotency_conflict")["message"])
    # 429.
    settings.EPG_ORDERS_PER_CLIENT_PER_MINUTE = 1
    no_english(error_of(api.create(**language), 429, "rate_limited")["message"])
    assert Order.objects.filter(status=OrderStatus.CANCELLED).exists()


def test_the_docs_say_how_to_type_the_key_in_the_authorize_box(client):
    schema = client.get(f"{API}/schema/", HTTP_ACCEPT="application/json").json()
    described = schema["components"]["securitySchemes"]["ApiKey"]["description"]
    assert "Api-Key " in described and "before the key" in described


def test_a_nul_character_in_a_field_is_named_for_what_it_is(api):
    """Django's own Chinese for "Null characters are not allowed." says an empty string is not allowed."""
    invalid = error_of(api.post("/orders/", {"tv_account": "tv\x001001", "product_code": "VIP-MONTH"}), 400, "invalid")
    assert invalid["fields"]["tv_account"] == ["不允许包含空字符。"]
