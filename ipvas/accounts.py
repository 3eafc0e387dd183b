"""django-allauth adapter: operator staff accounts are made by admins, not by sign-up."""

from allauth.account.adapter import DefaultAccountAdapter, get_adapter
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest


class StaffOnlyAccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request: HttpRequest) -> bool:
        return False


def client_address(request: HttpRequest) -> str | None:
    """The caller's address as the sign-in's limit counts it (allauth's rule, ``TRUSTED_PROXY_COUNT``: behind
    haproxy the entry it appended to X-Forwarded-For, not the proxy's own), for audits; None when there is none
    (a Unix socket), where allauth refuses the request."""
    try:
        return get_adapter(request).get_client_ip(request)
    except PermissionDenied:
        return None
