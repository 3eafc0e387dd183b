"""The entitlement check answers from a cache, and is still right at once.

The cache entry of an account is read in the same round trip as the API
key's revocation marker (epg_api.authentication), and a verified key is also
remembered in each process. These tests use real commits (``transaction=True``)
so that the on-commit invalidation runs as it does in production: an
entitlement granted by provisioning, or revoked by a refund or by
``entitlement_revoke``, shows in the very next answer; a revoked key is
refused at once; a cached answer costs one round trip to the cache.
"""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any, ClassVar

import pytest
import redis
from django.conf import settings as django_settings
from django.core.cache import cache, caches
from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.locmem import LocMemCache
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone
from redis.connection import AbstractConnection

from epg_api import authentication
from epg_api.authentication import marker_key
from epg_api.models import EpgClient
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

    with transaction.atomic():  # as every caller does: the order locked, the later periods moved
        entitlement_revoke(order=first)

    body = vendor.entitlements(tv_account="tv1001").json()
    assert len(body["entitlements"]) == 1
    # The revoked month comes off the end of the stack: the one left moves into its place, now.
    assert body["entitled"] is True


def test_a_revoked_key_is_refused_at_once_although_this_process_remembers_it(vendor):
    assert entitled(vendor, tv_account="tv1001") is False  # verified, remembered here and in the cache
    client = EpgClient.objects.get(name="cache test vendor")
    assert cache.get(marker_key(client.pk)) == 1
    client.revoked = True
    client.save()

    assert cache.get(marker_key(client.pk)) is None  # deleted on save: every process sees it at once
    refused = vendor.entitlements(tv_account="tv1001")
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "unauthorized"

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


# A cache nobody answers: connection refused at once.
CACHE_DOWN = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}
}


def test_with_the_cache_down_the_check_answers_from_the_database(vendor, settings):
    """Redis restarting must not fail the set-top boxes: the key and the entitlements come from the
    database, and nothing is remembered meanwhile, so a revocation still shows at once."""
    buy(vendor)
    cached = vendor.entitlements(tv_account="tv1001", product_code="VIP-MONTH")  # remembered, cached
    assert cached.json()["entitled"] is True

    settings.CACHES = CACHE_DOWN
    with pytest.raises(Exception):  # noqa: B017 - whatever redis-py raises: the cache is really down
        cache.get("anything")

    answer = vendor.entitlements(tv_account="tv1001", product_code="VIP-MONTH")
    assert (answer.status_code, answer.content) == (200, cached.content)
    assert entitled(vendor, tv_account="tv1001", content_id="m42", product_code="PPV-MOVIE") is False

    # Revoked where this process cannot hear of it (no signal, no marker to delete): refused at once.
    EpgClient.objects.filter(name="cache test vendor").update(revoked=True)
    refused = vendor.entitlements(tv_account="tv1001")
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "unauthorized"


