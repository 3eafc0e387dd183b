"""Subscriptions (docs/interfaces.md §8): consent, reminder, renewal by phone bill, retries, lapse, end,
and cancel from every channel — the whole life, driven by the system's own scheduled work and time travel.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from billing.models import LedgerEntry, Payment, PaymentStatus
from ipvas.actors import Actor, ActorKind
from lifecycle.confirmations import sms_reply_received
from lifecycle.paying import payment_choose
from lifecycle.placing import order_create
from lifecycle.renewals import subscriptions_sweep
from lifecycle.subscriptions import subscription_cancel
from orders.constants import CancelChannel, Channel, FailureCode, OrderStatus, SubscriptionStatus
from orders.models import Entitlement, Order, Subscription
from orders.selectors import entitlement_check
from sandbox import faults, sms
from sandbox.models import SimSmpAccount, SimSmpSubscription
from tests.support.tasks import pending_tasks

EPG = Actor(ActorKind.EPG_CLIENT, "test-client")
START = "2026-12-05 10:00:00+08:00"

pytestmark = pytest.mark.django_db
PROVISION = "lifecycle.tasks.provision_order"


def balance(tv_account: str = "tv1001") -> int:
    return SimSmpAccount.objects.get(tv_account=tv_account).balance_fen


def texts(phone: str = "13800000001") -> list[str]:
    return [m.text for m in sms.outbox(phone)]


def subscribe(run_tasks, *, tv_account: str = "tv1001", product: str = "VIP-MONTH", method: str = "phone_bill"):
    order = order_create(channel="epg", product_code=product, tv_account=tv_account, actor=EPG, auto_renew=True)
    run_tasks()
    payment_choose(order_id=order.pk, method=method, actor=EPG)
    run_tasks()
    order.refresh_from_db()
    assert order.status == OrderStatus.COMPLETED, order.failure_code
    return order, order.subscription


def work(run_tasks, frozen, at) -> None:
    """Time passes to ``at``; the beat's sweep and the worker do what is due."""
    frozen.move_to(at)
    for _ in range(10):
        found = subscriptions_sweep()
        run_tasks()
        if not found:
            return


@pytest.fixture
def frozen(time_machine):
    time_machine.move_to(START, tick=False)
    return time_machine


def test_an_auto_renewing_order_starts_a_subscription_when_it_completes(demo, run_tasks, frozen):
    order, sub = subscribe(run_tasks)

    assert sub is not None and sub.status == SubscriptionStatus.ACTIVE
    assert (sub.tv_account, sub.phone, sub.product.code) == ("tv1001", "13800000001", "VIP-MONTH")
    assert (sub.payment_method, sub.renewal_price_fen, sub.periods) == ("phone_bill", 2500, 1)
    assert sub.current_period_end == order.entitlement.ends_at
    assert sub.next_renewal_at == sub.current_period_end - timedelta(hours=24)
    assert sub.next_reminder_at == sub.next_renewal_at - timedelta(days=5)
    assert sub.due_at == sub.next_reminder_at and sub.reminder_sent_at is None
    assert (sub.consent_channel, sub.consent_method) == ("epg", "phone_bill")
    assert sub.consent_evidence["order_no"] == order.order_no
    assert sub.consent_evidence["placed_by"] == "epg_client:test-client"
    assert list(sub.events.values_list("action", flat=True)) == ["start"]


def test_a_plain_order_never_starts_one(demo, run_tasks, frozen):
    order = order_create(channel="epg", product_code="VIP-MONTH", tv_account="tv1001", actor=EPG)
    run_tasks()
    payment_choose(order_id=order.pk, method="phone_bill", actor=EPG)
    run_tasks()
    order.refresh_from_db()
    assert order.status == OrderStatus.COMPLETED and order.subscription is None
    assert not Subscription.objects.exists()


