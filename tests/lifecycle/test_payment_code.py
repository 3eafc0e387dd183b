"""Payment codes scanned at the counter (docs/interfaces.md §10): every sandbox outcome at both providers,
the query/reverse loop in time, a reverse that does not go through, money that comes after the end, codes
used twice or nobody's, a cancel while the customer confirms, a lost task, and the money in the ledger,
the reconciliation and the shift totals.

The clerk's actions are the lifecycle's services; the providers are the sandbox's simulators (the HTTP
clients against the served fakes: tests/billing/test_payment_code_clients.py; the pages in a browser:
tests/channels_crm/test_browser_payment_code.py). The worker is ``run_tasks``, time is ``time_machine``.
"""

from __future__ import annotations

import dataclasses
import io
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.test import Client
from django.utils import timezone, translation

from adapters.providers.types import ProviderUnavailable, TradeState
from billing.models import LedgerEntry, Payment, PaymentCodeUse, Refund, WorkItem, WorkItemKind
from billing.reconciliation.importer import statement_import
from billing.reconciliation.services import reconcile_day
from ipvas.actors import Actor, ActorKind
from ipvas.errors import InvalidInput
from ipvas.models import OutboxMessage
from lifecycle.due import deadlines_sweep
from lifecycle.paying import order_cancel, payment_choose
from lifecycle.placing import order_create
from orders.constants import Channel, FailureCode, OrderStatus, PaymentMethod
from orders.models import Order, OrderEvent, Product
from sandbox import faults, payments
from sandbox import statements as sandbox_statements
from sandbox.models import SimSmpSubscription, SimTrade, SimTradeStatus

pytestmark = pytest.mark.django_db

CLERK = Actor(ActorKind.CLERK, "clerk01")
START = "2026-12-05 10:00:00+08:00"
# The sandbox codes of §10, by provider: an 18-digit WeChat Pay code, a 16- to 24-digit Alipay code.
PREFIX = {"wechatpay": "13456789012345", "alipay": "28123456789012"}


def code(provider: str, ending: str, *, serial: int = 0) -> str:
    """A sandbox code of ``provider`` with ``ending`` (18 digits for WeChat Pay, 18 for Alipay here)."""
    head = PREFIX[provider]
    return f"{head[:-2]}{serial:02d}{ending}"


@pytest.fixture
def frozen(time_machine):
    time_machine.move_to(START, tick=False)
    return time_machine


@pytest.fixture(params=["wechatpay", "alipay"])
def provider(request) -> str:
    return request.param


def counter_order(run_tasks, *, product: str = "VIP-MONTH", phone: str = "13800000001") -> Order:
    clerk = get_user_model().objects.get(username="crm-clerk01")
    order = order_create(
        channel=Channel.CRM, product_code=product, phone=phone, actor=CLERK, clerk=clerk, store_code="NX-YC-001"
    )
    run_tasks()
    order.refresh_from_db()
    assert order.status == OrderStatus.AWAITING_PAYMENT, order.failure_code
    return order


def scan(order: Order, scanned: str) -> Order:
    payment_choose(order_id=order.pk, method=PaymentMethod.PAYMENT_CODE, code=scanned, actor=CLERK)
    order.refresh_from_db()
    return order


def later(run_tasks, frozen, seconds: float) -> None:
    """Time passes; the worker runs what is due (the sweep too, as beat does)."""
    frozen.shift(timedelta(seconds=seconds))
    deadlines_sweep()
    run_tasks()


def trade_of(order: Order) -> SimTrade:
    payment = Payment.objects.get(order=order, method=PaymentMethod.PAYMENT_CODE)
    return SimTrade.objects.get(provider=payment.provider, out_trade_no=payment.out_trade_no)


def actions(order: Order) -> list[str]:
    return list(OrderEvent.objects.filter(order=order).values_list("action", flat=True))


# --- the sandbox codes, end to end ----------------------------------------------------------------------


def test_paid_at_once_is_provisioned_in_the_zero_price_package(demo, run_tasks, frozen, provider):
    order = counter_order(run_tasks)
    scanned = code(provider, "0000")

    order = scan(order, scanned)

    assert (order.status, order.payment_method) == ("payment_pending", "payment_code")
    assert order.deadline_at == timezone.now()  # due at once: the due work charges the code
    payment = Payment.objects.get(order=order)
    assert (payment.provider, payment.method, payment.status, payment.out_trade_no) == (
        provider, "payment_code", "creating", order.order_no
    )  # fmt: skip
    assert payment.expires_at == timezone.now() + timedelta(seconds=60)
    assert PaymentCodeUse.objects.get(payment=payment).code == scanned
    run_tasks()
    order.refresh_from_db()
    assert order.status == OrderStatus.COMPLETED, (order.status, order.failure_code)
    subscription = SimSmpSubscription.objects.get(order_no=order.order_no)
    assert (subscription.charge, subscription.amount_fen, subscription.package_code) == (
        "prepaid", 0, "SMP-VIP-MONTH-0"
    )  # fmt: skip
    trade = trade_of(order)
    assert (trade.status, trade.auth_code, trade.amount_fen) == ("SUCCESS", scanned, 2500)
    entry = LedgerEntry.objects.get(order=order)
    assert (entry.kind, entry.method, entry.provider, entry.amount_fen) == ("payment", "payment_code", provider, 2500)
    assert entry.idempotency_key == f"{provider}:payment:{trade.transaction_id}"
    assert actions(order)[-3:] == ["start_payment", "payment_confirmed", "complete"]


