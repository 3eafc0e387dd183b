"""Subscriptions paid by WeChat Pay and Alipay (docs/interfaces.md §8): one scan pays the first period and signs
the provider's deduction contract; each period is deducted under it within the provider's rules; the contract
ends when the user ends it in the app, and is ended at the provider when the subscription is cancelled
elsewhere. The notifications are the simulated providers', through the real views and verification.
"""

from __future__ import annotations

import json
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from django.test import Client
from django.utils import timezone

from billing.models import (
    ContractEnd,
    ContractStatus,
    LedgerEntry,
    Payment,
    PaymentNotification,
    ProviderContract,
    WorkItem,
)
from ipvas.actors import Actor, ActorKind
from lifecycle import contracts as lifecycle_contracts
from lifecycle.paying import payment_choose
from lifecycle.placing import order_create
from lifecycle.renewals import subscriptions_sweep
from lifecycle.subscriptions import subscription_cancel
from orders.constants import CancelChannel, Channel, FailureCode, OrderStatus, SubscriptionStatus
from orders.models import Order, OrderEvent, Subscription
from sandbox import contracts as sim
from sandbox import faults, payments
from sandbox.delivery import deliver
from sandbox.models import SimContract, SimContractStatus, SimTrade
from sandbox.views.providers import deliver_contract

EPG = Actor(ActorKind.EPG_CLIENT, "test-client")
START = "2026-12-05 10:00:00+08:00"
PROVIDER = {"wechat_qr": "wechatpay", "alipay_qr": "alipay"}
METHODS = ["wechat_qr", "alipay_qr"]
PROVISION = "lifecycle.tasks.provision_order"

pytestmark = pytest.mark.django_db


@pytest.fixture
def frozen(time_machine):
    time_machine.move_to(START, tick=False)
    return time_machine


def work(run_tasks, frozen, at) -> None:
    """Time passes to ``at``; the beat's sweeps and the worker do what is due."""
    frozen.move_to(at)
    for _ in range(10):
        found = subscriptions_sweep() + lifecycle_contracts.contracts_sweep()
        run_tasks()
        if not found:
            return


def sandbox_post(path: str, body: dict) -> tuple[int, dict]:
    response = Client().post(f"/sandbox/{path}", data=json.dumps(body), content_type="application/json")
    return response.status_code, response.json()


def scan(run_tasks, method: str, *, product: str = "VIP-MONTH") -> tuple[Order, Payment]:
    """An auto-renewing order on the TV, its QR code shown."""
    order = order_create(channel="epg", product_code=product, tv_account="tv1001", actor=EPG, auto_renew=True)
    run_tasks()
    payment_choose(order_id=order.pk, method=method, actor=EPG)
    order.refresh_from_db()
    assert order.status == OrderStatus.PAYMENT_PENDING
    return order, Payment.objects.get(order=order)


def subscribed(run_tasks, method: str, scanned: tuple[Order, Payment] | None = None) -> tuple[Order, Subscription]:
    order, payment = scanned or scan(run_tasks, method)
    status, answer = sandbox_post(f"{PROVIDER[method]}/pay/", {"out_trade_no": payment.out_trade_no})
    assert status == 200 and answer["delivered"] and answer["contract_delivered"], answer
    run_tasks()
    order.refresh_from_db()
    assert order.status == OrderStatus.COMPLETED and order.subscription is not None
    return order, order.subscription


def to_reminder_and_renewal(run_tasks, frozen, sub: Subscription) -> Subscription:
    work(run_tasks, frozen, sub.next_reminder_at)
    sub.refresh_from_db()
    assert sub.reminder_sent_at is not None
    work(run_tasks, frozen, sub.next_renewal_at)
    sub.refresh_from_db()
    return sub


def renewal_of(sub: Subscription) -> Order:
    return Order.objects.filter(subscription=sub, channel=Channel.RENEWAL).order_by("-pk").first()


def sim_contract(sub: Subscription) -> SimContract:
    return SimContract.objects.get(contract_id=sub.contract_id)


# --- 1. one scan: pay and sign -----------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_one_scan_pays_the_first_period_and_signs_the_contract(demo, run_tasks, frozen, method):
    order, payment = scan(run_tasks, method)
    contract = ProviderContract.objects.get(order=order)
    assert (contract.provider, contract.status, contract.payment_id) == (PROVIDER[method], "pending", payment.pk)
    assert contract.contract_code == f"C{payment.provider[0].upper()}{payment.out_trade_no}" and payment.qr_code_url
    assert SimContract.objects.get(contract_code=contract.contract_code).status == SimContractStatus.PENDING

    _order, sub = subscribed(run_tasks, method, (order, payment))

    contract.refresh_from_db()
    assert (sub.status, sub.payment_method, sub.renewal_price_fen) == ("active", method, 2500)
    assert contract.status == ContractStatus.SIGNED and contract.subscription_id == sub.pk
    assert sub.contract_id == contract.provider_contract_id == sim_contract(sub).contract_id
    assert sub.consent_evidence["contract"]["contract_code"] == contract.contract_code
    assert order.entitlement.ends_at == sub.current_period_end
    stored = PaymentNotification.objects.filter(payment=payment)
    assert stored.filter(contract=contract).count() == 1 and stored.filter(contract__isnull=True).count() == 1
    assert contract.due_at is None


@pytest.mark.parametrize("method", METHODS)
def test_the_signing_first_then_the_payment_starts_it_when_the_order_completes(demo, run_tasks, frozen, method):
    order, payment = scan(run_tasks, method)
    trade = payments.pay_trade(PROVIDER[method], payment.out_trade_no)
    signed = sim.sign_paid(trade)
    assert deliver_contract(signed) == (True, 200)
    contract = ProviderContract.objects.get(order=order)
    assert contract.status == ContractStatus.SIGNED and not Subscription.objects.exists()
    assert deliver_contract(signed)[0]  # the same signing again: an answer, nothing more
    assert PaymentNotification.objects.filter(contract=contract).count() == 1

    _deliver_payment(PROVIDER[method], trade)
    run_tasks()
    order.refresh_from_db()
    assert order.status == OrderStatus.COMPLETED and order.subscription.contract_id == signed.contract_id


def _deliver_payment(provider: str, trade: SimTrade) -> tuple[bool, int]:
    if provider == "wechatpay":
        body = sim.wechatpay_v2_payment_notification(trade)
        return deliver("/billing/notify/wechatpay/v2/", body=body, content_type="text/xml", headers={})
    form = urlencode(payments.alipay_notification(trade)).encode()
    return deliver("/billing/notify/alipay/", body=form, content_type="application/x-www-form-urlencoded", headers={})


