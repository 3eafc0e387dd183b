"""Refunds by hand and the order's money in admin (issue #5, points 2 and 4).

A completed order's money goes back the way it came: a provider refund, an
SMP reversal of the phone bill, or the store paying cash back. The service
(``lifecycle.manual.refund_by_admin``) and its admin page are both
driven here, over orders bought from the outside (EPG API, clerk pages,
sandbox payers); the simulators are the outside systems.
"""

from __future__ import annotations

import html
import io
import re
import threading
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.db import transaction
from django.test import Client
from django.utils import timezone, translation

from backoffice.history import change_text
from billing.models import LedgerEntry, Payment, Refund, WorkItem
from ipvas.actors import Actor, ActorKind
from ipvas.errors import ApplicationError, InvalidInput, InvalidState
from ipvas.models import OutboxMessage
from lifecycle import manual
from orders.constants import OrderStatus
from orders.events import order_action_label
from orders.models import Entitlement, Order, OrderEvent
from sandbox import faults
from sandbox import payments as sandbox_payments
from sandbox.models import SimCrmActivity, SimRefund, SimSmpAccount, SimSmpSubscription, SimTrade, SimTradeStatus
from tests import quick
from tests.channels_crm.support import new_order, pay, sign_in
from tests.epg_api.support import Api, new_api_key, provider_pay, settle
from tests.support.concurrency import require_postgresql, run_in_threads

NOW = "2026-11-25 12:00:00+08:00"
PROVIDER = {"wechat_qr": "wechatpay", "alipay_qr": "alipay"}
QR_METHODS = ["wechat_qr", "alipay_qr"]
ADMIN_NAME = "ops-lead"
OPS = Actor(ActorKind.ADMIN, ADMIN_NAME)
PRICE = 2500  # VIP-MONTH, fen
BALANCE = 100000  # tv1001's phone-bill balance in the demo data, fen
EN = {"HTTP_ACCEPT_LANGUAGE": "en"}


# --- set-up ---------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _quick(monkeypatch, settings):
    """Speed only, behaviour unchanged (tests/quick.py)."""
    quick.speed_up(monkeypatch, settings)


@pytest.fixture
def api(demo) -> Api:
    return Api(new_api_key("EPG admin-money tests"))


@pytest.fixture
def frozen(time_machine):
    time_machine.move_to(NOW, tick=False)
    return time_machine


@pytest.fixture
def admin(db) -> Client:
    """A superuser signed in to admin."""
    user = get_user_model().objects.create_superuser(ADMIN_NAME, email="", password="unused-password-1")
    client = Client()
    client.force_login(user)
    return client


# --- orders ----------------------------------------------------------------------------------


def completed(api: Api, method: str) -> Order:
    """tv1001 buys VIP-MONTH on the TV with ``method``; the order completes."""
    return Order.objects.get(order_no=api.buy("tv1001", "VIP-MONTH", method=method)["order_no"])


def completed_cash_sale() -> Order:
    clerk = sign_in()
    order = new_order(clerk, "13800000001")
    assert pay(clerk, order, "cash", cash_received="yes").status_code == 302
    settle()
    order.refresh_from_db()
    assert order.status == "completed", (order.status, order.failure_code)
    return order


def ledger(order: Order) -> list[tuple[str, int]]:
    return list(LedgerEntry.objects.filter(order=order).order_by("pk").values_list("kind", "amount_fen"))


def balance(tv_account: str = "tv1001") -> int:
    return SimSmpAccount.objects.get(tv_account=tv_account).balance_fen


def entitled(api: Api) -> bool:
    response = api.entitlements(tv_account="tv1001", product_code="VIP-MONTH")
    assert response.status_code == 200, response.content
    return response.json()["entitled"]


def trade_of(order: Order) -> SimTrade:
    payment = Payment.objects.get(order=order, status="paid")
    return SimTrade.objects.get(provider=payment.provider, out_trade_no=payment.out_trade_no)


