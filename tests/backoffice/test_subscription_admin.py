"""Subscriptions in admin (docs/interfaces.md §8; issue #13, item 4): the list and its filters, each
subscription's whole life on its page, cancel with a reason; and the renewable flag of products, the
subscription of orders.

Subscriptions are bought and renewed the way customers do it (the EPG's order, the phone bill at the
simulated SMP, reminders and renewals by the system's own scheduled work and time travel); the list's
filters are exercised over rows put straight into a status. Pages are asked for in English (``EN``).
"""

from __future__ import annotations

import html
import re
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.test import Client
from django.urls import reverse
from django.utils import timezone, translation

from backoffice.history import change_text
from ipvas.actors import Actor, ActorKind
from lifecycle.paying import payment_choose
from lifecycle.placing import order_create
from lifecycle.renewals import subscriptions_sweep
from orders.constants import Channel, OrderStatus, PaymentMethod, ProductKind, SubscriptionStatus
from orders.events import subscription_action_label
from orders.models import Order, Product, Subscription, SubscriptionEvent
from sandbox.models import SimSmpAccount
from tests.factories import ProductFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db

EN = {"HTTP_ACCEPT_LANGUAGE": "en"}
EPG = Actor(ActorKind.EPG_CLIENT, "test-client")
ADMIN_NAME = "ops-lead"
START = "2026-12-05 10:00:00+08:00"
LIST = "/admin/orders/subscription/"


@pytest.fixture
def admin(db) -> Client:
    client = Client()
    client.force_login(get_user_model().objects.create_superuser(ADMIN_NAME, email="", password="unused-password-1"))
    return client


@pytest.fixture
def frozen(time_machine):
    time_machine.move_to(START, tick=False)
    return time_machine


def text_of(page: bytes | str) -> str:
    raw = page.decode() if isinstance(page, bytes) else page
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", raw))).strip()


def subscribe(run_tasks, *, product: str = "VIP-MONTH", tv_account: str = "tv1001") -> Subscription:
    order = order_create(channel="epg", product_code=product, tv_account=tv_account, actor=EPG, auto_renew=True)
    run_tasks()
    payment_choose(order_id=order.pk, method=PaymentMethod.PHONE_BILL, actor=EPG)
    run_tasks()
    order.refresh_from_db()
    assert order.status == OrderStatus.COMPLETED, order.failure_code
    return order.subscription


def work(run_tasks, frozen, at) -> None:
    """Time passes to ``at``; the beat's sweep and the worker do what is due."""
    frozen.move_to(at)
    for _ in range(10):
        found = subscriptions_sweep()
        run_tasks()
        if not found:
            return


def sign_in_again(client: Client) -> None:
    client.force_login(get_user_model().objects.get(username=ADMIN_NAME))


def listed(page: bytes) -> list[str]:
    """The subscription numbers in the change list, in order."""
    return re.findall(r'<th class="field-subscription_no"><a href="[^"]+">([A-Za-z0-9]+)</a>', page.decode())


def change_url(subscription: Subscription) -> str:
    return reverse("admin:orders_subscription_change", args=[subscription.pk])


def cancel_url(subscription: Subscription) -> str:
    return reverse("admin:orders_subscription_cancel", args=[subscription.pk])


def consent_evidence(page: str) -> dict[str, str]:
    """The evidence of consent as the page lists it: {label: value}, a nested part's labels joined by " · "."""
    table = re.search(r'<table class="consent-evidence">(.*?)</table>', page, re.S)
    assert table, "no consent evidence"
    return {text_of(k): text_of(v) for k, v in re.findall(r"<th>(.*?)</th><td>(.*?)</td>", table.group(1), re.S)}


