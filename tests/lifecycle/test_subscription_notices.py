"""The SMS a subscriber gets (docs/interfaces.md §8), where they go and what they say: the reminder names the
day the renewal is charged, even sent late; a reminder no renewal follows is never sent; the renewed SMS of a
cancelled subscription offers no TD; notices follow the mobile number the SMP binds to the account; and
auto-renewal needs a mobile number for its reminders.

Each case was found by a review of the subscriptions (2026-12-06); each test fails on the code before it.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone, translation

from lifecycle.confirmations import sms_reply_received
from lifecycle.notices import notice_create, notice_send
from lifecycle.paying import payment_choose
from lifecycle.placing import order_create
from lifecycle.renewals import subscriptions_sweep
from lifecycle.subscriptions import subscription_cancel
from orders.constants import CancelChannel, Channel, NoticeKind, OrderStatus, SubscriptionStatus
from orders.models import Order, Product
from sandbox import faults
from sandbox.subscriptions import account_set
from tests.lifecycle.test_contracts import subscribed
from tests.lifecycle.test_subscriptions import EPG, frozen, subscribe, texts, work  # noqa: F401  (frozen)

pytestmark = pytest.mark.django_db
OLD, NEW = "13800000001", "13900000009"


def _day(moment) -> str:  # type: ignore[no-untyped-def]
    return timezone.localtime(moment).strftime("%Y年%m月%d日")


def reminders(phone: str = OLD) -> list[str]:
    return [text for text in texts(phone) if "将于" in text]


@pytest.mark.parametrize("late", ["the beat", "the gateway"])
def test_a_late_reminder_names_the_day_the_renewal_is_charged(demo, run_tasks, frozen, late):  # noqa: F811
    """A reminder that goes out two days late moves the renewal two days later (§8); its text named the day
    the renewal was first due, two days before the customer is charged."""
    _order, sub = subscribe(run_tasks)
    if late == "the beat":  # nothing ran for two days
        work(run_tasks, frozen, sub.next_reminder_at + timedelta(days=2))
    else:  # written on time, the gateway down for two days
        faults.set_mode("sms", "down")
        work(run_tasks, frozen, sub.next_reminder_at)
        frozen.shift(timedelta(days=2))
        faults.set_mode("sms", "ok")
        work(run_tasks, frozen, timezone.now() + timedelta(minutes=10))
    sub.refresh_from_db()
    assert sub.reminder_sent_at is not None and sub.renewal_moved

    (reminder,) = reminders()
    assert _day(sub.next_renewal_at) in reminder, reminder
    assert sub.notices.get(kind=NoticeKind.REMINDER).text == reminder  # the record says what was sent
    work(run_tasks, frozen, sub.next_renewal_at)
    renewal = Order.objects.get(subscription=sub, channel=Channel.RENEWAL)
    assert renewal.status == OrderStatus.COMPLETED and _day(renewal.created_at) in reminder


def test_a_wechatpay_reminder_names_the_day_of_the_deduction_after_the_night(demo, run_tasks, time_machine):
    """A WeChat Pay subscription bought at 23:30: its renewal falls at 23:30 the day before the period ends, when
    WeChat Pay takes no deduction (07:00-22:00), so it is deducted at 07:00 the next day. The reminder named the
    day before, a day earlier than the customer is charged."""
    time_machine.move_to("2026-12-05 23:30:00+08:00", tick=False)
    _order, sub = subscribed(run_tasks, "wechat_qr")
    work(run_tasks, time_machine, sub.next_reminder_at)
    (reminder,) = [text for text in texts() if "将于" in text]
    assert "2027年01月05日" in reminder, reminder  # not 01月04日, the renewal's 23:30 before the night
    for _ in range(5):
        work(run_tasks, time_machine, max(sub.due_at, timezone.now() + timedelta(minutes=1)))
        sub.refresh_from_db()
        if sub.periods == 2:
            break
    renewal = Order.objects.get(subscription=sub, channel=Channel.RENEWAL)
    assert renewal.status == OrderStatus.COMPLETED
    assert timezone.localtime(renewal.created_at).strftime("%m-%d %H:%M") == "01-05 07:00"
    assert _day(renewal.created_at) in reminder


def test_the_end_of_viewing_is_said_to_the_minute(demo, run_tasks, time_machine):
    """A month bought at 00:20 on 5 December ends at 00:20 on 5 January. The SMS said "可观看至2027年01月05日"
    (renewed, lapsed, and the answer to TD alike): a customer reads the whole of the 5th, which ends 20 minutes
    after it begins."""
    time_machine.move_to("2026-12-05 00:20:00+08:00", tick=False)
    _order, _sub = subscribe(run_tasks)
    sms_reply_received(sender=OLD, text="TD", received_at=timezone.now(), raw=b"td at twenty past midnight")
    run_tasks()
    (answer,) = [text for text in texts() if "已为您取消自动续费" in text]
    assert "可观看至2027年01月05日 00:20。" in answer, answer


@pytest.mark.parametrize("ended", ["cancelled", "lapsed"])
def test_a_reminder_still_queued_when_renewal_stops_is_never_sent(demo, run_tasks, frozen, ended):  # noqa: F811
    """Written while the gateway was down; the customer then cancels (or the subscription lapses): the
    reminder of a renewal that will never come is not sent when the gateway is back."""
    _order, sub = subscribe(run_tasks)
    faults.set_mode("sms", "down")
    work(run_tasks, frozen, sub.next_reminder_at)
    assert sub.notices.filter(kind=NoticeKind.REMINDER, sent_at__isnull=True).exists()
    if ended == "cancelled":
        subscription_cancel(subscription_id=sub.pk, channel=CancelChannel.EPG, actor=EPG)
    else:
        work(run_tasks, frozen, sub.current_period_end + timedelta(minutes=1))  # never reminded: lapses
    sub.refresh_from_db()
    assert sub.status == ended or (ended, sub.status) == ("lapsed", SubscriptionStatus.ENDED)

    faults.set_mode("sms", "ok")
    work(run_tasks, frozen, timezone.now() + timedelta(minutes=10))

    assert reminders() == []
    notice = sub.notices.get(kind=NoticeKind.REMINDER)
    assert notice.sent_at is None and notice.gave_up_at is not None


def test_a_reminder_waiting_for_the_gateway_is_recorded_queued_once(demo, run_tasks, frozen):  # noqa: F811
    _order, sub = subscribe(run_tasks)
    faults.set_mode("sms", "down")
    at = sub.next_reminder_at
    for _ in range(6):  # the sweep looks again every 30 minutes, for three hours
        work(run_tasks, frozen, at)
        at += timedelta(minutes=31)
    assert sub.notices.filter(kind=NoticeKind.REMINDER).count() == 1
    assert sub.events.filter(action="reminder_queued").count() == 1


def test_the_renewed_sms_after_a_cancel_says_renewal_is_off(demo, run_tasks, frozen):  # noqa: F811
    """§8: a charge already sent completes after a cancel; its SMS says so and offers no TD."""
    _order, sub = subscribe(run_tasks)
    work(run_tasks, frozen, sub.next_reminder_at)
    sub.refresh_from_db()
    frozen.move_to(sub.next_renewal_at)
    subscriptions_sweep()
    run_tasks(holding=("lifecycle.tasks.provision_order",))
    faults.set_mode("smp", "slow")  # the charge is made, its answer lost: it was sent
    run_tasks()
    faults.set_mode("smp", "ok")
    subscription_cancel(subscription_id=sub.pk, channel=CancelChannel.EPG, actor=EPG)
    frozen.shift(timedelta(seconds=40))
    run_tasks()

    renewed = sub.notices.get(kind=NoticeKind.RENEWED)
    assert renewed.sent_at is not None
    assert "已续费成功" in renewed.text and "自动续费已取消" in renewed.text and "TD" not in renewed.text


def test_notices_follow_the_mobile_number_the_smp_binds_now(demo, run_tasks, frozen):  # noqa: F811
    """The customer bound another mobile to the TV account at the SMP. The renewal's pre-check gives the new
    number: the renewed SMS and later notices go there, and a TD from it cancels."""
    _order, sub = subscribe(run_tasks)
    account_set("tv1001", status=None, balance_fen=None, phone=NEW)
    work(run_tasks, frozen, sub.next_reminder_at)
    sub.refresh_from_db()
    work(run_tasks, frozen, sub.next_renewal_at)

    renewal = Order.objects.get(subscription=sub, channel=Channel.RENEWAL)
    assert (renewal.status, renewal.phone) == (OrderStatus.COMPLETED, NEW)
    sub.refresh_from_db()
    assert sub.phone == NEW
    assert sub.notices.get(kind=NoticeKind.RENEWED).phone == NEW
    event = sub.events.get(action="phone_changed")
    assert event.data == {"from": "138****0001", "to": "139****0009"}

    outcome = sms_reply_received(sender=NEW, text="TD", received_at=timezone.now(), raw=b"td from the new number")
    sub.refresh_from_db()
    assert sub.status == SubscriptionStatus.CANCELLED, outcome


def refused_saying(order: Order, words: str) -> None:
    """The pre-check refused the order, product_not_available, its message saying ``words``; nothing paid."""
    assert (order.status, order.failure_code) == (OrderStatus.REJECTED, "product_not_available")
    with translation.override("en"):
        assert words in order.failure_message
    assert not order.payments.exists()


def test_auto_renewal_needs_a_mobile_number_for_its_reminders(demo, run_tasks, frozen):  # noqa: F811
    """§8: no renewal is charged unless its reminder was sent. An account the SMP binds no mobile to cannot
    be reminded: auto-renewal is refused at the pre-check, product_not_available with words that say why (a
    plain order is not, and is not offered the confirmation SMS it has no number for); a notice with no number
    is never counted sent. Before, the order passed the pre-check and listed four methods, each refused 409."""
    account_set("tv2001", status="active", balance_fen=100000, phone=None)
    order = order_create(channel="epg", product_code="VIP-MONTH", tv_account="tv2001", actor=EPG, auto_renew=True)
    run_tasks()
    order.refresh_from_db()
    refused_saying(order, "no mobile number")

    plain = order_create(channel="epg", product_code="VIP-MONTH", tv_account="tv2001", actor=EPG)
    run_tasks()
    plain.refresh_from_db()
    assert "phone_bill_sms" not in plain.methods_allowed() and "phone_bill" in plain.methods_allowed()
    payment_choose(order_id=plain.pk, method="phone_bill", actor=EPG)
    run_tasks()
    plain.refresh_from_db()
    assert plain.status == OrderStatus.COMPLETED

    notice = notice_create(kind=NoticeKind.REMINDER, phone="", text="…", subscription=None, period=None)
    assert notice_send(notice_id=notice.pk) == "void"
    notice.refresh_from_db()
    assert notice.sent_at is None and notice.gave_up_at is not None


def test_a_product_paid_only_by_sms_confirmation_is_refused_to_an_account_with_no_mobile(demo, run_tasks, frozen):  # noqa: F811
    """A product the operator sells on the TV only by phone bill with an SMS confirmation, to an account the
    SMP binds no mobile to: nothing can be paid with, so the pre-check refuses it, product_not_available with
    words that say why. Before, it passed and waited, its payment methods empty, until its deadline expired it.
    An account with a mobile is offered the confirmation as before."""
    Product.objects.filter(code="VIP-MONTH").update(payment_methods=["phone_bill_sms"])
    account_set("tv2001", status="active", balance_fen=100000, phone=None)
    order = order_create(channel="epg", product_code="VIP-MONTH", tv_account="tv2001", actor=EPG)
    assert order.methods_allowed() == ["phone_bill_sms"]  # not known yet before the pre-check
    run_tasks()
    order.refresh_from_db()
    refused_saying(order, "only with an SMS confirmation")
    with translation.override("zh-hans"):
        assert "短信确认" in order.failure_message

    bound = order_create(channel="epg", product_code="VIP-MONTH", tv_account="tv1001", actor=EPG)
    run_tasks()
    bound.refresh_from_db()
    assert (bound.status, bound.methods_allowed()) == (OrderStatus.AWAITING_PAYMENT, ["phone_bill_sms"])


def test_the_reminder_goes_to_the_number_the_smp_binds_when_it_is_sent(demo, run_tasks, frozen):  # noqa: F811
    """§8: the reminder goes "to the bound number". A year is long: the customer bound another mobile at the SMP
    during it. The reminder (the one notice before the charge, and what TD answers) goes to the number bound now,
    and a TD from it cancels. Before, it went to the number of the last pre-check, a year old: whoever has that
    number now was told of the charge, and could cancel it, and the customer was not."""
    _order, sub = subscribe(run_tasks, product="VIP-YEAR")
    frozen.shift(timedelta(days=100))
    account_set("tv1001", status=None, balance_fen=None, phone=NEW)

    work(run_tasks, frozen, sub.next_reminder_at)

    reminder = sub.notices.get(kind=NoticeKind.REMINDER)
    assert (reminder.phone, reminder.sent_at is not None) == (NEW, True)
    assert any("自动续费" in text for text in texts(NEW)) and not any("将于" in t for t in texts("13800000001"))
    sub.refresh_from_db()
    assert sub.phone == NEW
    assert sub.events.get(action="phone_changed").reason == "the SMP's number before the reminder"
    sms_reply_received(sender=NEW, text="TD", received_at=timezone.now(), raw=b"td from the number bound now")
    sub.refresh_from_db()
    assert sub.status == SubscriptionStatus.CANCELLED


def test_the_reminder_goes_to_the_number_we_have_when_the_smp_does_not_answer(demo, run_tasks, frozen):  # noqa: F811
    """The SMP's word on the number is asked, not waited for: down, the reminder goes as it would have."""
    _order, sub = subscribe(run_tasks)
    faults.set_mode("smp", "down")
    work(run_tasks, frozen, sub.next_reminder_at)
    faults.set_mode("smp", "ok")
    reminder = sub.notices.get(kind=NoticeKind.REMINDER)
    assert (reminder.phone, reminder.sent_at is not None) == ("13800000001", True)


def test_a_number_the_smp_gives_that_no_sms_can_reach_is_not_taken(demo, run_tasks, frozen):  # noqa: F811
    """The SMP's pre-check gives something that is no mainland mobile: the reminder goes to the number we
    have, and the subscription keeps it (it would have lapsed with the reminder never delivered)."""
    _order, sub = subscribe(run_tasks)
    account_set("tv1001", status=None, balance_fen=None, phone="010-12345678")
    work(run_tasks, frozen, sub.next_reminder_at)
    reminder = sub.notices.get(kind=NoticeKind.REMINDER)
    assert (reminder.phone, reminder.sent_at is not None) == (OLD, True)
    sub.refresh_from_db()
    assert sub.phone == OLD and not sub.events.filter(action="phone_changed").exists()