def td(text: str = "TD") -> str:
    """The customer's SMS reply; each one another message (its own raw body)."""
    from lifecycle.confirmations import sms_reply_received

    raw = f"{text}@{PaymentNotification.objects.count()}-{OrderEvent.objects.count()}".encode()
    return sms_reply_received(sender="13800000001", text=text, received_at=timezone.now(), raw=raw)


@pytest.mark.parametrize("method", METHODS)
def test_a_td_after_the_payment_and_before_the_signing_starts_no_subscription(demo, run_tasks, frozen, method):
    """Paid, the order completed, the subscription waits for the signing; the customer replies TD meanwhile.
    It used to answer 'nothing to cancel', and the signing then started a subscription to be deducted next
    month. TD now says renewal will not start; the signing, when it comes, is ended at the provider."""
    from sandbox import sms

    order, payment = scan(run_tasks, method)
    trade = payments.pay_trade(PROVIDER[method], payment.out_trade_no)
    signed = sim.sign_paid(trade)
    assert _deliver_payment(PROVIDER[method], trade)[0]
    run_tasks()
    order.refresh_from_db()
    assert order.status == OrderStatus.COMPLETED and order.subscription is None  # waiting for the signing

    assert td().endswith("td cancelled 1")
    run_tasks()
    (answer,) = [text for text in (m.text for m in sms.outbox("13800000001")) if "取消自动续费" in text]
    assert "VIP" in answer and "不再开通" in answer
    assert "auto_renew_cancelled" in OrderEvent.objects.filter(order=order).values_list("action", flat=True)

    assert deliver_contract(signed)[0]  # the signing, a moment later
    run_tasks()
    order.refresh_from_db()
    contract = ProviderContract.objects.get(order=order)
    assert order.subscription is None and not Subscription.objects.exists()
    assert (contract.status, contract.ended_by) == (ContractStatus.TERMINATED, ContractEnd.MERCHANT)
    assert SimContract.objects.get(contract_code=contract.contract_code).status == SimContractStatus.TERMINATED
    assert order.entitlement.ends_at > timezone.now()  # the paid period stays
    assert td().endswith("td cancelled 0")  # nothing left to cancel


@pytest.mark.parametrize("method", METHODS)
def test_a_td_after_the_signing_and_before_the_payment_leaves_a_plain_period(demo, run_tasks, frozen, method):
    order, payment = scan(run_tasks, method)
    trade = payments.pay_trade(PROVIDER[method], payment.out_trade_no)
    assert deliver_contract(sim.sign_paid(trade))[0]  # signed; the payment notification on its way
    assert td("td vip-month").endswith("td cancelled 1")
    run_tasks()

    assert _deliver_payment(PROVIDER[method], trade)[0]
    run_tasks()
    order.refresh_from_db()
    assert order.status == OrderStatus.COMPLETED and order.subscription is None
    actions = list(OrderEvent.objects.filter(order=order).values_list("action", flat=True))
    assert "auto_renew_cancelled" in actions and "auto_renew_not_started" in actions
    contract = ProviderContract.objects.get(order=order)
    assert contract.status == ContractStatus.TERMINATED
    assert SimContract.objects.get(contract_code=contract.contract_code).status == SimContractStatus.TERMINATED


def test_a_td_naming_another_product_leaves_the_waiting_subscription_alone(demo, run_tasks, frozen):
    order, payment = scan(run_tasks, "alipay_qr")
    trade = payments.pay_trade("alipay", payment.out_trade_no)
    signed = sim.sign_paid(trade)
    assert td("TD VIP-YEAR").endswith("td cancelled 0")
    assert _deliver_payment("alipay", trade)[0] and deliver_contract(signed)[0]
    run_tasks()
    order.refresh_from_db()
    assert order.subscription is not None and order.subscription.status == SubscriptionStatus.ACTIVE


@pytest.mark.parametrize("method", METHODS)
def test_a_lost_payment_notification_is_found_by_the_deadline(demo, run_tasks, frozen, method):
    order, payment = scan(run_tasks, method)
    trade = payments.pay_trade(PROVIDER[method], payment.out_trade_no)
    deliver_contract(sim.sign_paid(trade))  # the signing arrives; the payment notification is lost
    frozen.move_to(payment.expires_at + timedelta(seconds=5))
    run_tasks()  # the QR window ends: closing finds it paid, and the order goes on
    order.refresh_from_db()
    assert order.status == OrderStatus.COMPLETED and order.subscription is not None


@pytest.mark.parametrize("method", METHODS)
def test_a_lost_signing_ends_the_contract_and_the_paid_period_stays(demo, run_tasks, frozen, method):
    order, payment = scan(run_tasks, method)
    trade = payments.pay_trade(PROVIDER[method], payment.out_trade_no)
    sim.sign_paid(trade)
    assert _deliver_payment(PROVIDER[method], trade)[0]  # the signing notification never comes
    run_tasks()
    order.refresh_from_db()
    assert order.status == OrderStatus.COMPLETED and order.subscription is None
    assert OrderEvent.objects.filter(order=order, action="auto_renew_waiting").exists()

    contract = ProviderContract.objects.get(order=order)
    work(run_tasks, frozen, contract.due_at)
    contract.refresh_from_db()
    order.refresh_from_db()
    assert (contract.status, contract.ended_by) == (ContractStatus.TERMINATED, ContractEnd.UNUSED)
    assert SimContract.objects.get(contract_code=contract.contract_code).status == SimContractStatus.TERMINATED
    assert OrderEvent.objects.filter(order=order, action="auto_renew_not_started").exists()
    assert order.status == OrderStatus.COMPLETED and not Subscription.objects.exists()  # the paid period stays

    # The signing that finally arrives changes nothing: the contract was ended, and stays ended.
    deliver_contract(SimContract.objects.get(contract_code=contract.contract_code))
    contract.refresh_from_db()
    assert contract.status == ContractStatus.TERMINATED and not Subscription.objects.exists()


@pytest.mark.parametrize("method", METHODS)
def test_a_contract_signed_for_an_order_that_expired_is_ended(demo, run_tasks, frozen, method):
    order, payment = scan(run_tasks, method)
    contract = ProviderContract.objects.get(order=order)
    signed = SimContract.objects.get(contract_code=contract.contract_code)
    SimContract.objects.filter(pk=signed.pk).update(status=SimContractStatus.SIGNED, signed_at=timezone.now())
    signed.refresh_from_db()
    assert deliver_contract(signed)[0]
    contract.refresh_from_db()
    assert contract.status == ContractStatus.SIGNED  # signed, waiting for its payment

    frozen.move_to(payment.expires_at + timedelta(seconds=5))
    run_tasks()  # the order expires unpaid; its contract is settled at once
    order.refresh_from_db()
    contract.refresh_from_db()
    assert order.status == OrderStatus.EXPIRED
    assert (contract.status, contract.ended_by) == (ContractStatus.TERMINATED, ContractEnd.UNUSED)
    signed.refresh_from_db()
    assert (signed.status, signed.terminated_by) == (SimContractStatus.TERMINATED, "merchant")