def test_confirming_in_the_app_is_queried_every_5_s_and_paid_after_10_s(demo, run_tasks, frozen, provider):
    order = scan(counter_order(run_tasks), code(provider, "0001"))
    run_tasks()  # the charge: the customer is asked to confirm in the app
    order.refresh_from_db()
    assert order.status == OrderStatus.PAYMENT_PENDING
    assert order.deadline_at == timezone.now() + timedelta(seconds=5)
    assert trade_of(order).status == SimTradeStatus.USER_PAYING
    assert "payment_code_waiting" in actions(order)

    later(run_tasks, frozen, 5)  # the first query: still confirming
    order.refresh_from_db()
    assert (order.status, order.deadline_at) == ("payment_pending", timezone.now() + timedelta(seconds=5))

    later(run_tasks, frozen, 5)  # 10 s after the scan the customer has confirmed
    order.refresh_from_db()
    assert order.status == OrderStatus.COMPLETED, (order.status, order.failure_code)
    assert Payment.objects.get(order=order).status == "paid"
    assert LedgerEntry.objects.filter(order=order, kind="payment").count() == 1


@pytest.mark.parametrize(
    ("ending", "reason"),
    [("0002", {"wechatpay": "TRADE_ERROR", "alipay": "ACQ.PAYMENT_FAIL"}),
     ("0004", {"wechatpay": "NOT_ENOUGH", "alipay": "ACQ.BUYER_BALANCE_NOT_ENOUGH"})],
)  # fmt: skip
def test_declined_and_insufficient_funds_fail_the_order(demo, run_tasks, frozen, provider, ending, reason):
    order = scan(counter_order(run_tasks), code(provider, ending))
    run_tasks()
    order.refresh_from_db()

    assert (order.status, order.failure_code) == (OrderStatus.FAILED, FailureCode.PAYMENT_DECLINED)
    assert order.failure_detail.startswith(reason[provider])
    assert order.deadline_at is None
    assert Payment.objects.get(order=order).status == "failed"
    assert not LedgerEntry.objects.filter(order=order).exists()
    assert not SimSmpSubscription.objects.filter(order_no=order.order_no).exists()
    with translation.override("en"):
        assert order.failure_message == "The payment was declined."


def test_a_provider_that_never_answers_is_queried_for_60_s_then_reversed(demo, run_tasks, frozen, provider):
    order = scan(counter_order(run_tasks), code(provider, "0003"))
    run_tasks()  # the charge gets no answer: its outcome is unknown
    order.refresh_from_db()
    assert (order.status, order.deadline_at) == ("payment_pending", timezone.now() + timedelta(seconds=5))
    assert trade_of(order).status == SimTradeStatus.USER_PAYING  # the provider has it, we never heard

    deadlines = []
    for _ in range(11):  # queries at 5, 10 ... 55 s: still no result
        later(run_tasks, frozen, 5)
        order.refresh_from_db()
        assert order.status == OrderStatus.PAYMENT_PENDING
        deadlines.append(order.deadline_at)
    assert deadlines[-1] == timezone.now() + timedelta(seconds=5)  # the window's end, 60 s after the scan

    later(run_tasks, frozen, 5)  # 60 s: a last look, then the reverse
    order.refresh_from_db()
    assert (order.status, order.failure_code) == (OrderStatus.EXPIRED, FailureCode.PAYMENT_TIMEOUT)
    assert trade_of(order).status == SimTradeStatus.REVOKED
    assert Payment.objects.get(order=order).status == "reversed"
    assert not LedgerEntry.objects.filter(order=order).exists()
    assert not WorkItem.objects.filter(order=order).exists()
    with pytest.raises(payments.SandboxRefusal):  # the customer can no longer pay it in the app
        payments.pay_trade(provider, order.order_no)


def test_the_query_window_is_a_setting_of_its_own(demo, run_tasks, frozen, settings):
    settings.PAYMENT_CODE_QUERY_SECONDS = 12
    settings.PAYMENT_WINDOW_SECONDS = 600  # the QR window has nothing to do with it
    order = scan(counter_order(run_tasks), code("alipay", "0003"))
    run_tasks()
    later(run_tasks, frozen, 5)
    later(run_tasks, frozen, 5)
    order.refresh_from_db()
    assert (order.status, order.deadline_at) == ("payment_pending", timezone.now() + timedelta(seconds=2))
    later(run_tasks, frozen, 2)
    order.refresh_from_db()
    assert (order.status, order.failure_code) == (OrderStatus.EXPIRED, FailureCode.PAYMENT_TIMEOUT)


# --- reverses that do not go through, and money after the end -----------------------------------------


def test_a_reverse_that_times_out_is_retried_then_asks_a_person(demo, run_tasks, frozen, provider, settings):
    settings.PAYMENT_CODE_REVERSE_ATTEMPTS = 4
    order = scan(counter_order(run_tasks), code(provider, "0003"))
    run_tasks()
    later(run_tasks, frozen, 55)
    faults.set_mode(provider, "down")  # the reverse gets no answer either

    later(run_tasks, frozen, 5)
    order.refresh_from_db()
    assert (order.status, order.failure_code) == (OrderStatus.EXPIRED, FailureCode.PAYMENT_TIMEOUT)
    assert Payment.objects.get(order=order).status == "pending"  # not known to be reversed
    assert not WorkItem.objects.filter(order=order).exists()

    for seconds in (5, 10, 20):  # attempts 1, 2, 3 after the first, backing off
        assert not WorkItem.objects.filter(order=order).exists()
        later(run_tasks, frozen, seconds)
    item = WorkItem.objects.get(order=order)
    assert item.kind == "provider_disagrees" and "could not reverse" in item.detail
    assert trade_of(order).status == SimTradeStatus.USER_PAYING
    assert not OutboxMessage.objects.filter(task_name="lifecycle.tasks.reverse_payment_code", relayed_at=None).exists()


def test_a_reverse_retried_goes_through_when_the_provider_is_back(demo, run_tasks, frozen, provider):
    order = scan(counter_order(run_tasks), code(provider, "0003"))
    run_tasks()
    later(run_tasks, frozen, 55)
    faults.set_mode(provider, "down")
    later(run_tasks, frozen, 5)
    faults.set_mode(provider, "ok")

    later(run_tasks, frozen, 5)

    assert trade_of(order).status == SimTradeStatus.REVOKED
    assert Payment.objects.get(order=order).status == "reversed"
    assert not WorkItem.objects.filter(order=order).exists()


