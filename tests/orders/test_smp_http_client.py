"""The real SMP client (adapters.smp.http) against the simulated SMP served over HTTP by the sandbox.

The live server runs in a thread of this process and reads settings at
request time, so the ``settings`` fixture reaches it.
"""

from __future__ import annotations

import re
import time
import uuid
from datetime import datetime, timedelta

import pytest
import requests
from django.urls import URLPattern, URLResolver

from adapters.http import hang_up
from adapters.smp import PrecheckRequest, SmpCharge, SmpUnavailable, SubscribeRequest, UnsubscribeResult
from adapters.smp.http import HttpSmpClient
from orders.constants import FailureCode, ProductKind
from orders.periods import add_months
from sandbox.models import SimSmpAccount, SimSmpSubscription

MONTH = "SMP-VIP-MONTH"
MONTH_ZERO_PRICE = "SMP-VIP-MONTH-0"


@pytest.fixture
def smp_url(live_server, demo) -> str:
    return f"{live_server.url}/sandbox/smp/api"  # tests/conftest.py hangs up the client's sessions after each test


@pytest.fixture
def smp(smp_url, settings) -> HttpSmpClient:
    return HttpSmpClient(base_url=smp_url, token=settings.SMP_API_TOKEN, timeout=5)


@pytest.fixture
def set_fault(live_server):
    def set_fault(mode: str) -> None:
        response = requests.post(f"{live_server.url}/sandbox/smp/faults/", json={"mode": mode}, timeout=5)
        assert response.status_code == 200, response.text
        assert response.json() == {"system": "smp", "mode": mode}

    return set_fault


def order_no() -> str:
    return "T" + uuid.uuid4().hex[:20].upper()


def monthly(no: str, *, tv_account: str = "tv1001", charge: str = SmpCharge.PHONE_BILL, **kwargs) -> SubscribeRequest:
    fields = {
        "order_no": no,
        "tv_account": tv_account,
        "product_code": MONTH,
        "package_code": MONTH_ZERO_PRICE if charge == SmpCharge.PREPAID else MONTH,
        "charge": charge,
        "amount_fen": 2500,
        "kind": ProductKind.MONTHLY,
        "period_months": 1,
    }
    fields.update(kwargs)
    return SubscribeRequest(**fields)


def balance(tv_account: str) -> int:
    return SimSmpAccount.objects.get(tv_account=tv_account).balance_fen


def aware(value: datetime | None) -> datetime:
    assert value is not None and value.tzinfo is not None
    return value


# Each test below runs against a live server, so it needs a committed database
# that is flushed after it (slow on PostgreSQL): they are few and each covers
# one operation fully.


def test_precheck_answers_for_each_demo_account_by_tv_account_or_phone(smp):
    expected = {
        "tv1001": (True, "tv1001", "13800000001", ""),
        "tv1002": (True, "tv1002", "13800000002", ""),
        "tv1003": (False, "", "", FailureCode.ACCOUNT_SUSPENDED),
        "tv1004": (False, "", "", FailureCode.ACCOUNT_IN_ARREARS),
        "tv9999": (False, "", "", FailureCode.ACCOUNT_NOT_FOUND),
    }
    for tv_account, answer in expected.items():
        result = smp.precheck(PrecheckRequest(product_code=MONTH, kind=ProductKind.MONTHLY, tv_account=tv_account))
        assert (result.ok, result.tv_account, result.phone, result.reason) == answer, tv_account

    by_phone = smp.precheck(PrecheckRequest(product_code=MONTH, kind=ProductKind.MONTHLY, phone="13800000002"))
    assert (by_phone.ok, by_phone.tv_account, by_phone.phone) == (True, "tv1002", "13800000002")
    unknown_phone = smp.precheck(PrecheckRequest(product_code=MONTH, kind=ProductKind.MONTHLY, phone="13900000009"))
    assert (unknown_phone.ok, unknown_phone.reason) == (False, FailureCode.ACCOUNT_NOT_FOUND)
    unknown_product = smp.precheck(PrecheckRequest(product_code="SMP-NOPE", kind="monthly", tv_account="tv1001"))
    assert (unknown_product.ok, unknown_product.reason) == (False, FailureCode.PRODUCT_NOT_AVAILABLE)