# --- 2. renewal by deduction ----------------------------------------------------------------------


def test_wechatpay_announces_with_the_reminder_and_deducts_in_its_window(demo, run_tasks, frozen):
    _order, sub = subscribed(run_tasks, "wechat_qr")
    first_end = sub.current_period_end
    work(run_tasks, frozen, sub.next_reminder_at)
    sub.refresh_from_db()
    contract = ProviderContract.objects.get(subscription=sub)
    noticed = timezone.localtime(contract.notice_sent_at)
    assert noticed == timezone.localtime(sub.reminder_sent_at)  # with the reminder SMS
    assert timezone.localtime(contract.deduct_from).date() == noticed.date() + timedelta(days=2)
    assert timezone.localtime(contract.deduct_until).date() == noticed.date() + timedelta(days=8)
    assert contract.deduct_from <= sub.next_renewal_at <= contract.deduct_until
    assert sim_contract(sub).notice_amount_fen == 2500

    work(run_tasks, frozen, sub.next_renewal_at)
    renewal = renewal_of(sub)
    assert (renewal.status, renewal.payment_method) == (OrderStatus.PAYMENT_PENDING, "wechat_qr")
    trade = SimTrade.objects.get(out_trade_no=renewal.order_no)
    assert (trade.deducted_under, trade.attach) == (sub.contract_id, f"{sub.subscription_no}P2")

    # WeChat Pay's payment notification of the deduction, through the real verification.
    status, answer = sandbox_post("wechatpay/pay/", {"out_trade_no": renewal.order_no})
    assert status == 200 and answer["delivered"]
    run_tasks()
    renewal.refresh_from_db()
    sub.refresh_from_db()
    assert renewal.status == OrderStatus.COMPLETED and renewal.entitlement.starts_at == first_end
    assert sub.periods == 2 and sub.current_period_end == renewal.entitlement.ends_at
    assert LedgerEntry.objects.get(order=renewal).idempotency_key == f"wechatpay:payment:{trade.transaction_id}"
    contract.refresh_from_db()
    assert contract.notice_sent_at is None  # spent: the next period needs its own notice


@pytest.mark.parametrize(
    ("failure", "named"),
    [
        ({"trade_state": "PAYERROR", "err_code": "NOTENOUGH"}, "PAYERROR"),
        ({"trade_state": "PAY_FAIL", "trade_state_desc": "银行返回失败"}, "PAY_FAIL 银行返回失败"),
        ({"err_code": "NOTENOUGH"}, "PAY_FAIL NOTENOUGH"),  # result_code FAIL alone: a real one has no trade_state
    ],
)
def test_a_wechatpay_deduction_declined_in_its_apiv2_notification_fails_the_renewal(
    demo, run_tasks, frozen, failure, named
):
    """申请扣款's result is the APIv2 扣款结果通知: a PAYERROR (the user's balance, say) fails the renewal order, which
    is tried again later; nothing is booked."""
    from django.conf import settings

    from adapters.wechatpay import v2
    from ipvas.keyfiles import sandbox_secret

    _order, sub = subscribed(run_tasks, "wechat_qr")
    sub = to_reminder_and_renewal(run_tasks, frozen, sub)
    renewal = renewal_of(sub)
    assert renewal.status == OrderStatus.PAYMENT_PENDING
    params = {
        "return_code": "SUCCESS", "appid": settings.WECHATPAY_APPID, "mch_id": settings.WECHATPAY_MCHID,
        "nonce_str": "n" * 32, "result_code": "FAIL", "trade_type": "PAP", "out_trade_no": renewal.order_no,
        "total_fee": "2500", "contract_id": sub.contract_id, **failure,
    }  # fmt: skip
    body = v2.to_xml(v2.signed(params, sandbox_secret("wechatpay_apiv2_key.txt")))
    delivered, status = deliver("/billing/notify/wechatpay/v2/", body=body, content_type="text/xml", headers={})
    assert delivered and status == 200
    run_tasks()
    renewal.refresh_from_db()
    sub.refresh_from_db()
    assert (renewal.status, renewal.failure_code) == (OrderStatus.FAILED, FailureCode.PAYMENT_DECLINED)
    assert named in renewal.failure_detail
    assert not LedgerEntry.objects.filter(order=renewal).exists()
    assert sub.status == SubscriptionStatus.ACTIVE and sub.next_renewal_at > timezone.now()  # tried again later


def test_a_wechatpay_deduction_whose_notification_is_lost_is_found_by_the_query(demo, run_tasks, frozen):
    _order, sub = subscribed(run_tasks, "wechat_qr")
    sub = to_reminder_and_renewal(run_tasks, frozen, sub)
    renewal = renewal_of(sub)
    assert renewal.status == OrderStatus.PAYMENT_PENDING
    frozen.shift(timedelta(seconds=31))
    run_tasks()
    renewal.refresh_from_db()
    assert renewal.status == OrderStatus.COMPLETED


def test_alipay_deducts_within_its_days_before_the_agreed_day(demo, run_tasks, frozen):
    _order, sub = subscribed(run_tasks, "alipay_qr")
    contract = ProviderContract.objects.get(subscription=sub)
    agreed = timezone.localtime(contract.plan_at)
    assert agreed.date() == timezone.localtime(sub.current_period_end).date() and agreed.hour == 0
    sub = to_reminder_and_renewal(run_tasks, frozen, sub)
    renewal = renewal_of(sub)
    assert renewal.status == OrderStatus.COMPLETED  # Alipay answers at once
    contract.refresh_from_db()
    assert timezone.localtime(contract.plan_at).date() == timezone.localtime(sub.current_period_end).date()
    assert ProviderContract.objects.get(pk=contract.pk).plan_at == sim_contract(sub).plan_at


