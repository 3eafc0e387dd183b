"""Every answer of GET /api/epg/v1/entitlements/, byte for byte: status, headers and body (docs/interfaces.md §2).

The check is answered by a plain Django view (the hot path), the rest of the
API by DRF: these are the answers the API's DRF views give, stated here so
that the two cannot drift. Errors are ``{"error": {"code", "message",
"fields"}}`` (epg_api.errors), in Chinese by default and in English with
``Accept-Language: en``. The checks come in this order: an unacceptable
``Accept`` → 406, no or a bad key → 401, another method → 405, bad
parameters → 400.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.http import HttpResponse
from django.test import Client
from django.utils import timezone, translation

from epg_api.models import EpgClient
from epg_api.serializers import EntitlementQuery
from ipvas.middleware import content_security_policy
from tests.epg_api.support import API, Api

NOW = "2026-11-25 12:00:20+08:00"
PATH = f"{API}/entitlements/"
# What every answer of the check carries, besides its Content-Length.
HEADERS = {
    "Allow": "GET, HEAD, OPTIONS",
    "Content-Type": "application/json",
    "Content-Language": "zh-hans",
    "Vary": "Accept-Language",
    "Content-Security-Policy": content_security_policy(PATH),
    "Cross-Origin-Opener-Policy": "same-origin",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}
EN = {"Content-Language": "en"}
UNAUTHORIZED = {"WWW-Authenticate": "Api-Key"}


@pytest.fixture
def frozen(time_machine):
    time_machine.move_to(NOW, tick=False)
    return time_machine


def check(client: Client, params: str = "tv_account=tv1001", method: str = "get", **meta: str) -> HttpResponse:
    return getattr(client, method)(f"{PATH}?{params}" if params else PATH, **meta)


def assert_answer(
    response: HttpResponse, status: int, body: bytes, headers: dict[str, str] | None = None, *, head: bool = False
) -> None:
    """The answer is exactly this: status, body (none to a HEAD, with the same headers) and headers."""
    assert (response.status_code, response.content) == (status, b"" if head else body)
    expected = {**HEADERS, **(headers or {}), "Content-Length": str(len(body))}
    assert dict(response.headers) == expected


def error(code: str, message: str, fields: dict[str, Any] | None = None) -> bytes:
    """The contract's error body, as the API writes it: compact UTF-8 JSON."""
    body = {"error": {"code": code, "message": message, "fields": fields or {}}}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


# --- 200 ------------------------------------------------------------------------------------

MONTH = (
    b'{"product_code":"VIP-MONTH","kind":"monthly",'
    b'"starts_at":"2026-11-25T12:00:20+08:00","ends_at":"2026-12-25T12:00:20+08:00","content_id":null}'
)
MOVIE = (
    b'{"product_code":"PPV-MOVIE","kind":"per_view",'
    b'"starts_at":"2026-11-25T12:00:20+08:00","ends_at":"2026-11-27T12:00:20+08:00","content_id":"m42"}'
)


def answer(tv_account: str, entitled: bool, *entitlements: bytes) -> bytes:
    head = f'{{"tv_account":"{tv_account}","entitled":{json.dumps(entitled)},"entitlements":['.encode()
    return head + b",".join(entitlements) + b"]}"


@pytest.fixture
def bought(api: Api, frozen) -> Api:
    api.buy("tv1001", "VIP-MONTH")
    api.buy("tv1001", "PPV-MOVIE", content_id="m42", method="phone_bill")
    return api