def inline_rows(page: bytes, prefix: str) -> list[dict[str, str]]:
    """The rows of a tabular inline (``prefix`` names its formset): {field: text}, and "" for the row's title."""
    group = re.search(
        rf'<div class="js-inline-admin-formset inline-group" id="{prefix}-group".*?</fieldset>', page.decode(), re.S
    )
    assert group, f"no inline {prefix}"
    rows = []
    for row in re.findall(r'<tr class="form-row[^"]*"[^>]*>(.*?)</tr>', group.group(0), re.S):
        cells = dict(re.findall(r'<td class="field-([a-z_]+)">(.*?)</td>', row, re.S))
        original = re.search(r'<td class="original">(.*?)</td>', row, re.S)
        rows.append({"": text_of(original.group(1)) if original else "", **{k: text_of(v) for k, v in cells.items()}})
    return rows


# --- the list -------------------------------------------------------------------------------------------


def test_the_list_renders_empty_and_with_many_rows(admin):
    assert admin.get(LIST, **EN).status_code == 200
    assert listed(admin.get(LIST, **EN).content) == []

    made = [SubscriptionFactory(product=ProductFactory(renewable=True)) for _ in range(30)]

    page = admin.get(LIST, **EN)
    assert page.status_code == 200
    assert set(listed(page.content)) == {s.subscription_no for s in made}
    text = text_of(page.content)
    assert "138****0001" in text and "13800000001" not in text  # the list shows the number masked
    assert "¥25.00" in text


def test_the_list_filters_by_status_product_method_and_consent_channel(admin):
    active = SubscriptionFactory()
    cancelled = SubscriptionFactory(status=SubscriptionStatus.CANCELLED, cancel_channel="sms")
    lapsed = SubscriptionFactory(status=SubscriptionStatus.LAPSED, payment_method=PaymentMethod.PHONE_BILL_SMS)
    at_the_counter = SubscriptionFactory(consent_channel=Channel.CRM)

    def shown(query: str) -> set[str]:
        page = admin.get(f"{LIST}?{query}", **EN)
        assert page.status_code == 200, query
        return set(listed(page.content))

    assert shown("status__exact=active") == {active.subscription_no, at_the_counter.subscription_no}
    assert shown("status__exact=cancelled") == {cancelled.subscription_no}
    assert shown("status__exact=lapsed") == {lapsed.subscription_no}
    assert shown(f"product__id__exact={active.product_id}") == {active.subscription_no}
    assert shown("payment_method=phone_bill_sms") == {lapsed.subscription_no}
    assert shown("consent_channel=crm") == {at_the_counter.subscription_no}
    assert shown("cancel_channel__exact=sms") == {cancelled.subscription_no}


def test_the_list_filters_the_renewals_due_within_1_7_or_30_days(admin, frozen):
    now = timezone.now()

    def renewing_in(delta: timedelta, **fields: Any) -> Subscription:
        return SubscriptionFactory(current_period_end=now + delta + timedelta(hours=24), **fields)

    overdue = renewing_in(-timedelta(hours=2))  # waiting for its reminder, or being retried: due all the same
    in_12_hours = renewing_in(timedelta(hours=12))
    in_3_days = renewing_in(timedelta(days=3))
    in_20_days = renewing_in(timedelta(days=20))
    in_60_days = renewing_in(timedelta(days=60))
    # Not active: it does not renew, whenever its paid period ends.
    renewing_in(timedelta(hours=1), status=SubscriptionStatus.CANCELLED)
    assert in_12_hours.next_renewal_at == now + timedelta(hours=12)

    def shown(days: str) -> set[str]:
        page = admin.get(f"{LIST}?renewal_due_days={days}", **EN)
        assert page.status_code == 200
        return set(listed(page.content))

    assert shown("1") == {overdue.subscription_no, in_12_hours.subscription_no}
    assert shown("7") == {overdue.subscription_no, in_12_hours.subscription_no, in_3_days.subscription_no}
    assert shown("30") == shown("7") | {in_20_days.subscription_no}
    assert in_60_days.subscription_no not in shown("30")
    page = admin.get(LIST, **EN)
    for choice in ("within 1 day", "within 7 days", "within 30 days"):
        assert choice in text_of(page.content), choice
    assert len(listed(admin.get(f"{LIST}?renewal_due_days=nonsense", **EN).content)) == 6  # ignored