def test_an_alipay_subscription_that_started_on_the_30th_is_deducted_in_alipays_days_every_month(
    demo, run_tasks, time_machine
):
    """Started on the 30th: Alipay's agreed day is the 28th (it refuses the 29th–31st), and it stays the 28th in
    Beijing's calendar month after month (stepped in UTC it was the evening before: 03-29, 04-29, out of
    Alipay's days). Each renewal falls in Alipay's days, the first one a day earlier than usual: deducted at
    the first try, the periods end to end, Alipay's plan and ours the same."""
    time_machine.move_to("2026-12-30 10:00:00+08:00", tick=False)
    _order, sub = subscribed(run_tasks, "alipay_qr")
    contract = ProviderContract.objects.get(subscription=sub)
    days, ends = [timezone.localtime(contract.plan_at).date().isoformat()], [sub.current_period_end]
    for _ in range(3):
        sub = to_reminder_and_renewal(run_tasks, time_machine, sub)
        assert renewal_of(sub).status == OrderStatus.COMPLETED, renewal_of(sub).failure_detail
        contract.refresh_from_db()
        assert contract.plan_at == sim_contract(sub).plan_at
        days.append(timezone.localtime(contract.plan_at).date().isoformat())
        ends.append(sub.current_period_end)

    assert days == ["2027-01-28", "2027-02-28", "2027-03-28", "2027-04-28"]
    assert [timezone.localtime(end).date().isoformat() for end in ends] == [
        "2027-01-30",
        "2027-02-28",
        "2027-03-28",
        "2027-04-28",
    ]
    assert Order.objects.filter(subscription=sub, channel=Channel.RENEWAL).count() == 3  # no retry needed
    assert sub.status == SubscriptionStatus.ACTIVE


def test_a_wechatpay_subscription_that_started_on_the_30th_renews_a_day_before_its_end(demo, run_tasks, time_machine):
    """Only Alipay has an agreed day: a WeChat Pay subscription's renewal is a day before its period's end."""
    time_machine.move_to("2026-12-30 10:00:00+08:00", tick=False)
    _order, sub = subscribed(run_tasks, "wechat_qr")
    assert sub.next_renewal_at == sub.current_period_end - timedelta(hours=24)


def test_refunding_an_earlier_period_while_a_paid_renewal_is_provisioned_does_not_lapse_it(demo, run_tasks, frozen):
    """The renewal is deducted (Alipay's agreed day moves on with it) and is being provisioned when an admin
    refunds the first period: the renewal in flight decides, not the agreed day it moved. It completes, and
    the subscription stays active."""
    from lifecycle import manual

    order, sub = subscribed(run_tasks, "alipay_qr")
    work(run_tasks, frozen, sub.next_reminder_at)
    sub.refresh_from_db()
    frozen.move_to(sub.next_renewal_at)
    subscriptions_sweep()
    run_tasks(holding=(PROVISION,))
    assert renewal_of(sub).status == OrderStatus.PROVISIONING  # deducted, at the SMP

    manual.refund_by_admin(order_id=order.pk, reason="complaint", actor=Actor(ActorKind.ADMIN, "finance"))
    run_tasks(holding=(PROVISION,))
    sub.refresh_from_db()
    assert sub.status == SubscriptionStatus.ACTIVE
    run_tasks()

    sub.refresh_from_db()
    assert renewal_of(sub).status == OrderStatus.COMPLETED
    assert sub.status == SubscriptionStatus.ACTIVE and not sub.events.filter(action="lapse").exists()


def test_an_alipay_renewal_before_its_days_moves_to_their_first(demo, run_tasks, frozen):
    _order, sub = subscribed(run_tasks, "alipay_qr")
    contract = ProviderContract.objects.get(subscription=sub)
    later = contract.plan_at + timedelta(days=10)
    ProviderContract.objects.filter(pk=contract.pk).update(plan_at=later)
    SimContract.objects.filter(contract_id=sub.contract_id).update(plan_at=later)
    sub = to_reminder_and_renewal(run_tasks, frozen, sub)
    assert renewal_of(sub) is None and sub.renewal_moved
    assert sub.next_renewal_at == later - timedelta(days=3)
    work(run_tasks, frozen, sub.next_renewal_at)
    assert renewal_of(sub).status == OrderStatus.COMPLETED


def test_a_notice_at_night_waits_for_seven_and_the_renewal_follows_its_days(demo, run_tasks, frozen):
    _order, sub = subscribed(run_tasks, "wechat_qr")
    night = timezone.localtime(sub.next_reminder_at).replace(hour=23, minute=30)
    Subscription.objects.filter(pk=sub.pk).update(next_reminder_at=night, due_at=night)
    work(run_tasks, frozen, night)
    contract = ProviderContract.objects.get(subscription=sub)
    assert contract.notice_sent_at is None  # not at night
    work(run_tasks, frozen, (night + timedelta(hours=8)).replace(hour=7, minute=0))
    contract.refresh_from_db()
    assert timezone.localtime(contract.notice_sent_at).hour == 7


def test_a_declined_deduction_is_retried_then_the_subscription_lapses(demo, run_tasks, frozen):
    _order, sub = subscribed(run_tasks, "alipay_qr")
    SimContract.objects.filter(contract_id=sub.contract_id).update(decline_with="ACQ.BUYER_BALANCE_NOT_ENOUGH")
    sub = to_reminder_and_renewal(run_tasks, frozen, sub)
    first = renewal_of(sub)
    assert (first.status, first.failure_code) == (OrderStatus.FAILED, FailureCode.PAYMENT_DECLINED)
    assert "ACQ.BUYER_BALANCE_NOT_ENOUGH" in first.failure_detail
    for _ in range(4):
        sub.refresh_from_db()
        if sub.status != SubscriptionStatus.ACTIVE:
            break
        work(run_tasks, frozen, sub.next_renewal_at)
    sub.refresh_from_db()
    renewals = Order.objects.filter(subscription=sub, channel=Channel.RENEWAL)
    assert renewals.count() == 3 and set(renewals.values_list("failure_code", flat=True)) == {"payment_declined"}
    assert sub.status == SubscriptionStatus.LAPSED
    contract = ProviderContract.objects.get(subscription=sub)
    assert (contract.status, contract.ended_by) == (ContractStatus.TERMINATED, ContractEnd.MERCHANT)
    assert sim_contract(sub).status == SimContractStatus.TERMINATED
    assert not SimTrade.objects.filter(deducted_under=sub.contract_id).exists()  # never charged