def snapshot(order: Order) -> dict[str, Any]:
    """What a refused refund must leave as it was."""
    return {
        "order": Order.objects.values_list("status", "failure_code").get(pk=order.pk),
        "events": OrderEvent.objects.filter(order=order).count(),
        "refunds": Refund.objects.count(),
        "work": WorkItem.objects.count(),
        "ledger": ledger(order),
        "outbox": OutboxMessage.objects.filter(relayed_at__isnull=True).count(),
        "revoked": Entitlement.objects.filter(revoked_at__isnull=False).count(),
        "admin_log": LogEntry.objects.count(),
    }


def assert_revoked_everywhere(order: Order) -> None:
    assert Entitlement.objects.get(order=order).revoked_at is not None
    assert SimSmpSubscription.objects.get(order_no=order.order_no).cancelled_at is not None


def refused(error: type[ApplicationError], **call: Any) -> tuple[str, dict[str, list[str]]]:
    """refund_by_admin with ``call`` must raise ``error``: (message, field messages), in English.

    The default language is Simplified Chinese, and each request the test client makes leaves its
    language active in this thread; the admin pages are asked for in English likewise (EN).
    """
    with translation.override("en"), pytest.raises(error) as caught:
        manual.refund_by_admin(actor=OPS, **call)
    return str(caught.value.message), {k: [str(m) for m in v] for k, v in caught.value.fields.items()}


# --- the service: each way the money came ------------------------------------------------------------


@pytest.mark.parametrize("method", QR_METHODS)
def test_refund_by_hand_of_a_qr_order_refunds_at_the_provider_and_revokes_the_product(api, frozen, method):
    order = completed(api, method)
    assert entitled(api) is True  # and now the answer is in the cache

    started = manual.refund_by_admin(order_id=order.pk, reason="channel missing for a week", actor=OPS)
    settle()

    assert started == "provider_refund"
    order.refresh_from_db()
    assert (order.status, order.failure_code) == ("refunded", "")  # refunded by hand: it did not fail
    sim_refund = SimRefund.objects.get()
    assert (sim_refund.provider, sim_refund.trade_id, sim_refund.amount_fen) == (
        PROVIDER[method],
        trade_of(order).pk,
        PRICE,
    )
    assert ledger(order) == [("payment", PRICE), ("refund", -PRICE)]
    refund_entry = LedgerEntry.objects.get(order=order, kind="refund")
    assert (refund_entry.actor_kind, refund_entry.actor_id) == ("admin", ADMIN_NAME)
    assert_revoked_everywhere(order)
    assert entitled(api) is False
    seen = api.order(order.order_no)
    assert (seen["status"], seen["failure"]) == ("refunded", None)
    requested = order.events.get(action="refund_requested")
    assert (requested.actor_kind, requested.actor_id, requested.reason) == (
        "admin",
        ADMIN_NAME,
        "channel missing for a week",
    )
    assert requested.data == {"amount_fen": PRICE}
    assert order.events.order_by("at", "pk").last().to_status == "refunded"


def test_partial_refund_keeps_the_order_completed_and_the_entitlement_then_the_rest(api, frozen):
    order = completed(api, "wechat_qr")

    assert manual.refund_by_admin(order_id=order.pk, reason="goodwill", actor=OPS, amount_fen=1000) == "provider_refund"
    settle()

    order.refresh_from_db()
    assert order.status == "completed"
    assert Entitlement.objects.get(order=order).revoked_at is None
    assert SimSmpSubscription.objects.get(order_no=order.order_no).cancelled_at is None
    assert entitled(api) is True
    assert list(SimRefund.objects.values_list("amount_fen", flat=True)) == [1000]
    assert ledger(order) == [("payment", PRICE), ("refund", -1000)]

    _, fields = refused(InvalidInput, order_id=order.pk, reason="the rest and more", amount_fen=1501)
    assert fields == {"amount": ["At most ¥15.00 can be refunded."]}

    assert manual.refund_by_admin(order_id=order.pk, reason="the rest", actor=OPS) == "provider_refund"
    settle()

    order.refresh_from_db()
    assert order.status == "refunded"
    assert sorted(SimRefund.objects.values_list("amount_fen", flat=True)) == [1000, 1500]
    assert trade_of(order).refunded_fen == PRICE
    assert ledger(order) == [("payment", PRICE), ("refund", -1000), ("refund", -1500)]
    assert_revoked_everywhere(order)
    assert entitled(api) is False


