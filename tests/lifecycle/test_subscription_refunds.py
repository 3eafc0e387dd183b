"""A refund of a subscription's period, and what the renewal does after it (a review of 2026-12-07).

§8 tries a renewal until `current_period_end`, never after. Before: finance refunded the only paid period
after its reminder, and the subscription stayed `active` and charged a new period days later; a renewal
refunded on its own day was charged again days after the paid period ended; and a subscription lapsed by a
refund told the customer its renewal "could not be charged" (续费未能成功扣费), though nothing was tried.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from ipvas.actors import Actor, ActorKind
from lifecycle import manual
from orders.constants import Channel, OrderStatus, SubscriptionStatus
from orders.models import Order
from tests.lifecycle.test_subscriptions import balance, frozen, subscribe, texts, work  # noqa: F401

pytestmark = pytest.mark.django_db
FINANCE = Actor(ActorKind.ADMIN, "finance")
LAPSED = "自动续费已停止"


def walk(run_tasks, frozen, until, step=timedelta(hours=1)) -> None:  # noqa: F811
    """Time passes step by step to ``until``, beat's sweep and the worker acting each time."""
    at = timezone.now()
    while at < until:
        at = min(at + step, until)
        work(run_tasks, frozen, at)


def refunded(run_tasks, order: Order) -> None:
    assert manual.refund_by_admin(order_id=order.pk, reason="complaint", actor=FINANCE) == "smp_reversal"
    run_tasks()
    order.refresh_from_db()
    assert order.status == OrderStatus.REFUNDED


def charged_renewals(sub) -> list[Order]:
    return list(Order.objects.filter(subscription=sub, channel=Channel.RENEWAL, status=OrderStatus.COMPLETED))


@pytest.mark.parametrize("when", ["before its reminder", "after its reminder"])
def test_refunding_the_only_paid_period_lapses_at_once_and_charges_nothing_more(demo, run_tasks, frozen, when):  # noqa: F811
    first, sub = subscribe(run_tasks)
    if when == "after its reminder":
        work(run_tasks, frozen, sub.next_reminder_at)
        sub.refresh_from_db()
        assert sub.reminder_sent_at is not None
    frozen.shift(timedelta(days=1))

    refunded(run_tasks, first)

    sub.refresh_from_db()
    assert sub.status == SubscriptionStatus.LAPSED
    after_refund = balance()
    walk(run_tasks, frozen, timezone.now() + timedelta(days=40), step=timedelta(hours=6))
    sub.refresh_from_db()
    assert sub.status == SubscriptionStatus.ENDED
    assert charged_renewals(sub) == [] and balance() == after_refund
    (lapse,) = [text for text in texts() if LAPSED in text]
    assert "费用已退款" in lapse and "未能成功扣费" not in lapse, lapse


def test_a_renewal_refunded_on_its_day_is_not_charged_again_after_the_paid_period(demo, run_tasks, frozen):  # noqa: F811
    """Charged a day before the end, refunded two hours later: the subscription is paid until the old end,
    and a new renewal would need a new reminder five days ahead, past that end: it lapses, by the old end."""
    _first, sub = subscribe(run_tasks)
    work(run_tasks, frozen, sub.next_reminder_at)
    sub.refresh_from_db()
    old_end = sub.current_period_end
    work(run_tasks, frozen, sub.next_renewal_at)
    (renewal,) = charged_renewals(sub)
    frozen.shift(timedelta(hours=2))

    refunded(run_tasks, renewal)

    sub.refresh_from_db()
    assert (sub.status, sub.current_period_end) == (SubscriptionStatus.LAPSED, old_end)
    before = balance()
    walk(run_tasks, frozen, old_end + timedelta(days=7))
    assert charged_renewals(sub) == [] and balance() == before
    (lapse,) = [text for text in texts() if LAPSED in text]
    assert "来不及续费" in lapse and "未能成功扣费" not in lapse, lapse


def test_a_refund_that_leaves_time_to_renew_keeps_the_subscription(demo, run_tasks, frozen):  # noqa: F811
    """Control: the renewal charged, then refunded early in the next period's life (two periods paid, one
    refunded): the subscription renews the refunded period before its paid end, after a reminder."""
    first, sub = subscribe(run_tasks)
    work(run_tasks, frozen, sub.next_reminder_at)
    sub.refresh_from_db()
    work(run_tasks, frozen, sub.next_renewal_at)
    assert len(charged_renewals(sub)) == 1
    sub.refresh_from_db()
    assert sub.periods == 2
    frozen.shift(timedelta(hours=2))
    # The first period is refunded (an earlier complaint): the renewal's period moves earlier, nearly a
    # month of paid time remains.
    refunded(run_tasks, first)
    sub.refresh_from_db()
    assert sub.status == SubscriptionStatus.ACTIVE
    assert sub.current_period_end > timezone.now() + timedelta(days=20)


def test_a_subscription_lapsed_unreminded_says_no_charge_failed(demo, run_tasks, frozen):  # noqa: F811
    """The reminder could not be sent before the paid period ended (the gateway down): the lapse notice does
    not speak of a charge that failed, since none was tried."""
    from sandbox import faults

    _first, sub = subscribe(run_tasks)
    faults.set_mode("sms", "down")
    walk(run_tasks, frozen, sub.current_period_end + timedelta(hours=1), step=timedelta(hours=6))
    faults.set_mode("sms", "ok")
    walk(run_tasks, frozen, timezone.now() + timedelta(days=3), step=timedelta(hours=6))
    sub.refresh_from_db()
    assert sub.status in (SubscriptionStatus.LAPSED, SubscriptionStatus.ENDED)
    assert charged_renewals(sub) == []
    lapses = [text for text in texts() if LAPSED in text]
    assert lapses and not any("未能成功扣费" in text for text in lapses), lapses