def test_a_wechatpay_retry_its_hours_would_push_past_the_paid_period_lapses_instead(demo, run_tasks, time_machine):
    """§8: a failed renewal is tried again every RENEWAL_RETRY_HOURS *until current_period_end*; then the
    subscription lapses. A period ending at 04:00: the try of 23:00 falls outside WeChat Pay's 07:00–22:00,
    whose next opening (07:00) is after the end. It used to move there and deduct a period three hours after
    the paid one had ended; it now fails at once, and the subscription lapses."""
    time_machine.move_to("2026-12-05 04:00:00+08:00", tick=False)
    _order, sub = subscribed(run_tasks, "wechat_qr")
    end = sub.current_period_end
    assert timezone.localtime(end).hour == 4
    SimContract.objects.filter(contract_id=sub.contract_id).update(decline_with="NOTENOUGH")
    work(run_tasks, time_machine, sub.next_reminder_at)
    work(run_tasks, time_machine, sub.next_reminder_at + timedelta(hours=3))  # the notice waits for 07:00
    assert ProviderContract.objects.get(subscription=sub).deduct_from is not None
    while timezone.now() < end + timedelta(hours=6):
        sub.refresh_from_db()
        if sub.status != SubscriptionStatus.ACTIVE:
            break
        if timezone.localtime(sub.next_renewal_at).hour >= 22:  # the customer tops up before the night's try
            SimContract.objects.filter(contract_id=sub.contract_id).update(decline_with="")
        work(run_tasks, time_machine, max(sub.next_renewal_at, timezone.now() + timedelta(minutes=30)))
    sub.refresh_from_db()
    tries = Order.objects.filter(subscription=sub, channel=Channel.RENEWAL).order_by("pk")
    assert [(timezone.localtime(o.created_at).strftime("%d %H:%M"), o.status) for o in tries] == [
        ("04 07:00", "failed"),  # 04:00 is outside WeChat Pay's hours: moved to their opening
        ("04 15:00", "failed"),
        ("04 23:00", "failed"),  # its hours open again after the paid period ends: no call
    ]
    assert "outside the days" in tries.last().failure_detail
    assert not tries.filter(status=OrderStatus.COMPLETED).exists()
    assert not SimTrade.objects.filter(deducted_under=sub.contract_id, status="SUCCESS").exists()
    assert all(order.created_at < end for order in tries)
    assert sub.status == SubscriptionStatus.LAPSED and sub.current_period_end == end


# --- 3. termination -------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_the_user_ends_the_contract_in_the_app_and_the_subscription_is_cancelled(demo, run_tasks, frozen, method):
    _order, sub = subscribed(run_tasks, method)
    status, answer = sandbox_post(f"{PROVIDER[method]}/contracts/terminate/", {"subscription_no": sub.subscription_no})
    assert (status, answer) == (200, {"delivered": True, "status_code": 200})
    sub.refresh_from_db()
    contract = ProviderContract.objects.get(subscription=sub)
    assert (sub.status, sub.cancel_channel) == (SubscriptionStatus.CANCELLED, CancelChannel.PROVIDER)
    assert (contract.status, contract.ended_by) == (ContractStatus.TERMINATED, ContractEnd.USER)
    assert sub.events.filter(action="contract_ended").exists()
    # Delivered again: the same answer, nothing changes; no unsign is asked of the provider.
    assert sandbox_post(f"{PROVIDER[method]}/contracts/terminate/", {"subscription_no": sub.subscription_no})[0] == 200
    run_tasks()
    sub.refresh_from_db()
    assert sub.cancel_channel == CancelChannel.PROVIDER and sim_contract(sub).terminated_by == "user"


@pytest.mark.parametrize("method", METHODS)
def test_a_cancel_on_another_channel_ends_the_contract_at_the_provider(demo, run_tasks, frozen, method):
    _order, sub = subscribed(run_tasks, method)
    subscription_cancel(subscription_id=sub.pk, channel=CancelChannel.EPG, actor=EPG)
    contract = ProviderContract.objects.get(subscription=sub)
    assert contract.status == ContractStatus.UNSIGNING
    faults.set_mode(PROVIDER[method], "down")
    run_tasks()
    contract.refresh_from_db()
    assert contract.status == ContractStatus.UNSIGNING and contract.attempts == 1  # retried later
    faults.set_mode(PROVIDER[method], "ok")
    frozen.shift(timedelta(minutes=1))
    run_tasks()
    contract.refresh_from_db()
    assert (contract.status, contract.ended_by) == (ContractStatus.TERMINATED, ContractEnd.MERCHANT)
    assert sim_contract(sub).terminated_by == "merchant"
    # The provider's echo of our own termination changes nothing.
    assert deliver_contract(sim_contract(sub))[0]
    sub.refresh_from_db()
    assert sub.cancel_channel == CancelChannel.EPG


def test_an_unsign_that_never_goes_through_is_a_work_item(demo, run_tasks, frozen):
    _order, sub = subscribed(run_tasks, "wechat_qr")
    subscription_cancel(subscription_id=sub.pk, channel=CancelChannel.CRM, actor=EPG)
    faults.set_mode("wechatpay", "down")
    for _ in range(12):
        frozen.shift(timedelta(minutes=6))
        run_tasks()
    item = WorkItem.objects.get(kind="provider_disagrees")
    assert "deduction contract" in item.detail
    assert ProviderContract.objects.get(subscription=sub).status == ContractStatus.UNSIGNING


@pytest.mark.parametrize("method", METHODS)
def test_a_cancel_before_the_deduction_is_sent_stops_it(demo, run_tasks, frozen, method):
    _order, sub = subscribed(run_tasks, method)
    work(run_tasks, frozen, sub.next_reminder_at)
    sub.refresh_from_db()
    faults.set_mode("smp", "down")  # the renewal's pre-check waits
    work(run_tasks, frozen, sub.next_renewal_at)
    renewal = renewal_of(sub)
    assert renewal.status == OrderStatus.PRECHECKING
    subscription_cancel(subscription_id=sub.pk, channel=CancelChannel.EPG, actor=EPG)
    faults.set_mode("smp", "ok")
    frozen.shift(timedelta(seconds=40))
    run_tasks()
    renewal.refresh_from_db()
    assert (renewal.status, renewal.failure_code) == (OrderStatus.CANCELLED, FailureCode.CANCELLED)
    assert not SimTrade.objects.filter(out_trade_no=renewal.order_no).exists()


def test_a_deduction_sent_before_a_cancel_completes_and_the_cancel_stops_the_next(demo, run_tasks, frozen):
    _order, sub = subscribed(run_tasks, "wechat_qr")
    end = sub.current_period_end
    sub = to_reminder_and_renewal(run_tasks, frozen, sub)
    renewal = renewal_of(sub)
    assert renewal.status == OrderStatus.PAYMENT_PENDING  # sent, accepted; its result comes later
    subscription_cancel(subscription_id=sub.pk, channel=CancelChannel.EPG, actor=EPG)
    sandbox_post("wechatpay/pay/", {"out_trade_no": renewal.order_no})
    run_tasks()
    renewal.refresh_from_db()
    sub.refresh_from_db()
    assert renewal.status == OrderStatus.COMPLETED and sub.status == SubscriptionStatus.CANCELLED
    assert sub.current_period_end > end and sub.due_at == sub.current_period_end
    assert ProviderContract.objects.get(subscription=sub).status == ContractStatus.TERMINATED