def notify_paid(provider: str, trade: SimTrade) -> tuple:
    """The provider's paid notification of ``trade`` as it is now, signed: a way to post it later."""
    if provider == "alipay":
        form = urlencode(payments.alipay_notification(trade))
        return "/billing/notify/alipay/", form, "application/x-www-form-urlencoded", {}
    body, headers = payments.wechatpay_notification(trade)
    meta = {"HTTP_" + name.upper().replace("-", "_"): value for name, value in headers.items()}
    return "/billing/notify/wechatpay/", body, "application/json", meta


def post(notification: tuple):  # type: ignore[no-untyped-def]
    url, body, content_type, meta = notification
    return Client().post(url, data=body, content_type=content_type, **meta)


def test_a_paid_notification_after_the_reverse_gave_the_money_back_is_noted_not_refunded(
    demo, run_tasks, time_machine, provider, monkeypatch
):
    """The customer confirms in the app a moment before the window's end; the reverse then gives the money
    back (a paid trade's reverse is the provider's own refund), and the paid notification of that moment
    arrives after it. A refund now would be refused (the trade is reversed) and leave the ledger holding money
    the customer has back: the payment notes it, the ledger holds nothing, nothing is asked of anyone, and the
    day reconciles clean against the provider's bill."""
    from sandbox.simulators.providers import SimulatedProvider

    frozen = time_machine
    frozen.move_to("2026-11-25 10:00:00+08:00", tick=False)
    day = timezone.localdate()
    order = scan(counter_order(run_tasks), code(provider, "0003"))
    run_tasks()
    reverse, sent = SimulatedProvider.reverse, []

    def paid_first(self, out_trade_no):  # type: ignore[no-untyped-def]
        sent.append(notify_paid(provider, payments.pay_trade(provider, out_trade_no)))
        return reverse(self, out_trade_no)

    monkeypatch.setattr(SimulatedProvider, "reverse", paid_first)
    later(run_tasks, frozen, 60)
    order.refresh_from_db()
    assert (order.status, order.failure_code) == (OrderStatus.EXPIRED, FailureCode.PAYMENT_TIMEOUT)
    assert (trade_of(order).status, trade_of(order).refunded_fen) == (SimTradeStatus.REVOKED, 2500)

    for _ in range(2):  # the provider delivers it again: a duplicate
        answer = post(sent[0])
        assert answer.status_code in (200, 204) and answer.content in (b"success", b""), answer.content
        run_tasks()
    later(run_tasks, frozen, 600)

    order.refresh_from_db()
    assert (order.status, order.failure_code) == (OrderStatus.EXPIRED, FailureCode.PAYMENT_TIMEOUT)
    payment = Payment.objects.get(order=order)
    assert payment.status == "reversed" and payment.provider_txn_id == trade_of(order).transaction_id
    assert payment.paid_at is not None
    assert not LedgerEntry.objects.filter(order=order).exists()  # no money of ours moved
    assert not Refund.objects.filter(order=order).exists()  # nothing asked of the provider again
    assert trade_of(order).refunded_fen == 2500  # given back once, by the reverse
    assert not WorkItem.objects.filter(order=order).exists()
    assert list(notification_outcomes(order)) == ["given back by the reverse"]
    assert not SimSmpSubscription.objects.filter(order_no=order.order_no).exists()  # never provisioned

    frozen.move_to("2026-11-26 09:00:00+08:00", tick=False)
    bill = sandbox_statements.statement_file(provider, day).read()
    statement_import(source=provider, day=day, stream=io.BytesIO(bill), file_name="bill.csv")
    run = reconcile_day(day)
    assert not [item for item in run.items.all() if item.order_no == order.order_no and item.outcome != "matched"]


def paid_then_reversed(run_tasks, frozen, monkeypatch, provider: str) -> Order:  # type: ignore[no-untyped-def]
    """A payment code's trade the customer pays a moment before the window's end; our reverse then gives the
    money back, and no paid notification ever comes (WeChat Pay sends none for payment codes)."""
    from sandbox.simulators.providers import SimulatedProvider

    order = scan(counter_order(run_tasks), code(provider, "0003"))
    run_tasks()
    reverse = SimulatedProvider.reverse

    def paid_first(self, out_trade_no):  # type: ignore[no-untyped-def]
        payments.pay_trade(provider, out_trade_no)
        return reverse(self, out_trade_no)

    monkeypatch.setattr(SimulatedProvider, "reverse", paid_first)
    later(run_tasks, frozen, 60)
    monkeypatch.setattr(SimulatedProvider, "reverse", reverse)
    order.refresh_from_db()
    assert (order.status, Payment.objects.get(order=order).status) == (OrderStatus.EXPIRED, "reversed")
    assert (trade_of(order).status, trade_of(order).refunded_fen) == (SimTradeStatus.REVOKED, 2500)
    assert not LedgerEntry.objects.filter(order=order).exists()
    return order


def reconciled(provider: str, *days) -> dict[str, list]:  # type: ignore[no-untyped-def]
    """The provider's bills of ``days`` imported, each day reconciled: {order_no: [(outcome, kind, codes)]}."""
    from billing.models import ReconciliationItem

    for day in days:
        bill = sandbox_statements.statement_file(provider, day).read()
        statement_import(source=provider, day=day, stream=io.BytesIO(bill), file_name=f"bill-{day}.csv")
    found: dict[str, list] = {}
    for day in days:
        reconcile_day(day)
    for item in ReconciliationItem.objects.filter(source=provider).order_by("pk"):
        codes = [code for code, _facts in item.explanation or []]
        found.setdefault(item.order_no, []).append((item.outcome, item.kind, codes))
    return found


