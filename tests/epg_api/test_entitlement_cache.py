"""The entitlement check answers from a cache, and is still right at once.

The cache entry of an account is read in the same round trip as the API
key's revocation marker (epg_api.authentication), and a verified key is also
remembered in each process. These tests use real commits (``transaction=True``)
so that the on-commit invalidation runs as it does in production: an
entitlement granted by provisioning, or revoked by a refund or by
``entitlement_revoke``, shows in the very next answer; a revoked key is
refused at once; the fast path validates exactly as the serializer does.
"""

from __future__ import annotations

import io

import pytest
from django.core.cache import cache
from django.core.management import call_command
from rest_framework.exceptions import ValidationError

from epg_api.models import EpgClient
from epg_api.serializers import EntitlementQuery
from ipvas.actors import Actor, ActorKind
from lifecycle.manual import refund_by_admin
from orders import selectors
from orders.models import Entitlement, Order
from orders.services import entitlement_revoke
from tests.epg_api.support import Api, new_api_key
from tests.support.tasks import run_due_tasks

pytestmark = pytest.mark.django_db(transaction=True)
ADMIN = Actor(ActorKind.ADMIN, "admin")


@pytest.fixture
def vendor(settings) -> Api:
    settings.OUTBOX_RELAY_ON_COMMIT = False
    call_command("seed_demo", stdout=io.StringIO())
    return Api(new_api_key("cache test vendor"))


def entitled(api: Api, **params: str) -> bool:
    response = api.entitlements(**params)
    assert response.status_code == 200, response.content
    return response.json()["entitled"]


def buy(api: Api, method: str = "wechat_qr") -> Order:
    """A purchase through the API and the real services (the worker's tasks run here)."""
    from tests.epg_api.support import provider_pay

    created = api.create("tv1001", "VIP-MONTH").json()
    run_due_tasks()
    order = api.pay_with(created["order_no"], method)
    if method == "wechat_qr":
        provider_pay(method, order["payment"]["out_trade_no"])
    run_due_tasks()
    bought = Order.objects.get(order_no=created["order_no"])
    assert bought.status == "completed"
    return bought


def test_the_answer_is_cached(vendor, django_assert_num_queries):
    assert entitled(vendor, tv_account="tv1001", product_code="VIP-MONTH") is False
    assert cache.get(selectors.entitlements_cache_key("tv1001")) == []

    with django_assert_num_queries(0):
        assert entitled(vendor, tv_account="tv1001", product_code="VIP-MONTH") is False


def test_a_new_entitlement_shows_at_once(vendor):
    assert entitled(vendor, tv_account="tv1001", product_code="VIP-MONTH") is False  # cached: not entitled

    buy(vendor)

    assert entitled(vendor, tv_account="tv1001", product_code="VIP-MONTH") is True


def test_a_refund_by_an_admin_takes_it_away_at_once(vendor):
    order = buy(vendor)
    assert entitled(vendor, tv_account="tv1001", product_code="VIP-MONTH") is True  # cached: entitled

    assert refund_by_admin(order_id=order.pk, reason="the customer asked", actor=ADMIN) == "provider_refund"
    run_due_tasks()

    assert Entitlement.objects.get(order=order).revoked_at is not None
    assert entitled(vendor, tv_account="tv1001", product_code="VIP-MONTH") is False


def test_a_revoked_entitlement_is_gone_at_once(vendor):
    first = buy(vendor)
    buy(vendor, method="phone_bill")  # stacked after the first
    body = vendor.entitlements(tv_account="tv1001").json()
    assert len(body["entitlements"]) == 2

    entitlement_revoke(order=first)

    body = vendor.entitlements(tv_account="tv1001").json()
    assert len(body["entitlements"]) == 1
    assert body["entitled"] is False  # what is left starts when the revoked month would have ended


def test_a_revoked_key_is_refused_at_once_although_this_process_remembers_it(vendor):
    assert entitled(vendor, tv_account="tv1001") is False  # verified, remembered here and in the cache
    client = EpgClient.objects.get(name="cache test vendor")
    client.revoked = True
    client.save()

    assert vendor.entitlements(tv_account="tv1001").status_code == 401

    client.revoked = False
    client.save()
    assert vendor.entitlements(tv_account="tv1001").status_code == 200