@pytest.mark.parametrize("term", ["by_no", "tv2002", "13800000002", "+86 138 0000 0002"])
def test_the_list_searches_by_number_tv_account_or_mobile(admin, term):
    wanted = SubscriptionFactory(tv_account="tv2002", phone="13800000002")
    SubscriptionFactory()
    if term == "by_no":
        term = wanted.subscription_no

    page = admin.get(LIST, {"q": term}, **EN)

    assert listed(page.content) == [wanted.subscription_no]


# --- one subscription's page -------------------------------------------------------------------------------


def test_the_page_shows_renewals_notices_events_and_consent(admin, run_tasks, frozen, demo):
    subscription = subscribe(run_tasks)
    first = Order.objects.get(subscription=subscription, auto_renew=True)
    work(run_tasks, frozen, subscription.next_reminder_at)
    subscription.refresh_from_db()
    work(run_tasks, frozen, subscription.next_renewal_at)  # renewed: period 2
    subscription.refresh_from_db()
    work(run_tasks, frozen, subscription.next_reminder_at)
    subscription.refresh_from_db()
    SimSmpAccount.objects.filter(tv_account="tv1001").update(balance_fen=100)  # period 3 cannot be charged
    work(run_tasks, frozen, subscription.next_renewal_at)
    subscription.refresh_from_db()
    renewals = list(Order.objects.filter(subscription=subscription, channel=Channel.RENEWAL).order_by("-pk"))
    assert [(o.status, o.renewal_period) for o in renewals] == [("failed", 3), ("completed", 2)]
    sign_in_again(admin)  # two months later: the session has expired

    page = admin.get(change_url(subscription), **EN)

    assert page.status_code == 200
    failed, renewed = renewals
    local = timezone.localtime
    rows = inline_rows(page.content, "orders")
    assert [row[""].split()[0] for row in rows] == [failed.order_no, renewed.order_no]  # newest first
    assert {k: rows[0][k] for k in ("renewal_period", "status", "amount_yuan", "period_start", "failure")} == {
        "renewal_period": "3",
        "status": "Failed",
        "amount_yuan": "¥25.00",
        "period_start": "-",
        "failure": f"The phone bill balance is not enough for this product. ({failed.failure_detail})"
        if failed.failure_detail
        else "The phone bill balance is not enough for this product.",
    }
    period = renewed.entitlement
    assert {k: rows[1][k] for k in ("renewal_period", "status", "period_start", "period_end", "failure")} == {
        "renewal_period": "2",
        "status": "Completed",
        "period_start": f"{local(period.starts_at):%Y-%m-%d %H:%M:%S}",
        "period_end": f"{local(period.ends_at):%Y-%m-%d %H:%M:%S}",
        "failure": "-",
    }
    assert f'href="{reverse("admin:orders_order_change", args=[failed.pk])}"' in page.content.decode()
    notices = inline_rows(page.content, "notices")
    assert sorted((n["kind"], n["period"]) for n in notices) == [
        ("Reminder before a renewal", "2"),
        ("Reminder before a renewal", "3"),
        ("Renewed", "2"),
    ]
    reminder = next(n for n in notices if n["period"] == "2" and n["kind"].startswith("Reminder"))
    assert "将于" in reminder["text"] and "25.00元" in reminder["text"]  # what the customer read
    sent_at = subscription.notices.get(kind="reminder", period=2).sent_at
    assert reminder["sent"] == f"{timezone.localtime(sent_at):%Y-%m-%d %H:%M:%S}"
    events = inline_rows(page.content, "events")
    actions = list(subscription.events.order_by("at", "pk").values_list("action", flat=True))
    with translation.override("en"):  # the page was asked for in English: each action by its label
        assert [e["what"] for e in events] == [subscription_action_label(action) for action in actions]
    assert actions[0] == "start" and "renewed" in actions and actions[-1] == "renewal_failed"
    assert events[-1]["why"] == "The phone bill balance is not enough for this product."  # the code, in words
    assert events[-1]["by"] == "background task: activation"
    text = text_of(page.content)
    assert "Consent given on: TV (EPG)" in text and "Consent for: Phone bill" in text
    evidence = consent_evidence(page.content.decode())
    assert evidence["order that started it"] == first.order_no
    assert evidence["placed by"].startswith("EPG client: ")
    assert (
        f'<a href="{reverse("admin:orders_order_change", args=[first.pk])}">{first.order_no}</a>'
        in page.content.decode()
    )
    assert f'href="{cancel_url(subscription)}"' in page.content.decode()
    # Read-only: no save button, no field to edit.
    assert 'name="_save"' not in page.content.decode() and 'name="status"' not in page.content.decode()


