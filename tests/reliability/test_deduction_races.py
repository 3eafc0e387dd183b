"""Deductions under races, on PostgreSQL with real threads (issue #14): a cancel racing the deduction, and the
user's termination at the provider racing it, either stop it before it is sent or let it complete — never a
deduction taken and not provisioned, never two, and the contract ends in every case."""

from __future__ import annotations

import queue
import time
from datetime import timedelta

import pytest
from django.db.models import Sum

from billing.models import ContractStatus, LedgerEntry, ProviderContract
from ipvas.actors import Actor, ActorKind
from lifecycle import contracts as lifecycle_contracts
from lifecycle.due import order_process_due
from lifecycle.paying import payment_choose
from lifecycle.placing import order_create
from lifecycle.renewals import subscriptions_sweep
from lifecycle.subscriptions import subscription_cancel
from orders.constants import CancelChannel, Channel, OrderStatus, SubscriptionStatus
from orders.models import Order, Subscription
from sandbox.models import SimTrade, SimTradeStatus
from tests.lifecycle.test_contracts import PROVIDER, sandbox_post
from tests.support.concurrency import require_postgresql, run_in_threads
from tests.support.tasks import run_due_tasks

EPG = Actor(ActorKind.EPG_CLIENT, "race-client")

pytestmark = pytest.mark.django_db(transaction=True)


def settle(time_machine) -> None:
    """Time passes (a WeChat Pay deduction is taken 10 s after it is sent; the query finds it) and every due
    thing runs, the contracts' sweep included."""
    for _ in range(6):
        time_machine.shift(timedelta(seconds=31))
        subscriptions_sweep()
        lifecycle_contracts.contracts_sweep()
        run_due_tasks()


def deduction_ready(time_machine, method: str) -> tuple[Subscription, Order]:
    """A subscription paid and signed in one scan, its reminder (and WeChat Pay's notice) sent, its renewal
    order pre-checked: the deduction is due and not sent yet."""
    time_machine.move_to("2026-12-05 10:00:00+08:00", tick=False)
    order = order_create(channel="epg", product_code="VIP-MONTH", tv_account="tv1001", actor=EPG, auto_renew=True)
    run_due_tasks()
    payment_choose(order_id=order.pk, method=method, actor=EPG)
    out_trade_no = order.payments.get().out_trade_no
    status, answer = sandbox_post(f"{PROVIDER[method]}/pay/", {"out_trade_no": out_trade_no})
    assert status == 200 and answer["delivered"] and answer["contract_delivered"], answer
    run_due_tasks()
    subscription = Order.objects.get(pk=order.pk).subscription
    assert subscription is not None
    time_machine.move_to(subscription.next_reminder_at, tick=False)
    subscriptions_sweep()
    run_due_tasks()
    subscription.refresh_from_db()
    time_machine.move_to(subscription.next_renewal_at, tick=False)
    subscriptions_sweep()
    renewal = Order.objects.get(subscription=subscription, channel=Channel.RENEWAL)
    order_process_due(order_id=renewal.pk)  # the pre-check; the deduction is written as an intent, due now
    renewal.refresh_from_db()
    assert renewal.status == OrderStatus.PAYMENT_PENDING, (renewal.status, renewal.failure_code)
    assert not SimTrade.objects.filter(out_trade_no=renewal.order_no).exists()
    return subscription, renewal


def race(*acts) -> None:  # type: ignore[no-untyped-def]
    roles: queue.SimpleQueue = queue.SimpleQueue()
    for act in acts:
        roles.put(act)

    def racer(barrier) -> None:  # type: ignore[no-untyped-def]
        act = roles.get()
        barrier.wait()
        act()

    assert run_in_threads(len(acts), racer) == []


def check_money(subscription: Subscription, renewal: Order, end_before) -> None:  # type: ignore[no-untyped-def]
    """Whatever won: what the provider kept is what our ledger holds, and it bought the period."""
    renewal.refresh_from_db()
    subscription.refresh_from_db()
    trade = SimTrade.objects.filter(out_trade_no=renewal.order_no).first()
    kept = 0 if trade is None or trade.status != SimTradeStatus.PAID else trade.amount_fen - trade.refunded_fen
    ours = LedgerEntry.objects.filter(order=renewal).aggregate(total=Sum("amount_fen"))["total"] or 0
    assert kept == ours, (kept, ours, renewal.status)
    if renewal.status == OrderStatus.COMPLETED:
        assert kept == renewal.amount_fen and subscription.current_period_end > end_before
    else:
        assert kept == 0 and subscription.current_period_end == end_before, (renewal.status, kept)
    assert Order.objects.filter(subscription=subscription, channel=Channel.RENEWAL).count() == 1  # no second