def test_wechat_pay_lists_a_trade_paid_then_reversed_and_the_day_reconciles_clean(demo, run_tasks, frozen, monkeypatch):
    """WeChat Pay lists a trade reversed after it was paid, under its own number: its payment (SUCCESS) and the
    reverse giving it back (REVOKED). The file used to be refused whole, and the day went uncompared; now both
    rows are explained by our reversed payment, and nothing is asked of anyone."""
    day = timezone.localdate()
    order = paid_then_reversed(run_tasks, frozen, monkeypatch, "wechatpay")
    frozen.move_to("2026-12-06 09:00:00+08:00", tick=False)

    bill = sandbox_statements.statement_file("wechatpay", day).read().decode()
    rows = [row for row in bill.split("\r\n") if f"`{order.order_no}," in row]
    assert [row.split(",`")[9] for row in rows] == ["SUCCESS", "REVOKED"]

    assert reconciled("wechatpay", day)[order.order_no] == [
        ("matched", "payment", ["paid_then_reversed"]),
        ("matched", "reversal", ["given_back_by_reverse"]),
    ]


def test_a_trade_paid_before_midnight_and_reversed_after_it_is_paired_across_the_two_bills(
    demo, run_tasks, time_machine, monkeypatch
):
    time_machine.move_to("2026-12-05 23:59:30+08:00", tick=False)
    first = timezone.localdate()
    order = paid_then_reversed(run_tasks, time_machine, monkeypatch, "wechatpay")
    # The customer confirmed at 23:59:50; the reverse came at 00:00:30.
    SimTrade.objects.filter(out_trade_no=order.order_no).update(paid_at=timezone.now() - timedelta(seconds=40))
    second = timezone.localdate()
    assert second == first + timedelta(days=1)
    time_machine.move_to("2026-12-07 09:00:00+08:00", tick=False)

    assert reconciled("wechatpay", first, second)[order.order_no] == [
        ("matched", "payment", ["paid_then_reversed"]),
        ("matched", "reversal", ["given_back_by_reverse"]),
    ]


def test_a_reversed_trade_the_provider_lists_paid_and_never_given_back_is_a_discrepancy(
    demo, run_tasks, frozen, monkeypatch
):
    """Our reverse said done, yet the bill lists the trade paid and no reverse: the provider holds the money."""
    day = timezone.localdate()
    order = paid_then_reversed(run_tasks, frozen, monkeypatch, "wechatpay")
    SimTrade.objects.filter(out_trade_no=order.order_no).update(refunded_fen=0, reversed_at=None)
    frozen.move_to("2026-12-06 09:00:00+08:00", tick=False)

    assert reconciled("wechatpay", day)[order.order_no] == [("missing_here", "payment", ["no_ledger_entry"])]


def test_a_reverse_the_provider_lists_for_a_payment_we_hold_paid_is_a_discrepancy(demo, run_tasks, frozen):
    """The trade was reversed at WeChat Pay (the customer has the money back) while the order was paid and
    provisioned here: the payment matches our ledger, the reverse is missing here."""
    day = timezone.localdate()
    order = scan(counter_order(run_tasks), code("wechatpay", "0000"))
    run_tasks()
    order.refresh_from_db()
    assert order.status == OrderStatus.COMPLETED
    payments.reverse_trade("wechatpay", order.order_no)
    frozen.move_to("2026-12-06 09:00:00+08:00", tick=False)

    assert reconciled("wechatpay", day)[order.order_no] == [
        ("matched", "payment", []),
        ("missing_here", "reversal", ["no_ledger_entry"]),
    ]


def notification_outcomes(order: Order):  # type: ignore[no-untyped-def]
    from billing.models import PaymentNotification

    return PaymentNotification.objects.filter(payment__order=order).values_list("outcome", flat=True)


def test_money_found_by_the_last_look_is_kept(demo, run_tasks, frozen, provider):
    order = scan(counter_order(run_tasks), code(provider, "0003"))
    run_tasks()
    later(run_tasks, frozen, 55)
    payments.pay_trade(provider, order.order_no)  # the customer confirms at the last second

    later(run_tasks, frozen, 5)

    order.refresh_from_db()
    assert order.status == OrderStatus.COMPLETED
    assert trade_of(order).status == SimTradeStatus.PAID  # not reversed


def test_a_payment_recorded_while_the_last_reverse_settles_is_told_to_a_person(
    demo, run_tasks, frozen, provider, monkeypatch
):
    """At the window's end the trade is reversed; the customer had paid at the last second, and the
    provider's paid notification is applied just after the reverse's last look and before it settles the
    order: the order is provisioned while the reverse gave the money back. A person must be told."""
    from lifecycle import paid
    from lifecycle import payment_code as lifecycle_payment_code
    from sandbox.simulators.providers import SimulatedProvider

    order = scan(counter_order(run_tasks), code(provider, "0003"))
    run_tasks()
    trade_no = Payment.objects.get(order=order).out_trade_no
    reverse, looked = SimulatedProvider.reverse, lifecycle_payment_code._paid_meanwhile
    looks = []

    def paid_first(self, out_trade_no):  # type: ignore[no-untyped-def]
        payments.pay_trade(provider, out_trade_no)  # the customer confirms at the last second
        return reverse(self, out_trade_no)  # and the reverse gives that money back

    def look(payment):  # type: ignore[no-untyped-def]
        answer = looked(payment)
        looks.append(answer)
        if len(looks) == 2:  # the notification is applied right after the reverse's last look
            paid.payment_succeeded(
                provider=provider, out_trade_no=trade_no, transaction_id="T-LATE", amount_fen=2500,
                paid_at=timezone.now(), actor=CLERK,
            )  # fmt: skip
        return answer

    monkeypatch.setattr(SimulatedProvider, "reverse", paid_first)
    monkeypatch.setattr(lifecycle_payment_code, "_paid_meanwhile", look)
    later(run_tasks, frozen, 61)

    assert looks[:2] == [False, False]
    assert trade_of(order).refunded_fen == 2500  # the reverse gave it back
    item = WorkItem.objects.get(order=order, kind="provider_disagrees")
    assert "reversed while it was paid" in item.detail