def test_subscribe_charges_the_way_it_is_told(smp):
    start = balance("tv1001")

    phone_bill = smp.subscribe(monthly(order_no()))
    assert phone_bill.ok and phone_bill.subscription_id
    assert aware(phone_bill.ends_at) == add_months(aware(phone_bill.starts_at), 1)
    assert balance("tv1001") == start - 2500

    too_little = smp.subscribe(monthly(order_no(), tv_account="tv1002"))
    assert (too_little.ok, too_little.reason, too_little.subscription_id) == (
        False,
        FailureCode.INSUFFICIENT_BALANCE,
        "",
    )
    assert balance("tv1002") == 100
    assert not SimSmpSubscription.objects.filter(tv_account="tv1002").exists()

    # Paid by WeChat or Alipay: only the zero-price package is accepted, and nothing is charged.
    priced_package = smp.subscribe(monthly(order_no(), charge=SmpCharge.PREPAID, package_code=MONTH))
    assert (priced_package.ok, priced_package.reason) == (False, FailureCode.PRODUCT_NOT_AVAILABLE)
    prepaid = smp.subscribe(monthly(order_no(), charge=SmpCharge.PREPAID))
    assert prepaid.ok
    assert SimSmpSubscription.objects.get(subscription_id=prepaid.subscription_id).amount_fen == 0

    # A cash sale: the marketing account pays, not the customer's phone bill.
    cash = smp.subscribe(monthly(order_no(), charge=SmpCharge.MARKETING_ACCOUNT))
    assert cash.ok
    subscription = SimSmpSubscription.objects.get(subscription_id=cash.subscription_id)
    assert (subscription.charge, subscription.amount_fen) == (SmpCharge.MARKETING_ACCOUNT, 2500)

    assert balance("tv1001") == start - 2500


def test_subscribe_is_idempotent_on_the_order_number_and_periods_stack(smp):
    start = balance("tv1001")
    no = order_no()
    first = smp.subscribe(monthly(no))
    again = smp.subscribe(monthly(no))
    assert again == first
    assert SimSmpSubscription.objects.filter(order_no=no).count() == 1
    assert balance("tv1001") == start - 2500

    second = smp.subscribe(monthly(order_no()))
    assert second.starts_at == first.ends_at
    assert aware(second.ends_at) == add_months(aware(first.ends_at), 1)
    assert balance("tv1001") == start - 5000


def test_authorize(smp):
    assert smp.authorize(tv_account="tv1001", product_code=MONTH).authorized is False
    first = smp.subscribe(monthly(order_no()))
    smp.subscribe(monthly(order_no()))  # stacked: starts when the first ends

    answer = smp.authorize(tv_account="tv1001", product_code=MONTH)
    assert (answer.authorized, answer.ends_at) == (True, first.ends_at)
    assert smp.authorize(tv_account="tv1002", product_code=MONTH).authorized is False
    assert smp.authorize(tv_account="tv1001", product_code="SMP-VIP-YEAR").authorized is False

    movie = smp.subscribe(
        SubscribeRequest(
            order_no=order_no(),
            tv_account="tv1001",
            product_code="SMP-PPV-MOVIE",
            package_code="SMP-PPV-MOVIE",
            charge=SmpCharge.PHONE_BILL,
            amount_fen=500,
            kind=ProductKind.PER_VIEW,
            view_hours=48,
            content_id="m42",
        )
    )
    assert movie.ok
    assert aware(movie.ends_at) - aware(movie.starts_at) == timedelta(hours=48)
    assert smp.authorize(tv_account="tv1001", product_code="SMP-PPV-MOVIE", content_id="m42").authorized is True
    assert smp.authorize(tv_account="tv1001", product_code="SMP-PPV-MOVIE", content_id="m43").authorized is False