def test_reminder_then_renewal_by_phone_bill_then_the_next_period(demo, run_tasks, frozen):
    _order, sub = subscribe(run_tasks)
    first_end = sub.current_period_end
    work(run_tasks, frozen, sub.next_reminder_at - timedelta(minutes=1))
    assert texts() == [t for t in texts() if "自动续费" not in t or "将于" not in t]  # nothing early

    work(run_tasks, frozen, sub.next_reminder_at)
    sub.refresh_from_db()
    reminder = next(t for t in texts() if "将于" in t)
    local_day = timezone.localtime(sub.next_renewal_at).strftime("%Y年%m月%d日")
    assert "VIP 影视会员 · 包月" in reminder and "25.00元" in reminder and local_day in reminder and "TD" in reminder
    assert sub.reminder_sent_at is not None and not sub.renewal_moved
    assert sub.due_at == sub.next_renewal_at

    before = balance()
    work(run_tasks, frozen, sub.next_renewal_at)
    sub.refresh_from_db()
    renewal = Order.objects.get(subscription=sub, channel=Channel.RENEWAL)
    assert (renewal.status, renewal.renewal_period, renewal.amount_fen) == (OrderStatus.COMPLETED, 2, 2500)
    assert renewal.entitlement.starts_at == first_end  # from exactly the old end
    assert sub.current_period_end == renewal.entitlement.ends_at > first_end
    assert sub.periods == 2 and sub.reminder_sent_at is None
    assert sub.next_renewal_at == sub.current_period_end - timedelta(hours=24)
    assert before - balance() == 2500
    assert LedgerEntry.objects.filter(order=renewal).values_list("amount_fen", flat=True).get() == 2500
    assert any("续费成功" in t for t in texts())
    assert SimSmpSubscription.objects.filter(tv_account="tv1001", order_no=renewal.order_no).count() == 1


def test_no_charge_without_a_reminder_and_a_late_reminder_moves_the_renewal(demo, run_tasks, frozen):
    _order, sub = subscribe(run_tasks)
    faults.set_mode("sms", "down")
    work(run_tasks, frozen, sub.next_renewal_at + timedelta(hours=1))  # past the usual renewal time
    sub.refresh_from_db()
    assert sub.reminder_sent_at is None
    assert not Order.objects.filter(channel=Channel.RENEWAL).exists()  # never charged unannounced

    faults.set_mode("sms", "ok")
    frozen.shift(timedelta(minutes=10))
    run_tasks()  # the notice's retry goes out now
    sub.refresh_from_db()
    assert sub.reminder_sent_at is not None and sub.renewal_moved
    assert sub.next_renewal_at == sub.reminder_sent_at + timedelta(days=5)
    assert "late" in sub.events.get(action="reminder_sent").reason


def test_a_failed_renewal_is_retried_then_the_subscription_lapses_and_ends(demo, run_tasks, frozen):
    order, sub = subscribe(run_tasks)
    end = sub.current_period_end
    SimSmpAccount.objects.filter(tv_account="tv1001").update(balance_fen=100)  # not enough for 25.00
    work(run_tasks, frozen, sub.next_reminder_at)
    sub.refresh_from_db()
    work(run_tasks, frozen, sub.next_renewal_at)
    first = Order.objects.get(subscription=sub, channel=Channel.RENEWAL)
    assert (first.status, first.failure_code) == (OrderStatus.FAILED, FailureCode.INSUFFICIENT_BALANCE)
    sub.refresh_from_db()
    assert sub.status == SubscriptionStatus.ACTIVE
    assert sub.next_renewal_at == first.status_changed_at + timedelta(hours=8)
    assert sub.attempts == 1  # admin's "attempts of the step due"
    work(run_tasks, frozen, sub.next_renewal_at)
    sub.refresh_from_db()
    assert sub.attempts == 2

    # Every 8 hours until the paid period ends (24 h after the first try): 3 tries in all.
    for _ in range(3):
        sub.refresh_from_db()
        if sub.status != SubscriptionStatus.ACTIVE:
            break
        work(run_tasks, frozen, sub.next_renewal_at)
    sub.refresh_from_db()
    renewals = Order.objects.filter(subscription=sub, channel=Channel.RENEWAL)
    assert renewals.count() == 3 and set(renewals.values_list("status", flat=True)) == {OrderStatus.FAILED}
    assert sub.status == SubscriptionStatus.LAPSED and sub.current_period_end == end
    assert any("自动续费已停止" in t for t in texts())
    assert balance() == 100  # never charged
    assert entitlement_check(tv_account="tv1001", product_code="VIP-MONTH")[0]  # still paid until the end

    work(run_tasks, frozen, end)
    sub.refresh_from_db()
    assert sub.status == SubscriptionStatus.ENDED and sub.smp_unsubscribed_at is not None
    assert SimSmpSubscription.objects.get(order_no=order.order_no).cancelled_at is not None
    assert balance() == 100  # ending at the SMP gives nothing back: nothing was taken
    assert not entitlement_check(tv_account="tv1001", product_code="VIP-MONTH")[0]


