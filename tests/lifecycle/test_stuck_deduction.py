"""A WeChat Pay renewal deduction that stays on its way (ACCEPT; the simulator's USERPAYING) past the answer
window: 申请扣款's orders have no close, so the deduction's query decides (found by a review of the change to
申请扣款; the tests on the declined answer and the flood failed before).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from billing.models import Payment, Refund, WorkItem, WorkItemKind
from ipvas.actors import Actor, ActorKind
from ipvas.errors import InvalidState
from lifecycle import manual, paid
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


def test_a_person_who_saw_the_deduction_failed_ends_the_try_from_the_work_queue(demo, run_tasks, frozen):  # noqa: F811
    """The merchant platform shows the stuck deduction failed: the work item's action ends the renewal try
    declined (before, only "resolved" was offered, and the order stayed payment_pending, asked hourly, its
    subscription unrenewed until WeChat Pay spoke). The renewal is tried again on its schedule, and money that
    still arrives for the try a person called failed goes back: nobody pays a period twice."""
    sub, renewal, _trade = stuck_renewal(run_tasks, frozen)
    tick(run_tasks, frozen, 60)
    item = WorkItem.objects.get(order=renewal, kind=WorkItemKind.PROVIDER_DISAGREES, resolved_at__isnull=True)
    admin = Client()
    admin.force_login(get_user_model().objects.create_superuser("ops-lead", email="", password="unused-password-1"))
    page = admin.get(f"/admin/billing/workitem/{item.pk}/act/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "deduction_failed_by_hand" in page

    response = admin.post(
        f"/admin/billing/workitem/{item.pk}/act/",
        {"action": "deduction_failed_by_hand", "note": "merchant platform: 扣款失败, ticket 88"},
        HTTP_ACCEPT_LANGUAGE="en",
    )

    assert response.status_code == 302
    renewal.refresh_from_db()
    item.refresh_from_db()
    assert (renewal.status, renewal.failure_code) == (OrderStatus.FAILED, FailureCode.PAYMENT_DECLINED)
    assert Payment.objects.get(order=renewal).status == "failed"
    assert item.resolution.startswith("deduction_failed_by_hand: merchant platform")
    assert OrderEvent.objects.filter(order=renewal, action="work_deduction_failed_by_hand").exists()
    fail = OrderEvent.objects.get(order=renewal, action="fail")
    assert (fail.actor_kind, fail.actor_id) == (ActorKind.ADMIN, "ops-lead")
    # Tried again on the renewal's schedule.
    frozen.shift(timedelta(hours=settings.RENEWAL_RETRY_HOURS, minutes=1))
    subscriptions_sweep()
    run_tasks()
    assert Order.objects.filter(subscription=sub, channel=Channel.RENEWAL).count() == 2
    # The try called failed is paid after all (WeChat Pay's word on it, as its notification or query gives it):
    # its money goes back.
    payment = Payment.objects.get(order=renewal)
    outcome = paid.payment_succeeded(
        provider=payment.provider,
        out_trade_no=payment.out_trade_no,
        transaction_id="4200000000202701040000000001",
        amount_fen=payment.amount_fen,
        paid_at=timezone.now(),
        actor=Actor(ActorKind.PROVIDER, "wechatpay"),
    )
    run_tasks()
    assert outcome == "refunding"
    assert Refund.objects.get(order=renewal).amount_fen == payment.amount_fen
    with pytest.raises(InvalidState):  # once only, and only for a deduction on its way
        manual.work_item_deduction_failed_by_hand(item_id=item.pk, note="again", actor=Actor(ActorKind.ADMIN, "x"))


def test_the_failed_by_hand_action_is_offered_only_for_a_deduction_on_its_way(demo, run_tasks, frozen):  # noqa: F811
    """A completed order's item of the same kind neither offers it nor takes it."""
    order, _sub = subscribed(run_tasks, "wechat_qr")
    item = WorkItem.objects.create(order=order, kind=WorkItemKind.PROVIDER_DISAGREES, detail="the provider says")
    admin = Client()
    admin.force_login(get_user_model().objects.create_superuser("ops-lead", email="", password="unused-password-1"))
    assert "deduction_failed_by_hand" not in admin.get(f"/admin/billing/workitem/{item.pk}/act/").content.decode()
    with pytest.raises(InvalidState):
        manual.work_item_deduction_failed_by_hand(item_id=item.pk, note="no", actor=Actor(ActorKind.ADMIN, "x"))
    order.refresh_from_db()
    assert order.status == OrderStatus.COMPLETED