def test_unsubscribe_reverses_a_phone_bill_charge_once(smp):
    start = balance("tv1001")
    no = order_no()
    smp.subscribe(monthly(no))
    assert balance("tv1001") == start - 2500

    first = smp.unsubscribe(order_no=no)
    again = smp.unsubscribe(order_no=no)

    assert (first.ok, first.reversed_fen) == (True, 2500)
    assert (again.ok, again.reversed_fen) == (True, 2500)
    assert balance("tv1001") == start
    assert smp.authorize(tv_account="tv1001", product_code=MONTH).authorized is False

    prepaid = order_no()
    smp.subscribe(monthly(prepaid, charge=SmpCharge.PREPAID))
    assert smp.unsubscribe(order_no=prepaid).reversed_fen == 0
    assert smp.unsubscribe(order_no=order_no()) == UnsubscribeResult(ok=True, reversed_fen=0)
    assert balance("tv1001") == start


def test_a_period_is_charged_once_and_each_try_answered_with_it_names_it(smp):
    """docs/protocols.md: a renewal's subscribe names its period's key; a later try of the period is answered
    with the period's subscription (no second charge) and names it by its own number from then on; once that
    charge is reversed it is no answer, and a try asking again is charged anew."""
    start = balance("tv1001")
    first, later, last = order_no(), order_no(), order_no()
    made = smp.subscribe(monthly(first, idempotency_key="S1P2"))
    answered = smp.subscribe(monthly(later, idempotency_key="S1P2"))
    assert answered.subscription_id == made.subscription_id and balance("tv1001") == start - 2500

    assert smp.reschedule(order_no=later, starts_at=made.starts_at, ends_at=made.ends_at + timedelta(days=1))
    assert smp.unsubscribe(order_no=later) == UnsubscribeResult(ok=True, reversed_fen=2500)  # by its own number
    assert balance("tv1001") == start
    assert smp.unsubscribe(order_no=first) == UnsubscribeResult(ok=True, reversed_fen=2500)  # the same reversal

    again = smp.subscribe(monthly(later, idempotency_key="S1P2"))  # its retry: the reversed charge is no answer
    assert again.ok and again.subscription_id != made.subscription_id
    assert balance("tv1001") == start - 2500
    assert smp.subscribe(monthly(last, idempotency_key="S1P2")).subscription_id == again.subscription_id
    assert balance("tv1001") == start - 2500


def test_connection_refused_is_unavailable():
    closed = HttpSmpClient(base_url="http://127.0.0.1:9/", token="x", timeout=2)
    with pytest.raises(SmpUnavailable):
        closed.precheck(PrecheckRequest(product_code=MONTH, kind="monthly", tv_account="tv1001"))


class TestFaults:
    def test_down_or_flaky_is_unavailable(self, smp, smp_url, settings, set_fault):
        request = PrecheckRequest(product_code=MONTH, kind="monthly", tv_account="tv1001")
        set_fault("down")
        raw = requests.post(
            f"{smp_url}/precheck",
            json={"product_code": MONTH, "kind": "monthly", "tv_account": "tv1001"},
            headers={"Authorization": f"Bearer {settings.SMP_API_TOKEN}"},
            timeout=5,
        )
        assert raw.status_code == 503
        with pytest.raises(SmpUnavailable):
            smp.precheck(request)
        start = balance("tv1001")
        with pytest.raises(SmpUnavailable):
            smp.subscribe(monthly(order_no()))
        assert balance("tv1001") == start
        assert not SimSmpSubscription.objects.exists()

        set_fault("ok")
        assert smp.precheck(request).ok

        # Flaky: every other call fails (the first one included).
        set_fault("flaky")
        outcomes = []
        for _ in range(4):
            try:
                outcomes.append(smp.precheck(request).ok)
            except SmpUnavailable:
                outcomes.append("unavailable")
        assert outcomes == ["unavailable", True, "unavailable", True]

    def test_slow_times_out_but_the_retry_returns_what_was_done(self, smp_url, settings, set_fault):
        settings.SMP_SIMULATOR_SLOW_SECONDS = 1.0
        impatient = HttpSmpClient(base_url=smp_url, token=settings.SMP_API_TOKEN, timeout=0.2)
        start = balance("tv1001")
        no = order_no()
        set_fault("slow")

        began = time.monotonic()
        with pytest.raises(SmpUnavailable):
            impatient.subscribe(monthly(no))
        # Gave up before the answer came: a time, because a timeout is one (the answer takes five times longer).
        assert time.monotonic() - began < settings.SMP_SIMULATOR_SLOW_SECONDS

        # The SMP subscribed and charged even though we never heard back.
        done = None
        while done is None and time.monotonic() - began < 5:
            time.sleep(0.05)
            done = SimSmpSubscription.objects.filter(order_no=no).first()
        assert done is not None
        set_fault("ok")
        # Asked again with time to answer: on a loaded machine the server may still be finishing the slow one.
        patient = HttpSmpClient(base_url=smp_url, token=settings.SMP_API_TOKEN, timeout=5)
        retried = patient.subscribe(monthly(no))
        assert (retried.ok, retried.subscription_id) == (True, done.subscription_id)
        assert SimSmpSubscription.objects.filter(order_no=no).count() == 1
        assert balance("tv1001") == start - 2500
        # Let the slow answer finish before the database is flushed.
        time.sleep(max(0.0, began + 1.2 - time.monotonic()))