def test_a_suspended_account_fails_the_renewal_with_its_code(demo, run_tasks, frozen):
    _order, sub = subscribe(run_tasks)
    work(run_tasks, frozen, sub.next_reminder_at)
    sub.refresh_from_db()
    SimSmpAccount.objects.filter(tv_account="tv1001").update(status="suspended")
    work(run_tasks, frozen, sub.next_renewal_at)
    renewal = Order.objects.get(subscription=sub, channel=Channel.RENEWAL)
    # §8: "the renewal order ends failed with its §1 code" (a customer's order refused at pre-check is rejected)
    assert (renewal.status, renewal.failure_code) == (OrderStatus.FAILED, FailureCode.ACCOUNT_SUSPENDED)
    assert list(renewal.events.values_list("action", flat=True))[-1] == "renewal_refused"


def test_cancel_before_the_charge_stops_it_and_keeps_the_paid_period(demo, run_tasks, frozen):
    _order, sub = subscribe(run_tasks)
    end = sub.current_period_end
    work(run_tasks, frozen, sub.next_reminder_at)
    sub.refresh_from_db()
    frozen.move_to(sub.next_renewal_at)
    faults.set_mode("smp", "down")  # the renewal's pre-check waits for the SMP
    subscriptions_sweep()
    run_tasks()
    renewal = Order.objects.get(subscription=sub, channel=Channel.RENEWAL)
    assert renewal.status == OrderStatus.PRECHECKING

    cancelled = subscription_cancel(subscription_id=sub.pk, channel=CancelChannel.EPG, actor=EPG, reason="")
    assert cancelled.status == SubscriptionStatus.CANCELLED and cancelled.cancel_channel == "epg"
    again = subscription_cancel(subscription_id=sub.pk, channel=CancelChannel.ADMIN, actor=EPG, reason="x")
    assert (again.cancelled_at, again.cancel_channel) == (cancelled.cancelled_at, "epg")  # a repeat changes nothing

    faults.set_mode("smp", "ok")
    before = balance()
    frozen.shift(timedelta(seconds=40))
    run_tasks()
    renewal.refresh_from_db()
    assert (renewal.status, renewal.failure_code) == (OrderStatus.CANCELLED, FailureCode.CANCELLED)
    assert balance() == before
    sub.refresh_from_db()
    assert sub.current_period_end == end and sub.status == SubscriptionStatus.CANCELLED
    work(run_tasks, frozen, end)
    sub.refresh_from_db()
    assert sub.status == SubscriptionStatus.ENDED


def _renewal_waiting_to_be_charged(run_tasks, frozen, sub) -> Order:
    """The subscription's renewal pre-checked and paid for by phone bill, its charge not sent yet: the
    provisioning task, which sends it with the subscribe, is held back."""
    work(run_tasks, frozen, sub.next_reminder_at)
    sub.refresh_from_db()
    frozen.move_to(sub.next_renewal_at)
    subscriptions_sweep()
    run_tasks(holding=(PROVISION,))
    renewal = Order.objects.get(subscription=sub, channel=Channel.RENEWAL)
    assert renewal.status == OrderStatus.PROVISIONING
    return renewal


def test_cancel_after_the_renewal_is_paid_for_but_before_its_charge_is_sent_stops_it(demo, run_tasks, frozen):
    _order, sub = subscribe(run_tasks)
    renewal = _renewal_waiting_to_be_charged(run_tasks, frozen, sub)
    before = balance()

    subscription_cancel(subscription_id=sub.pk, channel=CancelChannel.SMS, actor=EPG)
    run_tasks()

    renewal.refresh_from_db()
    assert (renewal.status, renewal.failure_code) == (OrderStatus.CANCELLED, FailureCode.CANCELLED)
    assert balance() == before
    assert not SimSmpSubscription.objects.filter(order_no=renewal.order_no).exists()
    assert list(Payment.objects.filter(order=renewal).values_list("status", flat=True)) == [PaymentStatus.CLOSED]
    assert not LedgerEntry.objects.filter(order=renewal).exists()


