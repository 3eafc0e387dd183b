"""The audit trail (issue #6, point 8): who did what, and why, kept where no one can change it.

* every transition of an order writes an ``OrderEvent`` naming its actor and its reason (each kind of
  transition is reached through a real flow: EPG API, sandbox payers and phones, clerk pages, admin);
* every movement of money writes a ``LedgerEntry`` naming its actor;
* every admin change to a product (the form asks "Why") and every admin action on an order (the refund
  page) or on the work queue is in ``LogEntry`` with the user and the reason;
* every SSO sign-in, accepted or refused, is an ``SsoLogin``;
* none of these can be added, changed or deleted from admin, even by a superuser, and ``OrderEvent`` and
  ``LedgerEntry`` refuse updates and deletes through the ORM, one row or a queryset.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.contrib import admin as django_admin
from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models.deletion import ProtectedError
from django.test import Client, RequestFactory
from django.urls import NoReverseMatch, reverse
from django.utils import timezone, translation

from backoffice.history import change_text
from billing.models import LedgerEntry, LedgerKind, WorkItem
from channels_crm.models import SsoLogin
from ipvas.actors import Actor, ActorKind
from lifecycle import manual
from orders.models import Order, OrderEvent, Product
from sandbox.models import SimTrade, SimTradeStatus
from tests.channels_crm.support import claims, new_order, pay, sign, ticket
from tests.channels_crm.support import sign_in as clerk_sign_in
from tests.epg_api.support import Api, provider_pay, settle, sms_reply
from tests.factories import OrderFactory
from tests.orders.test_admin_products import product_form
from tests.security.conftest import ADMIN_NAME, EN

NOW = "2026-11-25 12:00:00+08:00"
OPS = Actor(ActorKind.ADMIN, ADMIN_NAME)


@pytest.fixture
def frozen(time_machine):
    time_machine.move_to(NOW, tick=False)
    return time_machine


def assert_history_is_unbroken(order: Order) -> None:
    """Each event starts where the one before ended, and the last ends where the order is: no
    status change happened without its event."""
    statuses = [(e.action, e.from_status, e.to_status) for e in order.events.order_by("at", "pk")]
    assert statuses and statuses[0][:2] == ("create", ""), statuses
    for before, after in itertools.pairwise(statuses):
        assert after[1] == before[2], statuses
    order.refresh_from_db()
    assert statuses[-1][2] == order.status, statuses


def assert_actor(kind: str, actor_id: str) -> None:
    assert kind in ActorKind.values, kind
    assert actor_id.strip(), f"{kind} with no id"


# --- every kind of transition, through real flows -------------------------------------------------

Flow = Callable[[Api, Any], str]


def _placed(api: Api) -> str:
    order = api.place("tv1001", "VIP-MONTH")
    assert order["status"] == "awaiting_payment", order
    return order["order_no"]


def _qr_shown(api: Api, method: str = "wechat_qr") -> str:
    order_no = _placed(api)
    api.pay_with(order_no, method)
    return order_no


def _sms_sent(api: Api) -> str:
    order_no = _placed(api)
    api.pay_with(order_no, "phone_bill_sms")
    settle()
    return order_no


def _paid(api: Api) -> str:
    order_no = _qr_shown(api)
    provider_pay("wechat_qr", api.order(order_no)["payment"]["out_trade_no"])
    return order_no


def _completed(api: Api) -> str:
    order_no = _paid(api)
    settle()
    return order_no


def _rejected(api: Api, clock: Any) -> str:
    response = api.create("tv1003", "VIP-MONTH")
    settle()
    return response.json()["order_no"]


def _switched(api: Api, clock: Any) -> str:
    order_no = _qr_shown(api)
    api.pay_with(order_no, "alipay_qr")
    return order_no


def _sms_declined(api: Api, clock: Any) -> str:
    order_no = _sms_sent(api)
    sms_reply("13800000001", "N")
    return order_no


def _insufficient_balance(api: Api, clock: Any) -> str:
    order_no = api.place("tv1002", "VIP-MONTH")["order_no"]
    api.pay_with(order_no, "phone_bill")
    settle()
    return order_no


def _idle(api: Api, clock: Any) -> str:
    order_no = _placed(api)
    clock.shift(timedelta(seconds=settings.ORDER_IDLE_SECONDS + 1))
    settle()
    return order_no


def _sms_unanswered(api: Api, clock: Any) -> str:
    order_no = _sms_sent(api)
    clock.shift(timedelta(seconds=settings.PAYMENT_WINDOW_SECONDS + 1))
    settle()
    return order_no


def _qr_unpaid(api: Api, clock: Any) -> str:
    order_no = _qr_shown(api)
    clock.shift(timedelta(seconds=settings.PAYMENT_WINDOW_SECONDS + 1))
    settle()
    return order_no


def _cancelled(api: Api, clock: Any) -> str:
    order_no = _placed(api)
    assert api.cancel(order_no).status_code == 200
    return order_no


def _refunded(api: Api, clock: Any) -> str:
    order_no = _completed(api)
    manual.refund_by_admin(order_id=Order.objects.get(order_no=order_no).pk, reason="goodwill", actor=OPS)
    settle()
    return order_no


# (flow, the transition, the event's from and to status, the actor kind)
TRANSITIONS = [
    pytest.param(
        lambda api, clock: _placed(api),
        "precheck_passed",
        ("prechecking", "awaiting_payment"),
        "task",
        id="precheck_passed",
    ),
    pytest.param(_rejected, "reject", ("prechecking", "rejected"), "task", id="reject"),
    pytest.param(
        lambda api, clock: _qr_shown(api),
        "start_payment",
        ("awaiting_payment", "payment_pending"),
        "epg_client",
        id="start_payment",
    ),
    pytest.param(
        _switched,
        "switch_payment",
        ("payment_pending", "payment_pending"),
        "epg_client",
        id="switch_payment",
    ),
    pytest.param(
        lambda api, clock: _paid(api),
        "payment_confirmed",
        ("payment_pending", "provisioning"),
        "provider",
        id="payment_confirmed",
    ),
    pytest.param(lambda api, clock: _completed(api), "complete", ("provisioning", "completed"), "task", id="complete"),
    pytest.param(_sms_declined, "fail", ("payment_pending", "failed"), "sms", id="fail-sms_declined"),
    pytest.param(
        _insufficient_balance,
        "fail",
        ("provisioning", "failed"),
        "task",
        id="fail-insufficient_balance",
    ),
    pytest.param(_idle, "expire", ("awaiting_payment", "expired"), "task", id="expire-idle"),
    pytest.param(
        _sms_unanswered,
        "expire",
        ("payment_pending", "expired"),
        "task",
        id="expire-sms_timeout",
    ),
    pytest.param(_qr_unpaid, "expire", ("payment_pending", "expired"), "task", id="expire-qr_closed"),
    pytest.param(_cancelled, "cancel", ("awaiting_payment", "cancelled"), "epg_client", id="cancel"),
    # The admin asked (the refund_requested event says who and why); the refund task moves the order.
    pytest.param(_refunded, "refunded", ("completed", "refunded"), "task", id="refunded"),
]


@pytest.mark.parametrize(("flow", "action", "statuses", "actor_kind"), TRANSITIONS)
def test_every_transition_writes_an_event_with_its_actor_and_reason(api, frozen, flow, action, statuses, actor_kind):
    order = Order.objects.get(order_no=flow(api, frozen))

    assert_history_is_unbroken(order)
    for event in order.events.all():
        assert_actor(event.actor_kind, event.actor_id)
    event = order.events.filter(action=action).order_by("-at", "-pk").first()
    assert event is not None, list(order.events.values_list("action", flat=True))
    assert (event.from_status, event.to_status) == statuses
    assert event.actor_kind == actor_kind, (event.actor_kind, event.actor_id)
    assert event.reason.strip(), f"{action} by {event.actor_kind}:{event.actor_id} gives no reason"


# --- money: the ledger, and the admin's actions in LogEntry ----------------------------------------


def _refund_page(admin: Client, order: Order, reason: str) -> None:
    response = admin.post(f"/admin/orders/order/{order.pk}/refund/", {"reason": reason, "amount_yuan": ""}, **EN)
    assert response.status_code == 302, response.content.decode()[-2000:]


def _admin_log(obj: models.Model) -> list[tuple[str, int, str]]:
    entries = LogEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(type(obj)), object_id=str(obj.pk)
    ).order_by("pk")
    with translation.override("en"):  # as admin's history shows it to an English reader
        return [(e.user.get_username(), e.action_flag, change_text(e)) for e in entries]


def test_every_money_movement_names_its_actor_and_every_admin_action_is_logged_with_why(api, admin, frozen):
    # QR: paid by the provider, refunded from the refund page.
    by_qr = Order.objects.get(order_no=api.buy("tv1001", "VIP-MONTH", method="wechat_qr")["order_no"])
    _refund_page(admin, by_qr, "customer complaint 1")
    settle()
    # Phone bill: charged on the SMP, reversed from the refund page.
    by_phone = Order.objects.get(order_no=api.buy("tv1001", "VIP-MONTH", method="phone_bill")["order_no"])
    _refund_page(admin, by_phone, "customer complaint 2")
    settle()
    # Cash in a store: the CRM activity, refunded from the refund page, paid back from the work queue.
    clerk = clerk_sign_in()
    by_cash = new_order(clerk, "13800000001")
    assert pay(clerk, by_cash, "cash", cash_received="yes").status_code == 302
    settle()
    _refund_page(admin, by_cash, "customer complaint 3")
    item = WorkItem.objects.get(order=by_cash, resolved_at__isnull=True)
    acted = admin.post(
        f"/admin/billing/workitem/{item.pk}/act/", {"action": "cash_paid_back", "note": "paid at the counter"}, **EN
    )
    assert acted.status_code == 302, acted.content.decode()[-2000:]
    settle()
    # QR again, the provider refusing the refund for good: paid back by hand, recorded from the work queue.
    by_hand = Order.objects.get(order_no=api.buy("tv1001", "VIP-MONTH", method="wechat_qr")["order_no"])
    SimTrade.objects.filter(out_trade_no=by_hand.order_no).update(status=SimTradeStatus.NOT_PAID)
    _refund_page(admin, by_hand, "customer complaint 4")
    settle()
    refused = WorkItem.objects.get(order=by_hand, kind="refund_failed", resolved_at__isnull=True)
    acted = admin.post(
        f"/admin/billing/workitem/{refused.pk}/act/",
        {"action": "paid_back_by_hand", "note": "bank transfer 7731"},
        **EN,
    )
    assert acted.status_code == 302, acted.content.decode()[-2000:]
    settle()

    entries = list(LedgerEntry.objects.order_by("pk"))
    assert {e.kind for e in entries} == set(LedgerKind.values)
    [by_hand_back] = [e for e in entries if e.kind == LedgerKind.HAND_PAYBACK]
    assert (by_hand_back.actor_kind, by_hand_back.actor_id, by_hand_back.note) == (
        "admin",
        ADMIN_NAME,
        "bank transfer 7731",
    )
    for entry in entries:
        assert_actor(entry.actor_kind, entry.actor_id)
    [payback] = [e for e in entries if e.kind == LedgerKind.CASH_PAYBACK]
    assert (payback.actor_kind, payback.actor_id) == ("admin", ADMIN_NAME)
    for order in (by_qr, by_phone, by_cash, by_hand):
        order.refresh_from_db()
        assert order.status == "refunded", (order.order_no, order.status)
        assert sum(e.amount_fen for e in entries if e.order_id == order.pk) == 0
        requested = order.events.get(action="refund_requested")
        assert (requested.actor_kind, requested.actor_id) == ("admin", ADMIN_NAME)
        assert requested.reason.startswith("customer complaint")
    for order, reason in ((by_qr, "customer complaint 1"), (by_phone, "customer complaint 2")):
        [(user, flag, message)] = _admin_log(order)
        assert (user, flag) == (ADMIN_NAME, CHANGE) and reason in message, message
    [(user, flag, message)] = _admin_log(by_cash)
    assert (user, flag) == (ADMIN_NAME, CHANGE) and "customer complaint 3" in message, message
    [(user, flag, message)] = _admin_log(item)
    assert (user, flag) == (ADMIN_NAME, CHANGE) and "paid at the counter" in message, message


# --- products changed in admin ---------------------------------------------------------------------


def _product_log(product: Product) -> list[tuple[str, int, Any]]:
    return list(_admin_log(product))


def test_every_admin_change_to_a_product_is_logged_with_who_and_why(admin):
    added = admin.post(reverse("admin:orders_product_add"), product_form(change_reason="weekend campaign"), **EN)
    assert added.status_code == 302, added.context and added.context["adminform"].form.errors
    product = Product.objects.get(code="VIP-WEEKEND")
    change_url = reverse("admin:orders_product_change", args=[product.pk])

    refused = admin.post(change_url, product_form(price_fen="2600", change_reason=""), **EN)
    assert refused.status_code == 200
    assert "change_reason" in refused.context["adminform"].form.errors
    product.refresh_from_db()
    assert product.price_fen == 2500
    changed = admin.post(change_url, product_form(price_fen="2600", change_reason="price rise in December"), **EN)
    assert changed.status_code == 302

    product.refresh_from_db()
    assert product.price_fen == 2600
    log = _product_log(product)
    assert [(u, f) for u, f, _ in log] == [(ADMIN_NAME, ADDITION), (ADMIN_NAME, CHANGE)]
    assert log[0][2].endswith("Reason: weekend campaign"), log[0][2]
    assert log[1][2].endswith("Reason: price rise in December"), log[1][2]
    assert "price (fen): 2500 → 2600" in log[1][2], log[1][2]  # the old and the new value


def test_the_products_history_page_shows_why(admin):
    admin.post(reverse("admin:orders_product_add"), product_form(change_reason="weekend campaign"), **EN)
    product = Product.objects.get(code="VIP-WEEKEND")

    page = admin.get(reverse("admin:orders_product_history", args=[product.pk]), **EN)

    assert page.status_code == 200
    assert "weekend campaign" in page.content.decode()


def test_a_product_cannot_be_deleted_from_admin(admin):
    """Orders keep pointing at their product: it is retired (not active), never deleted, so there is no
    deletion to leave unexplained in the log."""
    admin.post(reverse("admin:orders_product_add"), product_form(change_reason="weekend campaign"), **EN)
    product = Product.objects.get(code="VIP-WEEKEND")

    answer = admin.post(reverse("admin:orders_product_delete", args=[product.pk]), {"post": "yes"}, **EN)

    assert answer.status_code == 403
    assert Product.objects.filter(pk=product.pk).exists()
    assert not [entry for entry in _admin_log(product) if entry[1] == DELETION]


# --- SSO sign-ins -------------------------------------------------------------------------------


def test_every_sso_sign_in_accepted_or_refused_is_recorded(demo, frozen):
    accepted = ticket()
    outcomes = {
        "accepted": Client().get("/crm/sso/", {"ticket": accepted}, REMOTE_ADDR="10.0.0.7").status_code,
        "replayed": Client().get("/crm/sso/", {"ticket": accepted}, REMOTE_ADDR="10.0.0.8").status_code,
        "expired": Client()
        .get("/crm/sso/", {"ticket": ticket(iat=int(time.time()) - 600, exp=int(time.time()) - 480)})
        .status_code,
        "forged": Client().get("/crm/sso/", {"ticket": accepted[:-8] + "AAAAAAAA"}).status_code,
        "wrong audience": Client().get("/crm/sso/", {"ticket": sign(claims(aud="someone-else"))}).status_code,
        "empty": Client().get("/crm/sso/").status_code,
    }
    get_user_model().objects.create_user("crm-ops1", password="x-Strong-Pass-123", is_staff=True)
    outcomes["staff account"] = Client().get("/crm/sso/", {"ticket": ticket(sub="ops1")}).status_code

    assert outcomes == {"accepted": 302} | {k: 403 for k in outcomes if k != "accepted"}
    logins = list(SsoLogin.objects.order_by("pk"))
    assert [login.accepted for login in logins] == [True] + [False] * (len(outcomes) - 1)
    assert (logins[0].staff_id, logins[0].store_code, logins[0].remote_addr) == ("clerk01", "NX-YC-001", "10.0.0.7")
    assert logins[0].jti
    assert logins[1].remote_addr == "10.0.0.8"
    for login in logins[1:]:
        assert login.reason.strip(), login
    assert "used already" in logins[1].reason


@pytest.mark.parametrize(("proxies", "recorded"), [(1, "203.0.113.7"), (0, "10.0.0.2")])
def test_an_sso_sign_in_records_the_callers_address_behind_the_proxy(demo, settings, proxies, recorded):
    """Behind haproxy (docs/operations.md) every request comes from the proxy's address: the audit records the
    caller's, the entry the proxy appended to X-Forwarded-For, by the sign-in limit's own rule
    (TRUSTED_PROXY_COUNT); what the caller wrote before it is not believed. Without a proxy, the connection's."""
    settings.ALLAUTH_TRUSTED_PROXY_COUNT = proxies
    behind_the_proxy = {"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_FOR": "spoofed, 203.0.113.7"}

    assert Client().get("/crm/sso/", {"ticket": ticket()}, **behind_the_proxy).status_code == 302
    assert Client().get("/crm/sso/", {"ticket": "garbage"}, **behind_the_proxy).status_code == 403

    assert [(login.accepted, login.remote_addr) for login in SsoLogin.objects.order_by("pk")] == [
        (True, recorded),
        (False, recorded),
    ]


