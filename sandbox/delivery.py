"""How the simulated outside systems call IPVAS: over HTTP, or in process.

With SANDBOX_CALLBACK_BASE_URL set, a POST goes over the network to that
server. Without it, the request goes through Django's whole handler in this
process (middleware, URL routing, the real view and its verification), which
needs no known address and works inside tests.
"""

from __future__ import annotations

import logging

import requests
from django.conf import settings

logger = logging.getLogger(__name__)


def deliver(path: str, *, body: bytes, content_type: str, headers: dict[str, str]) -> tuple[bool, int]:
    """POST ``body`` to IPVAS's ``path``; return (answered 2xx, status code)."""
    base = settings.SANDBOX_CALLBACK_BASE_URL
    if base:
        try:
            response = requests.post(
                base.rstrip("/") + path, data=body, headers={"Content-Type": content_type, **headers}, timeout=10
            )
        except requests.RequestException as exc:
            logger.warning("sandbox delivery to %s failed: %s", path, exc)
            return False, 0
        return 200 <= response.status_code < 300, response.status_code
    from django.test import Client

    client = Client(raise_request_exception=False, HTTP_HOST=_host())
    extra = {f"HTTP_{name.upper().replace('-', '_')}": value for name, value in headers.items()}
    response = client.post(path, data=body, content_type=content_type, **extra)
    return 200 <= response.status_code < 300, response.status_code


def _host() -> str:
    hosts = [h for h in settings.ALLOWED_HOSTS if h and h != "*" and not h.startswith(".")]
    return hosts[0] if hosts else "localhost"