def test_a_charge_sent_whose_answer_was_lost_completes_when_a_cancel_comes_before_its_retry(demo, run_tasks, frozen):
    """docs/interfaces.md §8: a charge already sent completes, and the cancel stops the next one. The SMP
    charged the phone bill but its answer came after the timeout; the customer cancels before the retry."""
    _order, sub = subscribe(run_tasks)
    renewal = _renewal_waiting_to_be_charged(run_tasks, frozen, sub)
    before = balance()
    faults.set_mode("smp", "slow")  # does the work, answers after the caller gave up
    assert run_tasks() == [(PROVISION, "retry")]
    assert before - balance() == renewal.amount_fen  # the phone bill was charged

    faults.set_mode("smp", "ok")
    subscription_cancel(subscription_id=sub.pk, channel=CancelChannel.EPG, actor=EPG)
    frozen.shift(timedelta(seconds=40))
    run_tasks()

    renewal.refresh_from_db()
    assert renewal.status == OrderStatus.COMPLETED, renewal.failure_code
    assert before - balance() == renewal.amount_fen  # once
    assert list(LedgerEntry.objects.filter(order=renewal).values_list("kind", "amount_fen")) == [
        ("payment", renewal.amount_fen)
    ]
    assert SimSmpSubscription.objects.get(order_no=renewal.order_no).cancelled_at is None
    sub.refresh_from_db()
    assert sub.status == SubscriptionStatus.CANCELLED and sub.periods == 2
    assert sub.current_period_end == renewal.entitlement.ends_at


def test_a_cancelled_or_lapsed_subscription_cannot_be_cancelled_again_once_ended(demo, run_tasks, frozen):
    from ipvas.errors import InvalidState

    _order, sub = subscribe(run_tasks)
    subscription_cancel(subscription_id=sub.pk, channel=CancelChannel.CRM, actor=EPG)
    work(run_tasks, frozen, sub.current_period_end)
    with pytest.raises(InvalidState):
        subscription_cancel(subscription_id=sub.pk, channel=CancelChannel.EPG, actor=EPG)


def test_td_cancels_every_active_subscription_of_the_number_and_answers(demo, run_tasks, frozen):
    _, month = subscribe(run_tasks)
    _, year = subscribe(run_tasks, product="VIP-YEAR")

    outcome = sms_reply_received(sender="13800000001", text=" ｔｄ ", received_at=timezone.now(), raw=b"td-1")
    assert "td cancelled 2" in outcome
    for sub in (month, year):
        sub.refresh_from_db()
        assert (sub.status, sub.cancel_channel) == (SubscriptionStatus.CANCELLED, "sms")
    run_tasks()
    answer = texts()[0]
    assert "已为您取消自动续费" in answer and "包月" in answer and "包年" in answer

    sms_reply_received(sender="13800000001", text="TD", received_at=timezone.now(), raw=b"td-2")
    run_tasks()
    assert "没有正在自动续费的业务" in texts()[0]


def test_td_with_a_product_code_cancels_that_one_only(demo, run_tasks, frozen):
    _, month = subscribe(run_tasks)
    _, year = subscribe(run_tasks, product="VIP-YEAR")
    sms_reply_received(sender="13800000001", text="TD vip-year", received_at=timezone.now(), raw=b"td-3")
    month.refresh_from_db()
    year.refresh_from_db()
    assert (month.status, year.status) == (SubscriptionStatus.ACTIVE, SubscriptionStatus.CANCELLED)


def test_td_declines_a_pending_confirmation_like_any_other_reply(demo, run_tasks, frozen):
    order = order_create(channel="epg", product_code="VIP-MONTH", tv_account="tv1001", actor=EPG)
    run_tasks()
    payment_choose(order_id=order.pk, method="phone_bill_sms", actor=EPG)
    run_tasks()
    sms_reply_received(sender="13800000001", text="TD", received_at=timezone.now(), raw=b"td-4")
    order.refresh_from_db()
    assert (order.status, order.failure_code) == (OrderStatus.FAILED, FailureCode.SMS_DECLINED)


def test_the_confirmation_sms_of_an_auto_renewing_order_says_it_renews(demo, run_tasks, frozen):
    order = order_create(channel="epg", product_code="VIP-MONTH", tv_account="tv1001", actor=EPG, auto_renew=True)
    run_tasks()
    payment_choose(order_id=order.pk, method="phone_bill_sms", actor=EPG)
    run_tasks()
    text = texts()[0]
    assert "自动续费" in text and "每月25.00元" in text and "TD" in text and "Y" in text

    sms_reply_received(sender="13800000001", text="Y", received_at=timezone.now(), raw=b"y-1")
    run_tasks()
    order.refresh_from_db()
    sub = order.subscription
    assert sub.payment_method == "phone_bill_sms"
    assert sub.consent_evidence["sms"]["reply"] == "Y"