def test_without_the_cache_every_check_reads_the_database(vendor, settings, django_assert_num_queries):
    settings.ENTITLEMENT_CACHE_SECONDS = 0
    assert entitled(vendor, tv_account="tv1001") is False  # the key is verified and remembered now

    with django_assert_num_queries(1):
        assert entitled(vendor, tv_account="tv1001") is False
    buy(vendor)
    with django_assert_num_queries(1):
        assert entitled(vendor, tv_account="tv1001", product_code="VIP-MONTH") is True
    assert cache.get(selectors.entitlements_cache_key("tv1001")) is None


QUERIES = [
    {},
    {"tv_account": ""},
    {"tv_account": "x" * 65},
    {"tv_account": "tv\x001"},
    {"tv_account": "tv1001\n"},
    {"tv_account": "tv1001", "product_code": ""},
    {"tv_account": "tv1001", "product_code": "P" * 33},
    {"tv_account": "tv1001", "product_code": "VIP\x00"},
    {"tv_account": "tv1001", "content_id": ""},
    {"tv_account": "tv1001", "content_id": "m 42"},
    {"tv_account": "x" * 65, "product_code": "", "content_id": "m 42"},
    {"tv_account": "tv1001", "product_code": "任何产品", "content_id": "m42"},
    {"tv_account": "Aa0_.-@" + "z" * 57, "product_code": "P" * 32, "content_id": "c" * 64},
]


@pytest.mark.parametrize("params", QUERIES)
def test_the_fast_path_validates_as_the_serializer_does(vendor, params):
    query = EntitlementQuery(data=params)
    try:
        query.is_valid(raise_exception=True)
    except ValidationError as exc:
        expected = {field: [str(m) for m in messages] for field, messages in exc.detail.items()}
    else:
        expected = None

    response = vendor.entitlements(**params)

    if expected is None:
        assert response.status_code == 200, response.content
        assert response.json()["tv_account"] == params["tv_account"]
    else:
        assert response.status_code == 400, response.content
        assert response.json()["error"]["fields"] == expected


@pytest.mark.parametrize("params", [{"tv_account": "tv1001"}, {"tv_account": "tv1001", "product_code": "VIP-MONTH"}])
def test_a_plain_request_is_answered_as_drf_answers_it(vendor, params):
    """The plain request skips DRF's handling (EntitlementsView.dispatch); an Accept header with a
    parameter takes DRF's way. Both answers are the same, headers included."""
    buy(vendor)

    plain = vendor.entitlements(**params)
    through_drf = vendor.get("/entitlements/", params, Accept="application/json; q=1.0")

    assert plain.status_code == through_drf.status_code == 200
    assert plain.content == through_drf.content
    assert dict(plain.headers) == dict(through_drf.headers)


@pytest.mark.parametrize(
    ("accept", "status"), [("text/html", 406), ("application/json", 200), ("*/*", 200), ("image/png", 406)]
)
def test_what_the_client_accepts_is_negotiated_as_before(vendor, accept, status):
    assert vendor.get("/entitlements/", {"tv_account": "tv1001"}, Accept=accept).status_code == status


# A cache nobody answers: connection refused at once.
CACHE_DOWN = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}
}


def test_with_the_cache_down_the_check_answers_from_the_database(vendor, settings):
    """Redis restarting must not fail the set-top boxes: the key and the entitlements come from the
    database, and nothing is remembered meanwhile, so a revocation still shows at once."""
    buy(vendor)
    assert entitled(vendor, tv_account="tv1001", product_code="VIP-MONTH") is True  # remembered, cached

    settings.CACHES = CACHE_DOWN
    with pytest.raises(Exception):  # noqa: B017 - whatever redis-py raises: the cache is really down
        cache.get("anything")

    answer = vendor.entitlements(tv_account="tv1001", product_code="VIP-MONTH")
    assert answer.status_code == 200, answer.content
    assert answer.json()["entitled"] is True
    assert entitled(vendor, tv_account="tv1001", content_id="m42", product_code="PPV-MOVIE") is False

    # Revoked where this process cannot hear of it (no signal, no marker to delete): refused at once.
    EpgClient.objects.filter(name="cache test vendor").update(revoked=True)
    refused = vendor.entitlements(tv_account="tv1001")
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "unauthorized"
