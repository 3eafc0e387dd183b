"""What production left open or broke (issue #11, items 7 and 8).

* ``/metrics/`` answered anyone, and ran a GROUP BY over every order on each
  scrape: in production it answers 404 until METRICS_TOKEN is set, then only
  to ``Authorization: Bearer <token>``; orders per status are counted at most
  every METRICS_ORDERS_MAX_AGE_SECONDS, shared by the processes.
* The providers' notify URLs and the SMS gateway's answered 301 to HTTPS, which
  no provider follows: they are exempt from the redirect (everything else is
  still redirected).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from ipvas import metrics
from tests.ipvas.test_production_settings import environment, write_keys

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "metrics-token-for-the-test"


@pytest.fixture(autouse=True)
def _fresh_snapshots(monkeypatch):
    monkeypatch.setattr(metrics, "_snapshots", {})


@pytest.mark.django_db
def test_in_production_metrics_answer_404_without_a_token_configured(settings):
    settings.PRODUCTION = True
    settings.METRICS_TOKEN = ""

    assert Client().get("/metrics/").status_code == 404


@pytest.mark.django_db
def test_metrics_answer_only_to_the_bearer_of_the_token(settings):
    settings.PRODUCTION = True
    settings.METRICS_TOKEN = TOKEN
    client = Client()

    without = client.get("/metrics/")
    wrong = client.get("/metrics/", HTTP_AUTHORIZATION="Bearer not-the-token")
    right = client.get("/metrics/", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")

    assert (without.status_code, wrong.status_code, right.status_code) == (401, 401, 200)
    assert b"ipvas_orders" in right.content


@pytest.mark.django_db
def test_orders_per_status_are_counted_once_per_period_not_once_per_scrape(settings, demo):
    settings.METRICS_TOKEN = TOKEN
    settings.METRICS_ORDERS_MAX_AGE_SECONDS = 60
    client = Client()
    auth = {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}

    client.get("/metrics/", **auth)  # the first scrape counts
    with CaptureQueriesContext(connection) as later:
        for _ in range(5):
            assert client.get("/metrics/", **auth).status_code == 200

    grouped = [q["sql"] for q in later.captured_queries if "GROUP BY" in q["sql"].upper()]
    assert grouped == []


def test_in_production_the_notify_and_sms_urls_are_not_redirected_to_https(tmp_path):
    """Production's own settings, in a process of its own: plain HTTP reaches the endpoints the providers
    and the SMS gateway were given; a person's pages are still sent to HTTPS."""
    code = """
import json, django
django.setup()
from django.middleware.security import SecurityMiddleware
from django.test import RequestFactory
middleware = SecurityMiddleware(lambda request: None)
paths = ["/billing/notify/wechatpay/", "/billing/notify/alipay/", "/sms/inbound/", "/healthz/", "/healthz/workers/",
         "/metrics/", "/admin/",
         "/api/epg/v1/products/", "/crm/orders/new/"]
answers = {}
for path in paths:
    response = middleware.process_request(RequestFactory().post(path, HTTP_HOST="ipvas.example.com"))
    answers[path] = response.status_code if response is not None else "served"
print(json.dumps(answers))
"""
    (tmp_path / "keys").mkdir()
    write_keys(tmp_path / "keys")
    env = environment({}, tmp_path, tmp_path / "keys")
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    answers = json.loads(result.stdout.strip().splitlines()[-1])

    assert answers == {
        "/billing/notify/wechatpay/": "served",
        "/billing/notify/alipay/": "served",
        "/sms/inbound/": "served",
        "/healthz/": "served",
        "/healthz/workers/": "served",  # the monitoring's probe of a node, as /healthz/ is the balancer's
        "/metrics/": 301,  # the token is not sent over plain HTTP
        "/admin/": 301,
        "/api/epg/v1/products/": 301,
        "/crm/orders/new/": 301,
    }


class _Workers:
    """Celery's answer to "which queues do you consume?" (the workers, outside the web process): counted, and
    held until ``release`` when asked to."""

    def __init__(self, queues):
        self.asked = 0
        self.queues = queues
        self.hold = threading.Event()
        self.hold.set()
        self.asking = threading.Event()

    def __call__(self, *, timeout):
        self.asked += 1
        self.asking.set()
        self.hold.wait(5)
        return {"ipvas@node": set(self.queues)}


@pytest.fixture
def workers(monkeypatch):
    from ipvas import queues, views

    fake = _Workers(queues.routed_queues())
    monkeypatch.setattr(views, "consumed_queues", fake)
    monkeypatch.setattr(views, "_workers_answer", None, raising=False)
    return fake


