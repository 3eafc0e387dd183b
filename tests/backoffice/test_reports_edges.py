"""The sales dashboard (backoffice.reports) at its edges, found by a review (2026-12-06 night; each test
failed on the code before it): days at the ends of the calendar were a 500, and a renewal refunded after it
completed was counted as one that failed. (The same review found a subscription lapsed by a refund counted
as "the renewal could not be charged": the line's label now names every way a subscription lapses.)"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.test import Client

from backoffice.reports import subscriptions
from billing.models import LedgerEntry
from ipvas.actors import Actor, ActorKind
from lifecycle import manual
from orders.models import Order
from tests.backoffice.test_reports_subscriptions import Life, account, subscribe
from tests.support.tasks import run_due_tasks

pytestmark = pytest.mark.django_db
LOCAL = ZoneInfo("Asia/Shanghai")
OPS = Actor(ActorKind.ADMIN, "ops")
URL = "/admin/reports/"


def at(m: int, d: int, hh: int, mm: int = 0) -> datetime:
    return datetime(2026, m, d, hh, mm, tzinfo=LOCAL)


# --- 1. dates at the ends of the calendar: a 500 instead of a clear error ------------------------------


@pytest.mark.parametrize(
    "params",
    [
        {"start": "9999-12-31", "end": "9999-12-31"},
        {"day": "9999-12-31"},
        {"start": "0001-01-01", "end": "0001-01-01"},
        {"start": "0001-01-01", "end": "0001-01-01", "export": "revenue_by_day"},
        {"start": "9999-12-31", "end": "9999-12-31", "export": "cash_totals"},
    ],
)
def test_dates_at_the_calendar_edges_are_an_error_not_a_500(params):
    user = get_user_model().objects.create_superuser("boss", email="", password="x-unused-1")
    client = Client(raise_request_exception=False)
    client.force_login(user)
    response = client.get(URL, params, HTTP_ACCEPT_LANGUAGE="en")
    if "export" in params:
        assert response.status_code == 400
    else:
        assert response.status_code == 200
        assert "Choose days from 2000-01-01 to 2099-12-31." in response.content.decode()


# --- 2. a renewal refunded after it completed is reported as a failed renewal ------------------------


def _renewed_then_refunded():
    account("tv3001", "13930010000")
    life = Life(time_machine.travel(at(1, 5, 9), tick=False))
    try:
        sub = subscribe(life, at(1, 5, 10), "tv3001")
        life.until(at(2, 4, 12))  # renewed at 02-04 10:00 by phone bill
        renewal = Order.objects.get(subscription=sub, channel="renewal")
        assert renewal.status == "completed"
        life.until(at(2, 6, 12))
        assert manual.refund_by_admin(order_id=renewal.pk, reason="customer asked", actor=OPS) == "smp_reversal"
        run_due_tasks()
        life.until(at(2, 7, 12))
    finally:
        life.stop()
    renewal.refresh_from_db()
    assert renewal.status == "refunded" and renewal.failure_code == ""
    assert list(LedgerEntry.objects.filter(order=renewal).values_list("kind", "amount_fen")) == [
        ("payment", 2500),
        ("reversal", -2500),
    ]
    return sub, renewal


def test_a_refunded_renewal_is_not_a_renewal_that_failed(demo):
    """The renewal of 02-04 was charged and provisioned (completed); an admin refunded it on 02-06. The
    dashboard lists it under "Why renewals did not complete" ("No failure code recorded": 1), counts it
    "Ended without completing" on 02-04 and shows that day's success rate as 0.0%. It did complete: its
    charge is in the ledger on 02-04, its refund on 02-06 (the money columns say so already)."""
    _renewed_then_refunded()
    figures = subscriptions.renewals(date(2026, 2, 1), date(2026, 2, 7))
    day = next(d for d in figures.days if d.key == "2026-02-04")
    assert figures.failures == []
    assert (day.orders, day.not_completed, day.success_rate) == (1, 0, "100.0%")