@pytest.mark.parametrize(
    ("params", "body"),
    [
        ("tv_account=tv1001", answer("tv1001", True, MONTH, MOVIE)),
        ("tv_account=tv1001&product_code=VIP-MONTH", answer("tv1001", True, MONTH)),
        ("tv_account=tv1001&content_id=m42", answer("tv1001", True, MONTH, MOVIE)),
        ("tv_account=tv1001&content_id=m43", answer("tv1001", True, MONTH)),
        ("tv_account=tv1001&product_code=PPV-MOVIE", answer("tv1001", False, MOVIE)),
        ("tv_account=tv1001&product_code=PPV-MOVIE&content_id=m42", answer("tv1001", True, MOVIE)),
        ("tv_account=tv1001&product_code=PPV-MOVIE&content_id=m43", answer("tv1001", False)),
        ("tv_account=tv1002", answer("tv1002", False)),
        # Unknown parameters are ignored; a repeated one counts with its last value.
        ("tv_account=tv1002&tv_account=tv1001&product_code=VIP-MONTH&x=1", answer("tv1001", True, MONTH)),
    ],
)
def test_the_answer_is_the_contracts(bought, params, body):
    assert_answer(check(bought.client, params, HTTP_AUTHORIZATION=f"Api-Key {bought.key}"), 200, body)


def test_the_answer_is_the_same_from_the_cache_and_from_the_database(bought, settings):
    auth = {"HTTP_AUTHORIZATION": f"Api-Key {bought.key}"}
    cached = check(bought.client, **auth).content

    settings.ENTITLEMENT_CACHE_SECONDS = 0
    assert check(bought.client, **auth).content == cached


def test_times_are_in_the_current_time_zone_with_microseconds_when_there_are(api, frozen):
    frozen.move_to("2026-11-25 12:00:20.123456+08:00")
    api.buy("tv1001", "VIP-MONTH")

    body = check(api.client, HTTP_AUTHORIZATION=f"Api-Key {api.key}").json()

    assert body["entitlements"][0]["starts_at"] == "2026-11-25T12:00:20.123456+08:00"
    with timezone.override("UTC"):
        body = check(api.client, HTTP_AUTHORIZATION=f"Api-Key {api.key}").json()
    assert body["entitlements"][0]["starts_at"] == "2026-11-25T04:00:20.123456+00:00"


def test_head_answers_as_get_without_the_body(api):
    get = check(api.client, HTTP_AUTHORIZATION=f"Api-Key {api.key}")
    head = check(api.client, method="head", HTTP_AUTHORIZATION=f"Api-Key {api.key}")

    assert (head.status_code, head.content, dict(head.headers)) == (200, b"", dict(get.headers))


def test_options_with_a_key_answers_the_allowed_methods(api):
    """As the API's DRF views answer OPTIONS: their metadata in JSON (it was an empty text/html answer)."""
    response = check(api.client, method="options", HTTP_AUTHORIZATION=f"Api-Key {api.key}")
    other = api.client.options(f"{API}/subscriptions/?tv_account=tv1001", HTTP_AUTHORIZATION=f"Api-Key {api.key}")

    assert (response.status_code, response["Allow"]) == (200, "GET, HEAD, OPTIONS")
    assert response["Content-Type"] == other["Content-Type"] == "application/json"
    assert response.json() == {**other.json(), "name": "Entitlements"}


# --- 400 ------------------------------------------------------------------------------------

REQUIRED = "This field is required."
BLANK = "This field may not be blank."
NUL = "Null characters are not allowed."
TV_ACCOUNT = "A TV account is 1-64 letters, digits, '_', '.', '-' or '@'."
CONTENT_ID = "A content id is 1-64 letters, digits, '_', '.', ':' or '-'."


def too_long(n: int) -> str:
    return f"Ensure this field has no more than {n} characters."


