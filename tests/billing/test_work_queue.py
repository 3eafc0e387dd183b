"""The stuck-work queue in admin (issue #5, point 3): what the system could not settle by itself.

Items come from real failures (a refund WeChat Pay refuses, a cash sale the
SMP will not provision), made through the EPG API, the clerk's pages and the
sandbox's simulators. An admin settles them from /admin/billing/workitem/:
every action needs a note, is done once, and is written to the order's
history and to admin's own log.
"""

from __future__ import annotations

import html
import re
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.test import Client
from django.utils import timezone, translation

from backoffice.history import change_text
from billing.models import LedgerEntry, Refund, WorkItem, WorkItemKind
from billing.services.work import work_item_open
from ipvas.actors import Actor, ActorKind
from ipvas.errors import InvalidState
from lifecycle import manual
from orders.models import Entitlement, Order, OrderEvent
from sandbox import faults
from sandbox.models import SimCrmActivity, SimRefund, SimSmpProduct, SimSmpSubscription, SimTrade, SimTradeStatus
from tests import quick
from tests.channels_crm.support import new_order, pay, sign_in
from tests.epg_api.support import Api, new_api_key, provider_pay, settle
from tests.factories import OrderFactory, ProductFactory

NOW = "2026-11-25 12:00:00+08:00"
ADMIN_NAME = "ops-lead"
PRICE = 2500  # VIP-MONTH, fen
EN = {"HTTP_ACCEPT_LANGUAGE": "en"}
QUEUE = "/admin/billing/workitem/"
ON_POSTGRESQL = "postgresql" in django_settings.DATABASES["default"]["ENGINE"]


# --- set-up ---------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _quick(monkeypatch, settings):
    """Speed only, behaviour unchanged (tests/quick.py)."""
    quick.speed_up(monkeypatch, settings)


@pytest.fixture
def frozen(time_machine):
    time_machine.move_to(NOW, tick=False)
    return time_machine


@pytest.fixture
def admin(db) -> Client:
    user = get_user_model().objects.create_superuser(ADMIN_NAME, email="", password="unused-password-1")
    client = Client()
    client.force_login(user)
    return client


def smp_stops_selling() -> None:
    SimSmpProduct.objects.filter(code="SMP-VIP-MONTH").update(active=False)


def smp_sells_again() -> None:
    SimSmpProduct.objects.filter(code="SMP-VIP-MONTH").update(active=True)


@pytest.fixture
def refund_failed(demo, frozen) -> WorkItem:
    """A WeChat Pay order the SMP refuses to provision, whose refund WeChat Pay refuses: the order
    waits in provisioning for a person."""
    api = Api(new_api_key("EPG work-queue tests"))
    order = api.place("tv1001", "VIP-MONTH")
    shown = api.pay_with(order["order_no"], "wechat_qr")
    smp_stops_selling()
    provider_pay("wechat_qr", shown["payment"]["out_trade_no"])
    SimTrade.objects.filter(provider="wechatpay", out_trade_no=shown["payment"]["out_trade_no"]).update(
        status=SimTradeStatus.NOT_PAID
    )
    settle()
    item = WorkItem.objects.get(order__order_no=order["order_no"], resolved_at=None)
    assert item.kind == "refund_failed" and item.order.status == "provisioning"
    return item


OPS = Actor(ActorKind.ADMIN, "ops-lead")


def cash_sale_completed(phone: str = "13800000001") -> Order:
    clerk = sign_in()
    order = new_order(clerk, phone)
    assert pay(clerk, order, "cash", cash_received="yes").status_code == 302
    settle()
    order.refresh_from_db()
    assert order.status == "completed"
    return order


def cash_sale_not_provisioned(phone: str = "13800000001") -> WorkItem:
    """A cash sale: the CRM activity is done, then the SMP refuses; the store must pay the cash back."""
    clerk = sign_in()
    smp_sells_again()  # for the pre-check
    order = new_order(clerk, phone)
    smp_stops_selling()
    assert pay(clerk, order, "cash", cash_received="yes").status_code == 302
    settle()
    item = WorkItem.objects.get(order=order, resolved_at=None)
    assert item.kind == "cash_payback" and item.order.status == "failed"
    return item


@pytest.fixture
def cash_payback(demo, frozen) -> WorkItem:
    return cash_sale_not_provisioned()


# --- reading the pages ----------------------------------------------------------------------------