def test_refund_by_hand_of_a_phone_bill_order_reverses_the_charge_on_the_smp(api, frozen):
    order = completed(api, "phone_bill")
    assert balance() == BALANCE - PRICE

    started = manual.refund_by_admin(order_id=order.pk, reason="billed by mistake", actor=OPS)
    settle()

    assert started == "smp_reversal"
    assert balance() == BALANCE
    order.refresh_from_db()
    assert (order.status, order.failure_code) == ("refunded", "")
    assert ledger(order) == [("payment", PRICE), ("reversal", -PRICE)]
    assert SimSmpSubscription.objects.get(order_no=order.order_no).reversed_fen == PRICE
    assert_revoked_everywhere(order)
    assert entitled(api) is False
    assert not Refund.objects.exists()


def test_refund_by_hand_of_a_cash_sale_asks_the_store_to_pay_back_and_stops_the_product_then(
    api, frozen, django_capture_on_commit_callbacks
):
    order = completed_cash_sale()
    assert entitled(api) is True

    with django_capture_on_commit_callbacks(execute=True):
        started = manual.refund_by_admin(order_id=order.pk, reason="customer changed their mind", actor=OPS)

    assert started == "cash_payback"
    # Access goes when the money is back, as for every method (docs/operations.md): not yet.
    assert entitled(api) is True
    assert Entitlement.objects.get(order=order).revoked_at is None
    item = WorkItem.objects.get()
    assert (item.order_id, item.kind, item.resolved_at) == (order.pk, "cash_payback", None)
    assert "customer changed their mind" in item.detail
    order.refresh_from_db()
    assert order.status == "completed"  # until the store says the cash went back
    settle()
    assert SimSmpSubscription.objects.get(order_no=order.order_no).cancelled_at is None
    assert ledger(order) == [("payment", PRICE)]

    with django_capture_on_commit_callbacks(execute=True):
        manual.work_item_resolve(item_id=item.pk, note="paid back at the counter", actor=OPS, cash_paid_back=True)
    ran = settle()

    order.refresh_from_db()
    assert (order.status, order.failure_code) == ("refunded", "")
    assert entitled(api) is False
    assert ledger(order) == [("payment", PRICE), ("cash_payback", -PRICE)]
    assert SimCrmActivity.objects.get(order_no=order.order_no).reversed_at is not None
    assert SimSmpSubscription.objects.get(order_no=order.order_no).cancelled_at is not None
    # One revocation at the SMP, not two retry chains (issue #12, item 3).
    assert [name for name, _ in ran].count("lifecycle.tasks.revoke_on_smp") == 1


# --- refused, with a clear message, and nothing changes --------------------------------------------


def test_refund_by_hand_is_refused_without_a_reason_or_with_a_wrong_amount(api, frozen):
    order = completed(api, "wechat_qr")
    before = snapshot(order)

    for reason, amount_fen, field, words in (
        ("", None, "reason", "Say why"),
        ("   ", None, "reason", "Say why"),
        ("too much", PRICE + 1, "amount", "At most ¥25.00"),
        ("nothing", 0, "amount", "At most ¥25.00"),
        ("negative", -100, "amount", "At most ¥25.00"),
    ):
        _, fields = refused(InvalidInput, order_id=order.pk, reason=reason, amount_fen=amount_fen)
        assert list(fields) == [field] and words in fields[field][0], (reason, amount_fen, fields)
        assert snapshot(order) == before, (reason, amount_fen)

    settle()
    assert not SimRefund.objects.exists()


def test_phone_bill_and_cash_are_refunded_in_full_only(api, frozen):
    order = completed(api, "phone_bill")
    before = snapshot(order)

    _, fields = refused(InvalidInput, order_id=order.pk, reason="half", amount_fen=1000)

    assert fields == {"amount": ["Phone-bill and cash orders are refunded in full."]}
    assert snapshot(order) == before
    assert balance() == BALANCE - PRICE


