"""The order lifecycle (docs/interfaces.md §1): every transition from every status.

The expected table is written out here, from the contract, and not read from
the state machine's own metadata: a transition added or removed by mistake in
``orders.models.Order`` makes a test fail.
"""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, InternalError, connection, transaction
from django.db.models import ProtectedError, RestrictedError
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_fsm import ConcurrentTransition

from ipvas.actors import Actor, ActorKind
from ipvas.errors import ApplicationError, InvalidState
from ipvas.models import OutboxMessage
from lifecycle.claims import claim
from lifecycle.transitions import lock_order, transit
from orders.constants import FailureCode, OrderStatus, PaymentMethod
from orders.models import Order, OrderEvent
from tests.factories import OrderFactory

pytestmark = pytest.mark.django_db

S = OrderStatus
ADMIN = Actor(ActorKind.ADMIN, "lifecycle-test")

# The transitions that take the payment method, as ``payment_method``: django-fsm's
# own ``change_state(instance, method, ...)`` would collide with ``method``.
PAYMENT_KWARG = "payment_method"

TRANSITIONS = [
    "precheck_passed",
    "reject",
    "start_payment",
    "switch_payment",
    "payment_confirmed",
    "fail",
    "expire",
    "cancel",
    "complete",
    "refunded",
]

# (transition, source) -> target. Every pair not listed is forbidden. An order
# in payment_pending is set up paying by WeChat QR here; the methods that
# change the answer have their own tests below.
ALLOWED: dict[tuple[str, str], str] = {
    ("precheck_passed", S.PRECHECKING): S.AWAITING_PAYMENT,
    ("reject", S.PRECHECKING): S.REJECTED,
    ("start_payment", S.AWAITING_PAYMENT): S.PAYMENT_PENDING,
    ("switch_payment", S.PAYMENT_PENDING): S.PAYMENT_PENDING,
    ("payment_confirmed", S.AWAITING_PAYMENT): S.PROVISIONING,
    ("payment_confirmed", S.PAYMENT_PENDING): S.PROVISIONING,
    ("fail", S.PAYMENT_PENDING): S.FAILED,
    ("fail", S.PROVISIONING): S.FAILED,
    ("expire", S.AWAITING_PAYMENT): S.EXPIRED,
    ("expire", S.PAYMENT_PENDING): S.EXPIRED,
    # Before a payment method is chosen, the pre-check's answer included (issue #12, item 10).
    ("cancel", S.PRECHECKING): S.CANCELLED,
    ("cancel", S.AWAITING_PAYMENT): S.CANCELLED,
    ("cancel", S.PAYMENT_PENDING): S.CANCELLED,
    ("complete", S.PROVISIONING): S.COMPLETED,
    # Money taken and then given back: provisioning failed, or the payment
    # arrived after the order had expired or been cancelled, or an admin
    # refunded a completed order.
    ("refunded", S.PROVISIONING): S.REFUNDED,
    ("refunded", S.EXPIRED): S.REFUNDED,
    ("refunded", S.CANCELLED): S.REFUNDED,
    ("refunded", S.COMPLETED): S.REFUNDED,
}

TERMINAL = {S.COMPLETED, S.REJECTED, S.EXPIRED, S.FAILED, S.REFUNDED, S.CANCELLED}
# The task that must be scheduled at the deadline of each non-terminal status.
DUE_TASK = {
    S.PRECHECKING: "lifecycle.tasks.precheck_order",
    S.AWAITING_PAYMENT: "lifecycle.tasks.order_deadline",
    S.PAYMENT_PENDING: "lifecycle.tasks.order_deadline",
    S.PROVISIONING: "lifecycle.tasks.provision_order",
}
# What each ending leaves in failure_code (the code passed below, or fixed).
FAILURE_AFTER = {
    "reject": FailureCode.ACCOUNT_SUSPENDED,
    "fail": FailureCode.PAYMENT_DECLINED,
    "expire": FailureCode.PAYMENT_TIMEOUT,
    "cancel": FailureCode.CANCELLED,
    "complete": "",
    "refunded": FailureCode.PROVISIONING_FAILED,
}
# How an order in each status looks when it got there the normal way.
SETUP: dict[str, dict[str, Any]] = {
    S.PRECHECKING: {"phone": "", "payment_method": ""},
    S.AWAITING_PAYMENT: {"payment_method": ""},
    S.PAYMENT_PENDING: {"payment_method": PaymentMethod.WECHAT_QR},
    S.PROVISIONING: {"payment_method": PaymentMethod.WECHAT_QR},
    S.COMPLETED: {"payment_method": PaymentMethod.WECHAT_QR, "deadline_at": None},
    S.REJECTED: {"failure_code": FailureCode.ACCOUNT_NOT_FOUND, "deadline_at": None},
    S.EXPIRED: {"failure_code": FailureCode.PAYMENT_TIMEOUT, "deadline_at": None},
    S.FAILED: {
        "payment_method": PaymentMethod.PHONE_BILL,
        "failure_code": FailureCode.INSUFFICIENT_BALANCE,
        "deadline_at": None,
    },
    S.REFUNDED: {
        "payment_method": PaymentMethod.ALIPAY_QR,
        "failure_code": FailureCode.PROVISIONING_FAILED,
        "deadline_at": None,
    },
    S.CANCELLED: {"failure_code": FailureCode.CANCELLED, "deadline_at": None},
}