# --- codes refused at once -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scanned", "says"),
    [
        ("", "Scan the customer's payment code."),
        ("1345678901234567ab", "digits only"),
        ("13456789O123450000", "digits only"),
        ("194567890123450000", "not a WeChat Pay or Alipay payment code"),  # 18 digits, prefix 19
        ("091234567890120000", "not a WeChat Pay or Alipay payment code"),
        ("1345678901234500000", "not a WeChat Pay or Alipay payment code"),  # WeChat Pay prefix, 19 digits
        ("13456789012340000", "not a WeChat Pay or Alipay payment code"),  # 17 digits
        ("281234567890000", "not a WeChat Pay or Alipay payment code"),  # Alipay prefix, 15 digits
        ("2812345678901234567890000", "not a WeChat Pay or Alipay payment code"),  # 25 digits
        ("311234567890120000", "not a WeChat Pay or Alipay payment code"),
    ],
)
def test_a_code_that_is_nobodys_is_refused_at_once(demo, run_tasks, scanned, says):
    order = counter_order(run_tasks)

    with translation.override("en"), pytest.raises(InvalidInput) as refused:
        scan(order, scanned)

    assert says in str(refused.value.message)
    assert says in refused.value.fields["code"][0]
    order.refresh_from_db()
    assert order.status == OrderStatus.AWAITING_PAYMENT
    assert not Payment.objects.filter(order=order).exists()
    assert not PaymentCodeUse.objects.exists()


@pytest.mark.parametrize(
    "scanned",
    [
        "100000000000000000",
        "159999999999990000",
        "2500000000000000",
        "300000000000000000000000",
        "28 1234 5678 9012 0000",
    ],
)
def test_the_edges_of_each_providers_codes_are_taken(demo, run_tasks, scanned):
    order = scan(counter_order(run_tasks), scanned)
    assert order.status == OrderStatus.PAYMENT_PENDING
    expected = "wechatpay" if scanned[0] == "1" else "alipay"
    assert Payment.objects.get(order=order).provider == expected
    assert PaymentCodeUse.objects.get().code == scanned.replace(" ", "")


def test_a_code_used_twice_is_refused_at_once(demo, run_tasks, frozen, provider):
    scanned = code(provider, "0000")
    first = scan(counter_order(run_tasks), scanned)
    run_tasks()
    second = counter_order(run_tasks)

    with translation.override("en"), pytest.raises(InvalidInput) as refused:
        scan(second, scanned)
    assert "used already" in str(refused.value.message)
    with pytest.raises(InvalidInput):  # the same order again, after it was paid: refused too
        scan(first, scanned)

    second.refresh_from_db()
    assert second.status == OrderStatus.AWAITING_PAYMENT
    assert not Payment.objects.filter(order=second).exists()
    assert PaymentCodeUse.objects.count() == 1
    assert SimTrade.objects.filter(auth_code=scanned).count() == 1  # charged once


def test_a_declined_order_cannot_be_scanned_again(demo, run_tasks, frozen):
    order = scan(counter_order(run_tasks), code("wechatpay", "0002"))
    run_tasks()
    with translation.override("en"), pytest.raises(Exception, match="cannot"):
        scan(order, code("wechatpay", "0000", serial=1))
    assert PaymentCodeUse.objects.count() == 1


def test_payment_codes_are_a_counter_method_only(demo, run_tasks):
    product = Product.objects.get(code="VIP-MONTH")
    assert PaymentMethod.PAYMENT_CODE in product.methods_on(Channel.CRM)
    assert PaymentMethod.PAYMENT_CODE not in product.methods_on(Channel.EPG)
    epg = order_create(channel=Channel.EPG, product_code="VIP-MONTH", tv_account="tv1001", actor=CLERK)
    run_tasks()
    with pytest.raises(InvalidInput):
        payment_choose(order_id=epg.pk, method="payment_code", code=code("wechatpay", "0000"), actor=CLERK)
    renewing = order_create(
        channel=Channel.CRM, product_code="VIP-MONTH", phone="13800000001", actor=CLERK, auto_renew=True
    )
    run_tasks()
    with pytest.raises(InvalidInput):  # a subscription cannot renew by a payment code
        payment_choose(order_id=renewing.pk, method="payment_code", code=code("wechatpay", "0000"), actor=CLERK)
    assert not PaymentCodeUse.objects.exists()

    product.channels = [Channel.EPG]
    product.payment_methods = [PaymentMethod.PAYMENT_CODE, PaymentMethod.WECHAT_QR]
    with translation.override("en"):
        with pytest.raises(ValidationError) as invalid:
            product.full_clean()
        assert "only scanned in business halls" in str(invalid.value.message_dict["payment_methods"])


# --- cancel, lost tasks, crashes --------------------------------------------------------------------------


def test_cancel_while_the_customer_confirms_reverses_the_trade(demo, run_tasks, frozen, provider):
    order = scan(counter_order(run_tasks), code(provider, "0001"))
    run_tasks()
    assert trade_of(order).status == SimTradeStatus.USER_PAYING

    order_cancel(order_id=order.pk, actor=CLERK)
    run_tasks()

    order.refresh_from_db()
    assert (order.status, order.failure_code) == (OrderStatus.CANCELLED, FailureCode.CANCELLED)
    assert trade_of(order).status == SimTradeStatus.REVOKED
    assert Payment.objects.get(order=order).status == "reversed"
    later(run_tasks, frozen, 10)  # the customer's confirmation would have come now: it cannot pay any more
    assert trade_of(order).status == SimTradeStatus.REVOKED
    assert not LedgerEntry.objects.filter(order=order).exists()


def cancelled_while_the_charge_is_on_its_way(  # type: ignore[no-untyped-def]
    run_tasks, monkeypatch, provider: str, *, sent_after=lambda: None, in_the_call=lambda: None
) -> tuple[Order, list[object]]:
    """A code the customer will confirm in the app is scanned; ``sent_after`` passes before the worker sends
    its charge, and while the charge is on its way (``in_the_call`` passing too) the clerk cancels and the
    reverse runs, before the charge reaches the provider. Returns the order and what the tasks then returned."""
    from sandbox.simulators.providers import SimulatedProvider

    order = scan(counter_order(run_tasks), code(provider, "0001"))
    charge = SimulatedProvider.pay_code
    found: list[object] = []

    def on_its_way(self, request):  # type: ignore[no-untyped-def]
        in_the_call()
        order_cancel(order_id=order.pk, actor=CLERK)
        found.extend(result for _, result in run_tasks())  # the reverse runs before the charge arrives
        return charge(self, request)

    monkeypatch.setattr(SimulatedProvider, "pay_code", on_its_way)
    sent_after()
    run_tasks()
    monkeypatch.setattr(SimulatedProvider, "pay_code", charge)
    return order, found


