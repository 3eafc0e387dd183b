"""``Authorization: Api-Key <key>``: EPG clients, keys stored hashed, revocable in admin.

A verified key is remembered for a minute, so that the entitlement check (the
hot path) does not hash with SHA-512 and query the database on every request:
in the shared cache by its SHA-256, and in this process. Every request still
reads the client's marker in the shared cache; revoking or deleting a client
deletes it (epg_api.signals), so every process refuses the key at once.

That read is one round trip to Redis, and the caller may have other cache
entries read in the same round trip (``principal_and_entries``): the
entitlement check (epg_api.views.entitlements) gets its answer with it.

The marker is each key's own (a client may have several keys after a
rotation, each revoked on its own); the caller is the key's client
(``EpgClient.client_pk``), whose orders every key of the client reaches. A
remembered key carries its expiry, so that it is refused from that moment.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from django.conf import settings
from django.core.cache import cache, caches
from django.core.signals import setting_changed
from django.utils.translation import gettext_lazy as _
from redis.exceptions import ConnectionError as RedisConnectionError
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed, NotAuthenticated
from rest_framework.request import Request

from epg_api.models import EpgClient
from ipvas.cache_errors import CACHE_ERRORS

KEYWORD = "Api-Key"
CACHE_SECONDS = 60
# A verified key as remembered: its row's id, its client's id, the client's name, when it expires (time.time();
# None: never).
Remembered = tuple[str, str, str, float | None]
# Keys verified by this process: SHA-256 of the key -> (what the shared cache holds, monotonic expiry).
_VERIFIED: dict[str, tuple[Remembered, float]] = {}
_VERIFIED_MAX = 1000
logger = logging.getLogger(__name__)
# Django's Redis cache and ours (one redis.Redis per pool): the same keys and the same serializer.
REDIS_CACHES = ("django.core.cache.backends.redis.RedisCache", "ipvas.redis_cache.RedisCache")


@dataclass(frozen=True)
class EpgPrincipal:
    """Who is calling: what DRF sees as ``request.user`` for an EPG client."""

    client_id: str  # whose orders: the key's client (EpgClient.client_pk), the same for each of its keys
    name: str
    key_id: str  # the key's own row (EpgClient), itself the client's or a later key of it
    is_authenticated: bool = True
    is_active: bool = True

    @property
    def pk(self) -> str:
        return self.client_id


def cache_key(key: str) -> str:
    # "epgkey2:": the release before remembered (client id, name) under "epgkey:"; neither reads the other's.
    return "epgkey2:" + hashlib.sha256(key.encode()).hexdigest()


def marker_key(key_id: str) -> str:
    """Present while the key (its row's id) may be trusted without the database."""
    return f"epgclient:{key_id}"


def forget_client(client: EpgClient) -> None:
    cache.delete(marker_key(client.pk))


class _RedisReader:
    """``cache.get_many`` in one round trip, without the cost per call of Django's backend and redis-py's client.

    Django's Redis backend builds a new ``redis.Redis`` object for every call, and redis-py's client takes a
    connection from its pool under a lock, checks the process id, polls the socket for unread data and runs
    the command through its retry machinery: together three times the cost of sending the command and
    reading its answer. This reader keeps idle connections of its own (redis-py's, made from the cache's
    URL), sends the ``MGET`` on one and reads the answer on it. An idle connection that fails is dropped and
    the read made once more on a new one (Redis restarted, or closed it); a new one that fails is the
    caller's (CACHE_ERRORS). The keys are ``cache.make_key``'s and the values are decoded by Django's own
    serializer. Any other cache backend is read through the cache.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._connect: Any = None  # a new connection; None: not decided yet; False: read through the cache
        self._idle: list[Any] = []  # list.pop and list.append are atomic: no lock around them
        self._loads: Any = None
        os.register_at_fork(after_in_child=self._forget_connections)  # a child must not share the sockets

    def reset(self, **kwargs: Any) -> None:
        if kwargs.get("setting", "CACHES") == "CACHES":
            self._connect = None
            self._forget_connections()

    def _forget_connections(self) -> None:
        self._idle = []

    def _setup(self) -> None:
        with self._lock:
            if self._connect is not None:
                return
            config = settings.CACHES["default"]
            if not _plain_redis(config):
                self._connect = False
                return
            import redis
            from django.core.cache.backends.redis import RedisSerializer

            self._loads = RedisSerializer().loads
            options = redis.ConnectionPool.from_url(config["LOCATION"])  # its reading of the URL, nothing else
            self._connect = partial(options.connection_class, **options.connection_kwargs)

    def get_many(self, keys: list[str]) -> dict[str, Any]:
        if self._connect is None:
            self._setup()
        connect, idle = self._connect, self._idle  # as they are now (``reset`` replaces them)
        if connect is False:
            return cache.get_many(keys)
        make_key = caches["default"].make_key
        values = _mget([make_key(k) for k in keys], connect, idle)
        loads = self._loads
        return {k: loads(v) for k, v in zip(keys, values, strict=True) if v is not None}


def _mget(keys: list[str], connect: Callable[[], Any], idle: list[Any]) -> list[bytes | None]:
    """``MGET keys`` on an idle connection, or on a new one (``connect()``)."""
    try:
        connection = idle.pop()
    except IndexError:
        connection = None
    if connection is not None:
        try:
            return _mget_on(connection, keys, idle)
        except RedisConnectionError:
            pass  # Redis restarted, or closed it while it was idle: once more, on a new connection
    return _mget_on(connect(), keys, idle)


def _mget_on(connection: Any, keys: list[str], idle: list[Any]) -> list[bytes | None]:
    """``MGET keys`` on ``connection``, which goes back to ``idle`` when it answered."""
    try:
        connection.send_command("MGET", *keys)
        values = connection.read_response()
    except BaseException:
        connection.disconnect()  # broken, or with an answer left unread on it
        raise
    idle.append(connection)
    return values


def _plain_redis(config: dict[str, Any]) -> bool:
    """The cache of ipvas.settings with REDIS_URL: Django's Redis backend, one server, no options."""
    location = config.get("LOCATION")
    return (
        config["BACKEND"] in REDIS_CACHES
        and not config.get("OPTIONS")
        and isinstance(location, str)
        and not any(sep in location for sep in ",;")
    )


_reader = _RedisReader()
setting_changed.connect(_reader.reset, dispatch_uid="epg-api-redis-reader")
read_many = _reader.get_many


def key_from_header(header: str) -> str:
    """The key of an ``Authorization: Api-Key <key>`` header.

    NotAuthenticated without the header (as DRF answers a view no authenticator accepts),
    AuthenticationFailed for any other scheme or a malformed key.
    """
    if not header:
        raise NotAuthenticated()
    scheme, _sep, key = header.partition(" ")
    key = key.strip()
    # The scheme in any case (RFC 9110 §11.1); a key is printable ASCII (PostgreSQL refuses a NUL in a lookup).
    if scheme.lower() != "api-key" or not key or len(key) > 200 or not (key.isascii() and key.isprintable()):
        raise AuthenticationFailed(_("Use 'Authorization: Api-Key <key>'."))
    return key


def principal_and_entries(key: str, extra: Sequence[str] = ()) -> tuple[EpgPrincipal, dict[str, Any]]:
    """Who calls with ``key`` (AuthenticationFailed for no one), and the ``extra`` cache entries.

    The entries are read in the same round trip as the client's marker: None for an entry that is not
    in the cache; none at all (an empty dict) when the cache is unreachable, so that the caller reads
    the database as the key check then does.
    """
    try:
        principal, entries = _remembered(key, extra)
    except CACHE_ERRORS:
        # Nothing is known (the marker cannot be read, so a revocation cannot be seen): the database decides.
        logger.warning("cache unreachable: the API key is checked against the database", exc_info=True)
        principal, entries = None, {}
    if principal is None:
        principal = _verify(key)
    return principal, entries


def _remembered(key: str, extra: Sequence[str]) -> tuple[EpgPrincipal | None, dict[str, Any]]:
    """The caller of a key verified less than a minute ago that still stands (None: verify the key), with the
    ``extra`` entries."""
    shared_key = cache_key(key)
    known = _VERIFIED.get(shared_key)
    if known is not None and known[1] < time.monotonic():
        _VERIFIED.pop(shared_key, None)
        known = None
    if known is None:
        # Another process may have verified it: one more round trip.
        found = read_many([shared_key, *extra])
        remembered = found.get(shared_key)
        if not remembered:
            return None, {k: found.get(k) for k in extra}
        present = bool(read_many([marker_key(remembered[0])]))
    else:
        remembered = known[0]
        marker = marker_key(remembered[0])
        found = read_many([marker, *extra])
        present = marker in found
    entries = {k: found.get(k) for k in extra}
    key_id, client_id, name, expires = remembered
    # A revoked key's marker is gone, an expired key is past its moment: the key must be verified again.
    if not present or (expires is not None and expires < time.time()):
        _VERIFIED.pop(shared_key, None)
        return None, entries
    if known is None:
        _remember(shared_key, remembered)
    return EpgPrincipal(client_id=client_id, name=name, key_id=key_id), entries


def _remember(shared_key: str, remembered: Remembered) -> None:
    if len(_VERIFIED) >= _VERIFIED_MAX:
        _VERIFIED.clear()
    _VERIFIED[shared_key] = (remembered, time.monotonic() + CACHE_SECONDS)


def _verify(key: str) -> EpgPrincipal:
    """The key checked against the database (SHA-512), then remembered for a minute if the cache answers."""
    try:
        client = EpgClient.objects.get_from_key(key)
    except EpgClient.DoesNotExist:
        raise AuthenticationFailed(_("Unknown or revoked API key.")) from None
    if client.has_expired:
        raise AuthenticationFailed(_("This API key has expired."))
    shared_key = cache_key(key)
    expires = client.expiry_date.timestamp() if client.expiry_date is not None else None
    remembered = (client.pk, client.client_pk, client.name, expires)
    try:
        cache.set_many({shared_key: remembered, marker_key(client.pk): 1}, CACHE_SECONDS)
    except CACHE_ERRORS:
        # Not remembered either: without the marker a revocation would not be seen.
        logger.warning("cache unreachable: the API key was checked against the database")
    else:
        _remember(shared_key, remembered)
    return EpgPrincipal(client_id=client.client_pk, name=client.name, key_id=client.pk)


class ApiKeyAuthentication(BaseAuthentication):
    """DRF's way in for the EPG API's views; the entitlement check calls ``principal_and_entries`` itself."""

    def authenticate(self, request: Request) -> tuple[EpgPrincipal, str]:
        principal, _entries = principal_and_entries(key_from_header(request.META.get("HTTP_AUTHORIZATION", "")))
        return principal, principal.client_id

    def authenticate_header(self, request: Request) -> str:
        return KEYWORD