def test_the_table_covers_every_status_and_transition():
    # A status added to the contract must be added to this file's table too.
    assert set(SETUP) == set(OrderStatus)
    assert TERMINAL | set(DUE_TASK) == set(OrderStatus)
    assert {t for t, _ in ALLOWED} == set(TRANSITIONS)


def order_in(status: str, **overrides: Any) -> Order:
    return OrderFactory(status=status, **{**SETUP[status], **overrides})


def arguments(transition: str, now) -> dict[str, Any]:
    return {
        "precheck_passed": {
            "tv_account": "tv1001",
            "phone": "13800000001",
            "deadline_at": now + timedelta(seconds=900),
        },
        "reject": {"code": FailureCode.ACCOUNT_SUSPENDED},
        "start_payment": {PAYMENT_KWARG: PaymentMethod.WECHAT_QR, "deadline_at": now + timedelta(seconds=180)},
        "switch_payment": {PAYMENT_KWARG: PaymentMethod.ALIPAY_QR, "deadline_at": now + timedelta(seconds=180)},
        "payment_confirmed": {PAYMENT_KWARG: PaymentMethod.WECHAT_QR},
        "fail": {"code": FailureCode.PAYMENT_DECLINED},
        "expire": {"code": FailureCode.PAYMENT_TIMEOUT},
        "cancel": {},
        "complete": {},
        "refunded": {"code": FailureCode.PROVISIONING_FAILED},
    }[transition]


def row(order: Order) -> dict[str, Any]:
    return Order.objects.filter(pk=order.pk).values().get()


def snapshot(order: Order) -> tuple[dict[str, Any], list[tuple], int]:
    """The order's row, its events, and the outbox: what a refused transition must not change."""
    events = list(OrderEvent.objects.filter(order=order).values_list("pk", "action", "from_status", "to_status"))
    return row(order), events, OutboxMessage.objects.count()


def apply(order: Order, transition: str, **kwargs: Any) -> OrderEvent:
    with transaction.atomic():
        locked = lock_order(order.pk)
        return transit(locked, getattr(locked, transition), actor=ADMIN, reason="lifecycle test", **kwargs)


def pairs(selected: list[tuple[str, str]]) -> list[Any]:
    return [pytest.param(t, s, id=f"{t}-from-{s}") for t, s in selected]


ALLOWED_PAIRS = pairs(sorted(ALLOWED))
FORBIDDEN_PAIRS = pairs([pair for pair in itertools.product(TRANSITIONS, list(OrderStatus)) if pair not in ALLOWED])


@pytest.mark.parametrize(("transition", "source"), ALLOWED_PAIRS)
def test_allowed_transition(transition, source):
    target = ALLOWED[(transition, source)]
    order = order_in(source)
    now = timezone.now()
    kwargs = arguments(transition, now)

    event = apply(order, transition, now=now, **kwargs)

    order.refresh_from_db()
    assert order.status == target
    assert order.status_changed_at == now
    assert order.attempts == 0
    events = list(OrderEvent.objects.filter(order=order))
    assert len(events) == 1
    assert events[0].pk == event.pk
    assert (events[0].action, events[0].from_status, events[0].to_status) == (transition, source, target)
    assert (events[0].actor_kind, events[0].actor_id, events[0].reason) == (
        ActorKind.ADMIN,
        "lifecycle-test",
        "lifecycle test",
    )
    assert events[0].at == now

    due = list(OutboxMessage.objects.filter(relayed_at__isnull=True).values_list("task_name", "kwargs", "due_at"))
    if target in TERMINAL:
        # A terminal order has nothing left to do: no deadline, no task.
        assert order.deadline_at is None
        assert due == []
        assert order.failure_code == FAILURE_AFTER[transition]
    else:
        assert order.deadline_at is not None
        expected_deadline = kwargs.get("deadline_at", now)
        assert order.deadline_at == expected_deadline
        assert [(name, kw) for name, kw, _ in due] == [
            (DUE_TASK[target], {"order_id": order.pk, "due_at": expected_deadline.isoformat()})
        ]
        assert [at for _, _, at in due] == [expected_deadline]
    if PAYMENT_KWARG in kwargs:
        assert order.payment_method == kwargs[PAYMENT_KWARG]
    if transition == "precheck_passed":
        assert (order.tv_account, order.phone) == ("tv1001", "13800000001")