@pytest.mark.parametrize(
    ("params", "fields"),
    [
        ("", {"tv_account": [REQUIRED]}),
        ("product_code=VIP-MONTH", {"tv_account": [REQUIRED]}),
        ("tv_account=", {"tv_account": [BLANK]}),
        ("tv_account", {"tv_account": [BLANK]}),
        ("tv_account=" + "x" * 65, {"tv_account": [too_long(64)]}),
        ("tv_account=tv%001", {"tv_account": [NUL]}),
        ("tv_account=" + "x" * 65 + "%00", {"tv_account": [too_long(64), NUL]}),
        ("tv_account=tv1001%0A", {"tv_account": [TV_ACCOUNT]}),
        ("tv_account=tv%201", {"tv_account": [TV_ACCOUNT]}),
        ("tv_account=tv%231", {"tv_account": [TV_ACCOUNT]}),
        ("tv_account=%E7%94%B5%E8%A7%86", {"tv_account": [TV_ACCOUNT]}),
        ("tv_account=%ED%A0%80", {"tv_account": [TV_ACCOUNT]}),  # a lone surrogate arrives replaced
        ("tv_account=tv1001&product_code=", {"product_code": [BLANK]}),
        ("tv_account=tv1001&product_code=" + "P" * 33, {"product_code": [too_long(32)]}),
        ("tv_account=tv1001&product_code=VIP%00", {"product_code": [NUL]}),
        ("tv_account=tv1001&content_id=", {"content_id": [BLANK]}),
        ("tv_account=tv1001&content_id=" + "c" * 65, {"content_id": [too_long(64)]}),
        ("tv_account=tv1001&content_id=m%2042", {"content_id": [CONTENT_ID]}),
        ("tv_account=tv1001&content_id=m42%00", {"content_id": [NUL]}),
        (
            "content_id=m%2042&product_code=&tv_account=" + "x" * 65,
            {"tv_account": [too_long(64)], "product_code": [BLANK], "content_id": [CONTENT_ID]},
        ),
    ],
)
def test_bad_parameters_are_a_400_with_every_field_and_its_reasons(api, params, fields):
    response = check(api.client, params, HTTP_AUTHORIZATION=f"Api-Key {api.key}", HTTP_ACCEPT_LANGUAGE="en")

    assert_answer(response, 400, error("invalid", "The request is not valid.", fields), EN)


@pytest.mark.parametrize(
    "params",
    [
        "tv_account=Aa0_.-@" + "z" * 57 + "&product_code=" + "P" * 32 + "&content_id=" + "c" * 64,
        "tv_account=tv1001&product_code=%E4%BB%BB%E4%BD%95",  # any product code: it just matches nothing
        "tv_account=tv1001&content_id=a.b:c_d-e",
    ],
)
def test_the_longest_and_widest_parameters_are_accepted(api, params):
    assert check(api.client, params, HTTP_AUTHORIZATION=f"Api-Key {api.key}").status_code == 200


def test_drf_code_reading_the_query_gets_the_same_reasons():
    query = EntitlementQuery(data={"tv_account": "x" * 65, "product_code": "", "content_id": "m 42"})

    with translation.override("en"):
        assert not query.is_valid()
        assert {field: [str(m) for m in messages] for field, messages in query.errors.items()} == {
            "tv_account": [too_long(64)],
            "product_code": [BLANK],
            "content_id": [CONTENT_ID],
        }
    assert EntitlementQuery(data={"tv_account": "tv1001", "content_id": "m42"}).is_valid()


def test_errors_are_in_chinese_by_default(api):
    response = check(api.client, "tv_account=&content_id=m%2042", HTTP_AUTHORIZATION=f"Api-Key {api.key}")

    fields = {"tv_account": ["该字段不能为空。"], "content_id": ["内容编号须为 1 至 64 位字母、数字或 “_ . : -”。"]}
    assert_answer(response, 400, error("invalid", "请求参数不正确。", fields))


# --- 401 ------------------------------------------------------------------------------------

NO_CREDENTIALS = "Authentication credentials were not provided."
USE_API_KEY = "Use 'Authorization: Api-Key <key>'."
UNKNOWN_KEY = "Unknown or revoked API key."