def test_refund_by_hand_of_an_order_that_is_not_completed_is_refused(api, frozen):
    awaiting = Order.objects.get(order_no=api.place("tv1001", "VIP-MONTH")["order_no"])
    shown = api.pay_with(api.place("tv1001", "VIP-MONTH")["order_no"], "wechat_qr")
    faults.set_mode("smp", "down")
    provider_pay("wechat_qr", shown["payment"]["out_trade_no"])
    settle()
    provisioning = Order.objects.get(order_no=shown["order_no"])
    assert (awaiting.status, provisioning.status) == ("awaiting_payment", "provisioning")

    for order in (awaiting, provisioning):
        before = snapshot(order)
        message, _ = refused(InvalidState, order_id=order.pk, reason="please")
        assert message == "Only completed orders are refunded by hand; the others settle by themselves."
        assert snapshot(order) == before


def test_refunding_by_hand_twice_refunds_once_and_a_refunded_order_is_refused(api, frozen):
    order = completed(api, "wechat_qr")

    first = manual.refund_by_admin(order_id=order.pk, reason="double click", actor=OPS)
    second = manual.refund_by_admin(order_id=order.pk, reason="double click", actor=OPS)
    settle()

    assert (first, second) == ("provider_refund", "already_under_way")
    assert Refund.objects.count() == 1 and SimRefund.objects.count() == 1
    assert ledger(order) == [("payment", PRICE), ("refund", -PRICE)]
    order.refresh_from_db()
    assert order.status == "refunded"
    before = snapshot(order)
    message, _ = refused(InvalidState, order_id=order.pk, reason="once more")
    assert message == "This order has been refunded already."
    assert snapshot(order) == before


def test_phone_bill_refunded_by_hand_twice_gives_the_balance_back_once(api, frozen):
    order = completed(api, "phone_bill")

    manual.refund_by_admin(order_id=order.pk, reason="double click", actor=OPS)
    manual.refund_by_admin(order_id=order.pk, reason="double click", actor=OPS)
    settle()

    assert balance() == BALANCE
    assert ledger(order) == [("payment", PRICE), ("reversal", -PRICE)]
    assert Order.objects.get(pk=order.pk).status == "refunded"


def test_an_order_paid_twice_with_the_same_method_can_be_refunded_by_hand(api, frozen):
    no = api.place("tv1001", "VIP-MONTH")["order_no"]
    first = api.pay_with(no, "wechat_qr")["payment"]
    api.pay_with(no, "alipay_qr")  # closes the first WeChat code...
    again = api.pay_with(no, "wechat_qr")["payment"]  # ...and a new one is shown
    # The customer had paid the first code just before the close reached WeChat Pay.
    SimTrade.objects.filter(provider="wechatpay", out_trade_no=first["out_trade_no"]).update(
        status=SimTradeStatus.PAID, paid_at=timezone.now()
    )
    body, headers = sandbox_payments.wechatpay_notification(
        SimTrade.objects.get(provider="wechatpay", out_trade_no=first["out_trade_no"])
    )
    delivered = Client().post("/billing/notify/wechatpay/", data=body, content_type="application/json", headers=headers)
    assert delivered.status_code == 204
    frozen.shift(timedelta(seconds=5))
    provider_pay("wechat_qr", again["out_trade_no"])  # and then the new code too
    settle()
    frozen.shift(timedelta(minutes=2))  # provisioning waits while the second payment goes back
    settle()
    order = Order.objects.get(order_no=no)
    assert order.status == "completed"
    assert ledger(order) == [("payment", PRICE), ("payment", PRICE), ("refund", -PRICE)]  # the second went back

    assert manual.refund_by_admin(order_id=order.pk, reason="not wanted", actor=OPS) == "provider_refund"
    settle()

    order.refresh_from_db()
    assert order.status == "refunded"
    assert sum(amount for _, amount in ledger(order)) == 0
    assert sorted(SimRefund.objects.values_list("trade__out_trade_no", flat=True)) == sorted(
        [first["out_trade_no"], again["out_trade_no"]]
    )


