"""The SMP pre-check of every new order (issue: foundation, point 4)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ipvas.actors import Actor, ActorKind
from lifecycle.placing import order_create
from orders.constants import FailureCode, OrderStatus
from orders.models import Order
from sandbox import faults
from sandbox.models import SimSmpAccount, SimSmpProduct, SimSmpSubscription

EPG = Actor(ActorKind.EPG_CLIENT, "test-client")


def place(tv_account: str, product: str = "VIP-MONTH", **kwargs) -> Order:
    return order_create(channel="epg", product_code=product, tv_account=tv_account, actor=EPG, **kwargs)


@pytest.mark.parametrize(
    ("tv_account", "status", "code", "phone"),
    [
        ("tv1001", OrderStatus.AWAITING_PAYMENT, "", "13800000001"),
        ("tv1002", OrderStatus.AWAITING_PAYMENT, "", "13800000002"),
        ("tv1003", OrderStatus.REJECTED, FailureCode.ACCOUNT_SUSPENDED, ""),
        ("tv1004", OrderStatus.REJECTED, FailureCode.ACCOUNT_IN_ARREARS, ""),
        ("tv9999", OrderStatus.REJECTED, FailureCode.ACCOUNT_NOT_FOUND, ""),
    ],
)
def test_precheck_of_each_demo_account(demo, run_tasks, tv_account, status, code, phone):
    order = place(tv_account)
    assert order.status == OrderStatus.PRECHECKING

    run_tasks()

    order.refresh_from_db()
    assert (order.status, order.failure_code, order.phone) == (status, code, phone)
    assert [(e.from_status, e.to_status) for e in order.events.all()] == [
        ("", OrderStatus.PRECHECKING),
        (OrderStatus.PRECHECKING, status),
    ]
    if status == OrderStatus.AWAITING_PAYMENT:
        assert order.deadline_at == order.status_changed_at + timedelta(seconds=900)
    else:
        assert order.deadline_at is None


def test_product_the_smp_does_not_sell_is_rejected(demo, run_tasks):
    SimSmpProduct.objects.filter(code="SMP-VIP-YEAR").update(active=False)
    order = place("tv1001", "VIP-YEAR")
    run_tasks()
    order.refresh_from_db()
    assert (order.status, order.failure_code) == (OrderStatus.REJECTED, FailureCode.PRODUCT_NOT_AVAILABLE)


def test_product_blocked_for_the_account_is_rejected(demo, run_tasks):
    SimSmpAccount.objects.filter(tv_account="tv1001").update(blocked_products=["SMP-VIP-MONTH"])
    order = place("tv1001")
    run_tasks()
    order.refresh_from_db()
    assert (order.status, order.failure_code) == (OrderStatus.REJECTED, FailureCode.PRODUCT_NOT_AVAILABLE)


def test_per_view_content_still_watchable_is_already_subscribed(demo, run_tasks):
    from django.utils import timezone

    now = timezone.now()
    SimSmpSubscription.objects.create(
        order_no="EARLIER1",
        subscription_id="SUBX1",
        tv_account="tv1001",
        product_code="SMP-PPV-MOVIE",
        package_code="SMP-PPV-MOVIE",
        charge="phone_bill",
        amount_fen=500,
        content_id="m42",
        starts_at=now - timedelta(hours=1),
        ends_at=now + timedelta(hours=47),
    )
    watched = place("tv1001", "PPV-MOVIE", content_id="m42")
    other = place("tv1001", "PPV-MOVIE", content_id="m43")
    run_tasks()
    watched.refresh_from_db()
    other.refresh_from_db()
    assert (watched.status, watched.failure_code) == (OrderStatus.REJECTED, FailureCode.ALREADY_SUBSCRIBED)
    assert other.status == OrderStatus.AWAITING_PAYMENT


def test_period_products_never_fail_for_an_active_subscription(demo, run_tasks):
    from django.utils import timezone

    now = timezone.now()
    SimSmpSubscription.objects.create(
        order_no="EARLIER2",
        subscription_id="SUBX2",
        tv_account="tv1001",
        product_code="SMP-VIP-MONTH",
        package_code="SMP-VIP-MONTH",
        charge="phone_bill",
        amount_fen=2500,
        starts_at=now,
        ends_at=now + timedelta(days=30),
    )
    order = place("tv1001")
    run_tasks()
    order.refresh_from_db()
    assert order.status == OrderStatus.AWAITING_PAYMENT


def test_smp_down_retries_with_backoff_then_rejects_past_the_deadline(demo, run_tasks, time_machine, settings):
    time_machine.move_to("2026-11-25 12:00:00+08:00", tick=False)
    faults.set_mode("smp", "down")
    order = place("tv1001")

    run_tasks()
    order.refresh_from_db()
    assert order.status == OrderStatus.PRECHECKING
    assert order.attempts == 1
    first_retry = order.deadline_at

    # Each failed attempt waits longer than the one before.
    delays = []
    for _ in range(4):
        time_machine.move_to(order.deadline_at)
        run_tasks()
        order.refresh_from_db()
        delays.append(order.deadline_at - first_retry)
    assert delays == sorted(delays) and len(set(delays)) == len(delays)
    assert order.status == OrderStatus.PRECHECKING

    time_machine.move_to(order.created_at + timedelta(seconds=settings.PRECHECK_DEADLINE_SECONDS))
    run_tasks()
    order.refresh_from_db()
    assert (order.status, order.failure_code) == (OrderStatus.REJECTED, FailureCode.SMP_UNAVAILABLE)
    retries = order.events.filter(action="retry").count()
    assert retries >= 5


def test_smp_back_before_the_deadline_lets_the_order_through(demo, run_tasks, time_machine):
    time_machine.move_to("2026-11-25 12:00:00+08:00", tick=False)
    faults.set_mode("smp", "down")
    order = place("tv1001")
    run_tasks()
    faults.set_mode("smp", "ok")
    order.refresh_from_db()
    time_machine.move_to(order.deadline_at)
    run_tasks()
    order.refresh_from_db()
    assert order.status == OrderStatus.AWAITING_PAYMENT


def test_flaky_smp_fails_once_then_answers(demo, run_tasks, time_machine):
    time_machine.move_to("2026-11-25 12:00:00+08:00", tick=False)
    faults.set_mode("smp", "flaky")
    order = place("tv1001")
    run_tasks()
    order.refresh_from_db()
    assert order.status == OrderStatus.PRECHECKING  # call 1 failed
    time_machine.move_to(order.deadline_at)
    run_tasks()
    order.refresh_from_db()
    assert order.status == OrderStatus.AWAITING_PAYMENT  # call 2 answered


def test_slow_smp_times_out_and_is_retried(demo, run_tasks, time_machine, settings):
    time_machine.move_to("2026-11-25 12:00:00+08:00", tick=True)
    settings.SMP_SIMULATOR_SLOW_SECONDS = 0.3
    settings.SMP_TIMEOUT_SECONDS = 0.1
    faults.set_mode("smp", "slow")
    order = place("tv1001")
    run_tasks()
    order.refresh_from_db()
    assert order.status == OrderStatus.PRECHECKING
    assert order.events.filter(action="retry", reason__contains="did not answer").exists()


def test_running_the_precheck_twice_changes_nothing_more(demo, run_tasks):
    from lifecycle.tasks import precheck_order

    order = place("tv1001")
    run_tasks()
    order.refresh_from_db()
    events = order.events.count()
    assert precheck_order.apply(kwargs={"order_id": order.pk}).get() == "not_due"
    assert order.events.count() == events
