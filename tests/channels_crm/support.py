"""Driving the clerk's pages as the CRM and the clerk do: a signed SSO ticket, then the pages.

Tickets are signed here the way the CRM signs them (RS256, the sandbox's CRM
key); everything else goes through Django's test client, and the outside
systems are the sandbox's simulators.
"""

from __future__ import annotations

import re
import secrets
import time
from functools import cache
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from django.conf import settings
from django.http import HttpResponse
from django.test import Client, TestCase

from ipvas.keyfiles import sandbox_private_key_pem
from orders.models import Order
from tests.support.tasks import run_due_tasks

CRM_KEY = "crm_sso_private_key.pem"
DEMO_CLERK = {"sub": "clerk01", "name": "演示营业员", "store_code": "NX-YC-001", "virtual_staff_id": "V0001"}


def claims(**overrides: Any) -> dict[str, Any]:
    """The claims of a valid ticket for the demo clerk, issued now; ``None`` drops a claim."""
    now = int(time.time())
    base: dict[str, Any] = {
        "iss": settings.CRM_SSO_ISSUER,
        "aud": settings.CRM_SSO_AUDIENCE,
        **DEMO_CLERK,
        "iat": now,
        "exp": now + 120,
        "jti": secrets.token_urlsafe(16),
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


@cache
def crm_private_key() -> Any:
    """The sandbox CRM's signing key, loaded once (loading a PEM costs tens of milliseconds)."""
    return serialization.load_pem_private_key(sandbox_private_key_pem(CRM_KEY).encode(), password=None)


def sign(payload: dict[str, Any], *, key: Any = None, algorithm: str = "RS256") -> str:
    return jwt.encode(payload, key if key is not None else crm_private_key(), algorithm=algorithm)


def ticket(**overrides: Any) -> str:
    return sign(claims(**overrides))


def sso(client: Client, token: str) -> HttpResponse:
    return client.get("/crm/sso/", {"ticket": token})


def sign_in(client: Client | None = None, **overrides: Any) -> Client:
    """A client signed in as a clerk through a real ticket (the demo clerk unless overridden)."""
    client = client or Client()
    response = sso(client, ticket(**overrides))
    assert response.status_code == 302, response.content[:500]
    return client


def settle() -> list[tuple[str, object]]:
    """Run the due work as the worker would, then what each commit would have triggered."""
    with TestCase.captureOnCommitCallbacks(execute=True):
        return run_due_tasks()


def new_order(client: Client, phone: str, product: str = "VIP-MONTH") -> Order:
    """Place an order from the new-order page and let the pre-check run."""
    response = client.post("/crm/orders/new/", {"product": product, "phone": phone})
    assert response.status_code == 302, response.content.decode()[:2000]
    order_no = response["Location"].rstrip("/").rsplit("/", 1)[-1]
    settle()
    return Order.objects.get(order_no=order_no)


def pay(client: Client, order: Order, method: str, **extra: str) -> HttpResponse:
    """Choose a payment method; a phone-bill charge is confirmed as the clerk confirms it (the tick)."""
    if method == "phone_bill":
        extra.setdefault("charge_agreed", "yes")
    return client.post(f"/crm/orders/{order.order_no}/pay/", {"method": method, **extra})


def cancel(client: Client, order: Order) -> HttpResponse:
    """Cancel as the clerk does: open "Cancel this order…", then confirm."""
    return client.post(f"/crm/orders/{order.order_no}/cancel/", {"confirm": "yes"})


def page(client: Client, order: Order) -> str:
    response = client.get(f"/crm/orders/{order.order_no}/")
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def text_of(html: str) -> str:
    """The page's text, tags dropped and whitespace collapsed, for asserting on what a clerk reads."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()
