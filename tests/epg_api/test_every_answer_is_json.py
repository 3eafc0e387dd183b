"""Every answer under /api/epg/v1/ that is not a success is the §2 JSON error (issue #12, item 13): unknown
paths, the wrong method, an address without its trailing slash (never Django's HTML 404, never a redirect
that would lose a POST's body)."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.epg_api.support import API, error_of, new_api_key

pytestmark = pytest.mark.django_db

# Every route of the API with a method it answers and one it does not.
ROUTES = [
    ("products/", "get", "post"),
    ("orders/", "post", "get"),
    ("orders/ABC123/", "get", "delete"),
    ("orders/ABC123/payment/", "post", "get"),
    ("orders/ABC123/cancel/", "post", "put"),
    ("orders/ABC123/qr.png", "get", "post"),
    ("entitlements/", "get", "post"),
    ("subscriptions/", "get", "post"),
    ("subscriptions/S123/", "get", "patch"),
    ("subscriptions/S123/cancel/", "post", "get"),
    ("tv-sessions/", "post", "get"),
]


@pytest.fixture
def api(db) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Api-Key {new_api_key()}")


@pytest.mark.parametrize(
    "path",
    [
        "",  # the prefix itself
        "nothing-here/",
        "orders/ABC123/refund/",
        "products/extra/segments/",
        "v2/orders/",
        "%E4%B8%AD%E6%96%87/",
        "orders/ABC123/qr.png/extra",
    ],
)
@pytest.mark.parametrize("method", ["get", "post", "put", "delete"])
def test_an_unknown_address_is_a_json_404(api, path, method):
    error = error_of(getattr(api, method)(f"{API}/{path}"), 404, "not_found")
    assert error["message"]


@pytest.mark.parametrize("path", ["/api/epg/v1", "/api/", "/api/epg/", "/api/epg/v2/products/"])
def test_addresses_beside_the_prefix_answer_json_too(api, path):
    error_of(api.get(path), 404, "not_found")


@pytest.mark.parametrize(("route", "method"), [(route, method) for route, method, _ in ROUTES if route.endswith("/")])
def test_without_its_trailing_slash_an_address_is_a_404_that_names_the_right_one(api, route, method):
    bare = f"{API}/{route.rstrip('/')}"
    response = getattr(api, method)(bare, data={} if method == "get" else "{}", content_type="application/json")
    assert "Location" not in response  # no redirect: a POST's body would be lost on the way
    error = error_of(response, 404, "not_found")
    assert f"{bare}/" in error["message"]


def test_the_hint_speaks_the_callers_language(api):
    error = error_of(api.get(f"{API}/products", HTTP_ACCEPT_LANGUAGE="zh-hans"), 404, "not_found")
    assert error["message"] == f"未找到。该地址应以斜杠结尾：{API}/products/"
    error = error_of(api.get(f"{API}/products", HTTP_ACCEPT_LANGUAGE="en"), 404, "not_found")
    assert error["message"] == f"Not found. This address ends with a slash: {API}/products/"


@pytest.mark.parametrize(("route", "_right", "wrong"), ROUTES)
def test_the_wrong_method_is_a_json_405(api, route, _right, wrong):
    response = getattr(api, wrong)(f"{API}/{route}")
    error = error_of(response, 405, "method_not_allowed")
    assert error["message"]
    assert response["Allow"]


def test_without_a_key_an_unknown_address_is_still_json():
    error_of(Client().get(f"{API}/nothing-here/"), 404, "not_found")