def test_the_workers_health_asks_the_workers_once_however_often_it_is_asked(workers):
    """Each ask of the workers waits a second for their answers: asked on every request of anyone, a few
    requests a second held every thread of a node and flooded the workers' control queue."""
    client = Client()

    answers = [client.get("/healthz/workers/") for _ in range(20)]

    assert [a.status_code for a in answers] == [200] * 20
    assert answers[-1].json()["workers"] == {"ipvas@node": sorted(workers.queues)}
    assert workers.asked == 1


def test_while_the_workers_are_asked_other_requests_answer_the_last_answer_at_once(workers, monkeypatch):
    from ipvas import views

    client = Client()
    assert client.get("/healthz/workers/").status_code == 200
    monkeypatch.setattr(views, "WORKERS_HEALTH_MAX_AGE_SECONDS", 0.0, raising=False)  # the last answer is old
    workers.hold.clear()
    workers.asking.clear()
    asking = threading.Thread(target=client.get, args=("/healthz/workers/",))
    asking.start()
    try:
        assert workers.asking.wait(5)
        started = time.monotonic()
        meanwhile = client.get("/healthz/workers/")
        waited = time.monotonic() - started
    finally:
        workers.hold.set()
        asking.join(5)

    assert meanwhile.status_code == 200
    assert waited < 1.0
    assert workers.asked == 2  # the first, then the one that found it old; not the one meanwhile


def _production_client_ips(tmp_path, requests: dict[str, dict[str, str]], changes=None) -> dict[str, str]:
    """The client address django-allauth's sign-in limits count by (10 failed sign-ins a minute per address),
    for each request's META, under production's own settings in a process of its own."""
    code = f"""
import json, django
django.setup()
from allauth.core.internal.httpkit import get_client_ip
from django.test import RequestFactory
requests = {requests!r}
print(json.dumps({{name: get_client_ip(RequestFactory().post("/accounts/login/", **meta))
                  for name, meta in requests.items()}}))
"""
    (tmp_path / "keys").mkdir()
    write_keys(tmp_path / "keys")
    env = environment(changes or {}, tmp_path, tmp_path / "keys")
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


HAPROXY = "10.0.0.2"  # every request reaches the web nodes from the proxy (docs/operations.md, option forwardfor)


def test_in_production_the_sign_in_limit_counts_the_callers_address_not_the_proxys(tmp_path):
    """Behind the proxy every sign-in came from its address: 10 failed sign-ins a minute from anyone refused
    every admin's sign-in for that minute, the right password too. The address haproxy appends is the
    caller's; what the caller wrote in X-Forwarded-For before it is not believed."""
    seen = _production_client_ips(
        tmp_path,
        {
            "attacker": {"REMOTE_ADDR": HAPROXY, "HTTP_X_FORWARDED_FOR": "203.0.113.7"},
            "admin": {"REMOTE_ADDR": HAPROXY, "HTTP_X_FORWARDED_FOR": "198.51.100.20"},
            "spoofing": {"REMOTE_ADDR": HAPROXY, "HTTP_X_FORWARDED_FOR": "198.51.100.20, 203.0.113.7"},
        },
    )

    assert seen == {"attacker": "203.0.113.7", "admin": "198.51.100.20", "spoofing": "203.0.113.7"}


def test_without_a_proxy_production_counts_the_connections_address(tmp_path):
    seen = _production_client_ips(
        tmp_path,
        {"direct": {"REMOTE_ADDR": "203.0.113.7", "HTTP_X_FORWARDED_FOR": "198.51.100.20"}},
        changes={"TRUSTED_PROXY_COUNT": "0"},
    )

    assert seen == {"direct": "203.0.113.7"}


@pytest.mark.django_db
def test_failed_sign_ins_of_one_caller_behind_the_proxy_leave_the_others_sign_in(settings):
    from django.contrib.auth import get_user_model
    from django.utils.crypto import get_random_string

    settings.ALLAUTH_TRUSTED_PROXY_COUNT = 1  # production's default (above)
    right = get_random_string(24)
    get_user_model().objects.create_user("ops", password=right, is_staff=True)
    for attempt in range(12):
        Client().post(
            "/accounts/login/",
            {"login": f"guess{attempt}", "password": "wrong"},
            REMOTE_ADDR=HAPROXY,
            HTTP_X_FORWARDED_FOR="203.0.113.7",
        )

    signed_in = Client().post(
        "/accounts/login/",
        {"login": "ops", "password": right},
        REMOTE_ADDR=HAPROXY,
        HTTP_X_FORWARDED_FOR="198.51.100.20",
    )

    assert signed_in.status_code == 302