def test_an_auto_renewing_order_for_a_product_already_renewing_is_rejected(demo, run_tasks, frozen):
    subscribe(run_tasks)
    second = order_create(channel="epg", product_code="VIP-MONTH", tv_account="tv1001", actor=EPG, auto_renew=True)
    run_tasks()
    second.refresh_from_db()
    assert (second.status, second.failure_code) == (OrderStatus.REJECTED, FailureCode.ALREADY_SUBSCRIBED)
    plain = order_create(channel="epg", product_code="VIP-MONTH", tv_account="tv1001", actor=EPG)
    run_tasks()
    plain.refresh_from_db()
    assert plain.status == OrderStatus.AWAITING_PAYMENT  # a plain order still stacks a period


def test_an_auto_renewing_order_offers_only_the_methods_a_subscription_renews_by(demo, run_tasks, frozen):
    from ipvas.errors import InvalidInput

    order = order_create(channel="epg", product_code="VIP-MONTH", tv_account="tv1001", actor=EPG, auto_renew=True)
    run_tasks()
    order.refresh_from_db()
    assert order.methods_allowed() == ["wechat_qr", "alipay_qr", "phone_bill", "phone_bill_sms"]
    with pytest.raises(InvalidInput) as refused:
        payment_choose(order_id=order.pk, method="cash", actor=EPG)
    assert "method" in refused.value.fields


def test_auto_renew_is_refused_for_a_product_that_does_not_renew(demo):
    from ipvas.errors import InvalidInput

    for product, content in (("PPV-MOVIE", "movie-1"), ("VIP-MONTH", "")):
        if product == "VIP-MONTH":
            demo["VIP-MONTH"].__class__.objects.filter(code="VIP-MONTH").update(renewable=False)
        with pytest.raises(InvalidInput) as refused:
            order_create(
                channel="epg", product_code=product, tv_account="tv1001", actor=EPG, auto_renew=True, content_id=content
            )
        assert "auto_renew" in refused.value.fields
    assert not Order.objects.exists()


def test_the_sweep_twice_makes_one_renewal(demo, run_tasks, frozen):
    _order, sub = subscribe(run_tasks)
    work(run_tasks, frozen, sub.next_reminder_at)
    sub.refresh_from_db()
    frozen.move_to(sub.next_renewal_at)
    assert subscriptions_sweep() == 1
    Subscription.objects.filter(pk=sub.pk).update(due_at=timezone.now())  # as if a second beat looked now
    subscriptions_sweep()
    run_tasks()
    assert Order.objects.filter(subscription=sub, channel=Channel.RENEWAL).count() == 1
    assert Entitlement.objects.filter(order__subscription=sub).count() == 2


def test_refunding_a_renewal_period_removes_exactly_that_period(demo, run_tasks, frozen):
    from lifecycle import manual

    _order, sub = subscribe(run_tasks)
    for _ in range(2):
        work(run_tasks, frozen, sub.next_reminder_at)
        sub.refresh_from_db()
        work(run_tasks, frozen, sub.next_renewal_at)
        sub.refresh_from_db()
    assert sub.periods == 3
    three_months = sub.current_period_end
    first_renewal = Order.objects.filter(subscription=sub, channel=Channel.RENEWAL).order_by("pk").first()

    manual.refund_by_admin(order_id=first_renewal.pk, reason="charged by mistake", actor=EPG)
    run_tasks()
    sub.refresh_from_db()
    first_renewal.refresh_from_db()
    assert first_renewal.status == OrderStatus.REFUNDED
    assert sub.current_period_end < three_months
    assert (
        sub.current_period_end
        == Entitlement.objects.filter(order__subscription=sub, revoked_at__isnull=True)
        .order_by("-ends_at")
        .values_list("ends_at", flat=True)
        .first()
    )
    assert Entitlement.objects.filter(order__subscription=sub, revoked_at__isnull=True).count() == 2
    assert sub.events.filter(action="period_refunded").exists()
    assert sub.next_renewal_at == sub.current_period_end - timedelta(hours=24)