def test_the_page_shows_consent_evidence_with_its_chinese_and_the_clerk(admin):
    subscription = SubscriptionFactory(
        consent_channel=Channel.CRM,
        consent_evidence={"clerk": "clerk01", "store": "NX-YC-001", "sms": {"sent": "回复Y确认", "reply": "Y"}},
    )

    page = admin.get(change_url(subscription), **EN).content.decode()

    evidence = consent_evidence(page)
    assert evidence["clerk"] == "clerk01" and evidence["store"] == "NX-YC-001"
    assert evidence["SMS confirmation · SMS sent"] == "回复Y确认"  # as the customer read it
    assert evidence["SMS confirmation · reply"] == "Y"


@pytest.mark.parametrize("status", ["cancelled", "lapsed", "ended"])
def test_only_an_active_subscription_offers_the_cancel(admin, status):
    subscription = SubscriptionFactory(status=status)
    page = admin.get(change_url(subscription), **EN)
    assert page.status_code == 200
    assert f'href="{cancel_url(subscription)}"' not in page.content.decode()


# --- cancel with a reason ----------------------------------------------------------------------------


def test_cancel_with_a_reason_turns_renewal_off_and_is_audited(admin):
    subscription = SubscriptionFactory()
    page = admin.get(cancel_url(subscription), **EN)
    assert page.status_code == 200
    assert subscription.subscription_no in text_of(page.content) and 'name="reason"' in page.content.decode()

    response = admin.post(cancel_url(subscription), {"reason": "customer complaint #4711"}, follow=True, **EN)

    assert response.redirect_chain == [(change_url(subscription), 302)]
    end = timezone.localtime(subscription.current_period_end).strftime("%Y-%m-%d %H:%M:%S")
    assert f"Renewal cancelled. The paid period runs to {end}." in text_of(response.content)
    subscription.refresh_from_db()
    assert (subscription.status, subscription.cancel_channel, subscription.cancel_reason) == (
        "cancelled",
        "admin",
        "customer complaint #4711",
    )
    event = SubscriptionEvent.objects.get(subscription=subscription, action="cancel")
    assert (event.actor_kind, event.actor_id, event.reason) == ("admin", ADMIN_NAME, "customer complaint #4711")
    entry = LogEntry.objects.get(
        content_type=ContentType.objects.get_for_model(Subscription), object_id=str(subscription.pk)
    )
    with translation.override("en"):
        said = change_text(entry)
    assert (entry.user.username, said) == (
        ADMIN_NAME,
        "Automatic renewal cancelled. Reason: customer complaint #4711",
    )
    assert f'href="{cancel_url(subscription)}"' not in response.content.decode()