def test_a_termination_racing_a_renewal_stops_it_before_the_deduction(demo, run_tasks, frozen):
    _order, sub = subscribed(run_tasks, "alipay_qr")
    work(run_tasks, frozen, sub.next_reminder_at)
    sub.refresh_from_db()
    faults.set_mode("smp", "down")
    work(run_tasks, frozen, sub.next_renewal_at)
    renewal = renewal_of(sub)
    sandbox_post("alipay/contracts/terminate/", {"subscription_no": sub.subscription_no})
    faults.set_mode("smp", "ok")
    frozen.shift(timedelta(seconds=40))
    run_tasks()
    renewal.refresh_from_db()
    sub.refresh_from_db()
    assert renewal.status == OrderStatus.CANCELLED and sub.cancel_channel == CancelChannel.PROVIDER
    assert not SimTrade.objects.filter(out_trade_no=renewal.order_no).exists()


@pytest.mark.parametrize("method", METHODS)
def test_a_deduction_refused_because_the_user_ended_the_contract_cancels_it(demo, run_tasks, frozen, method):
    _order, sub = subscribed(run_tasks, method)
    sim.terminate_by_user(sim_contract(sub))  # in the app; the notification is lost
    work(run_tasks, frozen, sub.next_reminder_at)
    sub.refresh_from_db()
    if method == "alipay_qr":  # the deduction is refused: no such agreement
        work(run_tasks, frozen, sub.next_renewal_at)
        renewal = renewal_of(sub)
        assert (renewal.status, renewal.failure_code) == (OrderStatus.FAILED, FailureCode.PAYMENT_DECLINED)
    else:  # WeChat Pay refuses the pre-deduction notice already: nothing is tried
        assert renewal_of(sub) is None
    sub.refresh_from_db()
    assert (sub.status, sub.cancel_channel) == (SubscriptionStatus.CANCELLED, CancelChannel.PROVIDER)
    contract = ProviderContract.objects.get(subscription=sub)
    assert (contract.status, contract.ended_by) == (ContractStatus.TERMINATED, ContractEnd.USER)


def test_a_second_deduction_for_a_paid_period_goes_back(demo, run_tasks, frozen):
    _order, sub = subscribed(run_tasks, "alipay_qr")
    sub = to_reminder_and_renewal(run_tasks, frozen, sub)
    renewal = renewal_of(sub)
    assert renewal.status == OrderStatus.COMPLETED
    trade = SimTrade.objects.get(out_trade_no=renewal.order_no)
    # The provider's notification of that deduction, delivered twice: applied once.
    for _ in range(2):
        assert sandbox_post("alipay/pay/", {"out_trade_no": trade.out_trade_no})[1]["delivered"]
    run_tasks()
    assert LedgerEntry.objects.filter(order=renewal).count() == 1
    assert Order.objects.filter(subscription=sub, channel=Channel.RENEWAL, status="completed").count() == 1


def test_a_renewal_past_the_notices_days_asks_for_a_new_notice_and_follows_it(demo, run_tasks, frozen):
    _order, sub = subscribed(run_tasks, "wechat_qr")
    work(run_tasks, frozen, sub.next_reminder_at)
    sub.refresh_from_db()
    contract = ProviderContract.objects.get(subscription=sub)
    # The notice's days have passed (as after a reminder held back for days): the renewal must not go.
    gone = timezone.now() - timedelta(days=1)
    ProviderContract.objects.filter(pk=contract.pk).update(deduct_from=gone - timedelta(days=6), deduct_until=gone)
    due = sub.next_renewal_at
    work(run_tasks, frozen, due)
    sub.refresh_from_db()
    contract.refresh_from_db()
    assert renewal_of(sub) is None
    assert contract.notice_sent_at == due  # a new notice, now; its days start on the 3rd day, 07:00
    assert timezone.localtime(contract.deduct_from).date() == timezone.localtime(due).date() + timedelta(days=2)
    assert sub.next_renewal_at == contract.deduct_from and sub.renewal_moved
    assert sub.events.filter(action="deduction_notice_asked").count() == 1
    work(run_tasks, frozen, sub.next_renewal_at)
    assert renewal_of(sub).status == OrderStatus.PAYMENT_PENDING  # sent within the new notice's days


def test_a_wechatpay_notice_never_sent_lapses_the_subscription_when_its_paid_period_ends(demo, run_tasks, frozen):
    """WeChat Pay down from the reminder on: no pre-deduction notice, so no deduction may be made. A new
    notice is asked now and then while the paid period lasts; at its end the subscription lapses (with its
    SMS and the contract ended), instead of staying active unpaid and being deducted when WeChat Pay is back."""
    order, sub = subscribed(run_tasks, "wechat_qr")
    end = sub.current_period_end
    faults.set_mode("wechatpay", "down")
    work(run_tasks, frozen, sub.next_reminder_at)
    at = sub.next_reminder_at
    while at < end + timedelta(days=2):
        at += timedelta(hours=1)
        work(run_tasks, frozen, at)
    sub.refresh_from_db()

    assert sub.status == SubscriptionStatus.ENDED  # lapsed, then ended with its paid period
    assert sub.events.filter(action="deduction_notice_asked").exists()
    assert sub.events.filter(action="lapse").exists()
    contract = ProviderContract.objects.get(subscription=sub)
    assert (contract.status, contract.ended_by) == (ContractStatus.UNSIGNING, ContractEnd.MERCHANT)  # still down
    (renewal,) = Order.objects.filter(subscription=sub, channel=Channel.RENEWAL)
    assert (renewal.status, renewal.failure_code) == (OrderStatus.FAILED, FailureCode.PAYMENT_DECLINED)
    assert renewal.created_at >= end
    assert not SimTrade.objects.filter(deducted_under=sub.contract_id).exists()  # never charged

    faults.set_mode("wechatpay", "ok")  # back: nothing is deducted for the lapsed subscription
    work(run_tasks, frozen, end + timedelta(days=20))
    assert not SimTrade.objects.filter(deducted_under=sub.contract_id).exists()
    # WeChat Pay was down for days: a person is asked to end the contract, on the item of the notice not sent.
    item = WorkItem.objects.get(order=order, kind="provider_disagrees", resolved_at=None)
    assert "pre-deduction notice" in item.detail and "could not end wechatpay deduction contract" in item.detail
    again = order_create(channel="epg", product_code="VIP-MONTH", tv_account="tv1001", actor=EPG, auto_renew=True)
    assert again.status == OrderStatus.PRECHECKING  # the product can be bought again


