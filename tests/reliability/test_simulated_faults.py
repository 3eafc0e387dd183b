"""The fault modes of every simulated system (issue #11): WeChat Pay, Alipay, the SMS gateway and the CRM,
like the SMP (docs/interfaces.md §7): ``POST /sandbox/<system>/faults/ {"mode"}``, honoured by the
in-process simulators (the adapters' ``simulator``) and by the served fakes that the real SDK clients call.

``down`` refuses every call, ``flaky`` every other one, ``slow`` answers after SIMULATOR_SLOW_SECONDS:
within the caller's timeout that is only late; past it the work is done and the answer never comes.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from adapters.crm import get_crm
from adapters.crm.types import ActivityRequest, CrmUnavailable
from adapters.providers import get_provider
from adapters.providers.types import ProviderUnavailable, QrOrderRequest
from adapters.sms import get_sms_gateway
from adapters.sms.types import SmsMessage, SmsUnavailable
from sandbox.models import SimCrmActivity, SimCrmActivityCode, SimSmsMessage, SimTrade

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

_made = 0


def unique(prefix: str) -> str:
    global _made
    _made += 1
    return f"{prefix}{int(time.time() * 1000) % 10**9}{_made}"


def call(system: str):  # type: ignore[no-untyped-def]
    """One call that changes something at the simulated system; returns (the call, what it left behind)."""
    if system in ("wechatpay", "alipay"):
        out_trade_no = unique("T")
        request = QrOrderRequest(
            out_trade_no=out_trade_no, amount_fen=100, description="x", expires_at=timezone.now() + timedelta(minutes=5)
        )
        return (lambda: get_provider(system).create(request)), (
            lambda: SimTrade.objects.filter(provider=system, out_trade_no=out_trade_no).exists()
        )
    if system == "sms":
        reference = unique("ref")
        message = SmsMessage(to="13800000001", text="x", reference=reference)
        return (lambda: get_sms_gateway().send(message)), (
            lambda: SimSmsMessage.objects.filter(reference=reference).exists()
        )
    order_no = unique("C")
    code = SimCrmActivityCode.objects.filter(active=True).values_list("code", flat=True).first()
    activity = ActivityRequest(
        activity_code=code, phone="13800000001", virtual_staff_id="V0001", order_no=order_no, amount_fen=100
    )
    return (lambda: get_crm().handle_activity(activity)), (
        lambda: SimCrmActivity.objects.filter(order_no=order_no).exists()
    )


UNAVAILABLE = {
    "wechatpay": ProviderUnavailable,
    "alipay": ProviderUnavailable,
    "sms": SmsUnavailable,
    "crm": CrmUnavailable,
}
SYSTEMS = list(UNAVAILABLE)


def set_mode(system: str, mode: str) -> None:
    response = Client().post(f"/sandbox/{system}/faults/", {"mode": mode}, content_type="application/json")
    assert response.status_code == 200, response.content
    assert response.json() == {"system": system, "mode": mode}


@pytest.mark.parametrize("system", SYSTEMS)
def test_down_refuses_and_does_nothing(demo, system):
    set_mode(system, "down")
    work, left = call(system)

    with pytest.raises(UNAVAILABLE[system]):
        work()
    assert not left()


@pytest.mark.parametrize("system", SYSTEMS)
def test_flaky_fails_every_other_call(demo, system):
    set_mode(system, "flaky")
    outcomes = []
    for _ in range(4):
        work, _left = call(system)
        try:
            work()
            outcomes.append("ok")
        except UNAVAILABLE[system]:
            outcomes.append("failed")

    assert outcomes == ["failed", "ok", "failed", "ok"]


@pytest.mark.parametrize("system", SYSTEMS)
def test_slow_past_the_timeout_does_the_work_and_loses_the_answer(demo, settings, system):
    settings.SIMULATOR_SLOW_SECONDS = 2.0
    for name in ("WECHATPAY", "ALIPAY", "SMS", "CRM"):
        setattr(settings, f"{name}_TIMEOUT_SECONDS", 0.2)
    set_mode(system, "slow")
    work, left = call(system)

    started = time.monotonic()
    with pytest.raises(UNAVAILABLE[system]):
        work()
    # The caller gave up at its timeout, not at the answer's 2 s: a time, because a timeout is one.
    assert 0.2 <= time.monotonic() - started < settings.SIMULATOR_SLOW_SECONDS
    assert left()  # and yet it was done


@pytest.mark.parametrize("system", SYSTEMS)
def test_slow_within_the_timeout_is_only_late(demo, settings, system):
    settings.SIMULATOR_SLOW_SECONDS = 0.3
    for name in ("WECHATPAY", "ALIPAY", "SMS", "CRM"):
        setattr(settings, f"{name}_TIMEOUT_SECONDS", 2)
    set_mode(system, "slow")
    work, left = call(system)

    started = time.monotonic()
    work()
    assert time.monotonic() - started >= 0.3
    assert left()


def test_the_served_fakes_honour_the_modes_too(demo):
    """The fakes that the real SDK clients call (WECHATPAY_GATEWAY, ALIPAY_GATEWAY) answer as the
    providers do when they are down: WeChat Pay 503 SYSTEM_ERROR, Alipay's system error 20000."""
    client = Client()
    set_mode("wechatpay", "down")
    set_mode("alipay", "down")

    wechat = client.post("/sandbox/wechatpay/fake/v3/pay/transactions/native", "{}", content_type="application/json")
    alipay = client.post("/sandbox/alipay/fake/gateway.do", {"method": "alipay.trade.query", "app_id": "x"})

    assert (wechat.status_code, wechat.json()["code"]) == (503, "SYSTEM_ERROR")
    assert "20000" in alipay.content.decode()


def test_an_unknown_mode_is_refused(demo):
    response = Client().post("/sandbox/crm/faults/", {"mode": "sideways"}, content_type="application/json")
    assert response.status_code == 400