@pytest.mark.parametrize("reason", ["", "   "])
def test_cancel_needs_a_reason(admin, reason):
    subscription = SubscriptionFactory()

    response = admin.post(cancel_url(subscription), {"reason": reason}, **EN)

    assert response.status_code == 200
    assert "This field is required." in text_of(response.content)
    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.ACTIVE
    assert not SubscriptionEvent.objects.exists() and not LogEntry.objects.exists()


@pytest.mark.parametrize("status", [SubscriptionStatus.LAPSED, SubscriptionStatus.ENDED])
def test_cancel_of_a_lapsed_or_ended_subscription_shows_why_not(admin, status):
    subscription = SubscriptionFactory(status=status)

    response = admin.post(cancel_url(subscription), {"reason": "asked by phone"}, **EN)

    assert response.status_code == 200
    label = SubscriptionStatus(status).label
    assert f"A subscription that is {label} cannot be cancelled." in text_of(response.content)
    assert not SubscriptionEvent.objects.exists() and not LogEntry.objects.exists()


def test_cancel_of_a_cancelled_subscription_says_when_it_was(admin):
    subscription = SubscriptionFactory()
    admin.post(cancel_url(subscription), {"reason": "first"}, **EN)
    subscription.refresh_from_db()

    response = admin.post(cancel_url(subscription), {"reason": "second"}, **EN)

    assert response.status_code == 200
    when = timezone.localtime(subscription.cancelled_at).strftime("%Y-%m-%d %H:%M:%S")
    assert f"Renewal was cancelled already, at {when} (Admin)." in text_of(response.content)
    assert SubscriptionEvent.objects.filter(action="cancel").count() == 1 and LogEntry.objects.count() == 1