def test_a_refunded_alipay_period_lapses_the_subscription_instead_of_deducting_a_period_late(demo, run_tasks, frozen):
    """Alipay's agreed day moves one period on with each deduction and never back. Once a deducted period is
    refunded, the next deduction is refused until a period after the paid one ends: the subscription used to
    stay active, unpaid and unwatched for that period, refusing a new order, then deducted. It lapses at
    once: the paid days stay, the contract is ended at Alipay, the customer is told why, nothing more is
    deducted, and the product can be bought again."""
    from lifecycle import manual
    from orders.models.subscription import SubscriptionNotice

    _order, sub = subscribed(run_tasks, "alipay_qr")
    first_end = sub.current_period_end
    sub = to_reminder_and_renewal(run_tasks, frozen, sub)
    renewal = renewal_of(sub)
    assert renewal.status == OrderStatus.COMPLETED  # period 2 deducted a day before period 1 ends
    admin = Actor(ActorKind.ADMIN, "finance")
    assert manual.refund_by_admin(order_id=renewal.pk, reason="customer asked", actor=admin) == "provider_refund"
    run_tasks()
    renewal.refresh_from_db()
    sub.refresh_from_db()

    assert renewal.status == OrderStatus.REFUNDED
    assert (sub.status, sub.current_period_end) == (SubscriptionStatus.LAPSED, first_end)  # period 1 stays paid
    lapse = sub.events.get(action="lapse")
    assert "Alipay's agreed deduction day does not move back" in lapse.reason
    assert sim_contract(sub).status == SimContractStatus.TERMINATED
    told = SubscriptionNotice.objects.filter(subscription=sub, kind="lapsed").values_list("text", flat=True)
    assert [text for text in told if "有一期费用已退款" in text]

    work(run_tasks, frozen, first_end + timedelta(days=40))
    sub.refresh_from_db()
    assert sub.status == SubscriptionStatus.ENDED
    assert Order.objects.filter(subscription=sub, channel=Channel.RENEWAL).count() == 1  # nothing tried again
    assert SimTrade.objects.filter(deducted_under=sub.contract_id).count() == 1  # the refunded one only
    again = order_create(channel="epg", product_code="VIP-MONTH", tv_account="tv1001", actor=EPG, auto_renew=True)
    assert again.status == OrderStatus.PRECHECKING


def _deducted_then_not_provisioned(run_tasks, frozen, method: str) -> tuple[Subscription, Order]:
    """The renewal is deducted, then the SMP is down past the provisioning deadline: its money goes back."""
    _order, sub = subscribed(run_tasks, method)
    work(run_tasks, frozen, sub.next_reminder_at)
    sub.refresh_from_db()
    frozen.move_to(sub.next_renewal_at)
    subscriptions_sweep()
    run_tasks(holding=(PROVISION,))
    frozen.shift(timedelta(seconds=31))
    run_tasks(holding=(PROVISION,))  # WeChat Pay's result: by the query
    first = renewal_of(sub)
    assert first.status == OrderStatus.PROVISIONING
    faults.set_mode("smp", "down")
    for _ in range(40):
        frozen.shift(timedelta(seconds=60))
        run_tasks()
    faults.set_mode("smp", "ok")
    for _ in range(5):
        frozen.shift(timedelta(seconds=60))
        run_tasks()
    first.refresh_from_db()
    assert (first.status, first.failure_code) == (OrderStatus.REFUNDED, FailureCode.PROVISIONING_FAILED)
    sub.refresh_from_db()
    return sub, first


def test_a_wechatpay_deduction_given_back_spends_its_notice_and_the_retry_asks_for_a_new_one(demo, run_tasks, frozen):
    """WeChat Pay's notice allows one deduction: once taken, given back or not, the retry needs a new notice
    (it used to count the spent one as valid: every retry refused, RULE_LIMIT, and the subscription lapsed)."""
    sub, _first = _deducted_then_not_provisioned(run_tasks, frozen, "wechat_qr")
    assert ProviderContract.objects.get(subscription=sub).deduct_until is None  # spent
    for _ in range(6):
        sub.refresh_from_db()
        if sub.status != SubscriptionStatus.ACTIVE or renewal_of(sub).status == OrderStatus.COMPLETED:
            break
        work(run_tasks, frozen, sub.next_renewal_at)
        frozen.shift(timedelta(seconds=31))
        run_tasks()
    sub.refresh_from_db()
    assert sub.status == SubscriptionStatus.ACTIVE and renewal_of(sub).status == OrderStatus.COMPLETED
    assert sub.events.filter(action="deduction_notice_asked").exists()
    assert "RULE_LIMIT" not in " ".join(Order.objects.filter(subscription=sub).values_list("failure_detail", flat=True))


def test_an_alipay_deduction_given_back_lapses_the_subscription(demo, run_tasks, frozen):
    """Alipay's agreed day moved on with the deduction and does not move back: no retry can be deducted before
    the paid period ends, so the subscription lapses at once, as after a refunded period (not three retries
    refused, nor a month unpaid)."""
    sub, _first = _deducted_then_not_provisioned(run_tasks, frozen, "alipay_qr")
    assert sub.status == SubscriptionStatus.LAPSED
    assert "Alipay's agreed deduction day does not move back" in sub.events.get(action="lapse").reason
    assert Order.objects.filter(subscription=sub, channel=Channel.RENEWAL).count() == 1
    assert ProviderContract.objects.get(subscription=sub).plan_at == sim_contract(sub).plan_at


# --- 4. reconciliation ------------------------------------------------------------------------------


def test_deductions_reconcile_and_one_we_never_asked_for_is_a_discrepancy(demo, run_tasks, frozen):
    """The day of a deduction and its refund reconciles three ways like a QR payment; a deduction the provider
    reports under our contract that we never sent (its out_trade_no is no order of ours) is ``missing_here``,
    open for a person."""
    from billing.models import Discrepancy
    from billing.models.reconciliation import Outcome
    from billing.reconciliation.services import reconcile_day
    from sandbox.models import SimTradeStatus

    _order, sub = subscribed(run_tasks, "wechat_qr")
    sub = to_reminder_and_renewal(run_tasks, frozen, sub)
    renewal = renewal_of(sub)
    status, answer = sandbox_post("wechatpay/pay/", {"out_trade_no": renewal.order_no})
    assert status == 200 and answer["delivered"]
    run_tasks()
    renewal.refresh_from_db()
    assert renewal.status == OrderStatus.COMPLETED
    now = timezone.localtime()
    SimTrade.objects.create(
        provider="wechatpay", out_trade_no="PAPNEVERASKED0000000001", transaction_id="4200009999202701049999999999",
        amount_fen=2500, description="VIP", status=SimTradeStatus.PAID, expires_at=now, paid_at=now,
        deducted_under=sub.contract_id, attach=f"{sub.subscription_no}P2",
    )  # fmt: skip

    from lifecycle import manual

    admin = Actor(ActorKind.ADMIN, "finance")
    assert manual.refund_by_admin(order_id=renewal.pk, reason="customer asked", actor=admin) == "provider_refund"
    run_tasks()
    frozen.move_to(now.replace(hour=9, minute=0) + timedelta(days=1))
    run = reconcile_day(now.date())

    items = {(i.source, i.kind, i.order_no or i.reference): i.outcome for i in run.items.all()}
    assert items == {
        # The deduction, its refund, and the period subscribed then taken back at the SMP: all matched.
        ("wechatpay", "payment", renewal.order_no): Outcome.MATCHED,
        ("wechatpay", "refund", renewal.order_no): Outcome.MATCHED,
        ("smp", "subscription", renewal.order_no): Outcome.MATCHED,
        ("smp", "unsubscription", renewal.order_no): Outcome.MATCHED,
        ("wechatpay", "payment", "PAPNEVERASKED0000000001"): Outcome.MISSING_HERE,
    }
    unasked = Discrepancy.objects.get(day=now.date(), outcome=Outcome.MISSING_HERE)
    assert "PAPNEVERASKED0000000001" in (unasked.order_no, unasked.reference)
    assert (unasked.source, unasked.status) == ("wechatpay", "open")
    assert not run.clean