def act_url(item: WorkItem) -> str:
    return f"{QUEUE}{item.pk}/act/"


def text_of(page: bytes) -> str:
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page.decode()))).strip()


def listed(client: Client, **filters: str) -> list[tuple[int, str, bool]]:
    """The queue's rows, in order: (item id, kind as shown, has a Resolve… button)."""
    response = client.get(QUEUE, filters, **EN)
    assert response.status_code == 200, response.status_code
    page = response.content.decode()
    body = re.search(r'<table id="result_list">.*?<tbody>(.*?)</tbody>', page, re.S)
    if body is None:
        return []
    rows = []
    for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body.group(1), re.S):
        item_id = int(re.search(r"/admin/billing/workitem/(\d+)/", row).group(1))
        kind = text_of(re.search(r'<td class="field-what[^"]*">(.*?)</td>', row, re.S).group(1).encode())
        rows.append((item_id, kind, f'href="{QUEUE}{item_id}/act/"' in row))
    return rows


def act(client: Client, item: WorkItem, action: str, note: str) -> Any:
    return client.post(act_url(item), {"action": action, "note": note}, **EN)


def audit(item: WorkItem) -> dict[str, Any]:
    """What an action changes: the item, the order's history and money, admin's log."""
    item = WorkItem.objects.get(pk=item.pk)
    return {
        "item": (item.resolved_at, item.resolved_by, item.resolution),
        "order": Order.objects.values_list("status", "failure_code", "status_changed_at").get(pk=item.order_id),
        "events": list(OrderEvent.objects.filter(order_id=item.order_id).values_list("pk", flat=True)),
        "ledger": list(LedgerEntry.objects.filter(order_id=item.order_id).values_list("kind", "amount_fen")),
        "refunds": list(Refund.objects.filter(order_id=item.order_id).values_list("status", "attempts")),
        "admin_log": LogEntry.objects.count(),
        "crm_reversed": list(SimCrmActivity.objects.values_list("reversed_at", flat=True)),
    }


def assert_audited(item: WorkItem, *, action: str, logged: str, note: str) -> OrderEvent:
    """The item is closed by the admin, with the note, in the order's history and in admin's log."""
    item.refresh_from_db()
    assert item.resolved_at is not None
    assert item.resolved_by == f"admin:{ADMIN_NAME}"
    assert item.resolution == f"{action}: {note}"
    event = OrderEvent.objects.get(order_id=item.order_id, action__startswith="work_")
    assert event.action == f"work_{action}"
    assert (event.actor_kind, event.actor_id, event.reason) == ("admin", ADMIN_NAME, note)
    assert event.data == {"kind": item.kind}
    entry = LogEntry.objects.get(content_type=ContentType.objects.get_for_model(WorkItem), object_id=str(item.pk))
    with translation.override("en"):
        said = change_text(entry)
    assert (entry.user.username, entry.action_flag, said) == (ADMIN_NAME, CHANGE, f"Work item: {logged}. Note: {note}")
    return event


# --- the queue ------------------------------------------------------------------------------------------


def test_another_problem_of_the_same_kind_is_added_to_the_open_item_once(db):
    order = OrderFactory(product=ProductFactory())
    first = work_item_open(order=order, kind=WorkItemKind.PROVIDER_DISAGREES, detail="notice not sent: down")
    assert work_item_open(order=order, kind=WorkItemKind.PROVIDER_DISAGREES, detail="notice not sent: down") == first
    work_item_open(order=order, kind=WorkItemKind.PROVIDER_DISAGREES, detail="could not end the contract: down")
    work_item_open(order=order, kind=WorkItemKind.PROVIDER_DISAGREES, detail="notice not sent: down")

    (item,) = WorkItem.objects.filter(order=order)
    assert item.detail.splitlines() == ["notice not sent: down", "could not end the contract: down"]
    # Full, it keeps what it says (the log has the rest); another kind is an item of its own.
    work_item_open(order=order, kind=WorkItemKind.PROVIDER_DISAGREES, detail="x" * 990)
    item.refresh_from_db()
    assert item.detail.splitlines() == ["notice not sent: down", "could not end the contract: down"]
    work_item_open(order=order, kind=WorkItemKind.REFUND_FAILED, detail="refund refused")
    assert WorkItem.objects.filter(order=order).count() == 2
    # Once resolved, the next problem opens a new item.
    WorkItem.objects.filter(pk=item.pk).update(resolved_at=timezone.now())
    again = work_item_open(order=order, kind=WorkItemKind.PROVIDER_DISAGREES, detail="could not end the contract: down")
    assert again.pk != item.pk and again.detail == "could not end the contract: down"