@pytest.mark.parametrize("method", ["wechat_qr", "alipay_qr"])
@pytest.mark.parametrize("round_", range(2))
def test_a_cancel_racing_the_deduction_stops_it_or_lets_it_complete(demo, time_machine, method, round_):
    require_postgresql()
    subscription, renewal = deduction_ready(time_machine, method)
    end = subscription.current_period_end
    race(
        lambda: order_process_due(order_id=renewal.pk, due_at=renewal.deadline_at),
        lambda: subscription_cancel(subscription_id=subscription.pk, channel=CancelChannel.EPG, actor=EPG),
    )
    settle(time_machine)
    check_money(subscription, renewal, end)
    assert subscription.status == SubscriptionStatus.CANCELLED and subscription.cancel_channel == CancelChannel.EPG
    # Cancelled here: the contract is ended at the provider too.
    assert ProviderContract.objects.get(subscription=subscription).status == ContractStatus.TERMINATED


@pytest.mark.parametrize("method", ["wechat_qr", "alipay_qr"])
@pytest.mark.parametrize("round_", range(2))
def test_the_users_termination_racing_the_deduction_never_leaves_money_half(demo, time_machine, method, round_):
    require_postgresql()
    subscription, renewal = deduction_ready(time_machine, method)
    end = subscription.current_period_end
    terminated: list[tuple[int, dict]] = []
    race(
        lambda: order_process_due(order_id=renewal.pk, due_at=renewal.deadline_at),
        lambda: terminated.append(
            sandbox_post(f"{PROVIDER[method]}/contracts/terminate/", {"subscription_no": subscription.subscription_no})
        ),
    )
    assert terminated and terminated[0][0] == 200, terminated
    settle(time_machine)
    check_money(subscription, renewal, end)
    assert subscription.status == SubscriptionStatus.CANCELLED
    assert subscription.cancel_channel == CancelChannel.PROVIDER
    assert ProviderContract.objects.get(subscription=subscription).status == ContractStatus.TERMINATED


def test_two_runs_of_the_pre_deduction_notice_at_once_send_one(demo, time_machine, monkeypatch):
    """WeChat Pay's pre-deduction notice asked twice at the same moment (a task delivered again while it runs, or
    the renewal's own ask beside the reminder's): one run sends it, the other leaves it to that one. Before, both
    sent it, and the customer was told twice of one charge."""
    from lifecycle.deductions import deduction_announce
    from sandbox.simulators.providers import SimulatedProvider

    require_postgresql()
    time_machine.move_to("2026-12-05 10:00:00+08:00", tick=False)
    order = order_create(channel="epg", product_code="VIP-MONTH", tv_account="tv1001", actor=EPG, auto_renew=True)
    run_due_tasks()
    payment_choose(order_id=order.pk, method="wechat_qr", actor=EPG)
    status, answer = sandbox_post("wechatpay/pay/", {"out_trade_no": order.payments.get().out_trade_no})
    assert status == 200 and answer["contract_delivered"], answer
    run_due_tasks()
    subscription = Order.objects.get(pk=order.pk).subscription
    time_machine.move_to(subscription.next_reminder_at, tick=False)

    sent, announce = [], SimulatedProvider.announce_deduction

    def slowly(self, request):  # type: ignore[no-untyped-def]
        sent.append(request.contract_id)
        time.sleep(0.3)  # real time: the other run arrives while this one is at WeChat Pay
        return announce(self, request)

    monkeypatch.setattr(SimulatedProvider, "announce_deduction", slowly)
    outcomes: queue.SimpleQueue = queue.SimpleQueue()

    def racer(barrier) -> None:  # type: ignore[no-untyped-def]
        barrier.wait()
        outcomes.put(deduction_announce(subscription_id=subscription.pk))

    assert run_in_threads(2, racer) == []
    assert sorted([outcomes.get(), outcomes.get()]) == ["announced", "announcing_elsewhere"]
    assert len(sent) == 1
    assert subscription.events.filter(action="deduction_announced").count() == 1
    contract = ProviderContract.objects.get(subscription=subscription)
    assert contract.deduct_until is not None and contract.notice_claimed_until is None
    assert deduction_announce(subscription_id=subscription.pk) == "announced_already"
