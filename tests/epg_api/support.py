"""Driving the EPG channel from the outside: the EPG API, the sandbox's payers and phones, and the worker.

Everything goes over HTTP through Django's test client (middleware, routing,
the real views and their verification), as an EPG vendor or an integrator
with the sandbox would. ``settle()`` stands in for the Celery worker.
"""

from __future__ import annotations

import io
import json
from datetime import datetime
from typing import Any

import pytest
from django.core.management import call_command
from django.http import HttpResponse
from django.test import Client, TestCase

from tests.support.tasks import run_due_tasks

API = "/api/epg/v1"
TERMINAL = {"completed", "rejected", "expired", "failed", "refunded", "cancelled"}


def new_api_key(name: str = "EPG test vendor") -> str:
    """A new EPG client's key, read the way a vendor reads it: the last line the command prints."""
    out = io.StringIO()
    call_command("create_epg_client", name, stdout=out)
    return out.getvalue().strip().splitlines()[-1].strip()


def settle() -> list[tuple[str, object]]:
    """Run the due outbox work as the worker would, then what each commit would have triggered.

    The test runs inside one transaction, so on-commit callbacks (the
    entitlement cache's invalidation) are run explicitly, as a commit would.
    """
    with TestCase.captureOnCommitCallbacks(execute=True):
        return run_due_tasks()


def when(value: str) -> datetime:
    return datetime.fromisoformat(value)


def error_of(response: HttpResponse, status: int, code: str | None = None) -> dict[str, Any]:
    """The body of an EPG API error, checked against the contract's shape; returns ``error``."""
    assert response.status_code == status, (response.status_code, response.content[:500])
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"code", "message", "fields"}, error
    assert isinstance(error["code"], str) and error["code"]
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["fields"], dict)
    if code is not None:
        assert error["code"] == code, error
    return error


class Api:
    """An EPG vendor's system: one API key, Django's test client."""

    def __init__(self, key: str, *, client: Client | None = None) -> None:
        self.key = key
        self.client = client or Client()

    def _meta(self, headers: dict[str, str]) -> dict[str, str]:
        meta = {"HTTP_AUTHORIZATION": f"Api-Key {self.key}"} if self.key else {}
        for name, value in headers.items():
            meta["HTTP_" + name.upper().replace("-", "_")] = value
        return meta

    def get(self, path: str, params: dict[str, Any] | None = None, **headers: str) -> HttpResponse:
        return self.client.get(API + path, params or {}, **self._meta(headers))

    def post(self, path: str, body: Any = None, *, raw: bytes | str | None = None, **headers: str) -> HttpResponse:
        data = raw if raw is not None else json.dumps(body if body is not None else {})
        return self.client.post(API + path, data=data, content_type="application/json", **self._meta(headers))

    # --- the operations of docs/interfaces.md §2 ------------------------------------

    def products(self, **params: str) -> HttpResponse:
        return self.get("/products/", params)

    def create(
        self,
        tv_account: str = "tv1001",
        product_code: str = "VIP-MONTH",
        content_id: str | None = None,
        **headers: str,
    ) -> HttpResponse:
        body = {"tv_account": tv_account, "product_code": product_code}
        if content_id is not None:
            body["content_id"] = content_id
        return self.post("/orders/", body, **headers)

    def order(self, order_no: str, **headers: str) -> dict[str, Any]:
        response = self.get(f"/orders/{order_no}/", **headers)
        assert response.status_code == 200, response.content
        return response.json()

    def choose(self, order_no: str, method: str) -> HttpResponse:
        return self.post(f"/orders/{order_no}/payment/", {"method": method})

    def cancel(self, order_no: str) -> HttpResponse:
        return self.post(f"/orders/{order_no}/cancel/")

    def qr_png(self, order_no: str) -> HttpResponse:
        return self.get(f"/orders/{order_no}/qr.png")

    def entitlements(self, **params: str) -> HttpResponse:
        return self.get("/entitlements/", params)

    # --- whole steps --------------------------------------------------------------

    def place(
        self, tv_account: str = "tv1001", product_code: str = "VIP-MONTH", content_id: str | None = None
    ) -> dict[str, Any]:
        """Create an order and let the pre-check run; returns the order as the EPG then sees it."""
        response = self.create(tv_account, product_code, content_id)
        assert response.status_code == 201, response.content
        assert response.json()["status"] == "prechecking"
        settle()
        return self.order(response.json()["order_no"])

    def pay_with(self, order_no: str, method: str) -> dict[str, Any]:
        response = self.choose(order_no, method)
        assert response.status_code == 200, response.content
        return response.json()

    def buy(
        self,
        tv_account: str = "tv1001",
        product_code: str = "VIP-MONTH",
        content_id: str | None = None,
        method: str = "wechat_qr",
    ) -> dict[str, Any]:
        """A whole purchase that succeeds: place, pay (scan and pay, or phone bill), provision."""
        order = self.place(tv_account, product_code, content_id)
        assert order["status"] == "awaiting_payment", order
        order = self.pay_with(order["order_no"], method)
        if method in ("wechat_qr", "alipay_qr"):
            answer = provider_pay(method, order["payment"]["out_trade_no"])
            assert answer == {"delivered": True, "status_code": answer["status_code"]}, answer
        elif method == "phone_bill_sms":
            settle()
            sms_reply(order_phone(order), "Y")
        settle()
        order = self.order(order["order_no"])
        assert order["status"] == "completed", order
        return order


# --- the sandbox: the customer's phone and the providers ------------------------------

PROVIDER_OF = {"wechat_qr": "wechatpay", "alipay_qr": "alipay", "wechatpay": "wechatpay", "alipay": "alipay"}
PHONES = {"tv1001": "13800000001", "tv1002": "13800000002", "tv1003": "13800000003", "tv1004": "13800000004"}


def order_phone(order: dict[str, Any]) -> str:
    return PHONES[order["tv_account"]]


def provider_pay(provider: str, out_trade_no: str) -> dict[str, Any]:
    """The customer scans the QR code and pays: POST /sandbox/<provider>/pay/."""
    response = Client().post(
        f"/sandbox/{PROVIDER_OF[provider]}/pay/",
        data=json.dumps({"out_trade_no": out_trade_no}),
        content_type="application/json",
    )
    assert response.status_code in (200, 409), response.content
    return response.json()


def sms_reply(sender: str, text: str) -> dict[str, Any]:
    """The customer answers the SMS: POST /sandbox/sms/reply/ (a signed reply to /sms/inbound/)."""
    response = Client().post(
        "/sandbox/sms/reply/", data=json.dumps({"from": sender, "text": text}), content_type="application/json"
    )
    assert response.status_code == 200, response.content
    return response.json()


def sms_outbox(to: str) -> list[dict[str, str]]:
    """What the simulated SMS gateway sent to ``to``, newest first."""
    response = Client().get("/sandbox/sms/outbox/", {"to": to})
    assert response.status_code == 200, response.content
    return response.json()["results"]


# --- fixtures (tests/epg_api/conftest.py makes them visible) -------------------------


@pytest.fixture
def api(demo) -> Api:
    """An EPG vendor with a fresh key, over the demo data."""
    return Api(new_api_key("EPG test vendor"))


@pytest.fixture
def other_api(demo) -> Api:
    """A second EPG vendor: must never see the first one's orders."""
    return Api(new_api_key("Another EPG vendor"))