def test_the_queue_lists_open_items_with_filters_by_kind_and_by_open(admin, refund_failed):
    open_cash = cash_sale_not_provisioned("13800000001")
    paid_back = cash_sale_not_provisioned("13800000001")
    manual.work_item_resolve(
        item_id=paid_back.pk, note="paid back", actor=Actor(ActorKind.ADMIN, "earlier"), cash_paid_back=True
    )

    everything = listed(admin, state="all")

    with translation.override("en"):
        cash_payback_shown = str(WorkItemKind.CASH_PAYBACK.label)
    assert sorted(everything) == sorted(
        [
            (refund_failed.pk, "refund failed", True),
            (open_cash.pk, cash_payback_shown, True),
            (paid_back.pk, cash_payback_shown, False),
        ]
    )
    page = admin.get(QUEUE, **EN).content.decode()
    assert 'id="changelist-filter"' in page
    # The queue opens on what is left to do (issue #12, item 7); the resolved items are one filter away.
    assert {i for i, _, _ in listed(admin)} == {refund_failed.pk, open_cash.pk}
    assert {i for i, _, _ in listed(admin, state="open")} == {refund_failed.pk, open_cash.pk}
    assert {i for i, _, _ in listed(admin, state="resolved")} == {paid_back.pk}
    assert {i for i, _, _ in listed(admin, kind__exact="cash_payback", state="all")} == {open_cash.pk, paid_back.pk}
    assert {i for i, _, _ in listed(admin, kind__exact="refund_failed")} == {refund_failed.pk}
    assert [i for i, _, _ in listed(admin, kind__exact="cash_payback")] == [open_cash.pk]
    assert [i for i, _, _ in listed(admin, q=refund_failed.order.order_no)] == [refund_failed.pk]


def test_the_queue_lists_open_items_before_resolved_ones(admin, demo, frozen):
    older = cash_sale_not_provisioned("13800000001")
    frozen.shift(timedelta(minutes=5))
    manual.work_item_resolve(item_id=older.pk, note="paid back", actor=Actor(ActorKind.ADMIN, "x"), cash_paid_back=True)
    newer = cash_sale_not_provisioned("13800000001")

    assert [(i, has_button) for i, _, has_button in listed(admin, state="all")] == [(newer.pk, True), (older.pk, False)]


def test_the_act_page_shows_the_item_its_order_and_the_actions(admin, refund_failed):
    response = admin.get(act_url(refund_failed), **EN)

    assert response.status_code == 200
    page = response.content.decode()
    text = text_of(response.content)
    assert "refund failed" in text and refund_failed.detail in text
    assert f'href="/admin/orders/order/{refund_failed.order_id}/change/"' in page
    # Only what fits the item (issue #12, item 7): a failed refund of an order still waiting for the SMP.
    assert re.findall(r'name="action" value="([a-z_]+)"', page) == [
        "retry_refund",
        "paid_back_by_hand",
        "retry_provisioning",
        "resolve",
    ]
    assert 'name="note"' in page


def test_each_kind_offers_only_the_actions_that_fit_it(admin, refund_failed, cash_payback):
    page = admin.get(act_url(cash_payback), **EN).content.decode()
    assert re.findall(r'name="action" value="([a-z_]+)"', page) == ["cash_paid_back", "resolve"]
    assert "cash sale not provisioned" in text_of(page.encode())
    refund_failed.order.refresh_from_db()
    manual.work_item_resolve(item_id=refund_failed.pk, note="settled", actor=OPS)


