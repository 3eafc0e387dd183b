"""``Authorization: Api-Key <key>``: EPG clients, keys stored hashed, revocable in admin.

A verified key is remembered for a minute, so that the entitlement check (the
hot path) does not hash with SHA-512 and query the database on every request:
in the shared cache by its SHA-256, and in this process. Every request still
reads the client's marker in the shared cache; revoking or deleting a client
deletes it (epg_api.signals), so every process refuses the key at once.

That read is one round trip to Redis, and a view may ask for the cache
entries it needs to be read in the same round trip (``cache_prefetch``): the
entitlement check gets its answer with it.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any

from django.core.cache import cache
from django.utils.translation import gettext_lazy as _
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from epg_api.models import EpgClient

KEYWORD = "Api-Key"
CACHE_SECONDS = 60
# Keys verified by this process: SHA-256 of the key -> (client id, name, monotonic expiry).
_VERIFIED: dict[str, tuple[str, str, float]] = {}
_VERIFIED_MAX = 1000


@dataclass(frozen=True)
class EpgPrincipal:
    """Who is calling: what DRF sees as ``request.user`` for an EPG client."""

    client_id: str
    name: str
    is_authenticated: bool = True
    is_active: bool = True

    @property
    def pk(self) -> str:
        return self.client_id


def cache_key(key: str) -> str:
    return "epgkey:" + hashlib.sha256(key.encode()).hexdigest()


def marker_key(client_id: str) -> str:
    """Present while the client's keys may be trusted without the database."""
    return f"epgclient:{client_id}"


def forget_client(client: EpgClient) -> None:
    cache.delete(marker_key(client.pk))


def prefetched(request: Request) -> dict[str, Any]:
    """The cache entries the view asked for (``cache_prefetch``), read with the key's marker.

    None for an entry that was not in the cache; an entry the view did not ask for is not in the dict.
    """
    return getattr(request, "_epg_prefetched", {})


def _keys_to_prefetch(request: Request) -> list[str]:
    view = (request.parser_context or {}).get("view")
    hook = getattr(view, "cache_prefetch", None)
    return list(hook(request)) if hook is not None else []


class ApiKeyAuthentication(BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[EpgPrincipal, str] | None:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        scheme, _sep, key = header.partition(" ")
        key = key.strip()
        if scheme != KEYWORD or not key or len(key) > 200:
            raise AuthenticationFailed(_("Use 'Authorization: Api-Key <key>'."))
        shared_key = cache_key(key)
        extra = _keys_to_prefetch(request)
        principal = self._cached(request, shared_key, extra)
        if principal is None:
            principal = self._verify(key, shared_key)
        return principal, principal.client_id

    def _cached(self, request: Request, shared_key: str, extra: list[str]) -> EpgPrincipal | None:
        known = _VERIFIED.get(shared_key)
        if known is not None and known[2] < time.monotonic():
            _VERIFIED.pop(shared_key, None)
            known = None
        if known is None:
            # Another process may have verified it: one more round trip.
            found: dict[str, Any] = cache.get_many([shared_key, *extra])
            request._epg_prefetched = {k: found.get(k) for k in extra}
            entry = found.get(shared_key)
            if not entry:
                return None
            client_id, name = entry
            present = cache.get(marker_key(client_id)) is not None
        else:
            client_id, name, _until = known
            found = cache.get_many([marker_key(client_id), *extra])
            request._epg_prefetched = {k: found.get(k) for k in extra}
            present = marker_key(client_id) in found
        # A revoked client's marker is gone: the key must be verified again.
        if not present:
            _VERIFIED.pop(shared_key, None)
            return None
        if known is None:
            self._remember(shared_key, client_id, name)
        return EpgPrincipal(client_id=client_id, name=name)

    def _verify(self, key: str, shared_key: str) -> EpgPrincipal:
        try:
            client = EpgClient.objects.get_from_key(key)
        except EpgClient.DoesNotExist:
            raise AuthenticationFailed(_("Unknown or revoked API key.")) from None
        if client.has_expired:
            raise AuthenticationFailed(_("This API key has expired."))
        cache.set_many({shared_key: (client.pk, client.name), marker_key(client.pk): 1}, CACHE_SECONDS)
        self._remember(shared_key, client.pk, client.name)
        return EpgPrincipal(client_id=client.pk, name=client.name)

    @staticmethod
    def _remember(shared_key: str, client_id: str, name: str) -> None:
        if len(_VERIFIED) >= _VERIFIED_MAX:
            _VERIFIED.clear()
        _VERIFIED[shared_key] = (client_id, name, time.monotonic() + CACHE_SECONDS)

    def authenticate_header(self, request: Request) -> str:
        return KEYWORD