# --- two admins at once (PostgreSQL: real row locks across connections) --------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_admins_refunding_the_same_order_at_once_refund_it_once():
    require_postgresql()
    call_command("seed_demo", stdout=io.StringIO())
    api = Api(new_api_key("EPG concurrency"))
    rounds = 20
    with transaction.atomic():  # one commit for the preparation: quicker, and nothing races it
        placed = [api.create("tv1001", "VIP-MONTH").json()["order_no"] for _ in range(rounds)]
        settle()
        for no in placed:
            customer = api.pay_with(no, "wechat_qr")
            provider_pay("wechat_qr", customer["payment"]["out_trade_no"])
        settle()
    orders = list(Order.objects.filter(order_no__in=placed))
    assert {o.status for o in orders} == {"completed"}

    for order in orders:
        answers: list[str] = []

        def refund(barrier: threading.Barrier, order_id: int = order.pk, answers: list[str] = answers) -> None:
            barrier.wait()
            answers.append(manual.refund_by_admin(order_id=order_id, reason="two admins, one click each", actor=OPS))

        assert run_in_threads(2, refund) == []
        assert sorted(answers) == ["already_under_way", "provider_refund"], order.order_no
        assert Refund.objects.filter(order=order).count() == 1, order.order_no

    with transaction.atomic():
        settle()

    assert SimRefund.objects.count() == rounds
    assert Refund.objects.filter(status="succeeded").count() == rounds
    assert set(SimTrade.objects.values_list("refunded_fen", flat=True)) == {PRICE}
    assert set(Order.objects.filter(order_no__in=placed).values_list("status", flat=True)) == {"refunded"}
    assert LedgerEntry.objects.filter(kind="refund").count() == rounds


# --- the admin page: Refund… ----------------------------------------------------------------------------


def refund_url(order: Order) -> str:
    return f"/admin/orders/order/{order.pk}/refund/"


def change_url(order: Order) -> str:
    return f"/admin/orders/order/{order.pk}/change/"


def text_of(page: bytes) -> str:
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page.decode()))).strip()


def test_refund_page_refunds_a_completed_order_and_logs_who_did_it(admin, api, frozen):
    order = completed(api, "alipay_qr")
    page = admin.get(refund_url(order), **EN)
    assert page.status_code == 200
    assert order.order_no in text_of(page.content) and 'name="reason"' in page.content.decode()

    response = admin.post(refund_url(order), {"reason": "duplicate purchase", "amount_yuan": ""}, follow=True, **EN)

    assert response.redirect_chain == [(change_url(order), 302)]
    # The outcome in words, not its code (issue #12, item 6).
    assert "Refund started: a refund to the customer's WeChat Pay or Alipay account." in text_of(response.content)
    entry = LogEntry.objects.get(content_type=ContentType.objects.get_for_model(Order), object_id=str(order.pk))
    with translation.override("en"):
        said = change_text(entry)
    assert (entry.user.username, said) == (
        ADMIN_NAME,
        "Refund started: a refund to the customer's WeChat Pay or Alipay account. Reason: duplicate purchase",
    )
    requested = order.events.get(action="refund_requested")
    assert (requested.actor_kind, requested.actor_id) == ("admin", ADMIN_NAME)
    settle()
    order.refresh_from_db()
    assert order.status == "refunded"
    assert SimRefund.objects.get().amount_fen == PRICE
    assert_revoked_everywhere(order)
    assert entitled(api) is False


def test_refund_page_takes_a_partial_amount_in_yuan(admin, api, frozen):
    order = completed(api, "wechat_qr")

    response = admin.post(refund_url(order), {"reason": "one week missing", "amount_yuan": "6.25"}, **EN)
    settle()

    assert response.status_code == 302
    assert SimRefund.objects.get().amount_fen == 625
    order.refresh_from_db()
    assert order.status == "completed"
    assert ledger(order) == [("payment", PRICE), ("refund", -625)]


