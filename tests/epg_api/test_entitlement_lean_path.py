"""The entitlement check as the web server serves it: through ``ipvas.wsgi.application``, whose lean path skips
the middleware that has nothing to do with an API-key GET (ipvas/handlers.py; docs/decisions.md, issue #17).

Django's test client goes through every middleware, and test_entitlement_answers.py states its answers byte
for byte; here the application a server runs gives exactly the same status, headers (in the same order) and
body, for every kind of answer. Everything else still goes through every middleware; the check is measured
by a histogram of its own instead of django-prometheus's middleware.
"""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import Client, RequestFactory
from prometheus_client import REGISTRY

from ipvas import wsgi
from ipvas.handlers import LeanPathsHandler
from tests.epg_api.support import API, Api

PATH = f"{API}/entitlements/"
Answer = tuple[int, list[tuple[str, str]], bytes]


def served(method: str, url: str, **meta: str) -> Answer:
    """The answer of ipvas.wsgi.application, called as a WSGI server calls it."""
    environ = RequestFactory().generic(method, url, **meta).environ
    started = []
    # The request signals would close the connection that holds the test's transaction: they are
    # disconnected meanwhile, as Django's test client does.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        chunks = wsgi.application(environ, lambda status, headers, exc_info=None: started.append((status, headers)))
        try:
            body = b"".join(chunks)
        finally:
            chunks.close()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    [(status, headers)] = started
    return int(status.split()[0]), list(headers), body


def through_every_middleware(method: str, url: str, **meta: str) -> Answer:
    """The answer of Django's test client (which leaves a HEAD's body out, as a server does)."""
    response = Client().generic(method, url, **meta)
    headers = [*response.items(), *(("Set-Cookie", c.output(header="")) for c in response.cookies.values())]
    return response.status_code, headers, response.content


@pytest.fixture
def bought(api: Api) -> Api:
    api.buy("tv1001", "VIP-MONTH")
    api.buy("tv1001", "PPV-MOVIE", content_id="m42", method="phone_bill")
    return api


@pytest.mark.parametrize(
    ("method", "params", "meta"),
    [
        ("GET", "tv_account=tv1001", {}),
        ("GET", "tv_account=tv1001&product_code=VIP-MONTH", {"HTTP_ACCEPT_LANGUAGE": "en"}),
        ("GET", "tv_account=tv1001&product_code=PPV-MOVIE&content_id=m42", {"HTTP_ACCEPT": "application/json"}),
        ("GET", "tv_account=tv1002", {}),
        ("HEAD", "tv_account=tv1001", {}),
        ("OPTIONS", "tv_account=tv1001", {}),
        ("GET", "tv_account=&content_id=m%2042", {}),  # 400, in Chinese
        ("GET", "tv_account=" + "x" * 65, {"HTTP_ACCEPT_LANGUAGE": "en"}),  # 400, in English
        ("POST", "tv_account=tv1001", {"HTTP_ACCEPT_LANGUAGE": "en"}),  # 405
        ("DELETE", "tv_account=", {}),  # 405
        ("GET", "tv_account=tv1001", {"HTTP_ACCEPT": "image/png"}),  # 406
        ("GET", "tv_account=tv1001", {"HTTP_AUTHORIZATION": ""}),  # 401: no key
        ("GET", "tv_account=tv1001", {"HTTP_AUTHORIZATION": "Api-Key wrong.key", "HTTP_ACCEPT_LANGUAGE": "en"}),
        ("GET", "tv_account=tv1001", {"HTTP_AUTHORIZATION": "Bearer x"}),  # 401: another scheme
    ],
)
def test_the_server_answers_byte_for_byte_what_every_middleware_answers(bought, method, params, meta):
    meta = {"HTTP_AUTHORIZATION": f"Api-Key {bought.key}", **meta}
    url = f"{PATH}?{params}"

    expected = through_every_middleware(method, url, **meta)
    status, headers, body = served(method, url, **meta)

    assert (status, headers) == expected[:2]
    if method == "HEAD":  # the web server leaves the body out, as the test client does
        assert body == served("GET", url, **meta)[2]
    else:
        assert body == expected[2]


def test_the_check_is_measured_by_its_own_histogram_and_the_rest_of_the_api_by_django_prometheus(api):
    def sample(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    def counts() -> tuple[float, float, float]:
        return (
            sample("django_http_requests_before_middlewares_total"),
            sample("ipvas_lean_path_seconds_count", path=PATH, status="200"),
            sample("ipvas_lean_path_seconds_count", path=PATH, status="401"),
        )

    before = counts()
    assert served("GET", f"{PATH}?tv_account=tv1001", HTTP_AUTHORIZATION=f"Api-Key {api.key}")[0] == 200
    assert served("GET", f"{PATH}?tv_account=tv1001")[0] == 401
    assert counts() == (before[0], before[1] + 1, before[2] + 1)

    assert served("GET", f"{API}/products/", HTTP_AUTHORIZATION=f"Api-Key {api.key}")[0] == 200
    assert counts() == (before[0] + 1, before[1] + 1, before[2] + 1)


def test_cookies_change_nothing_in_the_answer(api):
    # Through every middleware a set-top box's cookies would make the answer vary on Cookie (the session is
    # looked at) and could bring a new CSRF cookie; the check has no use for either.
    auth = {"HTTP_AUTHORIZATION": f"Api-Key {api.key}"}
    plain = served("GET", f"{PATH}?tv_account=tv1001", **auth)

    with_cookies = served("GET", f"{PATH}?tv_account=tv1001", HTTP_COOKIE="sessionid=abcdefgh12; csrftoken=x", **auth)

    assert with_cookies == plain
    assert dict(plain[1])["Vary"] == "Accept-Language"
    assert "Set-Cookie" not in dict(plain[1])


@pytest.mark.parametrize("path", [f"{API}/entitlements", f"{API}/entitlements/x", f"{API}/entitlements//"])
def test_only_the_checks_own_path_is_lean(api, path):
    # Beside it: the API's 404 (docs/interfaces.md §2), through every middleware as before.
    url, auth = f"{path}?tv_account=tv1001", {"HTTP_AUTHORIZATION": f"Api-Key {api.key}"}
    counted = REGISTRY.get_sample_value("django_http_requests_before_middlewares_total") or 0.0

    answer = served("GET", url, **auth)

    assert REGISTRY.get_sample_value("django_http_requests_before_middlewares_total") == counted + 1
    assert answer[0] == 404
    assert answer == through_every_middleware("GET", url, **auth)


def test_a_middleware_to_skip_that_is_not_in_the_settings_is_refused():
    # A renamed middleware must not quietly run again on the lean path.
    with pytest.raises(ImproperlyConfigured, match=r"not\.A\.Middleware"):
        LeanPathsHandler(paths=wsgi.LEAN_PATHS, skip=[*wsgi.LEAN_PATHS_SKIP, "not.A.Middleware"])