# --- 5. a deduction whose answer does not come ----------------------------------------------------


def test_a_close_the_provider_does_not_confirm_keeps_the_deduction_open_and_never_deducts_twice(
    demo, run_tasks, frozen
):
    """WeChat Pay takes the deduction but answers nothing for longer than the answer window, then will not
    confirm the close: the renewal stays open (no second renewal order, so no second deduction), the close is
    tried again with backoff, a person is asked, and when WeChat Pay answers again the money taken completes
    the period."""
    _order, sub = subscribed(run_tasks, "wechat_qr")
    sub = to_reminder_and_renewal(run_tasks, frozen, sub)
    renewal = renewal_of(sub)
    assert renewal.status == OrderStatus.PAYMENT_PENDING
    faults.set_mode("wechatpay", "down")
    for _ in range(60):  # an hour: the answer window (30 minutes), then the close, again and again
        frozen.shift(timedelta(minutes=1))
        subscriptions_sweep()
        run_tasks()
    renewal.refresh_from_db()
    assert renewal.status == OrderStatus.PAYMENT_PENDING, (renewal.status, renewal.failure_code)
    assert Payment.objects.get(order=renewal).status not in ("closed", "failed")
    assert Order.objects.filter(subscription=sub, channel=Channel.RENEWAL).count() == 1
    assert "may still be paid" in WorkItem.objects.get(order=renewal, kind="provider_disagrees").detail

    faults.set_mode("wechatpay", "ok")
    for _ in range(10):
        frozen.shift(timedelta(minutes=5))
        run_tasks()
    renewal.refresh_from_db()
    sub.refresh_from_db()
    assert renewal.status == OrderStatus.COMPLETED  # the close found it paid: the period is provisioned
    assert LedgerEntry.objects.filter(order=renewal).count() == 1 and sub.periods == 2
    assert Order.objects.filter(subscription=sub, channel=Channel.RENEWAL).count() == 1


def test_deductions_stuck_at_a_provider_that_is_down_do_not_hold_back_other_renewals(demo, run_tasks, frozen, settings):
    """The sweep bounds the renewals it starts by those the workers still have to move on (pre-checks):
    a renewal whose deduction WeChat Pay holds, unanswered, does not count, or one provider's outage would
    stop every other subscription's renewal (here the bound is 1 and WeChat Pay's renewal is stuck)."""
    settings.SUBSCRIPTION_SWEEP_BATCH = 1
    wechat = order_create(channel="epg", product_code="VIP-MONTH", tv_account="tv1002", actor=EPG, auto_renew=True)
    run_tasks()
    payment_choose(order_id=wechat.pk, method="wechat_qr", actor=EPG)
    _order, stuck_sub = subscribed(run_tasks, "wechat_qr", (wechat, Payment.objects.get(order=wechat)))
    frozen.shift(timedelta(days=1))
    phone_bill = order_create(channel="epg", product_code="VIP-MONTH", tv_account="tv1001", actor=EPG, auto_renew=True)
    run_tasks()
    payment_choose(order_id=phone_bill.pk, method="phone_bill", actor=EPG)
    run_tasks()
    phone_bill.refresh_from_db()
    assert phone_bill.status == OrderStatus.COMPLETED
    sub = phone_bill.subscription

    stuck_sub = to_reminder_and_renewal(run_tasks, frozen, stuck_sub)
    stuck = renewal_of(stuck_sub)
    assert stuck.status == OrderStatus.PAYMENT_PENDING  # the deduction is at WeChat Pay
    faults.set_mode("wechatpay", "down")  # and it answers nothing from now on
    sub.refresh_from_db()
    work(run_tasks, frozen, sub.next_reminder_at)
    sub.refresh_from_db()
    work(run_tasks, frozen, sub.next_renewal_at)
    for _ in range(6):
        work(run_tasks, frozen, timezone.now() + timedelta(minutes=10))

    stuck.refresh_from_db()
    assert stuck.status == OrderStatus.PAYMENT_PENDING
    renewal = renewal_of(sub)
    assert renewal is not None and renewal.status == OrderStatus.COMPLETED
    sub.refresh_from_db()
    assert sub.periods == 2


def test_a_deduction_sent_late_is_queried_before_it_is_closed(demo, run_tasks, frozen):
    """The renewal's deduction is sent 40 minutes after its intent was written (a backlog): the answer window
    starts when it is sent, so the deduction is queried and completes, not closed unanswered at once."""
    from lifecycle.due import order_process_due

    _order, sub = subscribed(run_tasks, "wechat_qr")
    work(run_tasks, frozen, sub.next_reminder_at)
    sub.refresh_from_db()
    frozen.move_to(sub.next_renewal_at)
    subscriptions_sweep()
    renewal = renewal_of(sub)
    order_process_due(order_id=renewal.pk)  # the pre-check: the deduction is written as an intent
    renewal.refresh_from_db()
    assert renewal.status == OrderStatus.PAYMENT_PENDING and not SimTrade.objects.filter(out_trade_no=renewal.order_no)
    frozen.shift(timedelta(minutes=40))
    run_tasks()  # sent now
    assert SimTrade.objects.get(out_trade_no=renewal.order_no).deducted_under == sub.contract_id
    frozen.shift(timedelta(seconds=31))  # WeChat Pay takes it 10 s after it was sent; the query finds it
    run_tasks()
    renewal.refresh_from_db()
    assert renewal.status == OrderStatus.COMPLETED, (renewal.status, renewal.failure_code)
    assert SimTrade.objects.get(out_trade_no=renewal.order_no).status == "SUCCESS"
