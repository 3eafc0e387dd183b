"""Follow-ups whose own retry chain was lost (issue of exactly-once, a review of 2026-12-06): each link of a
refund's or a subscriber's SMS's chain is a message, and the broker can lose one it accepted (Redis restarted
without persistence, a failover). The deadline sweep finds an order's due work again; lifecycle.stalled, a
sweep of its own on beat, finds these, and the follow-ups that have no row of their own (a phone-bill
reversal, a close, an unsubscribe) by their outbox message, which awaits its task's success.

Each test loses one link on purpose (the message is marked relayed and never runs), then lets every beat task
run for days of simulated time, and checks that the work got done anyway; the controls lose nothing. Before
lifecycle.stalled, a refund of an ended order was never asked again (the customer's money stayed with us),
and a reminder never sent (the subscription lapsed unreminded).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from billing.models import Refund, RefundStatus, WorkItem, WorkItemKind
from ipvas import outbox
from ipvas.actors import Actor, ActorKind
from ipvas.models import OutboxMessage
from ipvas.outbox import relay_pending
from lifecycle.contracts import contracts_sweep
from lifecycle.due import deadlines_sweep
from lifecycle.manual import refund_by_admin
from lifecycle.paying import order_cancel, payment_choose
from lifecycle.placing import order_create
from lifecycle.renewals import subscriptions_sweep
from lifecycle.stalled import stalled_sweep
from orders.constants import OrderStatus, SubscriptionStatus
from orders.models import Order, SubscriptionNotice
from sandbox import faults
from sandbox import payments as sandbox_payments
from sandbox.models import SimRefund, SimSmpSubscription, SimSmsMessage
from tests.reliability.support import at_its_first_reminder, paid_notification, said_success, trade_of
from tests.support.tasks import run_due_tasks

EPG = Actor(ActorKind.EPG_CLIENT, "review-client")
ADMIN = Actor(ActorKind.ADMIN, "ops")
REVERSAL = "lifecycle.tasks.reverse_phone_bill"

pytestmark = pytest.mark.django_db(transaction=True)


def lose(task_name: str) -> int:
    """The broker took these messages and lost them: relayed, never run."""
    return OutboxMessage.objects.filter(task_name=task_name, relayed_at__isnull=True).update(relayed_at=timezone.now())


def every_beat_for(time_machine, *, days: int, step_hours: int = 1) -> None:
    """Every beat task (and what it enqueues), hour after hour, for ``days`` days of simulated time."""
    now = timezone.now()
    for hour in range(0, days * 24 + 1, step_hours):
        time_machine.move_to(now + timedelta(hours=hour), tick=False)
        relay_pending()
        deadlines_sweep()
        subscriptions_sweep()
        contracts_sweep()
        stalled_sweep()
        run_due_tasks()


def paid_after_its_cancel() -> Order:
    """A WeChat Pay QR order cancelled, whose customer paid a moment before the cancel's close reached WeChat
    Pay: the notification is taken, and the money is to go back."""
    order = order_create(channel="epg", product_code="VIP-MONTH", tv_account="tv1001", actor=EPG)
    run_due_tasks()
    payment_choose(order_id=order.pk, method="wechat_qr", actor=EPG)
    order_cancel(order_id=order.pk, actor=EPG)
    trade = trade_of(order)
    trade = sandbox_payments.pay_trade(trade.provider, trade.out_trade_no)
    delivery = paid_notification(trade)
    assert said_success(delivery, delivery.post())
    return order


def test_a_late_payments_refund_whose_message_is_lost_is_asked_again(demo, time_machine):
    """Money paid for a cancelled order goes back, even when one link of the refund's chain is lost."""
    order = paid_after_its_cancel()
    refund = Refund.objects.get(order=order)
    assert refund.status == RefundStatus.REQUESTED
    assert lose("lifecycle.tasks.process_refund") == 1

    every_beat_for(time_machine, days=3)

    refund.refresh_from_db()
    assert SimRefund.objects.filter(out_refund_no=refund.out_refund_no).exists(), (
        "the customer's money was never given back: the refund is still "
        f"{refund.status} after 3 days and nothing asked the provider again"
    )
    assert refund.status == RefundStatus.SUCCEEDED


