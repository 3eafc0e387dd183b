"""GET /api/epg/v1/entitlements/: what a TV account may watch, from the entitlements we provisioned.

Periods stack and follow the calendar in Asia/Shanghai; a per-view purchase
entitles its own content for 48 hours; the answer is cached (the hot path)
and still shows a purchase at once.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.epg_api.support import Api, error_of, when

NOW = "2026-11-25 12:00:20+08:00"


@pytest.fixture
def frozen(time_machine):
    time_machine.move_to(NOW, tick=False)
    return time_machine


def check(api: Api, **params: str) -> dict:
    response = api.entitlements(**params)
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"tv_account", "entitled", "entitlements"}
    for row in body["entitlements"]:
        assert set(row) == {"product_code", "kind", "starts_at", "ends_at", "content_id"}
    return body


def periods(body: dict) -> list[tuple[str, str, object]]:
    return [(when(e["starts_at"]), when(e["ends_at"]), e["content_id"]) for e in body["entitlements"]]


def test_a_purchase_entitles_the_account(api, frozen):
    api.buy("tv1001", "VIP-MONTH")

    body = check(api, tv_account="tv1001", product_code="VIP-MONTH")

    assert body["tv_account"] == "tv1001"
    assert body["entitled"] is True
    assert body["entitlements"] == [
        {
            "product_code": "VIP-MONTH",
            "kind": "monthly",
            "starts_at": body["entitlements"][0]["starts_at"],
            "ends_at": body["entitlements"][0]["ends_at"],
            "content_id": None,
        }
    ]
    assert periods(body) == [(when(NOW), when("2026-12-25 12:00:20+08:00"), None)]
    # Other products and other accounts are not entitled by it.
    assert check(api, tv_account="tv1001", product_code="VIP-YEAR") == {
        "tv_account": "tv1001",
        "entitled": False,
        "entitlements": [],
    }
    assert check(api, tv_account="tv1002")["entitled"] is False


def test_without_a_purchase_nothing_is_entitled(api, frozen):
    api.place("tv1001", "VIP-MONTH")  # placed, never paid

    assert check(api, tv_account="tv1001") == {"tv_account": "tv1001", "entitled": False, "entitlements": []}


def test_a_new_entitlement_shows_at_once_although_the_answer_is_cached(api, frozen, django_assert_max_num_queries):
    assert check(api, tv_account="tv1001", product_code="VIP-MONTH")["entitled"] is False
    with django_assert_max_num_queries(0):  # the answer above is what is cached now
        assert check(api, tv_account="tv1001", product_code="VIP-MONTH")["entitled"] is False

    api.buy("tv1001", "VIP-MONTH", method="alipay_qr")

    assert check(api, tv_account="tv1001", product_code="VIP-MONTH")["entitled"] is True


def test_a_second_month_stacks_on_the_first(api, frozen):
    first = api.buy("tv1001", "VIP-MONTH")
    second = api.buy("tv1001", "VIP-MONTH", method="phone_bill")

    assert second["entitlement"]["starts_at"] == first["entitlement"]["ends_at"]
    body = check(api, tv_account="tv1001", product_code="VIP-MONTH")
    assert body["entitled"] is True
    assert periods(body) == [
        (when(NOW), when("2026-12-25 12:00:20+08:00"), None),
        (when("2026-12-25 12:00:20+08:00"), when("2027-01-25 12:00:20+08:00"), None),
    ]


def test_stacking_follows_the_calendar_across_month_ends(api, time_machine):
    time_machine.move_to("2027-01-31 10:00:00+08:00", tick=False)

    first = api.buy("tv1001", "VIP-MONTH")
    second = api.buy("tv1001", "VIP-MONTH", method="phone_bill_sms")

    assert when(first["entitlement"]["ends_at"]) == when("2027-02-28 10:00:00+08:00")
    assert when(second["entitlement"]["starts_at"]) == when("2027-02-28 10:00:00+08:00")
    assert when(second["entitlement"]["ends_at"]) == when("2027-03-28 10:00:00+08:00")

    time_machine.move_to("2027-03-28 09:59:59+08:00", tick=False)
    assert check(api, tv_account="tv1001", product_code="VIP-MONTH")["entitled"] is True
    time_machine.move_to("2027-03-28 10:00:00+08:00", tick=False)
    assert check(api, tv_account="tv1001", product_code="VIP-MONTH") == {
        "tv_account": "tv1001",
        "entitled": False,
        "entitlements": [],
    }


def test_quarter_and_year_are_calendar_periods(api, time_machine):
    time_machine.move_to("2027-11-30 08:00:00+08:00", tick=False)

    quarter = api.buy("tv1001", "VIP-QUARTER")
    year = api.buy("tv1001", "VIP-YEAR", method="phone_bill")

    assert when(quarter["entitlement"]["ends_at"]) == when("2028-02-29 08:00:00+08:00")
    assert when(year["entitlement"]["ends_at"]) == when("2028-11-30 08:00:00+08:00")


class TestPerView:
    def test_entitles_its_content_for_exactly_48_hours(self, api, frozen):
        order = api.buy("tv1001", "PPV-MOVIE", content_id="m42")

        assert order["content_id"] == "m42"
        assert order["entitlement"]["content_id"] == "m42"
        assert when(order["entitlement"]["ends_at"]) - when(order["entitlement"]["starts_at"]) == timedelta(hours=48)
        body = check(api, tv_account="tv1001", content_id="m42")
        assert body["entitled"] is True
        assert [(e["product_code"], e["kind"], e["content_id"]) for e in body["entitlements"]] == [
            ("PPV-MOVIE", "per_view", "m42")
        ]
        assert check(api, tv_account="tv1001", product_code="PPV-MOVIE", content_id="m42")["entitled"] is True
        assert check(api, tv_account="tv1001", content_id="m43") == {
            "tv_account": "tv1001",
            "entitled": False,
            "entitlements": [],
        }
        # A per-view entitlement matches only its own content, never "any content".
        assert check(api, tv_account="tv1001", product_code="PPV-MOVIE")["entitled"] is False

        frozen.move_to(when(NOW) + timedelta(hours=48) - timedelta(seconds=1))
        assert check(api, tv_account="tv1001", content_id="m42")["entitled"] is True
        frozen.move_to(when(NOW) + timedelta(hours=48))
        assert check(api, tv_account="tv1001", content_id="m42") == {
            "tv_account": "tv1001",
            "entitled": False,
            "entitlements": [],
        }

    def test_buying_content_still_watchable_is_rejected(self, api, frozen):
        api.buy("tv1001", "PPV-MOVIE", content_id="m42")
        frozen.shift(timedelta(hours=47))

        again = api.place("tv1001", "PPV-MOVIE", content_id="m42")
        other = api.place("tv1001", "PPV-MOVIE", content_id="m43")

        assert (again["status"], again["failure"]["code"]) == ("rejected", "already_subscribed")
        assert other["status"] == "awaiting_payment"

    def test_after_48_hours_it_can_be_bought_again(self, api, frozen):
        api.buy("tv1001", "PPV-MOVIE", content_id="m42")
        frozen.shift(timedelta(hours=48))

        again = api.buy("tv1001", "PPV-MOVIE", content_id="m42", method="phone_bill")

        assert when(again["entitlement"]["starts_at"]) == when(NOW) + timedelta(hours=48)
        assert check(api, tv_account="tv1001", content_id="m42")["entitled"] is True


@pytest.mark.parametrize(
    "params",
    [
        {"tv_account": ""},
        {"tv_account": "tv 1"},
        {"tv_account": "tv#1"},
        {"tv_account": "电视"},
        {"tv_account": "x" * 65},
        {"product_code": "VIP-MONTH"},
        {},
    ],
)
def test_bad_tv_account_is_a_400(api, params):
    error = error_of(api.entitlements(**params), 400)

    assert "tv_account" in error["fields"]


def test_bad_content_id_is_a_400(api):
    error = error_of(api.entitlements(tv_account="tv1001", content_id="m 42"), 400)

    assert "content_id" in error["fields"]


@pytest.mark.parametrize("authorization", [None, "", "Api-Key", "Api-Key nope.nope", "Bearer x", "api-key x"])
def test_without_a_valid_key_is_a_401(api, authorization):
    headers = {} if authorization is None else {"HTTP_AUTHORIZATION": authorization}

    response = api.client.get("/api/epg/v1/entitlements/", {"tv_account": "tv1001"}, **headers)

    error_of(response, 401)
    assert response["WWW-Authenticate"].startswith("Api-Key")


def test_the_check_makes_few_queries_however_many_entitlements(api, frozen, django_assert_max_num_queries):
    def cold_queries() -> int:
        from django.core.cache import cache

        cache.clear()
        with CaptureQueriesContext(connection) as queries:
            body = check(api, tv_account="tv1001", product_code="VIP-MONTH")
        assert body["entitled"] is True
        return len(queries)

    api.buy("tv1001", "VIP-MONTH", method="phone_bill")
    with_one = cold_queries()
    for _ in range(5):
        api.buy("tv1001", "VIP-MONTH", method="phone_bill")
    body = check(api, tv_account="tv1001", product_code="VIP-MONTH")
    assert len(body["entitlements"]) == 6

    assert cold_queries() == with_one
    assert with_one <= 3
    with django_assert_max_num_queries(3):
        check(api, tv_account="tv1001", product_code="VIP-MONTH", content_id="m1")
    with django_assert_max_num_queries(0):  # warm: the key and the answer are cached
        check(api, tv_account="tv1001", product_code="VIP-MONTH")
