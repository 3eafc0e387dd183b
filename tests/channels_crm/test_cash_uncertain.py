"""Cash at the counter when the CRM does not answer or refuses to undo, and a manager sent to another store.

The CRM's marketing activity bills the sale to the clerk's virtual staff id. When the CRM never answered
before the activity's deadline, the sale may be booked there: it is reversed (harmless if it was not) and
the clerk is told to give the cash back. A reversal the CRM refuses is a person's. A manager of one store
signed in at another with the CRM's ticket for it is a clerk there.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db.models import F
from django.utils import timezone

from adapters.crm import ActivityResult
from billing.models import WorkItem
from channels_crm.models import Clerk
from ipvas.actors import Actor
from lifecycle.manual import work_item_resolve
from sandbox import faults
from sandbox.models import SimCrmActivity
from tests.channels_crm.support import new_order, page, pay, settle, sign_in, text_of


@pytest.fixture
def clock(time_machine):
    time_machine.move_to(timezone.now(), tick=True)
    return time_machine


def _while(order, status: str, clock, *, rounds: int) -> None:  # type: ignore[no-untyped-def]
    """Time passes by 31 s and the worker runs what is due, while the order stays in ``status``."""
    for _ in range(rounds):
        order.refresh_from_db()
        if order.status != status:
            return
        clock.shift(timedelta(seconds=31))
        settle()


def test_a_cash_sale_the_crm_never_answered_is_reversed_there_and_the_clerk_gives_the_cash_back(demo, clock, settings):
    settings.CRM_TIMEOUT_SECONDS = 0.2  # the simulated CRM does the work, then answers after the timeout
    clerk = sign_in()
    order = new_order(clerk, "13800000001")
    faults.set_mode("crm", "slow")
    pay(clerk, order, "cash", cash_received="yes")
    settle()
    _while(order, "payment_pending", clock, rounds=20)
    faults.set_mode("crm", "ok")
    clock.shift(timedelta(seconds=61))  # the reversal waits a minute, not to overtake a call still on its way
    settle()

    order.refresh_from_db()
    assert (order.status, order.failure_code) == ("failed", "crm_activity_failed")
    assert SimCrmActivity.objects.get(order_no=order.order_no).reversed_at is not None  # it had been booked
    assert WorkItem.objects.get(order=order).kind == "crm_uncertain"
    assert "CRM 未应答，系统将在 CRM 冲销该活动" in text_of(page(clerk, order))


def test_a_crm_reversal_the_crm_refuses_is_told_to_a_person(demo, clock, monkeypatch):
    from sandbox.simulators.crm import SimulatedCrm

    clerk = sign_in()
    order = new_order(clerk, "13800000001")
    faults.set_mode("smp", "down")
    pay(clerk, order, "cash", cash_received="yes")
    settle()
    _while(order, "provisioning", clock, rounds=40)
    assert (order.status, order.failure_code) == ("failed", "provisioning_failed")
    faults.set_mode("smp", "ok")
    item = WorkItem.objects.get(order=order, kind="cash_payback")
    monkeypatch.setattr(
        SimulatedCrm, "reverse_activity", lambda self, *, order_no: ActivityResult(ok=False, reason="period closed")
    )

    work_item_resolve(item_id=item.pk, note="paid back at the counter", actor=Actor.task("test"), cash_paid_back=True)
    ran = settle()

    assert ("lifecycle.tasks.reverse_crm_activity", "refused") in ran
    told = WorkItem.objects.get(order=order, kind="crm_uncertain", resolved_at__isnull=True)
    assert "the CRM refused to reverse the activity" in told.detail


def test_a_manager_signed_in_at_another_store_is_a_clerk_there_and_a_manager_back_home(demo):
    other = sign_in(sub="clerk09", name="外店营业员", store_code="NX-YC-002", virtual_staff_id="V0009")
    theirs = new_order(other, "13800000001")
    home = new_order(sign_in(sub="clerk02", name="同店营业员", virtual_staff_id="V0002"), "13800000002")
    sign_in()  # clerk01 of NX-YC-001
    Clerk.objects.filter(staff_id="clerk01").update(role="manager", managed_store=F("store"))  # made so in admin

    visiting = sign_in(store_code="NX-YC-002")  # sent to help at NX-YC-002 for a day

    assert visiting.get(f"/crm/orders/{theirs.order_no}/").status_code == 404  # another clerk's order there
    visiting.post(f"/crm/orders/{theirs.order_no}/cancel/", {"confirm": "yes"})
    theirs.refresh_from_db()
    assert theirs.status != "cancelled"
    back = sign_in()  # back at NX-YC-001 the next day: its manager again
    assert Clerk.objects.get(staff_id="clerk01").role == "manager"
    assert back.get(f"/crm/orders/{home.order_no}/").status_code == 200  # another clerk's order, their store