def test_a_cash_refund_started_in_admin_is_named_for_what_it_is(admin, demo, frozen):
    order = cash_sale_completed()
    manual.refund_by_admin(order_id=order.pk, reason="customer changed their mind", actor=OPS)
    item = WorkItem.objects.get(order=order, kind=WorkItemKind.CASH_PAYBACK)
    shown = dict((i, kind) for i, kind, _ in listed(admin))
    assert shown[item.pk] == (
        "cash order refunded in admin: the store pays the cash back, then the CRM activity is reversed"
    )
    page = admin.get(act_url(item), **EN).content.decode()
    assert "provisioning" not in text_of(page.encode()).lower().split("refunded in admin")[0]
    assert re.findall(r'name="action" value="([a-z_]+)"', page) == ["cash_paid_back", "resolve"]
    # The order's page (the work item's row) and admin's history name it so too, not "not provisioned".
    order_page = text_of(admin.get(f"/admin/orders/order/{order.pk}/change/", **EN).content)
    with translation.override("en"):
        assert str(item) == f"{order.order_no} {shown[item.pk]}"
    assert "not provisioned" not in order_page


# --- each action -------------------------------------------------------------------------------------------


def test_resolve_with_a_note_closes_the_item_and_is_audited(admin, refund_failed):
    order_before = Order.objects.values_list("status", "deadline_at").get(pk=refund_failed.order_id)

    response = admin.post(
        act_url(refund_failed), {"action": "resolve", "note": "customer refunded by bank transfer"}, follow=True, **EN
    )

    assert response.redirect_chain == [(QUEUE, 302)]
    assert "Done: Mark resolved (nothing more to do, for the reason in the note)." in text_of(response.content)
    event = assert_audited(
        refund_failed, action="resolved", logged="marked resolved", note="customer refunded by bank transfer"
    )
    assert (event.from_status, event.to_status) == ("provisioning", "provisioning")
    assert Order.objects.values_list("status", "deadline_at").get(pk=refund_failed.order_id) == order_before
    assert not listed(admin)


def test_cash_paid_back_records_the_money_and_reverses_the_crm_activity(admin, cash_payback):
    order = cash_payback.order

    response = act(admin, cash_payback, "cash_paid_back", "store paid 25.00 back, receipt 0042")
    settle()

    assert response.status_code == 302
    assert_audited(
        cash_payback,
        action="cash_paid_back",
        logged="the store paid the cash back",
        note="store paid 25.00 back, receipt 0042",
    )
    assert list(LedgerEntry.objects.filter(order=order).order_by("pk").values_list("kind", "amount_fen")) == [
        ("payment", PRICE),
        ("cash_payback", -PRICE),
    ]
    payback = LedgerEntry.objects.get(order=order, kind="cash_payback")
    assert (payback.actor_kind, payback.actor_id, payback.idempotency_key) == (
        "admin",
        ADMIN_NAME,
        f"crm:payback:{order.order_no}",
    )
    assert SimCrmActivity.objects.get(order_no=order.order_no).reversed_at is not None


def test_paid_back_by_hand_records_the_money_and_ends_the_order_refunded(admin, refund_failed, frozen):
    """WeChat Pay refuses the refund for good; the customer is paid back by bank transfer. Recorded from the
    queue, the ledger says so and the order ends refunded: it no longer waits in provisioning, reopening its
    item every hour (as merely resolving it left it)."""
    order = refund_failed.order

    response = act(admin, refund_failed, "paid_back_by_hand", "paid back by bank transfer, ref. 88231")
    settle()

    assert response.status_code == 302
    assert_audited(
        refund_failed,
        action="paid_back_by_hand",
        logged="paid back by hand, outside the provider",
        note="paid back by bank transfer, ref. 88231",
    )
    order.refresh_from_db()
    assert (order.status, order.failure_code) == ("refunded", "provisioning_failed")
    refund = Refund.objects.get()
    assert list(LedgerEntry.objects.filter(order=order).order_by("pk").values_list("kind", "amount_fen")) == [
        ("payment", PRICE),
        ("hand_payback", -PRICE),
    ]
    payback = LedgerEntry.objects.get(order=order, kind="hand_payback")
    assert (payback.actor_kind, payback.idempotency_key) == ("admin", f"hand:payback:{refund.out_refund_no}")
    assert not SimRefund.objects.exists()  # nothing asked of WeChat Pay
    for _ in range(3):
        frozen.shift(timedelta(hours=1))
        settle()
    assert not WorkItem.objects.filter(order=order, resolved_at=None).exists()
    with pytest.raises(InvalidState):  # and once only
        manual.work_item_paid_back_by_hand(item_id=refund_failed.pk, note="again", actor=OPS)