def test_a_refund_retry_lost_while_the_provider_was_down_is_asked_again(demo, time_machine):
    """The same with the retry link: the provider was down at the first try, its retry message is lost."""
    order = paid_after_its_cancel()
    faults.set_mode("wechatpay", "down")
    run_due_tasks()  # the refund's first try: no answer, a retry is enqueued (due in 2 s)
    refund = Refund.objects.get(order=order)
    assert refund.attempts == 1
    faults.set_mode("wechatpay", "ok")
    assert lose("lifecycle.tasks.process_refund") == 1

    every_beat_for(time_machine, days=3)

    refund.refresh_from_db()
    assert refund.status == RefundStatus.SUCCEEDED, f"refund still {refund.status} after 3 days"


def test_a_reminder_whose_send_message_is_lost_is_sent_all_the_same(demo, time_machine):
    """The reminder SMS before a renewal: its notice is written once per period; if its send is lost the
    sweep must queue it again, or the subscription lapses without the customer ever being reminded."""
    subscription = at_its_first_reminder(time_machine)
    notice = SubscriptionNotice.objects.get(subscription=subscription, kind="reminder")
    assert lose("lifecycle.tasks.send_notice") == 1

    every_beat_for(time_machine, days=2)

    notice.refresh_from_db()
    subscription.refresh_from_db()
    assert notice.sent_at is not None, (
        f"the reminder was never sent (attempts {notice.attempts}); the subscription is {subscription.status}, "
        f"reminder_sent_at={subscription.reminder_sent_at}: it will lapse at the period's end"
    )


def test_a_reminder_lost_means_a_lapse_nobody_was_told_about(demo, time_machine):
    """The consequence, to the end of the period (daily beats): the subscription lapses unreminded."""
    subscription = at_its_first_reminder(time_machine)
    lose("lifecycle.tasks.send_notice")

    every_beat_for(time_machine, days=8, step_hours=6)

    subscription.refresh_from_db()
    reminders = SimSmsMessage.objects.filter(reference__startswith="ipvas-notice-", text__contains="自动续费，费用")
    assert subscription.status == SubscriptionStatus.ACTIVE, (
        f"subscription {subscription.status} (periods {subscription.periods}); reminders sent: {reminders.count()}"
    )


def refunded_by_hand_at_the_smp() -> Order:
    """A phone-bill sale, completed, then refunded from the admin: the SMP is to give the charge back."""
    order = order_create(channel="epg", product_code="VIP-MONTH", tv_account="tv1001", actor=EPG)
    run_due_tasks()
    payment_choose(order_id=order.pk, method="phone_bill", actor=EPG)
    run_due_tasks()
    order.refresh_from_db()
    assert order.status == OrderStatus.COMPLETED
    assert refund_by_admin(order_id=order.pk, reason="the customer asked", actor=ADMIN) == "smp_reversal"
    return order


def test_a_phone_bill_reversal_whose_message_is_lost_is_sent_again(demo, time_machine):
    """The SMP's reversal has no row of its own: its outbox message is all there is. Lost, the customer's
    phone bill kept the charge of a refunded order for good, and nobody was told."""
    order = refunded_by_hand_at_the_smp()
    assert lose(REVERSAL) == 1

    every_beat_for(time_machine, days=1)

    at_smp = SimSmpSubscription.objects.get(order_no=order.order_no)
    order.refresh_from_db()
    assert at_smp.reversed_fen == order.amount_fen, "the SMP never gave the charge back"
    assert order.status == OrderStatus.REFUNDED
    # Asked again once, and that one finished: nothing more is sent.
    assert OutboxMessage.objects.filter(task_name=REVERSAL).count() == 2
    assert not OutboxMessage.objects.filter(task_name=REVERSAL, awaits_finish=True).exists()