BAD_REQUESTS = [
    ("precheck", b"{not json"),
    ("precheck", b"[1, 2]"),
    ("precheck", b'{"kind": "monthly", "tv_account": "tv1001"}'),
    ("precheck", b'{"product_code": 7, "kind": "monthly", "tv_account": "tv1001"}'),
    ("subscribe", b'{"order_no": "X1", "tv_account": "tv1001", "product_code": "SMP-VIP-MONTH"}'),
    (
        "subscribe",
        b'{"order_no": "X1", "tv_account": "tv1001", "product_code": "SMP-VIP-MONTH", "package_code": "",'
        b' "charge": "phone_bill", "amount_fen": "2500", "kind": "monthly"}',
    ),
    (
        "subscribe",
        b'{"order_no": "X1", "tv_account": "tv1001", "product_code": "SMP-VIP-MONTH", "package_code": "",'
        b' "charge": "phone_bill", "amount_fen": -1, "kind": "monthly"}',
    ),
    ("authorize", b'{"product_code": "SMP-VIP-MONTH"}'),
    ("unsubscribe", b"{}"),
    ("unsubscribe", b'{"order_no": "' + b"X" * 33 + b'"}'),
]


def test_bad_json_a_missing_field_or_a_wrong_token_is_refused(smp_url, settings, live_server):
    start = balance("tv1001")
    for path, body in BAD_REQUESTS:
        response = requests.post(
            f"{smp_url}/{path}",
            data=body,
            headers={"Authorization": f"Bearer {settings.SMP_API_TOKEN}", "Content-Type": "application/json"},
            timeout=5,
        )
        assert response.status_code == 400, (path, body, response.status_code, response.text)
        assert response.json()["error"]["code"] == "invalid", (path, body)

    response = requests.post(f"{live_server.url}/sandbox/smp/faults/", json={"mode": "on_fire"}, timeout=5)
    assert response.status_code == 400

    raw = requests.post(
        f"{smp_url}/precheck",
        json={"product_code": MONTH, "kind": "monthly", "tv_account": "tv1001"},
        headers={"Authorization": "Bearer wrong"},
        timeout=5,
    )
    assert raw.status_code == 401
    with pytest.raises(SmpUnavailable):
        HttpSmpClient(base_url=smp_url, token="wrong", timeout=5).precheck(
            PrecheckRequest(product_code=MONTH, kind="monthly", tv_account="tv1001")
        )
    with pytest.raises(SmpUnavailable):
        HttpSmpClient(base_url=smp_url, token="wrong", timeout=5).subscribe(monthly(order_no()))
    assert balance("tv1001") == start
    assert not SimSmpSubscription.objects.exists()


# --- the sandbox is off in production ------------------------------------------------


def sandbox_paths() -> list[str]:
    """Every URL under /sandbox/, with a sample value for each path parameter."""
    from sandbox import urls

    def walk(patterns, prefix: str) -> list[str]:
        paths = []
        for pattern in patterns:
            route = str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                paths += walk(pattern.url_patterns, prefix + route)
            elif isinstance(pattern, URLPattern):
                paths.append(prefix + route)
        return paths

    return [
        re.sub(r"<[^>]+>", "x1", "/sandbox/" + p).replace("^", "").replace("$", "") for p in walk(urls.urlpatterns, "")
    ]


