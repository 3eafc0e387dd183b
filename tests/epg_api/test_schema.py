"""The EPG API describes itself (OpenAPI 3 at /api/epg/v1/schema/, docs at /api/epg/v1/docs/, offline),
and a fuzzer driven by that description never gets a 500 or an error outside the contract's shape.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from itertools import count
from typing import Any

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import Client
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from ipvas.wsgi import application
from tests.epg_api.support import Api, new_api_key, settle

API = "/api/epg/v1"
OPERATIONS = {
    ("get", f"{API}/products/"),
    ("post", f"{API}/orders/"),
    ("get", f"{API}/orders/{{order_no}}/"),
    ("post", f"{API}/orders/{{order_no}}/payment/"),
    ("get", f"{API}/orders/{{order_no}}/qr.png"),
    ("post", f"{API}/orders/{{order_no}}/cancel/"),
    ("get", f"{API}/entitlements/"),
    ("get", f"{API}/subscriptions/"),
    ("get", f"{API}/subscriptions/{{subscription_no}}/"),
    ("post", f"{API}/subscriptions/{{subscription_no}}/cancel/"),
    ("post", f"{API}/tv-sessions/"),
}
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def openapi_document() -> dict[str, Any]:
    response = Client().get(f"{API}/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200, response.content[:300]
    return json.loads(response.content)


def operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method, path): operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
    }


# --- the schema ----------------------------------------------------------------------------


def test_schema_is_a_valid_openapi_3_document(db):
    document = openapi_document()

    assert document["openapi"].startswith("3.")
    try:
        from openapi_spec_validator import validate
    except ImportError:
        schemathesis.openapi.from_dict(document).validate()
    else:
        validate(document)


def test_schema_is_served_as_yaml_by_default_too(db):
    response = Client().get(f"{API}/schema/")

    assert response.status_code == 200
    assert response.content.startswith(b"openapi: 3.")


def test_schema_lists_every_operation_of_the_contract(db):
    document = openapi_document()

    assert set(operations(document)) == OPERATIONS
    assert all(path.startswith(API + "/") for path in document["paths"])


def test_schema_describes_the_order_and_error_responses(db):
    ops = operations(openapi_document())

    create = ops[("post", f"{API}/orders/")]
    assert {"200", "201", "400", "401", "404", "409", "429"} <= set(create["responses"])
    assert "Idempotency-Key" in [p["name"] for p in create.get("parameters", []) if p["in"] == "header"]
    assert {"200", "400", "401", "404", "409"} <= set(ops[("post", f"{API}/orders/{{order_no}}/payment/")]["responses"])
    assert "image/png" in ops[("get", f"{API}/orders/{{order_no}}/qr.png")]["responses"]["200"]["content"]
    entitlement_params = {p["name"]: p for p in ops[("get", f"{API}/entitlements/")]["parameters"]}
    assert entitlement_params["tv_account"]["required"] is True
    assert {"product_code", "content_id"} <= set(entitlement_params)


def test_schema_of_a_subscription_is_what_section_8_lists(db):
    """Every field of §8's subscription is in every answer (required), with its type: the renewals and the
    consent as objects of their own, the times as date-times, the cancel channel as its enum or null. Before, a
    vendor's generator read `status`, `reminder_sent_at` and `cancelled_at` as optional, and the renewals and
    the consent as untyped objects."""
    schemas = openapi_document()["components"]["schemas"]
    subscription = schemas["Subscription"]
    assert set(subscription["required"]) == set(subscription["properties"])
    assert len(subscription["properties"]) == 16
    properties = subscription["properties"]
    assert properties["renewals"]["items"] == {"$ref": "#/components/schemas/Renewal"}
    assert properties["consent"]["allOf"] == [{"$ref": "#/components/schemas/Consent"}]
    for name in ("next_reminder_at", "next_renewal_at", "reminder_sent_at", "cancelled_at", "current_period_end"):
        assert properties[name]["format"] == "date-time", name
    assert {"$ref": "#/components/schemas/CancelChannelEnum"} in properties["cancel_channel"]["oneOf"]
    assert set(schemas["Renewal"]["properties"]) == {
        "order_no", "status", "amount_fen", "failure", "period_start", "period_end", "created_at"
    }  # fmt: skip


def test_schema_types_every_object_of_the_answers(db):
    """No object in a response is left untyped: a vendor's generator made the order's `payment` (its method, QR
    code, trade number, deadline), `failure` and `entitlement` free-form maps, with none of their fields."""
    document = openapi_document()
    untyped = []

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            if node.get("type") == "object" and "properties" not in node:
                untyped.append(where)
            for key, value in node.items():
                walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{where}[{i}]")

    walk(document["components"]["schemas"], "schemas")
    assert untyped == []
    order = document["components"]["schemas"]["Order"]["properties"]
    assert order["payment"]["allOf"] == [{"$ref": "#/components/schemas/Payment"}] and order["payment"]["nullable"]
    assert set(document["components"]["schemas"]["Payment"]["properties"]) == {
        "method", "out_trade_no", "qr_code_url", "qr_image_url", "expires_at"
    }  # fmt: skip


def test_schema_declares_the_api_key(db):
    document = openapi_document()

    schemes = document.get("components", {}).get("securitySchemes", {})
    assert any(
        s.get("type") == "apiKey" and s.get("in") == "header" and s.get("name") == "Authorization"
        for s in schemes.values()
    ), schemes
    for key, operation in operations(document).items():
        assert operation.get("security"), key


def test_schema_of_the_product_list_is_what_the_api_answers(db):
    document = openapi_document()
    response = document["paths"][f"{API}/products/"]["get"]["responses"]["200"]
    schema = response["content"]["application/json"]["schema"]
    if "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]

    assert schema.get("type") == "object"
    assert "results" in schema.get("properties", {})


# --- the interactive docs, offline ------------------------------------------------------------


class _Assets(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "script":
            if values.get("src"):
                self.urls.append(values["src"] or "")
            else:
                self.inline_scripts += 1
        elif tag == "link" and values.get("href"):
            self.urls.append(values["href"] or "")
        elif tag in ("img", "iframe") and values.get("src"):
            self.urls.append(values["src"] or "")


def docs_page() -> tuple[str, _Assets, Any]:
    response = Client().get(f"{API}/docs/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    assets = _Assets()
    assets.feed(html)
    return html, assets, response


def test_docs_reference_only_local_assets_that_are_served(db):
    html, assets, _ = docs_page()

    assert assets.urls, "the docs page loads no scripts or styles?"
    for url in assets.urls:
        assert not re.match(r"^(https?:)?//", url), url
    assert not re.search(r"""(src|href)\s*=\s*["'](https?:)?//""", html)
    assert "unpkg.com" not in html and "jsdelivr" not in html and "cdnjs" not in html
    served = []
    for url in assets.urls:
        response = Client().get(url)
        assert response.status_code == 200, url
        served.append(b"".join(response.streaming_content) if response.streaming else response.content)
    # Swagger UI loads the schema from here, not from a remote URL.
    assert f"{API}/schema/" in html or any(f"{API}/schema/".encode() in content for content in served)