@pytest.mark.parametrize(
    ("authorization", "message"),
    [
        (None, NO_CREDENTIALS),
        ("", NO_CREDENTIALS),
        ("Api-Key", USE_API_KEY),
        ("Api-Key ", USE_API_KEY),
        ("Api-Key-{key}", USE_API_KEY),  # the scheme is in any case (RFC 9110 §11.1), but a word of its own
        ("Bearer {key}", USE_API_KEY),
        ("Api-Key ab\x00cd.ef", USE_API_KEY),  # a NUL reached PostgreSQL's lookup: a 500 there
        ("Token {key}", USE_API_KEY),
        ("{key}", USE_API_KEY),
        ("Api-Key " + "k" * 300, USE_API_KEY),
        ("Api-Key wrong.key", UNKNOWN_KEY),
        ("Api-Key {key}x", UNKNOWN_KEY),
    ],
)
@pytest.mark.parametrize("method", ["get", "head", "post", "delete", "options"])
@pytest.mark.parametrize("params", ["tv_account=tv1001", "tv_account="])
def test_no_or_a_bad_key_is_a_401_before_anything_else(api, authorization, message, method, params):
    meta = {"HTTP_ACCEPT_LANGUAGE": "en"}
    if authorization is not None:
        meta["HTTP_AUTHORIZATION"] = authorization.format(key=api.key)

    response = check(Client(), params, method, **meta)

    assert_answer(response, 401, error("unauthorized", message), {**EN, **UNAUTHORIZED}, head=method == "head")


def test_a_revoked_or_expired_key_is_a_401(api):
    EpgClient.objects.filter(name="EPG test vendor").update(expiry_date=timezone.now() - timedelta(seconds=1))
    expired = check(Client(), HTTP_AUTHORIZATION=f"Api-Key {api.key}", HTTP_ACCEPT_LANGUAGE="en")
    client = EpgClient.objects.get(name="EPG test vendor")
    client.expiry_date = None
    client.revoked = True
    client.save()
    revoked = check(Client(), HTTP_AUTHORIZATION=f"Api-Key {api.key}", HTTP_ACCEPT_LANGUAGE="en")

    assert_answer(expired, 401, error("unauthorized", "This API key has expired."), {**EN, **UNAUTHORIZED})
    assert_answer(revoked, 401, error("unauthorized", UNKNOWN_KEY), {**EN, **UNAUTHORIZED})


def test_a_401_is_in_chinese_by_default():
    assert_answer(check(Client()), 401, error("unauthorized", "身份认证信息未提供。"), UNAUTHORIZED)


# --- 405 and 406 ----------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete", "trace"])
@pytest.mark.parametrize("params", ["tv_account=tv1001", "tv_account="])
def test_another_method_with_a_key_is_a_405_before_the_parameters(api, method, params):
    browser = Client(enforce_csrf_checks=True)  # an API: no CSRF token is asked for
    response = check(browser, params, method, HTTP_AUTHORIZATION=f"Api-Key {api.key}", HTTP_ACCEPT_LANGUAGE="en")

    message = f'Method "{method.upper()}" not allowed.'
    assert_answer(response, 405, error("method_not_allowed", message), EN)


@pytest.mark.parametrize(
    ("accept", "status"),
    [
        ("*/*", 200),
        ("application/json", 200),
        ("application/*", 200),
        ("application/json; q=1.0", 200),
        ("application/json;charset=utf-8", 200),
        ("application/json, text/html", 200),
        ("text/html, */*;q=0.1", 200),
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", 200),
        ("text/html", 406),
        ("image/png", 406),
        ("text/*", 406),
        ("application/xml", 406),
        ("*", 406),
        ("", 406),
        (",", 406),
    ],
)
def test_what_the_client_accepts_is_negotiated_as_in_the_other_views(api, accept, status):
    response = check(api.client, HTTP_AUTHORIZATION=f"Api-Key {api.key}", HTTP_ACCEPT=accept, HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    if status == 406:
        assert_answer(response, 406, error("not_acceptable", "Could not satisfy the request Accept header."), EN)
        # Before the key is looked at.
        anonymous = check(Client(), HTTP_ACCEPT=accept, HTTP_ACCEPT_LANGUAGE="en")
        assert (anonymous.status_code, anonymous.content) == (406, response.content)
    # The same Accept header is negotiated the same way by the API's DRF views.
    products = api.get("/products/", Accept=accept)
    assert products.status_code == status