# --- read-only in admin, even for a superuser ----------------------------------------------------


def _ledger_entry(_: Any) -> LedgerEntry:
    order = OrderFactory()
    return LedgerEntry.objects.create(
        order=order,
        kind=LedgerKind.PAYMENT,
        amount_fen=2500,
        method="wechat_qr",
        provider="wechatpay",
        provider_ref="4200000000",
        idempotency_key="wechatpay:payment:4200000000",
        actor_kind="provider",
        actor_id="wechatpay",
    )


def _log_entry(user: Any) -> LogEntry:
    product = OrderFactory().product
    return LogEntry.objects.create(
        user=user,
        content_type=ContentType.objects.get_for_model(Product),
        object_id=str(product.pk),
        object_repr=str(product),
        action_flag=CHANGE,
        change_message=json.dumps([{"reason": "original"}]),
    )


def _sso_login(_: Any) -> SsoLogin:
    return SsoLogin.objects.create(accepted=False, reason="the ticket has expired", remote_addr="10.0.0.9")


RECORDS = [
    pytest.param(LedgerEntry, _ledger_entry, {"amount_fen": "1", "actor_id": "someone"}, id="LedgerEntry"),
    pytest.param(LogEntry, _log_entry, {"change_message": "rewritten", "action_flag": "1"}, id="LogEntry"),
    pytest.param(SsoLogin, _sso_login, {"accepted": "on", "reason": ""}, id="SsoLogin"),
]