def assert_the_confirmation_comes_too_late(order: Order, provider: str) -> None:
    """The customer confirms in the app: the trade was reversed, the order stays cancelled, nothing taken."""
    payments.confirmed_in_app(provider, Payment.objects.get(order=order).out_trade_no)
    order.refresh_from_db()
    assert (order.status, order.failure_code) == (OrderStatus.CANCELLED, FailureCode.CANCELLED)
    assert trade_of(order).status == SimTradeStatus.REVOKED
    assert Payment.objects.get(order=order).status == "reversed"
    assert not LedgerEntry.objects.filter(order=order).exists()


def test_cancel_while_the_charge_is_on_its_way_reverses_the_trade_once_it_arrives(
    demo, run_tasks, frozen, provider, monkeypatch
):
    """The clerk cancels while the charge is still on its way to the provider: the reverse finds no trade
    yet. It must not take that for "nothing to reverse" while the charge may still arrive; when it does (the
    customer confirming in the app), the trade is reversed, and nothing is taken."""
    order, found = cancelled_while_the_charge_is_on_its_way(run_tasks, monkeypatch, provider)
    assert "not_there_yet" in found
    for _ in range(30):
        later(run_tasks, frozen, 10)

    assert_the_confirmation_comes_too_late(order, provider)
    assert not WorkItem.objects.filter(order=order).exists()


def test_a_charge_the_worker_reaches_after_the_scans_window_is_not_sent(demo, run_tasks, frozen, provider):
    """The worker was backlogged past the scan's window: the charge is not sent (the customer has left the
    counter, or waited over a minute with nothing asked of them; nothing would query or reverse it later)."""
    order = scan(counter_order(run_tasks), code(provider, "0001"))

    later(run_tasks, frozen, settings.PAYMENT_CODE_QUERY_SECONDS + 1)

    order.refresh_from_db()
    assert (order.status, order.failure_code) == (OrderStatus.EXPIRED, FailureCode.PAYMENT_TIMEOUT)
    assert Payment.objects.get(order=order).status == "closed"
    assert not SimTrade.objects.exists()


def test_a_charge_sent_at_the_windows_end_and_cancelled_on_its_way_is_still_reversed(
    demo, run_tasks, frozen, provider, monkeypatch
):
    """The charge leaves at the last second of the window and the clerk cancels while it is on its way; the
    reverse, past the window, finds no trade yet. The charge that arrives after it (the customer confirming)
    must still be reversed: closed on "not found" at the window's end, that trade stayed payable, and nothing
    would have looked at it again (WeChat Pay sends no notification for a payment code)."""
    order, found = cancelled_while_the_charge_is_on_its_way(
        run_tasks,
        monkeypatch,
        provider,
        sent_after=lambda: frozen.shift(timedelta(seconds=settings.PAYMENT_CODE_QUERY_SECONDS - 1)),
        in_the_call=lambda: frozen.shift(timedelta(seconds=3)),  # 3 s of its 5: past the window's end
    )
    assert "not_there_yet" in found
    for _ in range(10):
        later(run_tasks, frozen, 5)

    assert_the_confirmation_comes_too_late(order, provider)


def test_a_charge_whose_claim_the_sweep_took_over_is_not_reversed_under_the_run_that_goes_on(
    demo, run_tasks, frozen, provider, monkeypatch
):
    """The worker stalls in the charge's call past its claim: the sweep hands the order to a new run, which
    queries. The stalled run then finds its claim gone; the order is not over, so it does not reverse the trade
    under the run that goes on: the customer may still pay in the scan's window. The new run queries to the
    window's end and reverses then: expired, payment_timeout, as §10 says of no answer."""
    from sandbox.simulators.providers import SimulatedProvider

    order = scan(counter_order(run_tasks), code(provider, "0003"))  # the provider never answers
    charge = SimulatedProvider.pay_code

    def stalled(self, request):  # type: ignore[no-untyped-def]
        try:
            return charge(self, request)
        finally:
            frozen.shift(timedelta(seconds=settings.ORDER_CLAIM_LEASE_SECONDS + 3))  # past the claim's lease
            deadlines_sweep()  # a new run is due, under a new claim

    monkeypatch.setattr(SimulatedProvider, "pay_code", stalled)
    ran = [result for _, result in run_tasks()]
    monkeypatch.setattr(SimulatedProvider, "pay_code", charge)
    assert "superseded" in ran, ran  # the stalled run, its claim gone
    assert trade_of(order).status == SimTradeStatus.USER_PAYING  # still open to the customer, in its window
    for _ in range(8):
        later(run_tasks, frozen, 5)

    order.refresh_from_db()
    assert (order.status, order.failure_code) == (OrderStatus.EXPIRED, FailureCode.PAYMENT_TIMEOUT)
    assert Payment.objects.get(order=order).status == "reversed"
    assert trade_of(order).status == SimTradeStatus.REVOKED


class WorkerDied(Exception):
    """The worker process ends here: after the provider's answer, before our commit."""


def paid_at_the_last_moment_then_reversed(monkeypatch, then: Exception):  # type: ignore[no-untyped-def]
    """The customer confirms in the app just before our reverse, which gives the money back; then ``then`` is
    raised (the worker dies, or the reverse's answer is lost). Returns the simulator's own reverse."""
    from sandbox.simulators.providers import SimulatedProvider

    reverse = SimulatedProvider.reverse

    def paid_then_reversed(self, out_trade_no):  # type: ignore[no-untyped-def]
        payments.pay_trade(self.name, out_trade_no)
        reverse(self, out_trade_no)
        raise then

    monkeypatch.setattr(SimulatedProvider, "reverse", paid_then_reversed)
    return reverse