def test_the_sandbox_has_urls_to_check():
    assert "/sandbox/smp/faults/" in sandbox_paths()
    assert "/sandbox/smp/api/subscribe" in sandbox_paths()


@pytest.fixture
def sandbox_off(demo, settings) -> None:
    settings.SANDBOX = False


@pytest.mark.parametrize("path", sandbox_paths())
def test_every_sandbox_url_is_404_when_the_sandbox_is_off(client, sandbox_off, settings, path):
    auth = {"HTTP_AUTHORIZATION": f"Bearer {settings.SMP_API_TOKEN}"}
    assert client.get(path, **auth).status_code == 404
    body = (
        '{"mode": "ok", "order_no": "X1", "tv_account": "tv1001", "product_code": "SMP-VIP-MONTH", "kind": "monthly"}'
    )
    assert client.post(path, data=body, content_type="application/json", **auth).status_code == 404


def test_the_sandbox_urls_answer_when_the_sandbox_is_on(client, demo, settings):
    # The same requests as above, so that the 404s are the sandbox switch's doing.
    auth = {"HTTP_AUTHORIZATION": f"Bearer {settings.SMP_API_TOKEN}"}
    response = client.post("/sandbox/smp/faults/", data='{"mode": "ok"}', content_type="application/json", **auth)
    assert response.status_code == 200
    response = client.post(
        "/sandbox/smp/api/precheck",
        data='{"product_code": "SMP-VIP-MONTH", "kind": "monthly", "tv_account": "tv1001"}',
        content_type="application/json",
        **auth,
    )
    assert response.status_code == 200 and response.json()["ok"] is True


# --- subscriptions and stacked refunds: the calls the SMP gained -----------------------------------


def test_a_period_key_charges_a_renewal_once_whichever_order_asks(smp):
    before = SimSmpAccount.objects.get(tv_account="tv1001").balance_fen
    first = smp.subscribe(monthly(order_no(), idempotency_key="S123P2"))
    again = smp.subscribe(monthly(order_no(), idempotency_key="S123P2"))
    assert first.ok and again.ok and again.subscription_id == first.subscription_id
    assert before - SimSmpAccount.objects.get(tv_account="tv1001").balance_fen == 2500
    other = smp.subscribe(monthly(order_no(), idempotency_key="S123P3"))
    assert other.subscription_id != first.subscription_id


def test_reschedule_moves_a_period_and_unsubscribe_without_reverse_moves_no_money(smp):
    no = order_no()
    result = smp.subscribe(monthly(no))
    earlier = (result.starts_at - timedelta(days=3), result.ends_at - timedelta(days=3))
    assert smp.reschedule(order_no=no, starts_at=earlier[0], ends_at=earlier[1]) is True
    row = SimSmpSubscription.objects.get(order_no=no)
    assert (row.starts_at, row.ends_at) == earlier
    assert smp.reschedule(order_no="NOSUCH", starts_at=earlier[0], ends_at=earlier[1]) is False

    balance = SimSmpAccount.objects.get(tv_account="tv1001").balance_fen
    assert smp.unsubscribe(order_no=no, reverse=False).reversed_fen == 0
    assert SimSmpAccount.objects.get(tv_account="tv1001").balance_fen == balance
    assert SimSmpSubscription.objects.get(order_no=no).cancelled_at is not None


def test_the_environments_proxy_is_used_and_no_proxy_is_honoured(smp_url, settings, monkeypatch):
    """The proxy settings are read once per session (not per call, issue #17) but still as requests reads
    them: a proxy named in the environment carries the calls, unless NO_PROXY names the SMP's host."""
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there: a call through it fails
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    proxied = HttpSmpClient(base_url=smp_url, token=settings.SMP_API_TOKEN, timeout=5)
    with pytest.raises(SmpUnavailable, match=r"ProxyError|ConnectionError"):
        proxied.precheck(PrecheckRequest(product_code=MONTH, kind=ProductKind.MONTHLY, tv_account="tv1001"))

    hang_up()  # a worker restarted with NO_PROXY set
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    direct = HttpSmpClient(base_url=smp_url, token=settings.SMP_API_TOKEN, timeout=5)
    assert direct.precheck(PrecheckRequest(product_code=MONTH, kind=ProductKind.MONTHLY, tv_account="tv1001")).ok
