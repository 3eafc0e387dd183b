"""Deployment: the Content-Security-Policy on every response, the cookies, the sandbox off in
production (issue #6, point 7).

Only the clerk pages (``/crm/``) may be framed, by the CRM's origins
(``CRM_FRAME_ORIGINS``); the sandbox's stand-in for the CRM screen frames them
from our own origin; nothing else may be framed. Scripts load only from our
origin. Inside the CRM's frame our cookies are third-party, so the clerk
pages' session and CSRF cookies are ``SameSite=None; Secure``; every other
cookie stays ``Lax``.

That production refuses the sandbox (``IPVAS_PRODUCTION=1 IPVAS_SANDBOX=1``)
and passes ``check --deploy`` is tests/ipvas/test_production_settings.py;
here only what it leaves out: the sandbox is off there when nobody says.
"""

from __future__ import annotations

import json
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.http import HttpResponse
from django.test import Client

from tests.channels_crm.support import sign_in, ticket
from tests.ipvas.test_production_settings import environment, write_keys

ROOT = Path(__file__).resolve().parents[2]
CRM_ORIGIN = "https://crm.example.com"
CLERK_PARAMS = {"staff_id": "clerk01", "store_code": "NX-YC-001", "virtual_staff_id": "V0001", "name": "x"}


def policy(response: HttpResponse) -> dict[str, list[str]]:
    header = response.headers.get("Content-Security-Policy")
    assert header, f"no Content-Security-Policy on {response.status_code} {getattr(response, 'url', '')}"
    directives: dict[str, list[str]] = {}
    for part in header.split(";"):
        name, *values = part.split()
        assert name not in directives, header
        directives[name] = values
    return directives


def expected_ancestors(path: str) -> list[str]:
    if path.startswith("/crm/"):
        return ["'self'", CRM_ORIGIN]
    if path.startswith("/sandbox/crm/"):
        return ["'self'"]
    return ["'none'"]


