"""Abuse limits hold under concurrency (issue #6, point 6).

The limits are fixed-window counters in the shared cache (``ipvas.ratelimit``);
on Redis, SET NX and INCRBY are atomic, so however many requests race, exactly
``limit`` get through in a window. Here 50 threads start behind a barrier:
SMS confirmations over the per-number, per-TV-account and per-EPG-client
limits (through ``payment_choose``, the way both channels reach it), order
creation over the EPG API, and the counter itself.

The services tests run on PostgreSQL with Redis (the integration tier); the
counter alone also runs on the embedded tier's cache. The clock is moved to
the start of an hour (ticking), so that no run straddles a window's end.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.test import Client

from billing.models import SmsConfirmation
from ipvas import ratelimit
from ipvas.actors import Actor, ActorKind
from ipvas.errors import RateLimited
from lifecycle.paying import payment_choose
from orders.constants import OrderStatus, PaymentMethod
from orders.models import Order, OrderEvent
from tests.epg_api.support import new_api_key
from tests.factories import OrderFactory, ProductFactory
from tests.support.concurrency import connections_for

THREADS = 50
LIMIT = 7
PHONE = "13800000001"
EPG_CLIENT = Actor(ActorKind.EPG_CLIENT, "sec-epg-client")


def race(count: int, work: Callable[[int], Any]) -> list[tuple[str, Any]]:
    """Run work(0..count-1) in threads released together; ("ok", result) or ("error", exception) each."""
    barrier = threading.Barrier(count)
    results: list[tuple[str, Any]] = [("missing", None)] * count

    def run(index: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[index] = ("ok", work(index))
        except Exception as exc:
            results[index] = ("error", exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    with connections_for(count):
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a thread is stuck"
    return results


def outcomes(results: list[tuple[str, Any]]) -> Counter[str]:
    return Counter("ok" if kind == "ok" else type(value).__name__ for kind, value in results)


def refusals(results: list[tuple[str, Any]]) -> list[RateLimited]:
    return [value for kind, value in results if isinstance(value, RateLimited)]


# --- the counter ------------------------------------------------------------------------------


@pytest.mark.parametrize("window_seconds", [60, 3600])
def test_exactly_limit_hits_get_through_when_fifty_race(window_start, window_seconds):
    def hit(_: int) -> None:
        ratelimit.hit("sec-race", "one-identity", limit=LIMIT, window_seconds=window_seconds)

    results = race(THREADS, hit)

    assert outcomes(results) == {"ok": LIMIT, "RateLimited": THREADS - LIMIT}, outcomes(results)
    for refusal in refusals(results):
        assert 1 <= refusal.retry_after <= window_seconds + 1
    # Another identity has its own allowance.
    ratelimit.hit("sec-race", "another-identity", limit=LIMIT, window_seconds=window_seconds)


@pytest.mark.integration
def test_the_integration_tier_counts_in_redis():
    assert django_settings.CACHES["default"]["BACKEND"] == "ipvas.redis_cache.RedisCache"


# --- SMS confirmations --------------------------------------------------------------------------


def _orders(count: int, *, phone: Callable[[int], str], tv_account: Callable[[int], str]) -> list[int]:
    product = ProductFactory(code="SEC-SMS", payment_methods=[PaymentMethod.PHONE_BILL_SMS])
    return [
        OrderFactory(product=product, status=OrderStatus.AWAITING_PAYMENT, phone=phone(i), tv_account=tv_account(i)).pk
        for i in range(count)
    ]


def _start_all(order_ids: list[int], actor: Actor) -> list[tuple[str, Any]]:
    return race(
        len(order_ids),
        lambda i: payment_choose(order_id=order_ids[i], method=PaymentMethod.PHONE_BILL_SMS, actor=actor),
    )


def _what_went_out(results: list[tuple[str, Any]], order_ids: list[int], window_seconds: int) -> dict[str, Any]:
    """What a race of confirmation starts did, in the terms of the property (compared whole, so that a
    failure shows every limit at once)."""
    started = {pk for (kind, _), pk in zip(results, order_ids, strict=True) if kind == "ok"}
    return {
        "outcomes": dict(outcomes(results)),
        "errors other than RateLimited": [repr(v) for k, v in results if k != "ok" and not isinstance(v, RateLimited)],
        "retry_after in (0, window]": all(1 <= r.retry_after <= window_seconds + 1 for r in refusals(results)),
        "confirmations": SmsConfirmation.objects.filter(order_id__in=order_ids).count(),
        "confirmations are the started orders'": set(
            SmsConfirmation.objects.filter(order_id__in=order_ids).values_list("order_id", flat=True)
        )
        == started,
        "payment_pending are the started orders": set(
            Order.objects.filter(pk__in=order_ids, status=OrderStatus.PAYMENT_PENDING).values_list("pk", flat=True)
        )
        == started,
        "still awaiting_payment": Order.objects.filter(pk__in=order_ids, status=OrderStatus.AWAITING_PAYMENT).count(),
        "start_payment events": OrderEvent.objects.filter(order_id__in=order_ids, action="start_payment").count(),
    }


def _exactly_limit(window_seconds: int) -> dict[str, Any]:
    return {
        "outcomes": {"ok": LIMIT, "RateLimited": THREADS - LIMIT},
        "errors other than RateLimited": [],
        "retry_after in (0, window]": True,
        "confirmations": LIMIT,
        "confirmations are the started orders'": True,
        "payment_pending are the started orders": True,
        "still awaiting_payment": THREADS - LIMIT,
        "start_payment events": LIMIT,
    }


def _limits(settings, *, number: int = 1000, tv_account: int = 1000, client: int = 1000) -> None:
    settings.SMS_CONFIRMATIONS_PER_NUMBER_PER_HOUR = number
    settings.SMS_CONFIRMATIONS_PER_TV_ACCOUNT_PER_HOUR = tv_account
    settings.SMS_CONFIRMATIONS_PER_CLIENT_PER_MINUTE = client


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_sms_confirmation_limits_hold_under_concurrency(settings, window_start):
    """50 starts race over each limit in turn (one number; one TV account; one EPG client): LIMIT go out."""
    found, expected = {}, {}

    _limits(settings, number=LIMIT)
    order_ids = _orders(THREADS, phone=lambda i: PHONE, tv_account=lambda i: f"sec-number-tv-{i}")
    found["per number"] = _what_went_out(_start_all(order_ids, Actor(ActorKind.EPG_CLIENT, "c1")), order_ids, 3600)
    expected["per number"] = _exactly_limit(3600)

    _limits(settings, tv_account=LIMIT)
    order_ids = _orders(THREADS, phone=lambda i: f"1390000{i:04d}", tv_account=lambda i: "sec-shared-tv")
    found["per TV account"] = _what_went_out(_start_all(order_ids, Actor(ActorKind.EPG_CLIENT, "c2")), order_ids, 3600)
    expected["per TV account"] = _exactly_limit(3600)

    _limits(settings, client=LIMIT)
    order_ids = _orders(THREADS, phone=lambda i: f"1370000{i:04d}", tv_account=lambda i: f"sec-client-tv-{i}")
    found["per EPG client"] = _what_went_out(_start_all(order_ids, Actor(ActorKind.EPG_CLIENT, "c3")), order_ids, 60)
    expected["per EPG client"] = _exactly_limit(60)

    assert found == expected


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_racing_confirmations_to_one_number_leave_one_pending(settings, window_start):
    _limits(settings)
    order_ids = _orders(10, phone=lambda i: PHONE, tv_account=lambda i: f"sec-tv-{i}")

    results = _start_all(order_ids, EPG_CLIENT)

    assert outcomes(results) == {"ok": 10}, [repr(v) for k, v in results if k != "ok"]
    assert SmsConfirmation.objects.filter(phone=PHONE, status="pending").count() == 1


# --- orders per EPG client -------------------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_orders_per_epg_client_hold_under_concurrency(demo, settings, window_start):
    settings.EPG_ORDERS_PER_CLIENT_PER_MINUTE = 10
    key = new_api_key("EPG concurrency vendor")
    body = json.dumps({"tv_account": "tv1001", "product_code": "VIP-MONTH"})

    def create(_: int) -> Any:
        return Client().post(
            "/api/epg/v1/orders/", data=body, content_type="application/json", HTTP_AUTHORIZATION=f"Api-Key {key}"
        )

    results = race(30, create)

    assert all(kind == "ok" for kind, _ in results), [repr(v) for k, v in results if k != "ok"]
    responses = [response for _, response in results]
    assert Counter(r.status_code for r in responses) == {201: 10, 429: 20}
    for response in responses:
        if response.status_code == 429:
            assert response.json()["error"]["code"] == "rate_limited"
            assert 1 <= int(response["Retry-After"]) <= 61, response["Retry-After"]
    assert Order.objects.count() == 10
    assert {r.json()["order_no"] for r in responses if r.status_code == 201} == set(
        Order.objects.values_list("order_no", flat=True)
    )