def test_a_phone_bill_refund_made_at_the_smp_by_hand_is_recorded_and_the_product_stops(admin, demo, frozen):
    """An admin refunds a completed phone-bill order; the SMP gives nothing back (it has no charge under the
    order), and its item says to refund it at the SMP by hand. Once done there, the queue records it: the
    ledger books the reversal, the order ends refunded and its product stops. 'Resolved' alone booked
    nothing: the ledger kept the charge, and the customer the product."""
    api = Api(new_api_key("work queue"))
    no = api.place("tv1001", "VIP-MONTH")["order_no"]
    api.pay_with(no, "phone_bill")
    settle()
    order = Order.objects.get(order_no=no)
    assert order.status == "completed"
    SimSmpSubscription.objects.filter(order_no=no).update(order_no="SOMETHING-ELSE")  # the SMP lost its charge
    assert manual.refund_by_admin(order_id=order.pk, reason="customer asked", actor=OPS) == "smp_reversal"
    settle()
    item = WorkItem.objects.get(order=order, kind="provider_disagrees", resolved_at=None)
    assert "refund it at the SMP by hand" in item.detail
    page = admin.get(act_url(item), **EN).content.decode()
    assert "refunded in the SMP&#x27;s console by hand" in page

    response = act(admin, item, "refunded_at_smp_by_hand", "refunded in the SMP console, ticket 5521")
    settle()

    assert response.status_code == 302
    assert_audited(
        item,
        action="refunded_at_smp_by_hand",
        logged="refunded in the SMP's console by hand",
        note="refunded in the SMP console, ticket 5521",
    )
    order.refresh_from_db()
    assert (order.status, order.failure_code) == ("refunded", "")
    assert list(LedgerEntry.objects.filter(order=order).order_by("pk").values_list("kind", "amount_fen")) == [
        ("payment", PRICE),
        ("reversal", -PRICE),
    ]
    assert LedgerEntry.objects.get(kind="reversal").idempotency_key == f"smp:reversal:{no}"
    assert Entitlement.objects.get(order=order).revoked_at is not None
    with pytest.raises(InvalidState):  # once only
        manual.work_item_refunded_at_smp_by_hand(item_id=item.pk, note="again", actor=OPS)


def test_the_smp_hand_refund_is_offered_only_for_a_completed_phone_bill_order(admin, refund_failed):
    """A WeChat Pay order's item of the same kind does not offer it, and the service refuses it."""
    item = work_item_open(order=refund_failed.order, kind=WorkItemKind.PROVIDER_DISAGREES, detail="the provider says")
    assert "refunded_at_smp_by_hand" not in admin.get(act_url(item), **EN).content.decode()
    before = audit(item)
    with pytest.raises(InvalidState):
        manual.work_item_refunded_at_smp_by_hand(item_id=item.pk, note="no", actor=OPS)
    assert audit(item) == before


def test_resolving_a_failed_refund_of_an_order_in_provisioning_asks_again_later(admin, refund_failed, frozen):
    """Only resolving it (no money recorded) leaves the customer's money held: the item comes back."""
    manual.work_item_resolve(item_id=refund_failed.pk, note="looked at it", actor=OPS)
    frozen.shift(timedelta(hours=2))
    settle()
    assert WorkItem.objects.filter(order=refund_failed.order, kind="refund_failed", resolved_at=None).exists()


def test_retry_refund_returns_the_money_once_the_provider_is_repaired(admin, refund_failed):
    order = refund_failed.order
    payment = order.payments.get(status="paid")
    SimTrade.objects.filter(provider="wechatpay", out_trade_no=payment.out_trade_no).update(status=SimTradeStatus.PAID)

    response = act(admin, refund_failed, "retry_refund", "WeChat Pay support repaired the trade")
    settle()

    assert response.status_code == 302
    assert_audited(
        refund_failed, action="retried_refund", logged="refund retried", note="WeChat Pay support repaired the trade"
    )
    order.refresh_from_db()
    assert (order.status, order.failure_code) == ("refunded", "provisioning_failed")
    assert SimRefund.objects.get().amount_fen == PRICE
    assert list(LedgerEntry.objects.filter(order=order).order_by("pk").values_list("kind", "amount_fen")) == [
        ("payment", PRICE),
        ("refund", -PRICE),
    ]
    assert list(Refund.objects.values_list("status", flat=True)) == ["succeeded"]