class _Scripts(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.sources: list[str] = []
        self.inline_bodies: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script":
            self._in_script = True
            src = dict(attrs).get("src")
            if src:
                self.sources.append(src)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_bodies.append(data.strip()[:200])


def scripts_of(response: HttpResponse) -> _Scripts:
    parser = _Scripts()
    parser.feed(response.content.decode())
    return parser


@pytest.fixture
def static_served(settings):
    settings.WHITENOISE_USE_FINDERS = True  # /static/ served from the source tree, as in the embedded set-up


@pytest.fixture
def crm_framed(settings, static_served):
    settings.CRM_FRAME_ORIGINS = [CRM_ORIGIN]


def crawl(demo_key: str) -> dict[str, HttpResponse]:
    """One response of each kind the system gives: pages, API answers, errors, redirects, files."""
    anonymous = Client()
    clerk = sign_in()
    staff = get_user_model().objects.create_superuser("sec-crawler", email="", password="unused-password-1")
    admin = Client()
    admin.force_login(staff)
    keyed = {"HTTP_AUTHORIZATION": f"Api-Key {demo_key}"}
    frame_query = "&".join(f"{k}={v}" for k, v in CLERK_PARAMS.items())
    answers = {
        "home": anonymous.get("/"),
        "health": anonymous.get("/healthz/"),
        "metrics": anonymous.get("/metrics/"),
        "favicon redirect": anonymous.get("/favicon.ico"),
        "admin login redirect": anonymous.get("/admin/login/"),
        "sign-in page": anonymous.get("/accounts/login/?next=/admin/"),
        "admin index": admin.get("/admin/"),
        "admin order list": admin.get("/admin/orders/order/"),
        "products without key": anonymous.get("/api/epg/v1/products/"),
        "products with key": anonymous.get("/api/epg/v1/products/", **keyed),
        "unknown order with key": anonymous.get("/api/epg/v1/orders/NOSUCHORDER/", **keyed),
        "api docs": anonymous.get("/api/epg/v1/docs/"),
        "api schema": anonymous.get("/api/epg/v1/schema/"),
        "clerk page signed out": anonymous.get("/crm/orders/new/"),
        "clerk page signed in": clerk.get("/crm/orders/new/"),
        "clerk history": clerk.get("/crm/orders/"),
        "clerk unknown order": clerk.get("/crm/orders/NOSUCHORDER/"),
        "sso refused": anonymous.get("/crm/sso/", {"ticket": "garbage"}),
        "sso accepted": Client().get("/crm/sso/", {"ticket": ticket()}),
        "crm 404": anonymous.get("/crm/no-such-page/"),
        "sandbox crm frame": anonymous.get(f"/sandbox/crm/frame/?{frame_query}"),
        "sandbox crm launch": anonymous.get(f"/sandbox/crm/launch/?{frame_query}"),
        "sandbox outbox": anonymous.get("/sandbox/sms/outbox/", {"to": "13800000001"}),
        "404": anonymous.get("/no-such-page/"),
        "wechatpay notify garbage": anonymous.post("/billing/notify/wechatpay/", "garbage", "application/json"),
        "wechatpay notify GET": anonymous.get("/billing/notify/wechatpay/"),
        "alipay notify garbage": anonymous.post("/billing/notify/alipay/", {"sign": "x"}),
        "sms inbound bad signature": anonymous.post("/sms/inbound/", "{}", "application/json", HTTP_X_SIGNATURE="0"),
        "csrf failure": Client(enforce_csrf_checks=True).post("/accounts/login/", {"login": "x", "password": "y"}),
        "disallowed host": anonymous.get("/", HTTP_HOST="evil.example.com"),
        "static file": anonymous.get("/static/crm/crm.css"),
    }
    docs_scripts = scripts_of(answers["api docs"]).sources
    assert docs_scripts, "the docs page loads no script?"
    for src in docs_scripts:
        answers[f"docs script {src}"] = anonymous.get(src)
    return answers


def test_every_response_has_the_content_security_policy(api, crm_framed):
    answers = crawl(api.key)

    statuses = {name: r.status_code for name, r in answers.items()}
    # The crawl reached what it meant to (a page that stopped existing would test nothing).
    assert statuses["health"] == statuses["products with key"] == statuses["clerk page signed in"] == 200, statuses
    assert statuses["static file"] == statuses["api docs"] == statuses["sandbox crm frame"] == 200, statuses
    assert statuses["admin login redirect"] == 302 and "/accounts/login/" in answers["admin login redirect"]["Location"]
    assert statuses["products without key"] == 401 and statuses["clerk page signed out"] == 401, statuses
    assert statuses["404"] == statuses["crm 404"] == 404 and statuses["wechatpay notify garbage"] == 400, statuses
    assert statuses["csrf failure"] == 403 and statuses["disallowed host"] == 400, statuses
    wrong = {}
    for name, response in answers.items():
        path = urlsplit(response.request["PATH_INFO"]).path
        directives = policy(response)
        if directives.get("frame-ancestors") != expected_ancestors(path):
            wrong[name] = (path, directives.get("frame-ancestors"))
        assert directives["script-src"] == ["'self'"], (name, directives)
        assert directives["object-src"] == ["'none'"] and directives["base-uri"] == ["'self'"], (name, directives)
        assert directives["default-src"] == ["'self'"], (name, directives)
    assert not wrong, wrong


def test_pages_run_no_inline_script(api, crm_framed):
    """script-src 'self' forbids inline scripts: a page that had one would break (or need 'unsafe-inline')."""
    answers = crawl(api.key)

    inline = {
        name: scripts_of(response).inline_bodies
        for name, response in answers.items()
        if response.get("Content-Type", "").startswith("text/html") and scripts_of(response).inline_bodies
    }
    assert not inline, inline


def test_the_api_docs_load_their_scripts_from_our_origin_only(db, static_served):
    response = Client().get("/api/epg/v1/docs/")
    scripts = scripts_of(response)

    assert response.status_code == 200
    assert scripts.inline_bodies == []
    assert scripts.sources
    for src in scripts.sources:
        parts = urlsplit(src)
        assert not parts.scheme and not parts.netloc and src.startswith("/"), src
        served = Client().get(src)
        assert served.status_code == 200, src
        assert "javascript" in served["Content-Type"], (src, served["Content-Type"])
    assert policy(response)["script-src"] == ["'self'"]


def test_the_https_redirect_has_the_content_security_policy_too(db, settings):
    settings.SECURE_SSL_REDIRECT = True
    redirect = Client().get("/crm/orders/new/")
    disallowed = Client(raise_request_exception=False).get("/", HTTP_HOST="evil.example.com")

    assert redirect.status_code == 301 and redirect["Location"].startswith("https://")
    assert policy(redirect)["frame-ancestors"] == ["'self'", *django_settings.CRM_FRAME_ORIGINS]
    assert disallowed.status_code == 400
    assert policy(disallowed)["frame-ancestors"] == ["'none'"]


# --- cookies ------------------------------------------------------------------------------------


@pytest.fixture
def production_cookies(settings):
    settings.SESSION_COOKIE_SECURE = True
    settings.CSRF_COOKIE_SECURE = True
    settings.CRM_FRAME_ORIGINS = [CRM_ORIGIN]


def _cookies(*responses: HttpResponse) -> list[tuple[str, str, Any]]:
    return [(r.request["PATH_INFO"], name, morsel) for r in responses for name, morsel in r.cookies.items()]


def test_sign_in_cookies_are_secure_and_lax(db, production_cookies):
    get_user_model().objects.create_superuser("sec-ops", email="", password="x-Strong-Pass-123")
    client = Client()
    redirect = client.get("/admin/login/", secure=True)
    form = client.get(redirect["Location"], secure=True)
    signed_in = client.post(
        "/accounts/login/?next=/admin/",
        {"login": "sec-ops", "password": "x-Strong-Pass-123", "csrfmiddlewaretoken": form.cookies["csrftoken"].value},
        secure=True,
    )
    admin_page = client.get("/admin/", secure=True)

    assert signed_in.status_code == 302 and admin_page.status_code == 200, signed_in.content[:300]
    cookies = _cookies(redirect, form, signed_in, admin_page)
    names = {name for _, name, _ in cookies}
    assert {django_settings.SESSION_COOKIE_NAME, django_settings.CSRF_COOKIE_NAME} <= names, names
    for path, name, morsel in cookies:
        assert morsel["secure"] is True, (path, name)
        assert morsel["samesite"] == "Lax", (path, name, morsel["samesite"])
    session = signed_in.cookies[django_settings.SESSION_COOKIE_NAME]
    assert session["httponly"] is True


def test_clerk_page_cookies_are_samesite_none_and_secure(demo, production_cookies):
    client = Client()
    sso = client.get("/crm/sso/", {"ticket": ticket()}, secure=True)
    page = client.get("/crm/orders/new/", secure=True)
    created = client.post("/crm/orders/new/", {"product": "VIP-MONTH", "phone": "13800000001"}, secure=True)
    logged_out_elsewhere = Client().get("/crm/orders/new/", secure=True)

    assert sso.status_code == 302 and page.status_code == 200 and created.status_code == 302
    cookies = _cookies(sso, page, created, logged_out_elsewhere)
    names = {name for _, name, _ in cookies}
    assert {django_settings.SESSION_COOKIE_NAME, django_settings.CSRF_COOKIE_NAME} <= names, names
    for path, name, morsel in cookies:
        assert path.startswith("/crm/")
        assert morsel["samesite"] == "None" and morsel["secure"] is True, (path, name, dict(morsel))
    assert sso.cookies[django_settings.SESSION_COOKIE_NAME]["httponly"] is True


# --- the sandbox in production ---------------------------------------------------------------

PROBE = """
import django, json
django.setup()
from django.conf import settings
from django.test import Client
response = Client().get(
    "/sandbox/crm/frame/?staff_id=a&store_code=b&virtual_staff_id=c", secure=True, HTTP_HOST="ipvas.example.com"
)
print(json.dumps({"sandbox": settings.SANDBOX, "frame": response.status_code}))
"""


def test_production_keeps_the_sandbox_off_when_nobody_says(tmp_path):
    keys = tmp_path / "keys"
    keys.mkdir()
    write_keys(keys)
    env = environment({"IPVAS_SANDBOX": None}, tmp_path, keys)
    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )

    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"sandbox": False, "frame": 404}
    assert not (tmp_path / "sandbox").exists()
