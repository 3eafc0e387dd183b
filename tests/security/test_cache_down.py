"""The cache (Redis) down: every EPG and clerk call answers, never an HTML 500 (issue #11, item 3).

Order creation and ``phone_bill_sms`` answered HTML 500: the rate limits
counted in Redis and let its error through. Each limit now fails open or
closed (ipvas/ratelimit.py): orders per EPG client fail open (counted per
process meanwhile), SMS confirmations fail closed with 503 and
``Retry-After``. Whatever else needs the cache answers 503 with
``Retry-After`` in the caller's shape (ipvas/answers.py).

The cache here is a Redis of the test's own, on its own port, killed (``kill
-9``) after the orders are set up; the shared Redis is never touched.
"""

from __future__ import annotations

import pytest
from django.test import Client

from orders.models import Order
from tests.channels_crm.support import sign_in
from tests.epg_api.support import Api, new_api_key, settle
from tests.reliability.services import OwnRedis

NEVER = {500, 502, 504}


@pytest.fixture
def cache_redis(settings):
    own = OwnRedis()
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": own.url(0), "TIMEOUT": 300}
    }
    yield own
    own.stop()


def answered(response, *, json_shape: bool) -> str:  # type: ignore[no-untyped-def]
    """'ok' for a 2xx-4xx answer, 'unavailable' for a 503 with Retry-After in the expected shape, else why not."""
    if response.status_code in NEVER:
        return f"{response.status_code}: {response.content[:200]!r}"
    if response.status_code != 503:
        return "ok"
    if not response.has_header("Retry-After"):
        return "503 without Retry-After"
    if json_shape and not response["Content-Type"].startswith("application/json"):
        return f"503 as {response['Content-Type']}"
    return "unavailable"


def test_every_epg_call_answers_with_the_cache_down(demo, cache_redis):
    api = Api(new_api_key("EPG with the cache down"), client=Client(raise_request_exception=False))
    sms_order = api.place()["order_no"]
    qr_order = api.place()["order_no"]
    api.pay_with(qr_order, "wechat_qr")
    to_cancel = api.place()["order_no"]
    direct = api.place()["order_no"]

    cache_redis.kill()
    calls = {
        "products": api.get("/products/"),
        "create order": api.post("/orders/", {"tv_account": "tv1001", "product_code": "VIP-MONTH"}),
        "create order again": api.post("/orders/", {"tv_account": "tv1001", "product_code": "VIP-YEAR"}),
        "read order": api.get(f"/orders/{qr_order}/"),
        "phone_bill_sms": api.choose(sms_order, "phone_bill_sms"),
        "phone_bill": api.choose(direct, "phone_bill"),
        "qr image": api.get(f"/orders/{qr_order}/qr.png"),
        "switch QR": api.choose(qr_order, "alipay_qr"),
        "cancel": api.cancel(to_cancel),
        "entitlements": api.get("/entitlements/", {"tv_account": "tv1001"}),
        "subscriptions": api.get("/subscriptions/", {"tv_account": "tv1001"}),
        "tv session": api.post("/tv-sessions/", {"tv_account": "tv1001", "return_url": "https://epg.example.com/x"}),
        "schema": api.get("/schema/"),
    }

    outcomes = {name: answered(response, json_shape=name != "qr image") for name, response in calls.items()}
    assert all(outcome in ("ok", "unavailable") for outcome in outcomes.values()), outcomes
    # Orders per client fail open; the confirmation SMS fails closed, and the order waits for another choice.
    assert calls["create order"].status_code == 201
    assert calls["create order again"].status_code == 201
    assert (outcomes["phone_bill_sms"], calls["phone_bill_sms"].json()["error"]["code"]) == (
        "unavailable",
        "service_unavailable",
    )
    assert Order.objects.get(order_no=sms_order).status == "awaiting_payment"
    assert calls["entitlements"].status_code == 200  # the hot path answers from the database
    assert calls["tv session"].status_code == 201  # sessions per client fail open too


def test_every_clerk_call_answers_with_the_cache_down(demo, cache_redis):
    clerk = sign_in(Client(raise_request_exception=False))
    placed = []
    for _ in range(3):
        response = clerk.post("/crm/orders/new/", {"product": "VIP-MONTH", "phone": "13800000001"})
        assert response.status_code == 302, response.content[:500]
        placed.append(response["Location"].rstrip("/").rsplit("/", 1)[-1])
    settle()
    qr, cash, to_cancel = placed
    clerk.post(f"/crm/orders/{qr}/pay/", {"method": "wechat_qr"})

    cache_redis.kill()
    fresh = sign_in(Client(raise_request_exception=False))  # SSO with the cache down
    calls = {
        "new order page": clerk.get("/crm/orders/new/"),
        "new order": clerk.post("/crm/orders/new/", {"product": "VIP-YEAR", "phone": "13800000001"}),
        "order page": clerk.get(f"/crm/orders/{qr}/"),
        "status": clerk.get(f"/crm/orders/{qr}/status.json"),
        "qr image": clerk.get(f"/crm/orders/{qr}/qr.png"),
        "pay cash": clerk.post(f"/crm/orders/{cash}/pay/", {"method": "cash", "cash_received": "yes"}),
        "cancel": clerk.post(f"/crm/orders/{to_cancel}/cancel/"),
        "history": clerk.get("/crm/orders/"),
        "subscriptions": clerk.get("/crm/subscriptions/", {"phone": "13800000001"}),
        "signed in anew": fresh.get("/crm/orders/new/"),
    }

    outcomes = {name: answered(response, json_shape=False) for name, response in calls.items()}
    assert all(outcome in ("ok", "unavailable") for outcome in outcomes.values()), outcomes
    assert calls["new order"].status_code == 302
    assert calls["pay cash"].status_code == 302