def test_retry_provisioning_restarts_the_window_and_completes_once_the_smp_is_back(admin, refund_failed, frozen):
    order = refund_failed.order
    frozen.shift(timedelta(hours=2))  # long past the first provisioning window
    settle()
    smp_sells_again()
    faults.set_mode("smp", "down")  # ...but it is down right now

    response = act(admin, refund_failed, "retry_provisioning", "SMP team re-enabled the product")

    assert response.status_code == 302
    assert_audited(
        refund_failed,
        action="retried_provisioning",
        logged="activation retried",
        note="SMP team re-enabled the product",
    )
    order.refresh_from_db()
    assert order.status == "provisioning"
    assert order.status_changed_at == timezone.now() and order.attempts == 0
    settle()
    order.refresh_from_db()
    assert order.status == "provisioning"  # a new window: retrying, not giving up
    assert order.deadline_at > timezone.now()
    assert list(Refund.objects.values_list("status", flat=True)) == ["failed"]  # no new refund asked for

    faults.set_mode("smp", "ok")
    frozen.move_to(order.deadline_at)
    settle()

    order.refresh_from_db()
    assert order.status == "completed"
    subscription = SimSmpSubscription.objects.get(order_no=order.order_no)
    assert subscription.charge == "prepaid"
    assert Entitlement.objects.get(order=order).revoked_at is None
    assert list(LedgerEntry.objects.filter(order=order).values_list("kind", "amount_fen")) == [("payment", PRICE)]
    assert not WorkItem.objects.filter(resolved_at=None).exists()
    assert not SimRefund.objects.exists()


# --- refusals: nothing changes -------------------------------------------------------------------------------


def test_every_action_needs_a_note(admin, refund_failed, cash_payback):
    for item in (refund_failed, cash_payback):
        for action in ("resolve", "cash_paid_back", "retry_refund", "retry_provisioning"):
            for note in ("", "   "):
                before = audit(item)
                response = act(admin, item, action, note)
                assert response.status_code == 200, (item.kind, action, note)
                assert "This field is required." in text_of(response.content), (item.kind, action, note)
                assert audit(item) == before, (item.kind, action, note)
    settle()
    assert WorkItem.objects.filter(resolved_at=None).count() == 2
    assert not SimRefund.objects.exists()
    assert SimCrmActivity.objects.get().reversed_at is None


def test_acting_on_a_resolved_item_is_refused_and_changes_nothing(admin, cash_payback):
    assert act(admin, cash_payback, "cash_paid_back", "paid back").status_code == 302
    settle()
    reversed_at = SimCrmActivity.objects.get().reversed_at
    assert "Resolve…" not in text_of(admin.get(QUEUE, **EN).content)

    for action in ("resolve", "cash_paid_back", "retry_refund", "retry_provisioning"):
        before = audit(cash_payback)
        response = act(admin, cash_payback, action, "once more")
        assert response.status_code == 200, action
        assert "This item was resolved already." in text_of(response.content), action
        assert audit(cash_payback) == before, action
    settle()

    assert SimCrmActivity.objects.get().reversed_at == reversed_at
    assert LedgerEntry.objects.filter(kind="cash_payback").count() == 1


def test_an_action_that_does_not_fit_the_item_is_refused_and_changes_nothing(admin, refund_failed, cash_payback):
    # Not offered (issue #12, item 7), and refused when sent all the same.
    for item, action, message in (
        (refund_failed, "cash_paid_back", "Select a valid choice."),
        (cash_payback, "retry_refund", "Select a valid choice."),
        (cash_payback, "retry_provisioning", "Select a valid choice."),
    ):
        before = audit(item)
        response = act(admin, item, action, "trying")
        assert response.status_code == 200, action
        assert message in text_of(response.content), action
        assert audit(item) == before, action


def test_the_queue_needs_staff_with_the_permission(refund_failed):
    viewer = get_user_model().objects.create_user("viewer", password="unused-password-1", is_staff=True)
    client = Client()
    client.force_login(viewer)

    assert client.get(act_url(refund_failed), **EN).status_code == 403
    assert act(client, refund_failed, "resolve", "not mine to do").status_code == 403
    assert WorkItem.objects.get(pk=refund_failed.pk).resolved_at is None
    anonymous = Client().get(act_url(refund_failed), **EN)
    assert anonymous.status_code == 302 and "/login/" in anonymous["Location"]


def test_an_unknown_item_is_a_404(admin, db):
    assert admin.get(f"{QUEUE}999999/act/", **EN).status_code == 404