@pytest.mark.parametrize(("model", "make", "edit"), RECORDS)
def test_records_cannot_be_added_changed_or_deleted_from_admin(admin, admin_user, model, make, edit):
    record = make(admin_user)
    row = model.objects.filter(pk=record.pk).values().get()
    count = model.objects.count()
    name = f"admin:{model._meta.app_label}_{model._meta.model_name}"
    model_admin = django_admin.site._registry[model]
    request = RequestFactory().get("/admin/")
    request.user = admin_user

    assert model_admin.has_view_permission(request, record)
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request) and not model_admin.has_change_permission(request, record)
    assert not model_admin.has_delete_permission(request) and not model_admin.has_delete_permission(request, record)
    assert "delete_selected" not in model_admin.get_actions(request)
    add, change = reverse(f"{name}_add"), reverse(f"{name}_change", args=[record.pk])
    delete, changelist = reverse(f"{name}_delete", args=[record.pk]), reverse(f"{name}_changelist")
    assert admin.get(add, **EN).status_code == 403
    assert admin.post(add, edit, **EN).status_code == 403
    assert admin.post(change, edit, **EN).status_code == 403
    assert admin.get(delete, **EN).status_code == 403
    assert admin.post(delete, {"post": "yes"}, **EN).status_code == 403
    admin.post(changelist, {"action": "delete_selected", "_selected_action": [record.pk], "post": "yes"}, **EN)
    # The change page is a read-only view: no field to edit, no button to save.
    view = admin.get(change, **EN)
    assert view.status_code == 200
    html = view.content.decode()
    for button in ("_save", "_continue", "_addanother"):
        assert f'name="{button}"' not in html, button
    for field in edit:
        assert f'name="{field}"' not in html, field

    assert model.objects.count() == count
    assert model.objects.filter(pk=record.pk).values().get() == row


