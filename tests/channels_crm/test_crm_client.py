"""The real CRM client (adapters.crm.http) against the simulated CRM served over HTTP by the sandbox
(``/sandbox/crm/api/``, docs/protocols.md): a cash sale's marketing activity, once per order, its reversal,
a refusal, and each way the CRM can fail. The live server runs in a thread of this process and reads settings
at request time."""

from __future__ import annotations

import pytest

from adapters.crm import get_crm
from adapters.crm.http import HttpCrmClient
from adapters.crm.types import ActivityRequest, ActivityResult, CrmUnavailable
from sandbox import faults
from sandbox.models import SimCrmActivity
from tests.channels_crm.support import new_order, pay, settle

TOKEN = "crm-api-token"


@pytest.fixture
def crm_url(live_server, demo, settings) -> str:
    settings.CRM_API_TOKEN = TOKEN
    return f"{live_server.url}/sandbox/crm/api"


@pytest.fixture
def crm(crm_url) -> HttpCrmClient:
    return HttpCrmClient(url=crm_url, token=TOKEN, timeout=5)


def sale(order_no: str = "20261206A0000001", code: str = "MKT-VIP-MONTH") -> ActivityRequest:
    return ActivityRequest(
        activity_code=code, phone="13800000001", virtual_staff_id="V0001", order_no=order_no, amount_fen=2500
    )


def test_an_activity_is_handled_once_per_order_and_reversed(crm):
    first = crm.handle_activity(sale())
    again = crm.handle_activity(sale())

    assert first.ok and first.activity_id.startswith("ACT") and again == first
    activity = SimCrmActivity.objects.get()
    assert (activity.order_no, activity.activity_id, activity.virtual_staff_id, activity.amount_fen) == (
        "20261206A0000001",
        first.activity_id,
        "V0001",
        2500,
    )

    assert crm.reverse_activity(order_no="20261206A0000001") == ActivityResult(ok=True, activity_id=first.activity_id)
    activity.refresh_from_db()
    assert activity.reversed_at is not None
    assert crm.reverse_activity(order_no="20261206A9999999") == ActivityResult(ok=True)  # nothing to take back


def test_an_unknown_activity_is_refused_with_the_crms_reason(crm):
    refused = crm.handle_activity(sale(code="MKT-NO-SUCH"))
    assert refused == ActivityResult(ok=False, reason="unknown marketing activity MKT-NO-SUCH")
    assert not SimCrmActivity.objects.exists()


def test_a_request_the_crm_rejects_is_our_fault_and_reported_as_unavailable(crm, caplog):
    """A 4xx is not the CRM's answer about the sale: the order is not failed for it, it is tried again later."""
    with pytest.raises(CrmUnavailable, match="HTTP 400"):
        crm.handle_activity(sale(order_no="X" * 40))  # longer than an order number can be
    assert "CRM activities refused our request: HTTP 400" in caplog.text
    assert not SimCrmActivity.objects.exists()


def test_a_wrong_token_a_crm_that_is_down_and_one_that_cannot_be_reached_are_unavailable(crm_url, crm):
    with pytest.raises(CrmUnavailable, match="HTTP 401"):
        HttpCrmClient(url=crm_url, token="not-the-token", timeout=5).handle_activity(sale())
    faults.set_mode("crm", "down")
    with pytest.raises(CrmUnavailable, match="HTTP 503"):
        crm.handle_activity(sale())
    with pytest.raises(CrmUnavailable, match="ConnectionError"):
        HttpCrmClient(url="http://127.0.0.1:9", token=TOKEN, timeout=5).handle_activity(sale())
    assert not SimCrmActivity.objects.exists()


def test_a_slow_crm_past_the_timeout_did_the_work_and_a_retry_gets_the_same_activity(crm_url, settings):
    settings.SIMULATOR_SLOW_SECONDS = 1.0
    faults.set_mode("crm", "slow")
    impatient = HttpCrmClient(url=crm_url, token=TOKEN, timeout=0.3)
    with pytest.raises(CrmUnavailable, match="Timeout"):
        impatient.handle_activity(sale())

    faults.set_mode("crm", "ok")
    retried = impatient.handle_activity(sale())
    assert retried.ok and retried.activity_id == SimCrmActivity.objects.get().activity_id


def test_a_cash_sale_through_the_real_client(clerk, crm_url, settings):
    """CRM_ADAPTER names the HTTP client: the counter's cash sale bills the clerk's virtual staff id through it."""
    settings.CRM_ADAPTER = "adapters.crm.http.HttpCrmClient"
    settings.CRM_URL = crm_url
    assert isinstance(get_crm(), HttpCrmClient)

    order = new_order(clerk, "13800000001")
    assert pay(clerk, order, "cash", cash_received="yes").status_code == 302
    settle()

    order.refresh_from_db()
    assert order.status == "completed"
    activity = SimCrmActivity.objects.get()
    assert (activity.order_no, activity.virtual_staff_id, activity.amount_fen) == (order.order_no, "V0001", 2500)
