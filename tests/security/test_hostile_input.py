"""What an attacker sent from outside (issue #11, items 6 and 8): each answered in the caller's shape, never a 500.

* 6 KB of nested JSON (``[`` × 3000) exhausted the parser's recursion: every
  JSON body from outside is parsed with a bound on nesting (ipvas/jsonparse.py).
* A body over DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB) got Django's HTML 400: now
  413 in the shape of the caller (ipvas/answers.py).
* A NUL in an SSO ticket's claim reached PostgreSQL (a 500) and was not
  audited: a claim with control characters is a refused ticket, audited.
"""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from django.conf import settings
from django.test import Client

from channels_crm.models import SsoLogin
from ipvas import jsonparse
from ipvas.credentials import secret
from tests.channels_crm.support import sso, ticket
from tests.epg_api.support import error_of

DEEP = "[" * 3000
TOO_LARGE = settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1024


def hostile_client() -> Client:
    return Client(raise_request_exception=False)


# --- the bounded parser ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [DEEP, "{" + '"a":{' * 40 + "}" * 41, "[" * 33 + "]" * 33, '{"a": [' * 20 + "1" + "]}" * 20],
    ids=["3000 open brackets", "41 objects", "33 arrays", "40 mixed"],
)
def test_json_nested_deeper_than_the_bound_is_a_value_error(text):
    with pytest.raises(ValueError):
        jsonparse.loads(text)


def test_json_within_the_bound_and_brackets_inside_strings_parse():
    assert jsonparse.loads("[" * 32 + "]" * 32) is not None
    assert jsonparse.loads(json.dumps({"text": "[" * 5000, "n": [1, [2, [3]]]})) == {
        "text": "[" * 5000,
        "n": [1, [2, [3]]],
    }
    assert jsonparse.loads(b'{"escaped": "\\"[[[[\\""}') == {"escaped": '"[[[["'}


def test_deep_json_to_the_epg_api_is_the_contracts_400(api, demo):
    api.client = hostile_client()
    created = api.post("/orders/", {"tv_account": "tv1001", "product_code": "VIP-MONTH"})
    order_no = created.json()["order_no"]

    for path in ("/orders/", f"/orders/{order_no}/payment/", "/tv-sessions/"):
        error_of(api.post(path, raw=DEEP), 400, "invalid")


def test_deep_json_to_the_sms_gateways_webhook_is_its_400(db):
    body = DEEP.encode()
    signature = hmac.new(
        secret("SMS_WEBHOOK_SECRET", sandbox_file="sms_webhook_secret.txt").encode(), body, hashlib.sha256
    ).hexdigest()
    response = hostile_client().post("/sms/inbound/", body, content_type="application/json", HTTP_X_SIGNATURE=signature)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"


def test_deep_json_to_the_wechat_pay_notify_url_is_its_fail_answer(db):
    response = hostile_client().post("/billing/notify/wechatpay/", DEEP, content_type="application/json")

    assert response.status_code == 400
    assert response.json() == {"code": "FAIL", "message": "malformed notification"}


@pytest.mark.parametrize(
    "path",
    [
        "/sandbox/smp/faults/",
        "/sandbox/wechatpay/pay/",
        "/sandbox/sms/reply/",
        "/sandbox/wechatpay/fake/v3/pay/transactions/native",
    ],
)
def test_deep_json_to_the_sandbox_is_its_400(db, path):
    response = hostile_client().post(path, DEEP, content_type="application/json")

    assert response.status_code in (400, 401), response.content[:200]  # the WeChat fake checks its signature first
    assert response["Content-Type"].startswith("application/json")


# --- too large a body --------------------------------------------------------------------------


def test_a_body_over_the_upload_limit_is_the_contracts_error_on_the_api(api):
    api.client = hostile_client()
    body = json.dumps({"tv_account": "tv1001", "product_code": "VIP-MONTH", "pad": "x" * TOO_LARGE})

    error_of(api.post("/orders/", raw=body), 413, "request_too_large")


def test_a_body_over_the_upload_limit_is_each_callers_own_refusal(db):
    client = hostile_client()
    wechat = client.post("/billing/notify/wechatpay/", "x" * TOO_LARGE, content_type="application/json")
    alipay = client.post(
        "/billing/notify/alipay/", "a=" + "x" * TOO_LARGE, content_type="application/x-www-form-urlencoded"
    )
    sms = client.post("/sms/inbound/", "x" * TOO_LARGE, content_type="application/json")

    assert (wechat.status_code, wechat.json()["code"]) == (413, "FAIL")
    assert (alipay.status_code, alipay.content) == (413, b"fail")
    assert (sms.status_code, sms.json()["error"]["code"]) == (413, "request_too_large")


def test_an_unknown_api_url_is_the_contracts_404(db):
    error_of(hostile_client().get("/api/epg/v1/no-such-thing/"), 404, "not_found")


# --- SSO --------------------------------------------------------------------------------------


@pytest.mark.parametrize("claim", ["sub", "name", "store_code", "virtual_staff_id", "jti"])
def test_a_control_character_in_an_sso_claim_is_a_refused_and_audited_ticket(demo, claim):
    refused_before = SsoLogin.objects.filter(accepted=False).count()
    token = ticket(**{claim: "clerk\x0001"})
    response = sso(hostile_client(), token)

    assert response.status_code == 403
    assert SsoLogin.objects.filter(accepted=False).count() == refused_before + 1
    assert "control characters" in SsoLogin.objects.filter(accepted=False).latest("pk").reason


def test_qr_switching_is_bounded_per_order(demo, settings):
    """Issue #11, item 8: 40 switches made 40 provider trades; now at most QR_SWITCHES_PER_ORDER switches."""
    from billing.models import Payment
    from ipvas.actors import Actor, ActorKind
    from ipvas.errors import RateLimited
    from lifecycle.paying import payment_choose
    from lifecycle.placing import order_create
    from tests.support.tasks import run_due_tasks

    settings.QR_SWITCHES_PER_ORDER = 3
    actor = Actor(ActorKind.EPG_CLIENT, "switcher")
    order = order_create(channel="epg", product_code="VIP-MONTH", tv_account="tv1001", actor=actor)
    run_due_tasks()
    methods = ["wechat_qr", "alipay_qr"] * 3
    made = 0
    with pytest.raises(RateLimited) as refused:
        for method in methods:
            payment_choose(order_id=order.pk, method=method, actor=actor)
            made += 1
    assert made == 4  # the first code and three switches
    assert Payment.objects.filter(order=order).count() == 4
    assert refused.value.retry_after >= 1