@pytest.mark.parametrize(("transition", "source"), FORBIDDEN_PAIRS)
def test_forbidden_transition(transition, source):
    order = order_in(source)
    before = snapshot(order)

    with pytest.raises(InvalidState) as caught:
        apply(order, transition, **arguments(transition, timezone.now()))

    assert caught.value.status == 409
    assert caught.value.extra == {"status": source}
    assert snapshot(order) == before


@pytest.mark.parametrize(
    ("method", "allowed"),
    [
        (PaymentMethod.WECHAT_QR, True),
        (PaymentMethod.ALIPAY_QR, True),
        (PaymentMethod.PHONE_BILL_SMS, True),
        # A phone-bill charge or a CRM cash activity in flight cannot be taken back.
        (PaymentMethod.PHONE_BILL, False),
        (PaymentMethod.CASH, False),
    ],
)
def test_cancel_while_payment_pending_depends_on_the_method(method, allowed):
    order = order_in(S.PAYMENT_PENDING, payment_method=method)
    before = snapshot(order)

    if allowed:
        apply(order, "cancel")
        order.refresh_from_db()
        assert (order.status, order.failure_code, order.deadline_at) == (S.CANCELLED, FailureCode.CANCELLED, None)
        assert list(order.events.values_list("action", "from_status", "to_status")) == [
            ("cancel", S.PAYMENT_PENDING, S.CANCELLED)
        ]
    else:
        with pytest.raises(InvalidState):
            apply(order, "cancel")
        assert snapshot(order) == before


@pytest.mark.parametrize("method", list(PaymentMethod))
def test_cancel_while_awaiting_payment_is_always_allowed(method):
    # A method may be left over from nothing; awaiting_payment means no money moved.
    order = order_in(S.AWAITING_PAYMENT, payment_method=method)
    apply(order, "cancel")
    order.refresh_from_db()
    assert order.status == S.CANCELLED


QR = [PaymentMethod.WECHAT_QR, PaymentMethod.ALIPAY_QR]
SWITCHES = [pytest.param(a, b, id=f"{a}-to-{b}") for a, b in itertools.permutations(list(PaymentMethod), 2)]


@pytest.mark.parametrize(("current", "new"), SWITCHES)
def test_switch_payment_only_between_qr_methods(current, new):
    order = order_in(S.PAYMENT_PENDING, payment_method=current)
    before = snapshot(order)
    deadline = timezone.now() + timedelta(seconds=180)

    if current in QR and new in QR:
        apply(order, "switch_payment", **{PAYMENT_KWARG: new}, deadline_at=deadline)
        order.refresh_from_db()
        assert (order.status, order.payment_method, order.deadline_at) == (S.PAYMENT_PENDING, new, deadline)
        assert list(order.events.values_list("action", "from_status", "to_status")) == [
            ("switch_payment", S.PAYMENT_PENDING, S.PAYMENT_PENDING)
        ]
    else:
        with pytest.raises((InvalidState, ValidationError)):
            apply(order, "switch_payment", **{PAYMENT_KWARG: new}, deadline_at=deadline)
        assert snapshot(order) == before


def test_switch_from_qr_to_a_non_qr_method_is_an_invalid_state():
    for current, new in itertools.product(QR, [PaymentMethod.PHONE_BILL, PaymentMethod.PHONE_BILL_SMS, "cash"]):
        order = order_in(S.PAYMENT_PENDING, payment_method=current)
        with pytest.raises(InvalidState):
            apply(order, "switch_payment", **{PAYMENT_KWARG: new}, deadline_at=timezone.now() + timedelta(seconds=180))


def test_status_cannot_be_assigned_directly():
    order = order_in(S.AWAITING_PAYMENT)
    with pytest.raises(AttributeError):
        order.status = S.COMPLETED
    with transaction.atomic():
        locked = lock_order(order.pk)
        with pytest.raises(AttributeError):
            locked.status = S.COMPLETED
    assert row(order)["status"] == S.AWAITING_PAYMENT


def test_a_transition_saved_from_a_stale_copy_is_refused():
    order = order_in(S.AWAITING_PAYMENT)
    stale = Order.objects.get(pk=order.pk)
    apply(order, "expire", code=FailureCode.PAYMENT_TIMEOUT)

    with pytest.raises(ConcurrentTransition), transaction.atomic():
        # No lock: the copy read before the expiry still says awaiting_payment.
        transit(stale, stale.cancel, actor=ADMIN, reason="from a stale copy")

    assert (row(order)["status"], row(order)["failure_code"]) == (S.EXPIRED, FailureCode.PAYMENT_TIMEOUT)
    assert list(order.events.values_list("action", flat=True)) == ["expire"]


