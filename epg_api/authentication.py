"""``Authorization: Api-Key <key>``: EPG clients, keys stored hashed, revocable in admin.

A verified key is remembered in the shared cache by its SHA-256 for a
minute, so that the entitlement check (the hot path) does not hash with
SHA-512 and query the database on every request; revoking or deleting a
client forgets it at once (epg_api.signals).
"""

from __future__ import annotations

import hashlib
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


def forget_client(client: EpgClient) -> None:
    cache.delete(f"epgclient:{client.pk}")


class ApiKeyAuthentication(BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[EpgPrincipal, str] | None:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        scheme, _sep, key = header.partition(" ")
        key = key.strip()
        if scheme != KEYWORD or not key or len(key) > 200:
            raise AuthenticationFailed(_("Use 'Authorization: Api-Key <key>'."))
        principal = self._cached(key)
        if principal is None:
            principal = self._verify(key)
        return principal, principal.client_id

    def _cached(self, key: str) -> EpgPrincipal | None:
        found: Any = cache.get(cache_key(key))
        if not found:
            return None
        client_id, name = found
        # A revoked client's marker is gone: the key must be verified again.
        if cache.get(f"epgclient:{client_id}") is None:
            return None
        return EpgPrincipal(client_id=client_id, name=name)

    def _verify(self, key: str) -> EpgPrincipal:
        try:
            client = EpgClient.objects.get_from_key(key)
        except EpgClient.DoesNotExist:
            raise AuthenticationFailed(_("Unknown or revoked API key.")) from None
        if client.has_expired:
            raise AuthenticationFailed(_("This API key has expired."))
        cache.set_many({cache_key(key): (client.pk, client.name), f"epgclient:{client.pk}": 1}, CACHE_SECONDS)
        return EpgPrincipal(client_id=client.pk, name=client.name)

    def authenticate_header(self, request: Request) -> str:
        return KEYWORD
