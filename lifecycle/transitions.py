"""The one way an order changes: lock it, call a transition, save, write the event, schedule what is next."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django_fsm import TransitionNotAllowed

from ipvas import logs, outbox
from ipvas.actors import Actor
from ipvas.errors import InvalidInput, InvalidState
from lifecycle.pins import PurchasePinRequired, pin_required
from orders.constants import OrderStatus
from orders.models import Order, OrderEvent

# A transition method of a locked order: ``order.complete``, ``order.payment_confirmed``...
Step = Callable[..., None]


def lock_order(order_id: int, *, product: bool = True) -> Order:
    """Re-read an order under a row lock; call inside ``transaction.atomic``.

    Always lock an order before anything else that belongs to it (payments,
    confirmations, refunds), so that two paths never wait for each other crosswise.
    ``product=False`` for a step that seldom needs the order's product (a payment
    notification): its join costs ~0.3 ms of CPU, and ``order.product`` is read
    when needed.
    """
    return _locked(product, pk=order_id)


def lock_order_of_trade(provider: str, out_trade_no: str, *, product: bool = True) -> Order:
    """``lock_order`` for the order our payment of this provider's trade belongs to: found and locked in one
    statement (issue #17: a payment notification read the payment's ids first). Raises Order.DoesNotExist."""
    return _locked(product, payments__provider=provider, payments__out_trade_no=out_trade_no)


def _locked(product: bool, **lookup: Any) -> Order:
    orders = Order.objects.select_for_update(of=("self",))
    order = (orders.select_related("product") if product else orders).get(**lookup)
    order.remember_columns()  # transit() then writes only what its step changed
    logs.bind(order_no=order.order_no)
    return order


def lock_to_pay(order_id: int, method: str) -> Order:
    """``lock_order`` for a payment choice: refuses ``method`` (InvalidInput) unless the order's product may
    be paid with it on the order's channel, checked under the lock before anything else of the choice."""
    order = lock_order(order_id)
    allowed = order.methods_allowed()
    if method not in allowed:
        raise method_refused(allowed)
    if order.pin_pending and pin_required(tv_account=order.tv_account):
        # Placed on the TV pages, which ask the household's purchase PIN before any payment: not paid around it.
        raise PurchasePinRequired()
    if order.auto_renew and not order.phone and order.status == OrderStatus.AWAITING_PAYMENT:
        # docs/interfaces.md §8: no renewal is charged unless its reminder SMS went to the bound number.
        raise InvalidState(
            _(
                "The SMP gave no mobile number for this account, and automatic renewal sends its reminders "
                "there; order without automatic renewal."
            )
        )
    return order


def method_refused(allowed: list[str]) -> InvalidInput:
    return InvalidInput(
        fields={"method": [_("This product can be paid with: %(methods)s.") % {"methods": ", ".join(allowed)}]}
    )


def record_event(
    order: Order,
    action: str,
    *,
    actor: Actor,
    from_status: str,
    reason: str = "",
    data: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> OrderEvent:
    event = new_event(
        order.pk,
        action,
        actor=actor,
        from_status=from_status,
        to_status=order.status,
        reason=reason,
        data=data,
        now=now,
    )
    event.order = order
    event.save(force_insert=True)
    return event


def new_event(
    order_id: int,
    action: str,
    *,
    actor: Actor,
    from_status: str,
    to_status: str,
    reason: str = "",
    data: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> OrderEvent:
    """An order's event, not yet saved (``record_event`` saves one, ``transit_many`` a batch)."""
    return OrderEvent(
        order_id=order_id,
        at=now or timezone.now(),
        from_status=from_status,
        to_status=to_status,
        action=action,
        actor_kind=actor.kind,
        actor_id=actor.id[:150],
        reason=reason[:255],
        data=data or {},
    )


def schedule_due(order: Order) -> None:
    """Ask for the order's due task at ``deadline_at`` (it does nothing if the order moved on)."""
    # The table of lifecycle.due names the handlers, which call transit(): it is read when needed.
    from lifecycle.due import STEPS

    step = STEPS.get(order.status)
    if order.deadline_at is None or step is None:
        return
    outbox.enqueue(
        step.task_for(order.channel),
        kwargs={"order_id": order.pk, "due_at": order.deadline_at.isoformat()},
        due_at=order.deadline_at,
    )


def transit(
    order: Order,
    step: Step,
    *,
    actor: Actor,
    reason: str = "",
    data: dict[str, Any] | None = None,
    now: datetime | None = None,
    **kwargs: Any,
) -> OrderEvent:
    """Apply ``step``, a transition method of the locked ``order`` (``order.complete``).

    Raises ``InvalidState`` (and changes nothing) when the lifecycle does not
    allow it from the order's status.
    """
    assert transaction.get_connection().in_atomic_block, "transit() needs a transaction and a locked order"
    assert getattr(step, "__self__", None) is order, "transit() takes a transition method of the order it moves"
    now = now or timezone.now()
    source = order.status
    try:
        step(now=now, **kwargs)
    except TransitionNotAllowed as exc:
        raise InvalidState(
            _("An order that is %(status)s cannot %(action)s.")
            % {"status": OrderStatus(source).label, "action": ACTION_LABELS.get(step.__name__, step.__name__)},
            extra={"status": source},
        ) from exc
    order.save_changes()
    event = record_event(order, step.__name__, actor=actor, from_status=source, reason=reason, data=data, now=now)
    schedule_due(order)
    if order.is_terminal and (order.subscription_id or order.auto_renew):
        # The subscription hears of its orders in the same transaction: it starts when an
        # auto-renewing order completes, and a renewal order moves it on (lifecycle.renewals).
        from lifecycle.renewals import order_ended

        order_ended(order, actor=actor, now=now)
    return event


def transit_many(
    order_ids: list[int], source: str, step_name: str, *, actor: Actor, reason: str = "", now: datetime, **kwargs: Any
) -> list[int]:
    """``transit()`` for a batch: one transition applied to many orders in one UPDATE and one INSERT of events.

    For the sweep's hot case (issue #17): a transition whose effect is the same for every order
    (``expire`` with its code) into a terminal status. The transition method itself says what it
    changes: it is applied to a blank order in ``source`` and its fields are copied onto the rows.
    Call inside ``transaction.atomic`` with the orders locked. Orders of a subscription or an
    auto-renewing order are left out (their end has follow-ups: ``lifecycle.renewals.order_ended``),
    as are orders no longer in ``source``; returns the ids it moved, in the order given.
    """
    assert transaction.get_connection().in_atomic_block, "transit_many() needs a transaction and locked orders"
    blank = Order(status=source)
    getattr(blank, step_name)(now=now, **kwargs)
    assert blank.is_terminal and blank.deadline_at is None, "transit_many() is for transitions that end an order"
    movable = Order.objects.filter(pk__in=order_ids, status=source, auto_renew=False, subscription__isnull=True)
    moved = set(movable.values_list("pk", flat=True))
    if not moved:
        return []
    Order.objects.filter(pk__in=moved).update(
        updated_at=now, **{field: getattr(blank, field) for field in BATCH_FIELDS}
    )
    ordered = [pk for pk in order_ids if pk in moved]
    OrderEvent.objects.bulk_create(
        new_event(pk, step_name, actor=actor, from_status=source, to_status=blank.status, reason=reason, now=now)
        for pk in ordered
    )
    return ordered


# What a transition into a terminal status sets on the order (Order._enter / Order._end).
BATCH_FIELDS = ("status", "deadline_at", "status_changed_at", "attempts", "failure_code", "failure_detail")


# What each transition is called in a refusal ("An order that is cancelled cannot be cancelled").
ACTION_LABELS = {
    "precheck_passed": gettext_lazy("pass its pre-check"),
    "reject": gettext_lazy("be rejected"),
    "renewal_refused": gettext_lazy("fail"),
    "start_payment": gettext_lazy("start a payment"),
    "switch_payment": gettext_lazy("switch its payment method"),
    "payment_confirmed": gettext_lazy("be paid"),
    "fail": gettext_lazy("fail"),
    "expire": gettext_lazy("expire"),
    "cancel": gettext_lazy("be cancelled"),
    "complete": gettext_lazy("be completed"),
    "refunded": gettext_lazy("be refunded"),
}