def test_a_transition_writes_what_its_step_and_its_caller_changed_and_no_other_column():
    order = order_in(S.AWAITING_PAYMENT)
    before = row(order)
    with CaptureQueriesContext(connection) as queries, transaction.atomic():
        locked = lock_order(order.pk)
        locked.content_id = "changed-by-the-caller"  # before the step, on the locked order
        transit(locked, locked.expire, actor=ADMIN, code=FailureCode.PAYMENT_TIMEOUT)

    after = row(order)
    changed = {name for name in after if after[name] != before[name]}
    assert changed == {"status", "deadline_at", "status_changed_at", "failure_code", "content_id", "updated_at"}
    assert after["content_id"] == "changed-by-the-caller"
    (update,) = [q["sql"] for q in queries.captured_queries if q["sql"].startswith('UPDATE "orders_order"')]
    assert '"order_no"' not in update and '"amount_fen"' not in update  # the columns nobody changed stay out


def test_a_column_saved_between_the_lock_and_the_transition_is_not_undone_by_it():
    # The step sets the deadline back to what it was when the order was locked; a save in between had
    # moved it: the transition must write it, though it equals what the lock read.
    order = order_in(S.PRECHECKING)
    first_deadline = row(order)["deadline_at"]
    with transaction.atomic():
        locked = lock_order(order.pk)
        claim(locked)  # deadline_at pushed a lease ahead, saved
        kwargs = arguments("precheck_passed", timezone.now())
        transit(locked, locked.precheck_passed, actor=ADMIN, **{**kwargs, "deadline_at": first_deadline})
    assert (row(order)["status"], row(order)["deadline_at"]) == (S.AWAITING_PAYMENT, first_deadline)


def test_a_second_transition_of_the_same_locked_order_writes_its_own_changes():
    order = order_in(S.PRECHECKING)
    with transaction.atomic():
        locked = lock_order(order.pk)
        transit(locked, locked.precheck_passed, actor=ADMIN, **arguments("precheck_passed", timezone.now()))
        transit(locked, locked.cancel, actor=ADMIN)
    after = row(order)
    assert (after["status"], after["deadline_at"], after["tv_account"]) == (S.CANCELLED, None, "tv1001")


@pytest.mark.parametrize(
    ("source", "transition"),
    [(S.PRECHECKING, "reject"), (S.PAYMENT_PENDING, "fail"), (S.AWAITING_PAYMENT, "expire"), (S.PROVISIONING, "fail")],
)
def test_an_unknown_failure_code_is_refused(source, transition):
    order = order_in(source)
    before = snapshot(order)
    with pytest.raises((ValidationError, ApplicationError)):
        apply(order, transition, code="because_i_said_so")
    assert snapshot(order) == before


def test_refund_keeps_the_earlier_failure_code_when_given_none():
    order = order_in(S.EXPIRED)
    apply(order, "refunded", code="")
    order.refresh_from_db()
    assert (order.status, order.failure_code) == (S.REFUNDED, FailureCode.PAYMENT_TIMEOUT)


# Whatever way the history is protected (a guard in Python, on_delete=PROTECT, a trigger), it refuses with one of these.
REFUSALS = (
    ValidationError,
    ApplicationError,
    NotImplementedError,
    ProtectedError,
    RestrictedError,
    IntegrityError,
    InternalError,
)


class TestEventsAreAppendOnly:
    @pytest.fixture
    def event(self) -> OrderEvent:
        order = order_in(S.AWAITING_PAYMENT)
        return apply(order, "expire", code=FailureCode.PAYMENT_TIMEOUT)

    def test_an_event_cannot_be_saved_again(self, event):
        event.reason = "rewritten"
        with pytest.raises(ValidationError):
            event.save()
        assert OrderEvent.objects.get(pk=event.pk).reason == "lifecycle test"

    def test_an_event_cannot_be_deleted(self, event):
        with pytest.raises(ValidationError):
            event.delete()
        assert OrderEvent.objects.filter(pk=event.pk).exists()

    def test_events_cannot_be_updated_in_bulk(self, event):
        with pytest.raises(REFUSALS):
            OrderEvent.objects.filter(pk=event.pk).update(reason="rewritten")
        assert OrderEvent.objects.get(pk=event.pk).reason == "lifecycle test"

    @pytest.mark.parametrize("how", ["queryset", "order"])
    def test_events_cannot_be_deleted_in_bulk_or_with_their_order(self, event, how):
        with pytest.raises(REFUSALS), transaction.atomic():
            if how == "queryset":
                OrderEvent.objects.filter(pk=event.pk).delete()
            else:
                Order.objects.filter(pk=event.order_id).delete()
        assert OrderEvent.objects.filter(pk=event.pk).exists()