def _fails_at_the_smp(run_tasks, frozen) -> None:
    """The held provisioning of a renewal goes: the SMP charges and its answer is lost, then it is down past the
    order's provisioning deadline and past every try of the reversal that follows."""
    from lifecycle.due import deadlines_sweep

    faults.set_mode("smp", "slow")
    assert run_tasks() == [(PROVISION, "retry")]
    faults.set_mode("smp", "down")
    for _ in range(60):
        frozen.shift(timedelta(minutes=1))
        deadlines_sweep()
        run_tasks()
    faults.set_mode("smp", "ok")


def _a_failed_try(run_tasks, frozen) -> tuple[Subscription, Order, int]:
    """A renewal whose charge the SMP made and never confirmed (``_fails_at_the_smp``): the subscription, that
    try, and the phone-bill balance before it."""
    _order, sub = subscribe(run_tasks)
    first = _renewal_waiting_to_be_charged(run_tasks, frozen, sub)
    before = balance()
    _fails_at_the_smp(run_tasks, frozen)
    sub.refresh_from_db()
    return sub, first, before


def _the_next_try_held(run_tasks, frozen, sub: Subscription, first: Order) -> Order:
    """The next try of the period, made at its renewal time, pre-checked, its provisioning held back."""
    frozen.move_to(sub.next_renewal_at)
    subscriptions_sweep()
    run_tasks(holding=(PROVISION,))
    return Order.objects.filter(subscription=sub, channel=Channel.RENEWAL).exclude(pk=first.pk).get()


def _two_failed_tries(run_tasks, frozen) -> tuple[Order, Order, int]:
    """Two tries of one renewal period fail alike; the later one was answered with the earlier one's charge."""
    sub, first, before = _a_failed_try(run_tasks, frozen)
    second = _the_next_try_held(run_tasks, frozen, sub, first)
    _fails_at_the_smp(run_tasks, frozen)
    for order in (first, second):
        order.refresh_from_db()
        assert (order.status, order.renewal_period) == (OrderStatus.FAILED, first.renewal_period)
    assert before - balance() == first.amount_fen  # one charge for the period
    return first, second, before


def test_a_later_try_answered_with_the_periods_charge_owns_it_and_is_refunded_with_it(demo, run_tasks, frozen):
    """A renewal's phone-bill charge is made at the SMP, its answer lost, the SMP down past the order's
    provisioning deadline: the order fails and its reversal, never answered, goes to a person. The next try of
    the period is answered (the SMP keeps one charge per period, by its key) with that charge. It owns it:
    the earlier try's item says so, its reversal (run again, late) takes nothing back, and a refund of the later
    try gives the money back at the SMP (which used to find nothing under its number, and do nothing)."""
    from billing.models import WorkItem
    from lifecycle import followups, manual

    sub, first, before = _a_failed_try(run_tasks, frozen)
    first.refresh_from_db()
    assert (first.status, first.failure_code) == (OrderStatus.FAILED, FailureCode.PROVISIONING_FAILED)
    item = WorkItem.objects.get(order=first, kind="provisioning_uncertain", resolved_at=None)
    assert "SMP reversal not confirmed" in item.detail
    assert before - balance() == first.amount_fen  # charged, not given back

    work(run_tasks, frozen, sub.next_renewal_at)
    later = Order.objects.filter(subscription=sub, channel=Channel.RENEWAL).exclude(pk=first.pk).get()
    assert (later.status, later.renewal_period) == (OrderStatus.COMPLETED, first.renewal_period)
    assert before - balance() == first.amount_fen  # the period charged once
    item.refresh_from_db()
    assert f"paid since by renewal order {later.order_no}" in item.detail
    assert followups.phone_bill_reverse(order_id=first.pk) == "settled_by_another_try"  # the reversal, late
    assert before - balance() == first.amount_fen
    assert SimSmpSubscription.objects.get(order_no=first.order_no).cancelled_at is None

    admin = Actor(ActorKind.ADMIN, "finance")
    assert manual.refund_by_admin(order_id=later.pk, reason="customer asked", actor=admin) == "smp_reversal"
    run_tasks()
    later.refresh_from_db()
    assert later.status == OrderStatus.REFUNDED
    assert balance() == before  # given back at the SMP
    assert SimSmpSubscription.objects.get(order_no=first.order_no).reversed_fen == first.amount_fen
    assert sorted(LedgerEntry.objects.filter(order=later).values_list("kind", "amount_fen")) == [
        ("payment", later.amount_fen),
        ("reversal", -later.amount_fen),
    ]
    assert not LedgerEntry.objects.filter(order=first).exists()
    assert not WorkItem.objects.filter(order=later).exists()