def test_docs_scripts_are_allowed_by_the_content_security_policy(db):
    _, assets, response = docs_page()

    policy = response.headers.get("Content-Security-Policy", "")
    script_src = next(
        (d.split()[1:] for d in policy.split(";") if d.strip().startswith("script-src")),
        next((d.split()[1:] for d in policy.split(";") if d.strip().startswith("default-src")), ["*"]),
    )
    allows_inline = "'unsafe-inline'" in script_src or any(s.startswith(("'nonce-", "'sha")) for s in script_src)
    assert assets.inline_scripts == 0 or allows_inline, (assets.inline_scripts, policy)


# --- fuzzing the API from its own schema ----------------------------------------------------

schema = schemathesis.openapi.from_wsgi(f"{API}/schema/", application)


def error_shape(ctx: Any, response: Any, case: Any) -> None:
    """Every 4xx of the EPG API is {"error": {"code", "message", "fields"}} (docs/interfaces.md §2)."""
    if not 400 <= response.status_code < 500:
        return None
    body = response.json()
    assert isinstance(body, dict) and set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"code", "message", "fields"}, error
    assert isinstance(error["code"], str) and error["code"], error
    assert isinstance(error["message"], str) and error["message"], error
    assert isinstance(error["fields"], dict), error
    return None


@pytest.fixture
def fuzzed(demo) -> Iterator[dict[str, Any]]:
    """A key for the fuzzer, and an order of its own waiting for payment, so that paths reach real orders."""
    api = Api(new_api_key("Fuzzer"))
    order_no = api.create("tv1001", "VIP-MONTH").json()["order_no"]
    settle()
    # The fuzzer calls the WSGI application itself, whose request signals would close the connection that
    # holds the test's transaction (on PostgreSQL); Django's test client disconnects them the same way.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield {"authorization": f"Api-Key {api.key}", "order_no": order_no, "examples": count()}
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@schema.parametrize()
@settings(
    max_examples=30,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_fuzz_no_server_error_and_errors_in_the_contracts_shape(case, fuzzed):
    # Every other case with an order number aims at a real order of this client.
    if "order_no" in (case.path_parameters or {}) and next(fuzzed["examples"]) % 2:
        case.path_parameters["order_no"] = fuzzed["order_no"]

    case.call_and_validate(
        headers={"Authorization": fuzzed["authorization"]},
        checks=[not_a_server_error, error_shape],
    )