def queried_as_refunded_once_reversed(monkeypatch) -> None:
    """WeChat Pay's query of a trade paid and then reversed, if it answers 转入退款 (REFUND: paid, money gone
    back) rather than REVOKED."""
    from sandbox.simulators.providers import SimulatedProvider

    query = SimulatedProvider.query

    def as_refunded(self, out_trade_no):  # type: ignore[no-untyped-def]
        trade = query(self, out_trade_no)
        if SimTrade.objects.get(out_trade_no=out_trade_no).status != SimTradeStatus.REVOKED:
            return trade
        return dataclasses.replace(trade, state=TradeState.PAID, refunded=True, transaction_id="4200" + "0" * 24)

    monkeypatch.setattr(SimulatedProvider, "query", as_refunded)


def test_a_reverse_that_went_through_before_the_worker_died_is_a_reverse_not_a_decline(
    demo, run_tasks, frozen, provider, monkeypatch
):
    """At the window's end the reverse goes through at the provider, and the worker dies before recording it.
    The run after it finds the trade closed: that is our own reverse (expired, payment_timeout; the payment
    reversed, so that a paid notification still on its way is booked as money given back), not a decline."""
    from sandbox.simulators.providers import SimulatedProvider

    order = scan(counter_order(run_tasks), code(provider, "0003"))  # the provider never answers
    reverse = SimulatedProvider.reverse

    def then_dies(self, out_trade_no):  # type: ignore[no-untyped-def]
        reverse(self, out_trade_no)
        raise WorkerDied

    monkeypatch.setattr(SimulatedProvider, "reverse", then_dies)
    with pytest.raises(WorkerDied):
        for _ in range(14):
            later(run_tasks, frozen, 5)
    monkeypatch.setattr(SimulatedProvider, "reverse", reverse)
    assert trade_of(order).status == SimTradeStatus.REVOKED
    later(run_tasks, frozen, settings.ORDER_CLAIM_LEASE_SECONDS + 3)  # the sweep finds the order again

    order.refresh_from_db()
    assert (order.status, order.failure_code) == (OrderStatus.EXPIRED, FailureCode.PAYMENT_TIMEOUT)
    assert Payment.objects.get(order=order).status == "reversed"


def test_a_reverse_of_a_charge_paid_at_the_last_moment_is_not_read_as_paid_when_the_worker_died(
    demo, run_tasks, frozen, monkeypatch
):
    """As above, but the customer confirmed at the last moment, between the window's last look and the reverse:
    the reverse gave the money back, and the worker died before recording it. If WeChat Pay then queries such a
    trade as 转入退款 (REFUND: paid, money gone back) rather than REVOKED, it is still our reverse, not a payment:
    the order does not get the product for money that went back."""
    from sandbox.simulators.providers import SimulatedProvider

    order = scan(counter_order(run_tasks), code("wechatpay", "0003"))  # the provider never answers
    reverse = paid_at_the_last_moment_then_reversed(monkeypatch, then=WorkerDied())
    with pytest.raises(WorkerDied):
        for _ in range(14):
            later(run_tasks, frozen, 5)
    monkeypatch.setattr(SimulatedProvider, "reverse", reverse)
    queried_as_refunded_once_reversed(monkeypatch)
    assert SimulatedProvider("wechatpay").query(Payment.objects.get(order=order).out_trade_no).refunded
    later(run_tasks, frozen, settings.ORDER_CLAIM_LEASE_SECONDS + 3)  # the sweep finds the order again

    order.refresh_from_db()
    assert (order.status, order.failure_code) == (OrderStatus.EXPIRED, FailureCode.PAYMENT_TIMEOUT)
    assert Payment.objects.get(order=order).status == "reversed"
    assert not SimSmpSubscription.objects.filter(order_no=order.order_no).exists()
    assert not LedgerEntry.objects.filter(order=order).exists()


def test_looking_for_a_charge_on_its_way_leaves_the_reverse_its_whole_budget(
    demo, run_tasks, frozen, provider, monkeypatch
):
    """The clerk cancels while the charge is on its way, and the charge is lost: the reverse looks for its trade
    every few seconds until it must have arrived. Those looks are not failed reverses: when the provider is then
    unreachable, the reverse is still tried PAYMENT_CODE_REVERSE_ATTEMPTS times before a person is asked."""
    from sandbox.simulators.providers import SimulatedProvider

    order = scan(counter_order(run_tasks), code(provider, "0001"))

    def lost_on_its_way(self, request):  # type: ignore[no-untyped-def]
        order_cancel(order_id=order.pk, actor=CLERK)
        raise ProviderUnavailable("the charge was lost on its way")

    monkeypatch.setattr(SimulatedProvider, "pay_code", lost_on_its_way)
    reverses: list[object] = []

    def run() -> None:
        reverses.extend(result for task, result in run_tasks() if task == "lifecycle.tasks.reverse_payment_code")

    run()
    for _ in range(6):  # a minute of looking for the trade
        frozen.shift(timedelta(seconds=settings.PAYMENT_CODE_QUERY_INTERVAL_SECONDS))
        run()
    looks = reverses.count("not_there_yet")
    assert looks >= 5, reverses
    faults.set_mode(provider, "down")
    for _ in range(20):
        frozen.shift(timedelta(minutes=10))
        run()

    # (The cancel's reverse and the lost charge's each run: the same reverse, harmless twice.)
    tried = reverses[looks:]
    assert tried.count("retry") >= settings.PAYMENT_CODE_REVERSE_ATTEMPTS - 1 and tried[-1] == "gave_up", reverses
    assert WorkItem.objects.filter(order=order, kind=WorkItemKind.PROVIDER_DISAGREES, resolved_at=None).exists()


def test_cancel_before_the_charge_was_sent_sends_nothing(demo, run_tasks, frozen):
    order = scan(counter_order(run_tasks), code("wechatpay", "0000"))

    order_cancel(order_id=order.pk, actor=CLERK)
    run_tasks()

    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED
    assert Payment.objects.get(order=order).status == "closed"
    assert not SimTrade.objects.exists()