@pytest.mark.parametrize("later_first", [True, False], ids=["later-try-first", "earlier-try-first"])
def test_the_periods_one_reversal_is_booked_once_whichever_try_reverses_it(demo, run_tasks, frozen, later_first):
    """Both tries' reversals, run late (the SMP was down through their retries): the SMP reverses the one
    charge once, and answers the second call with the same reversal. It is booked on one try only."""
    from lifecycle import followups

    first, second, before = _two_failed_tries(run_tasks, frozen)
    tries = [second, first] if later_first else [first, second]

    results = [followups.phone_bill_reverse(order_id=order.pk) for order in tries]

    assert results == ["reversed", "settled_by_another_try"]
    assert balance() == before
    booked = LedgerEntry.objects.filter(order__in=tries).values_list("order_id", "kind", "amount_fen")
    assert sorted(booked) == [(tries[0].pk, "payment", 2500), (tries[0].pk, "reversal", -2500)]


def test_a_failed_tries_reversal_waits_for_a_try_of_the_period_at_the_smp(demo, run_tasks, frozen):
    """The earlier try's reversal runs while the later try is at the SMP (it may be answered with the charge
    the reversal would take back): it waits, without spending its tries, and leaves the charge to it."""
    from lifecycle import followups

    sub, first, before = _a_failed_try(run_tasks, frozen)
    later = _the_next_try_held(run_tasks, frozen, sub, first)
    assert later.status == OrderStatus.PROVISIONING

    assert followups.phone_bill_reverse(order_id=first.pk, attempt=7) == "waiting_for_another_try"
    frozen.shift(timedelta(minutes=1))
    assert ("lifecycle.tasks.reverse_phone_bill", "waiting_for_another_try") in run_tasks(holding=(PROVISION,))
    assert ("lifecycle.tasks.reverse_phone_bill", {"order_id": first.pk, "attempt": 7}) in pending_tasks()

    run_tasks()  # the later try is answered with the period's charge
    frozen.shift(timedelta(minutes=1))
    ran = run_tasks()

    later.refresh_from_db()
    assert later.status == OrderStatus.COMPLETED
    assert ("lifecycle.tasks.reverse_phone_bill", "settled_by_another_try") in ran
    assert before - balance() == later.amount_fen  # charged once, kept
    assert SimSmpSubscription.objects.get(order_no=first.order_no).cancelled_at is None


def test_a_reversal_that_races_a_try_answered_with_the_same_charge_is_told_to_a_person(
    demo, run_tasks, frozen, monkeypatch
):
    """The earlier try's reversal looks (no other try yet), then, while its call is on the way, the next try is
    made and answered with the period's charge and completes; the reversal then takes that charge back. It is
    not booked as the earlier try's, and a person is told on the try that holds the period."""
    from billing.models import WorkItem
    from lifecycle import followups
    from sandbox.simulators.smp import SimulatedSmp

    sub, first, before = _a_failed_try(run_tasks, frozen)
    frozen.move_to(sub.next_renewal_at)
    unsubscribe = SimulatedSmp.unsubscribe

    def the_next_try_first(self, **kwargs):  # type: ignore[no-untyped-def]
        subscriptions_sweep()
        run_tasks()  # the next try, answered with the period's charge
        return unsubscribe(self, **kwargs)

    monkeypatch.setattr(SimulatedSmp, "unsubscribe", the_next_try_first)
    assert followups.phone_bill_reverse(order_id=first.pk) == "reversed_under_another_try"

    later = Order.objects.filter(subscription=sub, channel=Channel.RENEWAL).exclude(pk=first.pk).get()
    assert later.status == OrderStatus.COMPLETED
    assert balance() == before  # the SMP gave the period's charge back
    assert not LedgerEntry.objects.filter(order=first).exists()
    item = WorkItem.objects.get(order=later, kind="provider_disagrees")
    assert f"the SMP reversed 2500 fen for {first.order_no}" in item.detail


def test_a_refund_the_smp_gives_nothing_back_for_is_told_to_a_person(demo, run_tasks, frozen):
    """An admin refunds a completed phone-bill order and the SMP gives nothing back (it has no charge under
    the order): the order stays completed and a person is told, instead of nothing at all."""
    from billing.models import WorkItem
    from lifecycle import manual

    order, _sub = subscribe(run_tasks)
    SimSmpSubscription.objects.filter(order_no=order.order_no).update(order_no="SOMETHING-ELSE")
    admin = Actor(ActorKind.ADMIN, "finance")
    assert manual.refund_by_admin(order_id=order.pk, reason="customer asked", actor=admin) == "smp_reversal"
    run_tasks()

    order.refresh_from_db()
    assert order.status == OrderStatus.COMPLETED
    item = WorkItem.objects.get(order=order, kind="provider_disagrees")
    assert "the SMP gave nothing back" in item.detail