def test_a_follow_up_is_asked_again_only_once_it_is_overdue(demo, time_machine, settings):
    """A reversal relayed a moment ago may still be in a queue: only one unfinished for longer than
    OUTBOX_UNFINISHED_SECONDS is enqueued again, once for each sweep that finds it so."""
    refunded_by_hand_at_the_smp()
    assert lose(REVERSAL) == 1
    start = timezone.now()
    time_machine.move_to(start + timedelta(seconds=settings.OUTBOX_UNFINISHED_SECONDS - 5), tick=False)
    assert stalled_sweep() == 0
    time_machine.move_to(start + timedelta(seconds=settings.OUTBOX_UNFINISHED_SECONDS + 5), tick=False)
    assert stalled_sweep() == 1
    assert stalled_sweep() == 0  # the new message is young: the second sweep leaves it
    assert OutboxMessage.objects.filter(task_name=REVERSAL, awaits_finish=True, relayed_at__isnull=True).count() == 1


def test_a_follow_up_that_never_finishes_is_asked_again_less_often_and_a_person_is_told(demo, time_machine, settings):
    """The reversal's message is lost every time (a task that fails for good looks the same: it never
    succeeds). It is enqueued again at once, then after 30 minutes, an hour, two…; from the third time a work
    item on its order says so. Before, it was enqueued every quarter of an hour for ever, and nobody was told."""
    order = refunded_by_hand_at_the_smp()
    unfinished = timedelta(seconds=settings.OUTBOX_UNFINISHED_SECONDS)
    waits = []
    for again in range(1, 5):
        assert lose(REVERSAL) == 1
        lost_at = timezone.now()
        time_machine.move_to(lost_at + unfinished + timedelta(seconds=1), tick=False)
        assert stalled_sweep() == 1
        (copy,) = OutboxMessage.objects.filter(task_name=REVERSAL, awaits_finish=True)
        assert copy.again == again
        waits.append(round((copy.due_at - timezone.now()).total_seconds() / 60))
        time_machine.move_to(copy.due_at, tick=False)
        told = WorkItem.objects.filter(order=order, kind=WorkItemKind.FOLLOW_UP_FAILING).exists()
        assert told == (again >= 3), again
    assert waits == [0, 30, 60, 120]
    # However long it lasts, a copy waits a day at most (and the wait is computed for months of them).
    assert outbox._again_after(40) == outbox._again_after(1000) == timedelta(days=1)
    assert "reverse_phone_bill has not succeeded after 4 tries" in WorkItem.objects.get(order=order).detail

    run_due_tasks()  # its time has come, and nothing is lost any more: the reversal goes through

    assert SimSmpSubscription.objects.get(order_no=order.order_no).reversed_fen == order.amount_fen
    assert not OutboxMessage.objects.filter(task_name=REVERSAL, awaits_finish=True).exists()


def test_only_follow_ups_await_their_task(demo):
    """An order's own steps are found again by the deadline sweep: their messages await nothing, and a
    follow-up's awaits no more once its task has succeeded under the message's task id."""
    refunded_by_hand_at_the_smp()
    assert not OutboxMessage.objects.filter(awaits_finish=True).exclude(task_name=REVERSAL).exists()
    (message,) = OutboxMessage.objects.filter(task_name=REVERSAL)
    assert message.awaits_finish
    run_due_tasks()
    message.refresh_from_db()
    assert not message.awaits_finish
    assert outbox.task_id(message) == f"outbox-{message.pk}"


# --- controls: the harness above does get the work done when no link is lost ----------------------


def test_control_the_late_payments_refund_completes_when_nothing_is_lost(demo, time_machine):
    order = paid_after_its_cancel()
    every_beat_for(time_machine, days=1)
    assert Refund.objects.get(order=order).status == RefundStatus.SUCCEEDED


def test_control_the_subscription_stays_active_when_nothing_is_lost(demo, time_machine):
    subscription = at_its_first_reminder(time_machine)
    every_beat_for(time_machine, days=8, step_hours=6)
    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.ACTIVE
    assert subscription.periods == 2


def test_control_the_phone_bill_reversal_is_sent_once_when_nothing_is_lost(demo, time_machine):
    order = refunded_by_hand_at_the_smp()
    every_beat_for(time_machine, days=1)
    assert SimSmpSubscription.objects.get(order_no=order.order_no).reversed_fen == order.amount_fen
    assert OutboxMessage.objects.filter(task_name=REVERSAL).count() == 1