def test_a_lost_task_is_found_by_the_sweep(demo, run_tasks, frozen):
    order = scan(counter_order(run_tasks), code("alipay", "0001"))
    OutboxMessage.objects.filter(relayed_at=None).delete()  # the charge's due task is lost

    later(run_tasks, frozen, 3)  # the sweep finds the overdue order and queues its due task
    order.refresh_from_db()
    assert order.status == OrderStatus.PAYMENT_PENDING and trade_of(order).status == SimTradeStatus.USER_PAYING
    OutboxMessage.objects.filter(relayed_at=None).delete()  # and the query's is lost too
    later(run_tasks, frozen, 10)
    order.refresh_from_db()
    assert order.status == OrderStatus.COMPLETED


def test_a_charge_that_dies_in_the_call_is_queried_never_sent_twice(demo, run_tasks, frozen, monkeypatch):
    from sandbox.simulators.providers import SimulatedWechatPay

    order = scan(counter_order(run_tasks), code("wechatpay", "0000"))
    calls = []

    def dies(self, request):  # the worker is killed in the middle of the call, after the provider took it
        calls.append(request.out_trade_no)
        payments.charge_code("wechatpay", request)
        raise SystemExit("worker killed")

    monkeypatch.setattr(SimulatedWechatPay, "pay_code", dies)
    with pytest.raises(SystemExit):
        run_tasks()
    OutboxMessage.objects.filter(relayed_at=None).delete()
    order.refresh_from_db()
    assert Payment.objects.get(order=order).status == "pending"  # marked sent before the call

    later(run_tasks, frozen, 33)  # the claim's lease ran out: the sweep hands the order on
    order.refresh_from_db()
    assert order.status == OrderStatus.COMPLETED
    assert calls == [order.order_no]  # the next run asked, it did not charge again
    assert SimTrade.objects.count() == 1


def test_running_the_due_work_twice_changes_nothing(demo, run_tasks, frozen):
    from lifecycle.due import order_process_due

    order = scan(counter_order(run_tasks), code("wechatpay", "0001"))
    run_tasks()
    order.refresh_from_db()
    due_at = order.deadline_at
    later(run_tasks, frozen, 5)
    assert order_process_due(order_id=order.pk, due_at=due_at) == "not_due"
    later(run_tasks, frozen, 5)
    assert order_process_due(order_id=order.pk, due_at=due_at) == "nothing_due"
    order.refresh_from_db()
    assert order.status == OrderStatus.COMPLETED
    assert LedgerEntry.objects.filter(order=order).count() == 1


# --- the money: refunds, reconciliation, shift totals -----------------------------------------------------


def test_a_paid_code_that_cannot_be_provisioned_is_refunded(demo, run_tasks, frozen, provider, settings):
    settings.PROVISIONING_DEADLINE_SECONDS = 5
    order = counter_order(run_tasks)
    faults.set_mode("smp", "down")
    order = scan(order, code(provider, "0000"))
    run_tasks()
    later(run_tasks, frozen, 6)
    later(run_tasks, frozen, 60)
    order.refresh_from_db()
    assert order.status == OrderStatus.REFUNDED
    assert Refund.objects.get(order=order).status == "succeeded"
    assert trade_of(order).refunded_fen == 2500


def test_payment_codes_match_the_providers_statements(demo, run_tasks, time_machine):
    time_machine.move_to("2026-11-25 10:00:00+08:00", tick=True)
    day = timezone.localdate()
    wechat = scan(counter_order(run_tasks), code("wechatpay", "0000"))
    alipay = scan(counter_order(run_tasks), code("alipay", "0000"))
    run_tasks()
    time_machine.move_to("2026-11-26 09:00:00+08:00", tick=True)
    bill = sandbox_statements.statement_file("wechatpay", day).read().decode()
    assert f"`{wechat.order_no}" in bill and "`MICROPAY" in bill
    statement_import(source="wechatpay", day=day, stream=io.BytesIO(bill.encode()), file_name="w.csv")

    run = reconcile_day(day)

    found = {(i.source, i.kind, i.order_no, i.outcome, i.our_amount_fen, i.their_amount_fen) for i in run.items.all()}
    assert ("wechatpay", "payment", wechat.order_no, "matched", 2500, 2500) in found
    assert ("alipay", "payment", alipay.order_no, "matched", 2500, 2500) in found
    assert ("smp", "subscription", wechat.order_no, "matched", 2500, 0) in found
    assert run.clean, [i for i in found if i[3] != "matched"]


def test_a_reverse_retried_after_its_answer_was_lost_reads_a_refunded_trade_as_that_reverse(
    demo, run_tasks, frozen, monkeypatch
):
    """The customer confirmed at the last moment; the reverse gave the money back but its answer was lost, so
    the reverse is retried. If WeChat Pay queries that trade as 转入退款 (REFUND), the retry's look must not
    take it for a payment: no ledger entry for money the customer has back, no refund of it that WeChat Pay
    would refuse, nobody asked."""
    from sandbox.simulators.providers import SimulatedProvider

    order = scan(counter_order(run_tasks), code("wechatpay", "0003"))  # the provider never answers
    reverse = paid_at_the_last_moment_then_reversed(monkeypatch, then=ProviderUnavailable("wechatpay: read timed out"))
    queried_as_refunded_once_reversed(monkeypatch)
    run_tasks()
    later(run_tasks, frozen, 55)
    later(run_tasks, frozen, 5)  # the last look, then the reverse: its answer is lost
    order.refresh_from_db()
    assert (order.status, order.failure_code) == (OrderStatus.EXPIRED, FailureCode.PAYMENT_TIMEOUT)
    assert Payment.objects.get(order=order).status == "pending"
    monkeypatch.setattr(SimulatedProvider, "reverse", reverse)

    for seconds in (5, 10, 20, 600):  # the reverse retried
        later(run_tasks, frozen, seconds)

    assert Payment.objects.get(order=order).status == "reversed"
    assert not LedgerEntry.objects.filter(order=order).exists()
    assert not Refund.objects.filter(payment__order=order).exists()
    assert not WorkItem.objects.filter(order=order).exists()
