"""A refused CRM ticket in Chromium: what another site's page can do to a clerk's session, and what the CRM's
frame does at a shared counter PC (channels_crm.views.sso, docs/decisions.md).

The cookies are those of production behind TLS with the CRM framing the pages: SameSite=None, so that the
browser sends them from the CRM's frame, and from any other site's page as well. The other sites are small
servers of the test on 127.0.0.1 (another site than the live server's ``localhost``; on loopback, as Chromium
refuses a public page's requests to the local network); the requests to /crm/sso/ their pages make are
Chromium's own, with its Fetch Metadata headers, recorded as the live server received them.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlencode

import pytest
from django.core.signals import request_started

from tests.channels_crm import test_browser
from tests.channels_crm.support import ticket
from tests.support.browser import ARGS, CHROMIUM, playwright_started

site, CLERK = test_browser.site, test_browser.CLERK
# The two other sites (the CRM's page that frames ours, and any page the clerk opens), each on a free port.
CRM, ELSEWHERE = "crm", "elsewhere"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def counter_page(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A page of a counter PC's Chromium profile, which sends cookies to a frame of another site (Chrome's default
    for a profile; Playwright's contexts, like a private window, do not)."""
    profile = tmp_path / "profile"
    (profile / "Default").mkdir(parents=True)
    preferences = {"profile": {"cookie_controls_mode": 0, "block_third_party_cookies": False}}
    (profile / "Default" / "Preferences").write_text(json.dumps(preferences))
    with playwright_started() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(CHROMIUM),
            args=ARGS,
            locale="zh-CN",
            viewport={"width": test_browser.COUNTER_PC[0], "height": test_browser.COUNTER_PC[1]},
        )
        context.set_default_timeout(10_000)
        try:
            yield context.pages[0] if context.pages else context.new_page()
        finally:
            context.close()


@pytest.fixture
def cookies_as_in_the_crms_frame(settings, other_sites) -> None:
    settings.SESSION_COOKIE_SECURE = True  # Chromium keeps a Secure cookie from http://localhost
    settings.CSRF_COOKIE_SECURE = True
    settings.CRM_FRAME_ORIGINS = [other_sites[CRM].origin]


def sso_url(site: str, token: str) -> str:
    return f"{site}/crm/sso/?{urlencode({'ticket': token})}"


class Pages(ThreadingHTTPServer):
    """Another site: answers every path with one page."""

    def __init__(self) -> None:
        self.body = b""

        class Handler(BaseHTTPRequestHandler):
            def do_GET(handler) -> None:
                handler.send_response(200)
                handler.send_header("Content-Type", "text/html; charset=utf-8")
                handler.end_headers()
                handler.wfile.write(self.body)

            def log_message(handler, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def other_sites() -> Iterator[dict[str, Pages]]:
    servers = {name: Pages() for name in (CRM, ELSEWHERE)}
    for server in servers.values():
        threading.Thread(target=server.serve_forever, daemon=True).start()
    yield servers
    for server in servers.values():
        server.shutdown()
        server.server_close()


@pytest.fixture
def sso_requests() -> Iterator[list[dict[str, str]]]:
    """The Fetch Metadata and cookies of each request /crm/sso/ received."""
    seen: list[dict[str, str]] = []

    def record(environ: dict[str, str], **kwargs: object) -> None:
        if environ.get("PATH_INFO") == "/crm/sso/":
            seen.append({k: v for k, v in environ.items() if k.startswith("HTTP_SEC_FETCH") or k == "HTTP_COOKIE"})

    request_started.connect(record)
    yield seen
    request_started.disconnect(record)


def signed_in(page, site: str) -> bool:  # type: ignore[no-untyped-def]
    page.goto(f"{site}/crm/orders/new/")
    return page.locator("#id_phone").count() == 1


def sign_in(page, site: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{site}/sandbox/crm/launch/?{urlencode(CLERK)}")
    page.locator("#id_phone").wait_for()
    (session,) = [c for c in page.context.cookies() if c["name"] == "sessionid"]
    assert session["sameSite"] == "None"


def test_another_sites_page_does_not_sign_the_clerk_out(
    site, counter_page, cookies_as_in_the_crms_frame, other_sites, sso_requests
):
    page = counter_page
    sign_in(page, site)
    sso_requests.clear()  # the sign-in's own
    # Tickets anyone can write, and a clerk's own CRM ticket of the day, refused: <img>s and a hidden frame.
    garbage, colleagues = sso_url(site, "garbage"), sso_url(site, ticket(sub="clerk02", aud="another-app"))
    other_sites[ELSEWHERE].body = (
        f'<img src="{garbage}"><img src="{colleagues}"><iframe src="{garbage}" style="display:none"></iframe>'
    ).encode()
    page.goto(f"{other_sites[ELSEWHERE].origin}/a-page-the-clerk-opens")
    page.wait_for_load_state("networkidle")

    assert sorted(r.get("HTTP_SEC_FETCH_DEST", "") for r in sso_requests) == ["iframe", "image", "image"], sso_requests
    assert {r.get("HTTP_SEC_FETCH_SITE") for r in sso_requests} == {"cross-site"}
    assert "sessionid=" in sso_requests[0].get("HTTP_COOKIE", ""), "the session's cookie goes with such a request"
    assert signed_in(page, site), page.inner_text("body")[:300]
    assert all("sessionid=" in r.get("HTTP_COOKIE", "") for r in sso_requests)  # the same session, each time


def test_the_next_clerks_refused_ticket_in_the_crms_frame_ends_the_previous_session(
    site, counter_page, cookies_as_in_the_crms_frame, other_sites, sso_requests
):
    """The CRM's frame opens our page with the next clerk's ticket, which the CRM signed but which is refused
    (expired here: the CRM's page left open): the previous clerk's session ends, and the frame shows the refusal
    with no link into it."""
    page = counter_page
    sign_in(page, site)
    sso_requests.clear()  # the sign-in's own

    now = int(time.time())
    expired = sso_url(site, ticket(sub="clerk02", iat=now - 200, exp=now - 80))
    other_sites[CRM].body = f'<iframe id="ipvas" src="{expired}" width="800" height="600"></iframe>'.encode()
    page.goto(f"{other_sites[CRM].origin}/counter")
    frame = page.frame_locator("#ipvas")
    frame.locator("h1", has_text="登录被拒绝").wait_for()
    assert frame.locator("a[href^='/crm/']").count() == 0
    ((dest, site_of_request),) = [(r.get("HTTP_SEC_FETCH_DEST"), r.get("HTTP_SEC_FETCH_SITE")) for r in sso_requests]
    assert (dest, site_of_request) == ("iframe", "cross-site")

    assert not signed_in(page, site)
