"""The reminder SMS goes out by day (docs/decisions.md, "Reminders by day"): planned RENEWAL_REMINDER_DAYS
before the renewal, or, when that falls at night, at REMINDER_HOURS_END (21:00) the evening before. Earlier,
never later: the renewal keeps its time and is not moved by it.

Before, the reminder went out at the hour of the day the subscription was bought (a subscription bought at
23:30 was reminded at 23:30), and every Alipay subscription whose periods end on the 29th–31st at 00:00.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from lifecycle.renewals import reminder_at
from orders.constants import Channel, NoticeKind, OrderStatus, SubscriptionStatus
from orders.models import Order, Subscription
from tests.lifecycle.test_contracts import renewal_of, subscribed, to_reminder_and_renewal
from tests.lifecycle.test_subscriptions import subscribe, texts, work

pytestmark = pytest.mark.django_db


def local(moment: datetime) -> datetime:
    return timezone.localtime(moment)


def reminder_sent_at(sub: Subscription, period: int) -> datetime:
    notice = sub.notices.get(kind=NoticeKind.REMINDER, period=period)
    assert notice.sent_at is not None
    return local(notice.sent_at)


def test_a_subscription_bought_late_at_night_is_reminded_the_evening_before(demo, run_tasks, time_machine):
    time_machine.move_to("2026-12-05 23:30:00+08:00", tick=False)
    _order, sub = subscribe(run_tasks)
    renewal = local(sub.next_renewal_at)
    assert renewal == local(sub.current_period_end) - timedelta(hours=24)  # the renewal keeps its time
    assert (renewal.hour, renewal.minute) == (23, 30)
    reminder = local(sub.next_reminder_at)
    assert reminder.date() == (renewal - timedelta(days=5)).date() and (reminder.hour, reminder.minute) == (21, 0)

    work(run_tasks, time_machine, sub.next_reminder_at)
    sub.refresh_from_db()
    assert reminder_sent_at(sub, 2) == reminder and any("将于" in text for text in texts())
    assert local(sub.next_renewal_at) == renewal and not sub.renewal_moved  # sent earlier: nothing moves

    work(run_tasks, time_machine, sub.next_renewal_at)
    sub.refresh_from_db()
    assert renewal_of(sub).status == OrderStatus.COMPLETED and sub.periods == 2
    assert sub.status == SubscriptionStatus.ACTIVE
    # The next period is planned the same way.
    assert (local(sub.next_reminder_at).hour, local(sub.next_reminder_at).minute) == (21, 0)


def test_an_alipay_subscription_started_on_the_31st_is_reminded_by_day(demo, run_tasks, time_machine):
    """Its first renewal is at 00:00 of Alipay's agreed day, the 28th: five days before is midnight; the
    reminder goes at 21:00 the evening before, and the renewal is still deducted at the first try, at 00:00.
    The later periods end on the 28th at 10:00 and are reminded at that hour."""
    time_machine.move_to("2026-12-31 10:00:00+08:00", tick=False)
    _order, sub = subscribed(run_tasks, "alipay_qr")
    renewals, sent = [], []
    for period in (2, 3):
        renewals.append(local(sub.next_renewal_at).strftime("%m-%d %H:%M"))
        sub = to_reminder_and_renewal(run_tasks, time_machine, sub)
        assert renewal_of(sub).status == OrderStatus.COMPLETED, renewal_of(sub).failure_detail
        sent.append(reminder_sent_at(sub, period).strftime("%m-%d %H:%M"))

    assert renewals == ["01-28 00:00", "02-27 10:00"]
    assert sent == ["01-22 21:00", "02-22 10:00"]
    assert Order.objects.filter(subscription=sub, channel=Channel.RENEWAL).count() == 2  # no retry needed


def test_a_reminder_due_by_day_is_sent_at_its_time():
    renewal = timezone.make_aware(datetime(2027, 1, 20, 10, 15))
    assert reminder_at(renewal) == renewal - timedelta(days=5)
    edge = timezone.make_aware(datetime(2027, 1, 20, 21, 0))
    assert reminder_at(edge) == edge - timedelta(days=5)  # 21:00 itself is in the hours


@pytest.mark.parametrize(
    ("renewal", "reminder"),
    [
        ("2027-01-20 21:00:01", "2027-01-15 21:00:00"),
        ("2027-01-20 07:59:00", "2027-01-14 21:00:00"),
        ("2027-01-20 00:00:00", "2027-01-14 21:00:00"),
        ("2027-01-20 08:00:00", "2027-01-15 08:00:00"),
    ],
)
def test_a_reminder_due_at_night_is_planned_the_evening_before(renewal, reminder):
    at = reminder_at(timezone.make_aware(datetime.fromisoformat(renewal)))
    assert local(at) == timezone.make_aware(datetime.fromisoformat(reminder))


@override_settings(REMINDER_HOURS_START=0, REMINDER_HOURS_END=24)
def test_hours_0_to_24_remind_at_any_hour():
    renewal = timezone.make_aware(datetime(2027, 1, 20, 3, 0))
    assert reminder_at(renewal) == renewal - timedelta(days=5)


@override_settings(REMINDER_HOURS_START=9, REMINDER_HOURS_END=24)
def test_hours_to_midnight_remind_at_midnight_before_a_small_hour():
    renewal = timezone.make_aware(datetime(2027, 1, 20, 3, 0))
    assert local(reminder_at(renewal)) == timezone.make_aware(datetime(2027, 1, 15, 0, 0))


def test_a_reminder_is_never_planned_before_its_subscription_exists(demo, run_tasks, time_machine, settings):
    """With RENEWAL_REMINDER_DAYS=27 a monthly subscription bought on 2027-02-01 at 23:30 renews on 02-28 at 23:30:
    27 days before is its own purchase, at night. Planned "the evening before" it was 21:00, before the
    subscription existed, and the sweep sent it at once, at 23:30 (found by a review). It goes at 08:00."""
    settings.RENEWAL_REMINDER_DAYS = 27
    time_machine.move_to("2027-02-01 23:30:00+08:00", tick=False)
    _order, sub = subscribe(run_tasks)
    assert local(sub.next_reminder_at) == timezone.make_aware(datetime(2027, 2, 2, 8, 0))
    work(run_tasks, time_machine, timezone.now() + timedelta(minutes=1))
    assert not sub.notices.filter(kind=NoticeKind.REMINDER).exists()  # nothing at night
    work(run_tasks, time_machine, sub.next_reminder_at)
    sub.refresh_from_db()
    assert reminder_sent_at(sub, 2) == local(sub.next_reminder_at)