class CountingCache(LocMemCache):
    """The local-memory cache, listing the calls made to it: each would be one round trip to a cache server."""

    calls: ClassVar[list[tuple[str, Any]]] = []
    _MISSING = object()

    def get(self, key: str, default: Any = None, version: int | None = None) -> Any:
        self.calls.append(("get", key))
        return super().get(key, default, version)

    def get_many(self, keys: Any, version: int | None = None) -> dict[str, Any]:
        self.calls.append(("get_many", list(keys)))
        found = {key: LocMemCache.get(self, key, self._MISSING, version) for key in keys}
        return {key: value for key, value in found.items() if value is not self._MISSING}

    def set(self, key: str, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> None:
        self.calls.append(("set", key))
        super().set(key, value, timeout, version)

    def set_many(self, data: dict[str, Any], timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> list[str]:
        self.calls.append(("set_many", list(data)))
        for key, value in data.items():
            LocMemCache.set(self, key, value, timeout, version)
        return []

    def delete(self, key: str, version: int | None = None) -> bool:
        self.calls.append(("delete", key))
        return super().delete(key, version)


def test_a_cached_answer_is_one_read_of_the_key_marker_and_the_entitlements_together(vendor, settings):
    settings.CACHES = {"default": {"BACKEND": f"{__name__}.CountingCache", "LOCATION": "counting"}}
    client = EpgClient.objects.get(name="cache test vendor")
    assert entitled(vendor, tv_account="tv1001") is False  # the key verified, the account's entry filled
    CountingCache.calls.clear()

    assert entitled(vendor, tv_account="tv1001") is False

    entries = [marker_key(client.pk), selectors.entitlements_cache_key("tv1001")]
    assert CountingCache.calls == [("get_many", entries)]


@pytest.mark.skipif(not django_settings.REDIS_URL, reason="Redis itself: with REDIS_URL")
def test_a_cached_answer_is_one_redis_command(vendor, monkeypatch):
    client = EpgClient.objects.get(name="cache test vendor")
    assert entitled(vendor, tv_account="tv1001") is False  # the key verified, the account's entry filled
    commands = []
    send_command = AbstractConnection.send_command  # every command of redis-py's, on any connection

    def counted(self: AbstractConnection, *args: Any, **options: Any) -> None:
        commands.append(args)
        send_command(self, *args, **options)

    monkeypatch.setattr(AbstractConnection, "send_command", counted)

    assert entitled(vendor, tv_account="tv1001") is False

    make_key = caches["default"].make_key
    entries = (make_key(marker_key(client.pk)), make_key(selectors.entitlements_cache_key("tv1001")))
    assert commands == [("MGET", *entries)]


@pytest.mark.skipif(not django_settings.REDIS_URL, reason="Redis itself: with REDIS_URL")
def test_a_connection_redis_closed_is_replaced_within_the_same_check(vendor, django_assert_num_queries):
    # Redis restarted, or closed an idle connection: the next check reads on a new one, from the cache.
    assert entitled(vendor, tv_account="tv1001") is False  # the key verified, the account's entry filled
    idle = list(authentication._reader._idle)
    assert idle
    admin = redis.Redis.from_url(django_settings.REDIS_URL)
    for connection in idle:
        connection.send_command("CLIENT", "ID")
        admin.client_kill_filter(_id=connection.read_response())

    with django_assert_num_queries(0):
        assert entitled(vendor, tv_account="tv1001") is False


def test_a_reader_that_read_before_a_change_cannot_cache_the_old_answer(vendor):
    """The race a change leaves open: a check reads the rows, the change commits and forgets the entry, then
    the check stores what it read. The change leaves a mark (``selectors.STALE``) that a reader takes for a
    miss and cannot store over, so the old rows never come back; once the mark is gone, answers are cached
    again."""
    bought = buy(vendor)
    key = selectors.entitlements_cache_key("tv1001")
    assert entitled(vendor, tv_account="tv1001", product_code="VIP-MONTH") is True

    # A check begins: the entry is gone (expired), it reads the database...
    cache.delete(key)
    read_before = selectors._load("tv1001", bought.status_changed_at)
    assert read_before  # the entitlement, as it was
    # ...meanwhile the entitlement is taken away; the change commits and leaves its mark.
    with transaction.atomic():
        entitlement_revoke(order=Order.objects.select_for_update().get(pk=bought.pk))
    assert cache.get(key) == selectors.STALE
    # The check stores what it read, as entitlement_check does: refused.
    assert cache.add(key, read_before, 300) is False

    assert entitled(vendor, tv_account="tv1001", product_code="VIP-MONTH") is False
    assert cache.get(key) == selectors.STALE  # answered from the database, not cached over the mark

    cache.delete(key)  # the mark expires (STALE_SECONDS)
    assert entitled(vendor, tv_account="tv1001", product_code="VIP-MONTH") is False
    assert cache.get(key) == []  # cached again: the new answer


def test_a_change_costs_no_task_of_its_own(vendor):
    """Until issue #17 each change published a second delete for two seconds later: a Celery task per change."""
    from celery.signals import after_task_publish

    from ipvas.models import OutboxMessage

    bought = buy(vendor)
    published: list[str] = []

    def record(sender: str | None = None, **_: object) -> None:
        published.append(sender or "")

    before = OutboxMessage.objects.count()
    after_task_publish.connect(record, weak=False)
    try:
        with transaction.atomic():
            entitlement_revoke(order=Order.objects.select_for_update().get(pk=bought.pk))
    finally:
        after_task_publish.disconnect(record)
    assert published == []
    assert OutboxMessage.objects.count() == before
    assert cache.get(selectors.entitlements_cache_key("tv1001")) == selectors.STALE


def test_a_change_with_the_cache_down_still_runs_the_commits_other_follow_ups(vendor, settings):
    """The mark is written after the commit, among its follow-ups (the outbox relay among them): with the
    cache unreachable it is logged, and the others still run."""
    bought = buy(vendor)
    settings.CACHES = CACHE_DOWN
    ran: list[str] = []
    with transaction.atomic():
        entitlement_revoke(order=Order.objects.select_for_update().get(pk=bought.pk))
        transaction.on_commit(lambda: ran.append("the next follow-up"))
    assert ran == ["the next follow-up"]
    assert Entitlement.objects.get(order=bought).revoked_at is not None


def test_a_change_the_cache_missed_is_marked_stale_once_the_cache_is_back(vendor, settings, time_machine):
    """A refund commits while this process cannot reach the cache, which still holds the 'entitled' answer:
    the stale mark is asked again through the outbox and written once the cache answers (it used to wait for
    the entry's own timeout, ENTITLEMENT_CACHE_SECONDS: 'entitled' after the refund all that while)."""
    order = buy(vendor)
    cache.delete(selectors.entitlements_cache_key("tv1001"))  # the purchase's own stale mark has ended
    assert entitled(vendor, tv_account="tv1001", product_code="VIP-MONTH") is True
    assert cache.get(selectors.entitlements_cache_key("tv1001"))  # cached: entitled
    working = settings.CACHES
    settings.CACHES = CACHE_DOWN
    with transaction.atomic():
        entitlement_revoke(order=Order.objects.select_for_update().get(pk=order.pk))
    settings.CACHES = working
    assert entitled(vendor, tv_account="tv1001", product_code="VIP-MONTH") is True  # the old answer, for now

    time_machine.move_to(timezone.now() + timedelta(seconds=2), tick=True)  # its first try again is due
    ran = run_due_tasks()

    assert ("orders.tasks.forget_entitlements", "forgotten") in ran
    assert cache.get(selectors.entitlements_cache_key("tv1001")) == selectors.STALE
    assert entitled(vendor, tv_account="tv1001", product_code="VIP-MONTH") is False