def test_refund_page_offers_what_can_go_back_while_a_refund_is_under_way_in_yuan(admin, api, frozen):
    """A partial refund is on its way (the provider is down). Its payment is not refunded twice at once, so the
    page offers nothing more until it is done, and says so, rather than an amount it would not refund; a
    larger amount than the order holds is refused in yuan, not in fen."""
    order = completed(api, "wechat_qr")
    too_much = admin.post(refund_url(order), {"reason": "all and more", "amount_yuan": "26"}, **EN)
    assert "At most ¥25.00 can be refunded." in text_of(too_much.content)
    assert "fen can be refunded" not in text_of(too_much.content)
    faults.set_mode("wechatpay", "down")
    admin.post(refund_url(order), {"reason": "one week missing", "amount_yuan": "5"}, **EN)
    assert Refund.objects.filter(order=order).count() == 1

    page = admin.get(refund_url(order), follow=True, **EN)
    assert page.redirect_chain == [(change_url(order), 302)]
    assert "A refund of this order is under way." in text_of(page.content)
    again = admin.post(refund_url(order), {"reason": "the rest", "amount_yuan": "20"}, follow=True, **EN)
    assert "A refund of this order is under way." in text_of(again.content)
    assert Refund.objects.filter(order=order).count() == 1

    faults.set_mode("wechatpay", "ok")
    for _ in range(30):  # the refund is asked again on its backoff, and goes through
        frozen.shift(timedelta(minutes=1))
        settle()
    assert Refund.objects.get(order=order).status == "succeeded"
    page = text_of(admin.get(refund_url(order), **EN).content)
    assert "everything that can be given back: ¥20.00" in page


def test_refund_page_refuses_bad_input_with_a_message_and_changes_nothing(admin, api, frozen):
    order = completed(api, "wechat_qr")
    before = snapshot(order)

    for form, message in (
        ({"reason": "", "amount_yuan": ""}, "This field is required."),
        ({"reason": "   ", "amount_yuan": ""}, "This field is required."),
        ({"reason": "typo", "amount_yuan": "1.234"}, "Write an amount in yuan, like 25.00."),
        ({"reason": "typo", "amount_yuan": "abc"}, "Write an amount in yuan, like 25.00."),
        ({"reason": "typo", "amount_yuan": "-1.00"}, "Write an amount in yuan, like 25.00."),
        ({"reason": "nothing", "amount_yuan": "0.00"}, "Write an amount above ¥0.00."),
        # The amount is typed in yuan: so is the refusal (issue #12, item 7).
        ({"reason": "too much", "amount_yuan": "25.01"}, "At most ¥25.00 can be refunded."),
    ):
        response = admin.post(refund_url(order), form, **EN)
        assert response.status_code == 200, form
        assert message in text_of(response.content), form
        assert snapshot(order) == before, form

    settle()
    assert not SimRefund.objects.exists()


def test_refund_page_refuses_a_refunded_and_a_not_completed_order(admin, api, frozen):
    refunded = completed(api, "wechat_qr")
    assert admin.post(refund_url(refunded), {"reason": "first"}, **EN).status_code == 302
    settle()
    awaiting = Order.objects.get(order_no=api.place("tv1001", "VIP-MONTH")["order_no"])

    for order, message in (
        (refunded, "This order has been refunded already."),
        (awaiting, "Only completed orders are refunded by hand; the others settle by themselves."),
    ):
        before = snapshot(order)
        response = admin.post(refund_url(order), {"reason": "again"}, **EN)
        assert response.status_code == 200
        assert message in text_of(response.content)
        assert snapshot(order) == before
    assert SimRefund.objects.count() == 1


def test_refund_page_needs_the_permission_to_refund(api, frozen):
    order = completed(api, "wechat_qr")
    staff = get_user_model().objects.create_user("viewer", password="unused-password-1", is_staff=True)
    client = Client()
    client.force_login(staff)

    assert client.get(refund_url(order), **EN).status_code == 403
    assert client.post(refund_url(order), {"reason": "sneaky"}, **EN).status_code == 403
    assert not Refund.objects.exists()


# --- the order page: history and ledger side by side, and the Refund… link -------------------------------