def test_cancel_needs_the_permission(db):
    subscription = SubscriptionFactory()
    viewer = get_user_model().objects.create_user("viewer", password="unused-password-1", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_subscription"))
    client = Client()
    client.force_login(viewer)

    page = client.get(change_url(subscription), **EN)
    assert page.status_code == 200 and f'href="{cancel_url(subscription)}"' not in page.content.decode()
    assert client.get(cancel_url(subscription), **EN).status_code == 403
    assert client.post(cancel_url(subscription), {"reason": "sneaky"}, **EN).status_code == 403
    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.ACTIVE

    viewer.user_permissions.add(Permission.objects.get(codename="change_subscription"))
    client.force_login(get_user_model().objects.get(pk=viewer.pk))  # permissions are cached on the user
    assert client.post(cancel_url(subscription), {"reason": "allowed now"}, **EN).status_code == 302
    subscription.refresh_from_db()
    assert (subscription.status, subscription.events.get().actor_id) == ("cancelled", "viewer")


# --- products and orders -----------------------------------------------------------------------------------


def product_form(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "code": "VIP-WEEKEND",
        "name": "Weekend pass",
        "description": "",
        "kind": ProductKind.MONTHLY,
        "is_active": "on",
        "price_fen": "2500",
        "view_hours": "",
        "smp_product_code": "SMP-VIP-WEEKEND",
        "smp_zero_price_package_code": "SMP-VIP-WEEKEND-0",
        "crm_activity_code": "MKT-VIP-WEEKEND",
        "channels": [Channel.EPG, Channel.CRM],
        "payment_methods": [m.value for m in PaymentMethod],
        "on_sale_from_0": "",
        "on_sale_from_1": "",
        "on_sale_until_0": "",
        "on_sale_until_1": "",
        "change_reason": "continuous monthly pass",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def test_a_product_is_made_renewable_in_admin(admin):
    response = admin.post(reverse("admin:orders_product_add"), product_form(renewable="on"), **EN)

    assert response.status_code == 302, text_of(response.content)[:2000]
    assert Product.objects.get(code="VIP-WEEKEND").renewable is True
    form = admin.get(reverse("admin:orders_product_change", args=[Product.objects.get().pk]), **EN).content.decode()
    assert re.search(r'<input type="checkbox" name="renewable"[^>]*checked', form)


def test_a_per_view_product_cannot_be_renewable(admin):
    response = admin.post(
        reverse("admin:orders_product_add"),
        product_form(kind=ProductKind.PER_VIEW, view_hours="48", renewable="on"),
        **EN,
    )

    assert response.status_code == 200
    errors = re.search(
        r'<div class="form-row[^"]*field-renewable[^"]*">(.*?)</div>\s*</div>', response.content.decode(), re.S
    )
    assert errors, "no renewable row"
    assert "A per-view product cannot renew: only monthly, quarterly and yearly ones do." in text_of(errors.group(1))
    assert not Product.objects.exists()


def test_taking_a_product_off_sale_says_its_subscriptions_go_on_renewing(admin):
    """New orders stop; the subscriptions customers agreed to do not (docs/decisions.md). Whoever takes the
    product off sale is told how many go on, with the way to them; before, nothing was said, and an operator
    would find months later that they had renewed all along."""
    product = ProductFactory(code="VIP-WEEKEND", renewable=True)
    SubscriptionFactory(product=product, tv_account="tv7001")
    SubscriptionFactory(product=product, tv_account="tv7002")
    SubscriptionFactory(product=product, tv_account="tv7003", status=SubscriptionStatus.CANCELLED)
    url = reverse("admin:orders_product_change", args=[product.pk])

    response = admin.post(url, product_form(is_active=None, renewable="on", change_reason="licence ends"), **EN)

    assert response.status_code == 302, text_of(response.content)[:1500]
    page = text_of(admin.get(response.url, **EN).content)
    assert "2 active subscriptions of this product go on renewing" in page, page[:1500]
    product.refresh_from_db()
    assert product.is_active is False
    # A change that stops nothing says nothing.
    again = admin.post(url, product_form(is_active=None, renewable="on", change_reason="typo", name="Weekend"), **EN)
    assert "go on renewing" not in text_of(admin.get(again.url, **EN).content)


def test_the_product_list_shows_and_filters_renewable(admin):
    ProductFactory(code="RENEWS", renewable=True)
    ProductFactory(code="ONCE")

    page = admin.get("/admin/orders/product/", **EN).content.decode()
    assert re.search(r'<th scope="col" class="[^"]*column-renewable', page)

    only = admin.get("/admin/orders/product/?renewable__exact=1", **EN).content.decode()
    assert "RENEWS" in only and "ONCE" not in only


def test_the_order_page_shows_auto_renew_its_subscription_and_the_period_renewed(admin, run_tasks, frozen, demo):
    subscription = subscribe(run_tasks)
    first = Order.objects.get(subscription=subscription, auto_renew=True)
    work(run_tasks, frozen, subscription.next_reminder_at)
    subscription.refresh_from_db()
    work(run_tasks, frozen, subscription.next_renewal_at)
    renewal = Order.objects.get(subscription=subscription, channel=Channel.RENEWAL)
    sign_in_again(admin)

    for order, auto_renew, period in ((first, True, "-"), (renewal, False, "2")):
        page = admin.get(reverse("admin:orders_order_change", args=[order.pk]), **EN).content.decode()
        auto = re.search(r'<div class="form-row field-auto_renew">(.*?)</div>\s*</div>', page, re.S).group(1)
        assert ("icon-yes" in auto) is auto_renew, order
        link = re.search(r'<div class="form-row field-subscription">(.*?)</div>\s*</div>', page, re.S).group(1)
        assert f'<a href="{change_url(subscription)}">{subscription.subscription_no}</a>' in link
        shown = re.search(r'<div class="form-row field-renewal_period">(.*?)</div>\s*</div>', page, re.S).group(1)
        assert text_of(shown).endswith(period), (order, text_of(shown))

    only = admin.get("/admin/orders/order/?auto_renew__exact=1", **EN).content.decode()
    assert first.order_no in only and renewal.order_no not in only