def test_refunding_a_past_period_after_the_next_reminder_keeps_the_renewal(demo, run_tasks, frozen):
    """A goodwill refund of a period long over, after the next period's reminder went out: the paid-until date
    stays, and the renewal still happens (the reminder, one per period, was not asked for again and lost)."""
    from lifecycle import manual
    from orders.models.subscription import SubscriptionNotice

    admin = Actor(ActorKind.ADMIN, "finance")
    first, sub = subscribe(run_tasks)  # period 1: 12-05 -> 01-05
    work(run_tasks, frozen, sub.next_reminder_at)
    sub.refresh_from_db()
    work(run_tasks, frozen, sub.next_renewal_at)  # period 2: 01-05 -> 02-05
    sub.refresh_from_db()
    assert sub.periods == 2
    work(run_tasks, frozen, sub.next_reminder_at)  # the reminder of period 3 goes out (01-30)
    sub.refresh_from_db()
    assert sub.reminder_sent_at is not None
    paid_until = sub.current_period_end

    # A goodwill refund of period 1 (long over), asked by the customer.
    assert manual.refund_by_admin(order_id=first.pk, reason="complaint about December", actor=admin)
    run_tasks()
    first.refresh_from_db()
    sub.refresh_from_db()
    assert first.status == OrderStatus.REFUNDED and sub.current_period_end == paid_until  # period 2 still paid

    work(run_tasks, frozen, paid_until + timedelta(hours=1))
    sub.refresh_from_db()
    renewals = list(
        Order.objects.filter(subscription=sub, channel=Channel.RENEWAL).values_list("renewal_period", "status")
    )
    reminders = SubscriptionNotice.objects.filter(subscription=sub, kind="reminder").values_list("period", flat=True)
    assert sub.status == SubscriptionStatus.ACTIVE and (3, OrderStatus.COMPLETED) in renewals
    assert sorted(reminders) == [2, 3] and not sub.events.filter(action="lapse").exists()


def test_refunding_a_plain_period_a_renewal_was_stacked_behind_moves_the_subscription_s_end(demo, run_tasks, frozen):
    """A plain month bought beside the subscription stacks, and the renewal after it. Refunding the plain month
    moves the renewal's period into its place (the stack has no hole): the subscription is paid until that
    earlier end and renews before it (it stayed 'paid' a month too long, active and not entitled)."""
    from lifecycle import manual

    _first, sub = subscribe(run_tasks)  # period 1: 12-05 -> 01-05
    plain = order_create(channel="epg", product_code="VIP-MONTH", tv_account="tv1001", actor=EPG)
    run_tasks()
    payment_choose(order_id=plain.pk, method="phone_bill", actor=EPG)
    run_tasks()  # stacked: 01-05 -> 02-05
    work(run_tasks, frozen, sub.next_reminder_at)
    sub.refresh_from_db()
    work(run_tasks, frozen, sub.next_renewal_at)  # period 2, stacked after the plain month: 02-05 -> 03-05
    renewal = Order.objects.get(subscription=sub, channel=Channel.RENEWAL)

    manual.refund_by_admin(order_id=plain.pk, reason="bought by mistake", actor=Actor(ActorKind.ADMIN, "finance"))
    run_tasks()

    renewal.entitlement.refresh_from_db()
    sub.refresh_from_db()
    assert sub.current_period_end == renewal.entitlement.ends_at  # 02-05, where the renewal's period is now
    assert sub.next_renewal_at == sub.current_period_end - timedelta(hours=24)
    assert sub.events.filter(action="periods_moved").exists()
    paid_until = sub.current_period_end
    work(run_tasks, frozen, sub.next_reminder_at)
    sub.refresh_from_db()
    work(run_tasks, frozen, sub.next_renewal_at)
    work(run_tasks, frozen, paid_until + timedelta(hours=1))
    sub.refresh_from_db()
    assert sub.status == SubscriptionStatus.ACTIVE and sub.periods == 3
    assert entitlement_check(tv_account="tv1001", product_code="VIP-MONTH")[0]
