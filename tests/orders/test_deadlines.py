"""Deadlines: no order is stuck (docs/domain.md, "What must never happen").

Every non-terminal order has ``deadline_at`` and a due task at it; if that
task is lost the beat sweep moves the order on. Either, both, or either twice,
move an order exactly once.
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

import pytest
from django.db.models import Count
from django.utils import timezone

from ipvas.actors import Actor, ActorKind
from ipvas.models import OutboxMessage
from lifecycle.due import deadlines_sweep, order_process_due
from lifecycle.placing import order_create
from orders.constants import ACTIVE_STATUSES, TERMINAL_STATUSES, Channel, FailureCode, OrderStatus
from orders.models import Order, OrderEvent
from sandbox import faults
from tests.factories import OrderFactory, ProductFactory
from tests.support.concurrency import require_postgresql, run_in_threads

EPG = Actor(ActorKind.EPG_CLIENT, "test-client")
START = "2026-11-25 12:00:00+08:00"
# deadlines_sweep leaves orders overdue by less than this to their own due tasks.
PAST_THE_GRACE = timedelta(seconds=3)


def place(tv_account: str = "tv1001", product: str = "VIP-MONTH") -> Order:
    return order_create(channel="epg", product_code=product, tv_account=tv_account, actor=EPG)


def lose_pending_tasks() -> int:
    """The broker lost what was relayed (or the process died before relaying): nothing will run."""
    return OutboxMessage.objects.filter(relayed_at__isnull=True).update(relayed_at=timezone.now())


def expire_events(order: Order) -> list[tuple[str, str, str, str]]:
    return list(order.events.filter(action="expire").values_list("from_status", "to_status", "actor_kind", "actor_id"))


def assert_no_order_stuck() -> None:
    assert not Order.objects.filter(status__in=TERMINAL_STATUSES, deadline_at__isnull=False).exists()
    assert not Order.objects.filter(status__in=ACTIVE_STATUSES, deadline_at__isnull=True).exists()


@pytest.fixture
def awaiting(demo, run_tasks, time_machine, settings) -> Order:
    """An order that passed its pre-check at START and waits for a payment method."""
    time_machine.move_to(START, tick=False)
    settings.ORDER_IDLE_SECONDS = 120
    order = place()
    assert run_tasks() == [("lifecycle.tasks.precheck_order", "passed")]
    order.refresh_from_db()
    assert order.status == OrderStatus.AWAITING_PAYMENT
    assert order.deadline_at == timezone.now() + timedelta(seconds=120)
    assert list(OutboxMessage.objects.filter(relayed_at__isnull=True).values_list("task_name", "due_at")) == [
        ("lifecycle.tasks.order_deadline", order.deadline_at)
    ]
    return order


class TestIdleExpiry:
    def test_not_expired_a_second_before_the_deadline(self, awaiting, run_tasks, time_machine):
        time_machine.move_to(awaiting.deadline_at - timedelta(seconds=1), tick=False)

        assert run_tasks() == []
        assert deadlines_sweep() == 0
        assert order_process_due(order_id=awaiting.pk) == "not_due"

        awaiting.refresh_from_db()
        assert awaiting.status == OrderStatus.AWAITING_PAYMENT
        assert expire_events(awaiting) == []

    def test_expires_on_its_own_due_task(self, awaiting, run_tasks, time_machine):
        time_machine.move_to(awaiting.deadline_at, tick=False)

        assert run_tasks() == [("lifecycle.tasks.order_deadline", "expired")]

        awaiting.refresh_from_db()
        assert (awaiting.status, awaiting.failure_code) == (OrderStatus.EXPIRED, FailureCode.PAYMENT_TIMEOUT)
        assert awaiting.deadline_at is None
        assert awaiting.status_changed_at == timezone.now()
        assert expire_events(awaiting) == [
            (OrderStatus.AWAITING_PAYMENT, OrderStatus.EXPIRED, ActorKind.TASK, "deadline")
        ]
        assert_no_order_stuck()

    @pytest.mark.parametrize("how", ["relayed_then_lost", "deleted"])
    def test_expires_through_the_sweep_when_the_due_task_was_lost(self, awaiting, run_tasks, time_machine, how):
        if how == "deleted":
            OutboxMessage.objects.filter(relayed_at__isnull=True).delete()
        else:
            assert lose_pending_tasks() == 1
        time_machine.move_to(awaiting.deadline_at + PAST_THE_GRACE, tick=False)
        assert run_tasks() == []

        assert deadlines_sweep() == 1

        awaiting.refresh_from_db()
        assert (awaiting.status, awaiting.failure_code, awaiting.deadline_at) == (
            OrderStatus.EXPIRED,
            FailureCode.PAYMENT_TIMEOUT,
            None,
        )
        assert len(expire_events(awaiting)) == 1
        assert deadlines_sweep() == 0

    @pytest.mark.parametrize(
        "steps",
        [
            ("task", "sweep", "task", "sweep"),
            ("sweep", "task", "sweep", "task"),
            ("task", "task"),
            ("sweep", "sweep"),
        ],
    )
    def test_due_task_and_sweep_move_the_order_exactly_once(self, awaiting, run_tasks, time_machine, steps):
        from lifecycle.tasks import order_deadline

        time_machine.move_to(awaiting.deadline_at + PAST_THE_GRACE, tick=False)
        due_at = awaiting.deadline_at.isoformat()
        results = []
        for step in steps:
            if step == "task":
                # As a redelivered message would: the same task, the same arguments.
                results.append(order_deadline.apply(kwargs={"order_id": awaiting.pk, "due_at": due_at}).get())
            else:
                results.append(deadlines_sweep())
        run_tasks()

        awaiting.refresh_from_db()
        assert awaiting.status == OrderStatus.EXPIRED
        assert len(expire_events(awaiting)) == 1
        assert awaiting.events.count() == 3  # create, precheck_passed, expire
        # The first step acted, none after it did.
        assert results[0] in ("expired", 1)
        assert all(r in ("not_due", "nothing_due", 0) for r in results[1:]), results


class TestSweep:
    def overdue(self, n: int, *, product=None, **kwargs) -> list[Order]:
        product = product or ProductFactory()
        now = timezone.now()
        # Oldest first: order i fell due (n - i) minutes ago.
        return [
            OrderFactory(
                product=product,
                status=OrderStatus.AWAITING_PAYMENT,
                deadline_at=now - timedelta(minutes=n - i),
                **kwargs,
            )
            for i in range(n)
        ]

    def test_works_in_bounded_batches_oldest_first(self, db, settings):
        settings.DEADLINE_SWEEP_BATCH = 3
        orders = self.overdue(7)

        found = [deadlines_sweep() for _ in range(4)]

        assert found == [3, 3, 1, 0]
        assert Order.objects.filter(status=OrderStatus.EXPIRED).count() == 7
        # The first batch took the three orders that had waited longest.
        first_batch = OrderEvent.objects.filter(action="expire").order_by("pk").values_list("order_id", flat=True)[:3]
        assert list(first_batch) == [o.pk for o in orders[:3]]

    def test_batch_size_argument_overrides_the_setting(self, db, settings):
        settings.DEADLINE_SWEEP_BATCH = 500
        self.overdue(4)
        assert deadlines_sweep(batch_size=2) == 2
        assert Order.objects.filter(status=OrderStatus.AWAITING_PAYMENT).count() == 2

    def test_a_broken_order_does_not_stop_it(self, db, caplog):
        product = ProductFactory()
        # Inconsistent data: a terminal order that still has a deadline, older than the rest.
        broken = OrderFactory(
            product=product, status=OrderStatus.COMPLETED, deadline_at=timezone.now() - timedelta(hours=1)
        )
        good = self.overdue(3, product=product)

        found = deadlines_sweep()

        assert found >= 3
        for order in good:
            order.refresh_from_db()
            assert order.status == OrderStatus.EXPIRED
        broken.refresh_from_db()
        assert broken.status == OrderStatus.COMPLETED
        assert not broken.events.exists()

    def test_broken_orders_do_not_starve_the_others(self, db, settings):
        settings.DEADLINE_SWEEP_BATCH = 2
        product = ProductFactory()
        for minutes in (60, 59):
            OrderFactory(
                product=product,
                status=OrderStatus.COMPLETED,
                deadline_at=timezone.now() - timedelta(minutes=minutes),
            )
        (good,) = self.overdue(1, product=product)

        for _ in range(5):
            deadlines_sweep()

        good.refresh_from_db()
        assert good.status == OrderStatus.EXPIRED

    def test_leaves_orders_without_a_deadline_and_orders_not_yet_due(self, db):
        product = ProductFactory()
        later = OrderFactory(product=product, deadline_at=timezone.now() + timedelta(minutes=5))
        done = OrderFactory(
            product=product, status=OrderStatus.EXPIRED, failure_code=FailureCode.PAYMENT_TIMEOUT, deadline_at=None
        )
        assert deadlines_sweep() == 0
        later.refresh_from_db()
        done.refresh_from_db()
        assert (later.status, done.status) == (OrderStatus.AWAITING_PAYMENT, OrderStatus.EXPIRED)

    def test_expires_a_batch_exactly_as_the_due_task_expires_one(self, db, time_machine, settings):
        """The set-based sweep (issue #17) writes what transit() writes: the order's fields and its event."""
        from lifecycle.tasks import order_deadline

        time_machine.move_to(START, tick=False)
        by_task, *by_sweep = self.overdue(3, attempts=2)
        assert order_deadline.apply(kwargs={"order_id": by_task.pk}).get() == "expired"

        assert deadlines_sweep() == 2

        def record(order: Order) -> tuple:
            order.refresh_from_db()
            event = order.events.get()
            return (
                order.status,
                order.failure_code,
                order.failure_detail,
                order.deadline_at,
                order.attempts,
                order.status_changed_at,
                order.updated_at,
                (event.at, event.from_status, event.to_status, event.action, event.actor_kind, event.actor_id),
                (event.reason, event.data),
            )

        expected = record(by_task)
        assert expected[0] == OrderStatus.EXPIRED and expected[4] == 0
        assert [record(o) for o in by_sweep] == [expected, expected]

    def test_an_auto_renewing_order_expires_one_by_one_with_its_follow_up(self, db, time_machine, monkeypatch):
        """Its end has follow-ups (lifecycle.renewals.order_ended settles its deduction contracts): the
        sweep leaves it to its handler instead of the set-based move."""
        from lifecycle import renewals

        heard: list[int] = []
        order_ended = renewals.order_ended
        monkeypatch.setattr(
            renewals, "order_ended", lambda order, **kw: (heard.append(order.pk), order_ended(order, **kw))
        )
        time_machine.move_to(START, tick=False)
        (plain, renewing) = self.overdue(2)
        Order.objects.filter(pk=renewing.pk).update(auto_renew=True)

        assert deadlines_sweep() == 2

        for order in (plain, renewing):
            order.refresh_from_db()
            assert (order.status, order.failure_code) == (OrderStatus.EXPIRED, FailureCode.PAYMENT_TIMEOUT)
            assert len(expire_events(order)) == 1
        assert heard == [renewing.pk]

    def test_hands_orders_waiting_on_outside_systems_to_their_due_tasks_in_one_claim(self, db, time_machine, settings):
        time_machine.move_to(START, tick=False)
        product = ProductFactory()
        prechecking = [
            OrderFactory(
                product=product, status=OrderStatus.PRECHECKING, deadline_at=timezone.now() - timedelta(minutes=i)
            )
            for i in (3, 2)
        ]
        provisioning = OrderFactory(
            product=product, status=OrderStatus.PROVISIONING, deadline_at=timezone.now() - timedelta(minutes=1)
        )

        assert deadlines_sweep() == 3

        claimed = timezone.now() + timedelta(seconds=settings.ORDER_CLAIM_LEASE_SECONDS)
        for order in (*prechecking, provisioning):
            order.refresh_from_db()
            assert order.deadline_at == claimed  # left alone by the next sweep while its task runs
        assert sorted(OutboxMessage.objects.values_list("task_name", "kwargs__order_id", "kwargs__due_at")) == sorted(
            [("lifecycle.tasks.precheck_order", o.pk, claimed.isoformat()) for o in prechecking]
            + [("lifecycle.tasks.provision_order", provisioning.pk, claimed.isoformat())]
        )
        assert deadlines_sweep() == 0

    def test_a_renewal_orders_pre_check_goes_to_background_work_not_to_the_queue_people_wait_on(
        self, db, time_machine, settings
    ):
        """A TV user waits for the pre-check (queue "interactive", asked first by the workers); a renewal
        order's pre-check, which the renewal sweep makes by the hundred and nobody watches, is the same
        step on "default", scheduled or handed back by the sweep."""
        from django.db import transaction

        from ipvas.celery import app
        from lifecycle.transitions import schedule_due

        time_machine.move_to(START, tick=False)
        product = ProductFactory()
        tv, renewal = (
            OrderFactory(product=product, channel=channel, status=OrderStatus.PRECHECKING, deadline_at=timezone.now())
            for channel in (Channel.EPG, Channel.RENEWAL)
        )
        with transaction.atomic():
            for order in (tv, renewal):
                schedule_due(order)
        time_machine.move_to(timezone.now() + timedelta(minutes=1), tick=False)
        assert deadlines_sweep() == 2

        tasks = list(OutboxMessage.objects.order_by("pk").values_list("kwargs__order_id", "task_name"))
        each = [(tv.pk, "lifecycle.tasks.precheck_order"), (renewal.pk, "lifecycle.tasks.precheck_renewal")]
        assert tasks[:2] == each  # scheduled
        assert sorted(tasks[2:]) == each  # handed back by the sweep
        queue = {name: app.amqp.router.route({}, name)["queue"].name for _, name in tasks}
        assert queue == {"lifecycle.tasks.precheck_order": "interactive", "lifecycle.tasks.precheck_renewal": "default"}


class TestPrecheckDeadline:
    def test_smp_down_past_the_precheck_deadline_rejects_through_the_sweep(
        self, demo, run_tasks, time_machine, settings
    ):
        time_machine.move_to(START, tick=False)
        faults.set_mode("smp", "down")
        order = place()
        assert run_tasks() == [("lifecycle.tasks.precheck_order", "retry")]
        # The retry's message is lost, and the SMP stays down.
        assert lose_pending_tasks() == 1
        time_machine.move_to(order.created_at + timedelta(seconds=settings.PRECHECK_DEADLINE_SECONDS) + PAST_THE_GRACE)
        assert run_tasks() == []

        assert deadlines_sweep() == 1
        assert run_tasks() == [("lifecycle.tasks.precheck_order", "rejected")]

        order.refresh_from_db()
        assert (order.status, order.failure_code, order.deadline_at) == (
            OrderStatus.REJECTED,
            FailureCode.SMP_UNAVAILABLE,
            None,
        )
        assert list(order.events.values_list("action", flat=True)) == ["create", "retry", "reject"]
        assert deadlines_sweep() == 0
        assert_no_order_stuck()

    def test_a_new_order_has_a_deadline_and_a_due_task(self, demo, time_machine):
        time_machine.move_to(START, tick=False)
        order = place()
        assert order.deadline_at == timezone.now()
        assert list(OutboxMessage.objects.values_list("task_name", "kwargs")) == [
            ("lifecycle.tasks.precheck_order", {"order_id": order.pk, "due_at": order.deadline_at.isoformat()})
        ]


# --- PostgreSQL: real concurrency -------------------------------------------------


def overdue_orders(n: int) -> list[Order]:
    product = ProductFactory()
    now = timezone.now()
    return [OrderFactory(product=product, deadline_at=now - timedelta(minutes=10, seconds=i)) for i in range(n)]


@pytest.mark.django_db(transaction=True)
def test_two_sweeps_at_once_move_each_order_once():
    require_postgresql()
    orders = overdue_orders(50)
    found: list[int] = []

    def sweep(barrier: threading.Barrier) -> None:
        barrier.wait()
        found.append(deadlines_sweep())

    assert run_in_threads(2, sweep) == []

    # Each order is taken by one of them (SKIP LOCKED): the other finds it locked or already moved.
    assert sum(found) == 50
    per_order = dict(
        OrderEvent.objects.filter(action="expire")
        .values("order_id")
        .annotate(n=Count("pk"))
        .values_list("order_id", "n")
    )
    assert per_order == {o.pk: 1 for o in orders}
    assert Order.objects.filter(status=OrderStatus.EXPIRED).count() == 50


@pytest.mark.django_db(transaction=True)
def test_the_due_task_twice_at_once_moves_the_order_once():
    require_postgresql()
    orders = overdue_orders(30)
    results: dict[int, list[str]] = {o.pk: [] for o in orders}
    lock = threading.Lock()

    def process(barrier: threading.Barrier) -> None:
        for order in orders:
            barrier.wait()  # both threads ask for the same order at the same moment
            result = order_process_due(order_id=order.pk, due_at=order.deadline_at)
            with lock:
                results[order.pk].append(result)

    assert run_in_threads(2, process) == []

    for order_id, answers in results.items():
        assert Counter(answers)["expired"] == 1, (order_id, answers)
        assert set(answers) <= {"expired", "not_due", "nothing_due"}
    assert OrderEvent.objects.filter(action="expire").count() == 30
    assert not OrderEvent.objects.filter(action="expire").values("order").annotate(n=Count("pk")).filter(n__gt=1)