def history_and_money(page: bytes) -> dict[str, Any]:
    """The two parts of the order page's history-and-money block, one above the other: headings and body rows."""
    parts = re.findall(r'<section class="ham-part">(.*?)</section>', page.decode(), re.S)
    assert len(parts) == 2, parts

    def cells(row: str) -> tuple[str, ...]:
        return tuple(text_of(cell.encode()) for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S))

    parsed = {}
    for name, part in zip(("history", "ledger"), parts, strict=True):
        heading = re.search(r"<h3[^>]*>(.*?)</h3>", part, re.S)
        body = re.search(r"<tbody>(.*?)</tbody>", part, re.S)
        parsed[name] = [cells(row) for row in re.findall(r"<tr>(.*?)</tr>", body.group(1), re.S)]
        parsed[f"{name}_caption"] = text_of(heading.group(1).encode())
    return parsed


PAYER = "payment provider: WeChat Pay"


def test_order_page_shows_the_history_and_the_ledger_in_words(admin, api, frozen):
    order = completed(api, "wechat_qr")
    manual.refund_by_admin(order_id=order.pk, reason="one week missing", actor=OPS, amount_fen=1000)
    settle()

    page = admin.get(change_url(order), **EN)

    assert page.status_code == 200
    shown = history_and_money(page.content)
    events = list(order.events.order_by("at", "pk"))
    statuses = dict(OrderStatus.choices)
    with translation.override("en"):  # labels, not codes (issue #12, item 6)
        assert [row[1:4] for row in shown["history"]] == [
            (str(statuses.get(e.from_status, "—")), str(statuses[e.to_status]), order_action_label(e.action))
            for e in events
        ]
    assert [row[3] for row in shown["history"]][-1] == "Refund requested"
    assert shown["history"][-1][4:] == (f"admin: {ADMIN_NAME}", "one week missing")
    assert shown["history"][0][4].startswith("EPG client: ")  # the client's name, never its key's hash
    payment = Payment.objects.get(order=order)
    refund = Refund.objects.get()
    assert [row[1:7] for row in shown["ledger"]] == [
        ("payment taken", "25.00", "WeChat Pay QR code", "WeChat Pay", payment.provider_txn_id, PAYER),
        ("refund", "-10.00", "WeChat Pay QR code", "WeChat Pay", refund.provider_refund_id, f"admin: {ADMIN_NAME}"),
    ]
    assert "Transition history" in shown["history_caption"]
    assert "paid ¥25.00" in shown["ledger_caption"] and "given back ¥10.00" in shown["ledger_caption"]
    assert "net ¥15.00" in shown["ledger_caption"]
    assert f'href="{refund_url(order)}"' in page.content.decode()  # still completed: more may go back


def test_order_page_offers_refund_only_for_completed_orders(admin, api, frozen):
    done = completed(api, "phone_bill")
    placed = Order.objects.get(order_no=api.place("tv1001", "VIP-MONTH")["order_no"])
    shown = api.pay_with(api.place("tv1001", "VIP-MONTH")["order_no"], "wechat_qr")
    faults.set_mode("smp", "down")
    provider_pay("wechat_qr", shown["payment"]["out_trade_no"])
    settle()
    provisioning = Order.objects.get(order_no=shown["order_no"])

    def offers_refund(order: Order) -> bool:
        page = admin.get(change_url(order), **EN)
        assert page.status_code == 200
        return f'href="{refund_url(order)}"' in page.content.decode()

    assert offers_refund(done) is True
    assert offers_refund(placed) is False
    assert offers_refund(provisioning) is False
    assert history_and_money(admin.get(change_url(placed), **EN).content)["ledger"] == [("No money moved.",)]
    faults.set_mode("smp", "ok")

    manual.refund_by_admin(order_id=done.pk, reason="reversed", actor=OPS)
    settle()
    assert Order.objects.get(pk=done.pk).status == "refunded"
    assert offers_refund(done) is False
    shown_money = history_and_money(admin.get(change_url(done), **EN).content)
    assert [row[1:3] for row in shown_money["ledger"]] == [
        ("payment taken", "25.00"),
        ("phone-bill charge reversed", "-25.00"),
    ]
    assert "net ¥0.00" in shown_money["ledger_caption"]
