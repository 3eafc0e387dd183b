"""A WeChat Pay renewal deduction that stays on its way (ACCEPT; the simulator's USERPAYING) past the answer
window: 申请扣款's orders have no close, so the deduction's query decides (found by a review of the change to
申请扣款; the tests on the declined answer and the flood failed before).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from billing.models import Payment, WorkItem, WorkItemKind
from lifecycle.due import deadlines_sweep
from lifecycle.renewals import subscriptions_sweep
from orders.constants import Channel, FailureCode, OrderStatus
from orders.models import Order, OrderEvent
from sandbox.models import SimTrade, SimTradeStatus
from tests.lifecycle.test_contracts import frozen, renewal_of, subscribed, to_reminder_and_renewal  # noqa: F401

pytestmark = pytest.mark.django_db


def tick(run_tasks, frozen, minutes: int) -> None:  # noqa: F811
    """Time passes a minute at a time: beat's sweeps and the worker do what is due."""
    for _ in range(minutes):
        frozen.shift(timedelta(minutes=1))
        subscriptions_sweep()
        deadlines_sweep()
        run_tasks()


def stuck_renewal(run_tasks, frozen):  # noqa: F811
    _order, sub = subscribed(run_tasks, "wechat_qr")
    sub = to_reminder_and_renewal(run_tasks, frozen, sub)
    renewal = renewal_of(sub)
    assert renewal.status == OrderStatus.PAYMENT_PENDING
    trade = SimTrade.objects.get(out_trade_no=renewal.order_no)
    SimTrade.objects.filter(pk=trade.pk).update(pays_at=timezone.now() + timedelta(days=365))  # never paid
    return sub, renewal, trade


def test_a_deduction_declined_after_the_window_is_declined_not_timed_out(demo, run_tasks, frozen):  # noqa: F811
    """WeChat Pay answered PAY_FAIL: the renewal fails payment_declined with its word, not payment_timeout."""
    _sub, renewal, trade = stuck_renewal(run_tasks, frozen)
    tick(run_tasks, frozen, 40)  # past the answer window: the closes find it still on its way
    renewal.refresh_from_db()
    assert renewal.status == OrderStatus.PAYMENT_PENDING
    SimTrade.objects.filter(pk=trade.pk).update(status=SimTradeStatus.FAILED)
    tick(run_tasks, frozen, 61)
    renewal.refresh_from_db()
    assert (renewal.status, renewal.failure_code) == (OrderStatus.FAILED, FailureCode.PAYMENT_DECLINED)
    assert Payment.objects.get(order=renewal).status == "failed"


def test_a_deduction_on_its_way_for_days_is_asked_hourly_and_a_person_told_each_day(demo, run_tasks, frozen):  # noqa: F811
    """After a few tries the deduction is asked every hour, without an event each time (every 30 s it wrote
    about 2,900 a day for ever); the person is told again each day while it lasts, also after a "resolved"."""
    _sub, renewal, _trade = stuck_renewal(run_tasks, frozen)
    tick(run_tasks, frozen, 60)
    item = WorkItem.objects.get(order=renewal, kind=WorkItemKind.PROVIDER_DISAGREES, resolved_at__isnull=True)
    WorkItem.objects.filter(pk=item.pk).update(resolved_at=timezone.now(), resolution="looked: still pending")
    for _ in range(30):  # 30 hours
        frozen.shift(timedelta(hours=1))
        deadlines_sweep()
        run_tasks()
    renewal.refresh_from_db()
    assert renewal.status == OrderStatus.PAYMENT_PENDING
    assert OrderEvent.objects.filter(order=renewal, action="retry").count() <= 10
    assert WorkItem.objects.filter(
        order=renewal, kind=WorkItemKind.PROVIDER_DISAGREES, resolved_at__isnull=True
    ).exists()
    assert Order.objects.filter(subscription=renewal.subscription, channel=Channel.RENEWAL).count() == 1  # once