def test_order_events_have_no_admin_page_at_all(admin):
    event = OrderEvent.objects.create(
        order=OrderFactory(), at=timezone.now(), to_status="prechecking", action="create", actor_kind="system"
    )

    assert OrderEvent not in django_admin.site._registry
    with pytest.raises(NoReverseMatch):
        reverse("admin:orders_orderevent_changelist")
    for url in ("/admin/orders/orderevent/", f"/admin/orders/orderevent/{event.pk}/change/"):
        assert admin.get(url, **EN).status_code == 404, url
        assert admin.post(url, {"reason": "x"}, **EN).status_code in (403, 404), url
    assert OrderEvent.objects.filter(pk=event.pk).values_list("reason", flat=True).get() == ""


# --- append-only through the ORM -------------------------------------------------------------------


@pytest.fixture
def history(db) -> tuple[Order, OrderEvent, LedgerEntry]:
    entry = _ledger_entry(None)
    event = OrderEvent.objects.create(
        order=entry.order, at=timezone.now(), to_status="prechecking", action="create", actor_kind="system"
    )
    return entry.order, event, entry


REFUSED = (ValidationError, ValueError)


def test_order_events_refuse_update_and_delete(history):
    order, event, _ = history
    attempts: dict[str, Callable[[], Any]] = {
        "save": lambda: (setattr(event, "reason", "rewritten"), event.save()),
        "delete": event.delete,
        "queryset update": lambda: OrderEvent.objects.filter(pk=event.pk).update(reason="rewritten"),
        "queryset delete": lambda: OrderEvent.objects.filter(pk=event.pk).delete(),
        "related update": lambda: order.events.update(reason="rewritten"),
        "related delete": lambda: order.events.all().delete(),
        "bulk_update": lambda: OrderEvent.objects.bulk_update([event], ["reason"]),
    }
    _assert_all_refused(attempts, OrderEvent, event)
    with pytest.raises(ProtectedError):
        Order.objects.filter(pk=order.pk).delete()


def test_ledger_entries_refuse_update_and_delete(history):
    _, _, entry = history
    attempts: dict[str, Callable[[], Any]] = {
        "save": lambda: (setattr(entry, "amount_fen", 1), entry.save()),
        "delete": entry.delete,
        "queryset update": lambda: LedgerEntry.objects.filter(pk=entry.pk).update(amount_fen=1),
        "bulk_update": lambda: LedgerEntry.objects.bulk_update([entry], ["amount_fen"]),
        "queryset delete": lambda: LedgerEntry.objects.filter(pk=entry.pk).delete(),
    }
    _assert_all_refused(attempts, LedgerEntry, entry)


def _assert_all_refused(attempts: dict[str, Callable[[], Any]], model: type[models.Model], obj: Any) -> None:
    row = model.objects.filter(pk=obj.pk).values().get()
    allowed = []
    for name, attempt in attempts.items():
        obj.refresh_from_db()
        try:
            with transaction.atomic():  # a refusal inside Django's own atomic block must not poison the test's
                attempt()
        except REFUSED:
            continue
        allowed.append(name)
    assert not allowed, f"{model.__name__}: {allowed} went through"
    assert model.objects.filter(pk=obj.pk).values().first() == row
