"""Subscriptions under races, on PostgreSQL with real threads (issue #13): at most one successful charge per
period whatever is retried, raced, replayed or run by two beats at once; a cancel racing the charge either
stops it or lets it complete, never half."""

from __future__ import annotations

import queue
from datetime import timedelta

import pytest
from django.utils import timezone

from ipvas.actors import Actor, ActorKind
from lifecycle.due import order_process_due
from lifecycle.paying import payment_choose
from lifecycle.placing import order_create
from lifecycle.renewals import subscription_process_due, subscriptions_sweep
from lifecycle.subscriptions import subscription_cancel
from orders.constants import CancelChannel, Channel, OrderStatus, SubscriptionStatus
from orders.models import Order, Subscription
from sandbox.models import SimSmpAccount, SimSmpSubscription
from tests.reliability.support import at_its_first_reminder
from tests.support.concurrency import require_postgresql, run_in_threads
from tests.support.tasks import run_due_tasks

EPG = Actor(ActorKind.EPG_CLIENT, "race-client")

pytestmark = pytest.mark.django_db(transaction=True)


def balance() -> int:
    return SimSmpAccount.objects.get(tv_account="tv1001").balance_fen


def renewal_due(time_machine) -> Subscription:
    """A subscription whose reminder went out, at the moment its renewal is due."""
    subscription = at_its_first_reminder(time_machine)
    run_due_tasks()
    subscription.refresh_from_db()
    assert subscription.reminder_sent_at is not None
    time_machine.move_to(subscription.next_renewal_at, tick=False)
    return subscription


def test_many_beats_at_once_start_one_renewal_and_charge_once(demo, time_machine):
    require_postgresql()
    subscription = renewal_due(time_machine)
    before = balance()

    def beat(barrier) -> None:
        barrier.wait()
        subscriptions_sweep()
        subscription_process_due(subscription_id=subscription.pk)

    assert run_in_threads(6, beat) == []
    assert Order.objects.filter(subscription=subscription, channel=Channel.RENEWAL).count() == 1
    renewal = Order.objects.get(subscription=subscription, channel=Channel.RENEWAL)

    def worker(barrier) -> None:
        barrier.wait()
        order_process_due(order_id=renewal.pk)  # pre-check, then (each) the provisioning that is due

    for _ in range(3):
        assert run_in_threads(4, worker) == []
    run_due_tasks()
    renewal.refresh_from_db()
    assert renewal.status == OrderStatus.COMPLETED
    assert before - balance() == 2500
    assert SimSmpSubscription.objects.filter(tv_account="tv1001").count() == 2
    subscription.refresh_from_db()
    assert subscription.periods == 2


@pytest.mark.parametrize("round_", range(3))
def test_a_cancel_racing_the_charge_stops_it_or_lets_it_complete(demo, time_machine, round_):
    require_postgresql()
    subscription = renewal_due(time_machine)
    end = subscription.current_period_end
    subscriptions_sweep()
    renewal = Order.objects.get(subscription=subscription, channel=Channel.RENEWAL)
    order_process_due(order_id=renewal.pk)  # pre-check passed: provisioning, the charge not sent yet
    renewal.refresh_from_db()
    assert renewal.status == OrderStatus.PROVISIONING
    before = balance()

    roles: queue.SimpleQueue = queue.SimpleQueue()
    roles.put(lambda: order_process_due(order_id=renewal.pk, due_at=renewal.deadline_at))
    roles.put(lambda: subscription_cancel(subscription_id=subscription.pk, channel=CancelChannel.EPG, actor=EPG))

    def racer(barrier) -> None:
        act = roles.get()
        barrier.wait()
        act()

    assert run_in_threads(2, racer) == []
    run_due_tasks()
    renewal.refresh_from_db()
    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.CANCELLED
    if renewal.status == OrderStatus.COMPLETED:  # the charge was sent first: it completes, the next one stops
        assert before - balance() == 2500
        assert subscription.current_period_end > end
    else:
        assert renewal.status == OrderStatus.CANCELLED
        assert before == balance()
        assert subscription.current_period_end == end
    assert subscription.due_at == subscription.current_period_end  # it ends then, renewing nothing more
    time_machine.move_to(subscription.current_period_end + timedelta(seconds=1), tick=False)
    subscriptions_sweep()
    run_due_tasks()
    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.ENDED
    assert Order.objects.filter(subscription=subscription, channel=Channel.RENEWAL).count() == 1
    assert timezone.now() > subscription.current_period_end


def test_two_auto_renewing_orders_completing_at_once_start_one_subscription_and_both_complete(demo, monkeypatch):
    """The customer orders auto-renewal on the TV while a clerk does the same at the counter: both pass the
    pre-check (no subscription yet), both are charged and provisioned at the same moment, each having looked
    for an active subscription before the other wrote one. One subscription starts; the other order stays a
    plain period, stacked (§8). Before, the second hit the database's one-active-subscription constraint and
    its provisioning crashed after the SMP had charged (completed only after its claim's lease, 30 s later)."""
    import threading

    from lifecycle import subscriptions

    require_postgresql()
    before = balance()
    orders = [
        order_create(channel=channel, product_code="VIP-MONTH", tv_account="tv1001", actor=EPG, auto_renew=True)
        for channel in ("epg", "crm")
    ]
    run_due_tasks()
    for order in orders:
        payment_choose(order_id=order.pk, method="phone_bill", actor=EPG)
    roles: queue.SimpleQueue = queue.SimpleQueue()
    for order in orders:
        order.refresh_from_db()
        assert order.status == OrderStatus.PROVISIONING
        roles.put(order)
    both_looked = threading.Barrier(2, timeout=10)
    look = subscriptions.active_subscription_exists
    waited = threading.local()

    def look_then_wait_for_the_other(**kwargs) -> bool:
        found = look(**kwargs)
        if not getattr(waited, "once", False):  # each thread's first look: both look before either writes
            waited.once = True
            both_looked.wait()
        return found

    monkeypatch.setattr(subscriptions, "active_subscription_exists", look_then_wait_for_the_other)

    def racer(barrier) -> None:
        order = roles.get()
        barrier.wait()
        order_process_due(order_id=order.pk, due_at=order.deadline_at)

    errors = run_in_threads(2, racer)

    assert errors == [], [repr(error)[:300] for error in errors]
    statuses = Order.objects.filter(pk__in=[o.pk for o in orders]).values_list("status", flat=True)
    assert sorted(statuses) == [OrderStatus.COMPLETED, OrderStatus.COMPLETED]
    assert Subscription.objects.filter(status=SubscriptionStatus.ACTIVE).count() == 1
    assert before - balance() == 5000  # two periods, each charged once
    plain = Order.objects.get(pk__in=[o.pk for o in orders], subscription__isnull=True)
    assert plain.events.filter(action="auto_renew_not_started").exists()
