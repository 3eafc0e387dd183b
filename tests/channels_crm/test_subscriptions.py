"""Subscriptions at the counter (docs/interfaces.md §8; issue #13, item 3): the clerk sells with an explicit
auto-renew choice, the receipt says how it renews and how to cancel, and the clerk finds a customer's
subscriptions by mobile number and cancels one with the customer present.

The clerk signs in with a real SSO ticket; the SMP is the sandbox's simulator, ``settle()`` the worker.
New wording is checked in English (``EN``): the pages speak Simplified Chinese by default, and the
translations of these strings come in a separate pass.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from channels_crm.models import Clerk
from ipvas.actors import Actor, ActorKind
from lifecycle.paying import payment_choose
from lifecycle.placing import order_create
from orders.constants import CancelChannel, OrderStatus, PaymentMethod, SubscriptionStatus
from orders.models import Order, Product, Subscription, SubscriptionEvent
from tests.channels_crm.support import new_order, page, pay, settle, sign_in, text_of
from tests.factories import ProductFactory, SubscriptionFactory
from tests.test_query_counts import assert_constant, queries

EN = {"HTTP_ACCEPT_LANGUAGE": "en"}
PHONE = "13800000001"  # tv1001 in the demo SMP, 1000.00 yuan of phone bill


# --- helpers --------------------------------------------------------------------------------------


def new_order_page(client: Client) -> str:
    response = client.get("/crm/orders/new/", **EN)
    assert response.status_code == 200
    return response.content.decode()


def renew_box(html: str) -> str | None:
    """The auto-renew fieldset of the new-order page, or None when the page offers none."""
    found = re.search(r'<fieldset class="renew".*?</fieldset>', html, re.S)
    return found.group(0) if found else None


def renewable_radios(html: str) -> list[str]:
    return re.findall(r'name="product" value="([^"]+)"[^>]*data-renewable', html)


def place(client: Client, product: str = "VIP-MONTH", phone: str = PHONE, **extra: str):  # type: ignore[no-untyped-def]
    return client.post("/crm/orders/new/", {"product": product, "phone": phone, **extra}, **EN)


def auto_renewing_sale(client: Client, product: str = "VIP-MONTH", phone: str = PHONE) -> Order:
    """Sold at the counter with auto-renew ticked, paid by phone bill; the order completes."""
    response = place(client, product, phone, auto_renew="yes")
    assert response.status_code == 302, text_of(response.content.decode())[:500]
    order = Order.objects.get(order_no=response["Location"].rstrip("/").rsplit("/", 1)[-1])
    settle()
    assert pay(client, order, "phone_bill").status_code == 302
    settle()
    order.refresh_from_db()
    assert order.status == OrderStatus.COMPLETED, (order.status, order.failure_code)
    return order


def subscriptions_page(client: Client, phone: str | None = PHONE) -> str:
    response = client.get("/crm/subscriptions/", {"phone": phone} if phone is not None else {}, **EN)
    assert response.status_code == 200
    return response.content.decode()


def listed(html: str) -> list[str]:
    return re.findall(r'data-subscription="([A-Za-z0-9]+)"', html)


def cancel_url(subscription: Subscription) -> str:
    return f"/crm/subscriptions/{subscription.subscription_no}/cancel/"


def bought_on_the_tv(product: str = "VIP-QUARTER", tv_account: str = "tv1001") -> Subscription:
    epg = Actor(ActorKind.EPG_CLIENT, "test-client")
    order = order_create(channel="epg", product_code=product, tv_account=tv_account, actor=epg, auto_renew=True)
    settle()
    payment_choose(order_id=order.pk, method=PaymentMethod.PHONE_BILL, actor=epg)
    settle()
    order.refresh_from_db()
    assert order.subscription is not None, (order.status, order.failure_code)
    return order.subscription


# --- selling with the auto-renew choice -------------------------------------------------------------


def test_the_new_order_page_offers_auto_renew_unticked_with_its_terms(clerk):
    html = new_order_page(clerk)

    box = renew_box(html)
    assert box is not None
    checkbox = re.search(r'<input type="checkbox" name="auto_renew"[^>]*>', box)
    assert checkbox and "checked" not in checkbox.group(0)  # never pre-selected
    assert "hidden" not in re.search(r'<fieldset class="renew"[^>]*>', box).group(0)  # VIP-MONTH is chosen first
    assert renewable_radios(html) == ["VIP-MONTH", "VIP-QUARTER", "VIP-YEAR"]
    terms = re.search(r'<ul class="renew-terms" data-terms-for="VIP-MONTH">(.*?)</ul>', box, re.S)
    assert terms
    assert text_of(terms.group(1)) == (
        "Renews automatically every month at ¥25.00 until cancelled. "
        "Payment at each renewal: Phone bill, WeChat Pay QR code, Alipay QR code, without a new confirmation. "
        "A reminder SMS is sent 5 days before each renewal. "
        "Cancel any time: reply TD to the SMS, at a business-hall counter, or on the TV."
    )
    assert "every year at ¥248.00" in text_of(box)
    # Only the chosen product's terms show; the others wait, hidden, for the clerk to choose them.
    assert re.search(r'data-terms-for="VIP-YEAR" hidden', box)


def test_no_auto_renew_choice_where_no_product_renews(clerk):
    Product.objects.update(renewable=False)

    html = new_order_page(clerk)

    assert renew_box(html) is None and 'name="auto_renew"' not in html
    assert renewable_radios(html) == []


def test_the_choice_is_offered_only_for_the_products_that_renew_here(clerk):
    Product.objects.filter(code="VIP-YEAR").update(renewable=False)
    # Renewable, but the counter cannot take a payment that renews (cash and payment codes only): no choice.
    quarter = Product.objects.get(code="VIP-QUARTER")
    quarter.payment_methods = [PaymentMethod.CASH, PaymentMethod.PAYMENT_CODE]
    quarter.save()

    html = new_order_page(clerk)

    assert renewable_radios(html) == ["VIP-MONTH"]
    assert 'data-terms-for="VIP-YEAR"' not in html and 'data-terms-for="VIP-QUARTER"' not in html


def test_the_box_starts_hidden_when_the_chosen_product_does_not_renew(clerk):
    Product.objects.filter(code="VIP-YEAR").update(renewable=False)

    html = place(clerk, "VIP-YEAR", "12345").content.decode()  # a wrong number: the form again, VIP-YEAR chosen

    assert re.search(r'<fieldset class="renew" data-renew hidden>', html)


@pytest.mark.parametrize("why", ["not_renewable", "no_method_that_renews"])
def test_auto_renew_for_a_product_that_does_not_renew_here_is_refused(clerk, why):
    quarter = Product.objects.get(code="VIP-QUARTER")
    if why == "not_renewable":
        quarter.renewable = False
    else:
        quarter.payment_methods = [PaymentMethod.CASH]
    quarter.save()

    response = place(clerk, "VIP-QUARTER", auto_renew="yes")

    assert response.status_code == 200
    html = response.content.decode()
    error = re.search(r'<p class="error" id="auto-renew-error" role="alert">(.*?)</p>', html)
    assert error and error.group(1) == "This product does not renew automatically."
    assert not Order.objects.exists()


def test_an_unticked_order_is_a_plain_one(clerk):
    order = new_order(clerk, PHONE)
    assert order.auto_renew is False
    assert 'value="cash"' in page(clerk, order)  # every counter method, as before

    pay(clerk, order, "cash", cash_received="yes")
    settle()

    order.refresh_from_db()
    assert (order.status, order.subscription) == (OrderStatus.COMPLETED, None)
    assert not Subscription.objects.exists()
    receipt = text_of(clerk.get(f"/crm/orders/{order.order_no}/receipt/", **EN).content.decode())
    # Not the bare "TD": a random order number holds it one time in a few hundred (a CI flake).
    assert "Renews automatically" not in receipt and "reply TD" not in receipt


def test_an_auto_renewing_order_offers_only_the_methods_that_renew(clerk):
    response = place(clerk, auto_renew="yes")
    order = Order.objects.get()
    settle()
    order.refresh_from_db()

    assert response.status_code == 302 and order.auto_renew is True
    assert order.status == OrderStatus.AWAITING_PAYMENT
    html = page(clerk, order)
    offered = re.findall(r'name="method" value="([a-z_]+)"', html)
    # The phone bill, and the QR codes that sign the provider's deduction contract in the same scan.
    assert offered == order.methods_allowed() == ["phone_bill", "wechat_qr", "alipay_qr"]
    # The terms are on the page, for the clerk to read once more before the charge.
    assert "every month at ¥25.00" in text_of(clerk.get(f"/crm/orders/{order.order_no}/", **EN).content.decode())

    refused = pay(clerk, order, "cash", cash_received="yes")

    assert refused.status_code == 302
    order.refresh_from_db()
    assert order.status == OrderStatus.AWAITING_PAYMENT and not order.payments.exists()


def test_an_auto_renewing_sale_starts_a_subscription_and_the_receipt_says_how_it_renews(clerk):
    order = auto_renewing_sale(clerk)

    subscription = order.subscription
    assert subscription is not None and subscription.status == SubscriptionStatus.ACTIVE
    assert (subscription.phone, subscription.tv_account, subscription.product.code) == (PHONE, "tv1001", "VIP-MONTH")
    assert (subscription.payment_method, subscription.renewal_price_fen) == ("phone_bill", 2500)
    assert (subscription.consent_channel, subscription.consent_method) == ("crm", "phone_bill")
    assert subscription.consent_evidence["clerk"] == "clerk01"
    assert subscription.consent_evidence["store"] == "NX-YC-001"
    assert order.events.get(action="create").data == {"auto_renew": True}

    detail = text_of(clerk.get(f"/crm/orders/{order.order_no}/", **EN).content.decode())
    assert f"Automatic renewal is on: subscription {subscription.subscription_no}." in detail
    receipt_html = clerk.get(f"/crm/orders/{order.order_no}/receipt/", **EN).content.decode()
    note = re.search(r'<section class="renew-note">(.*?)</section>', receipt_html, re.S)
    assert note, receipt_html
    text = text_of(note.group(1))
    next_renewal = timezone.localtime(subscription.next_renewal_at).strftime("%Y-%m-%d")
    assert f"Subscription No. {subscription.subscription_no}" in text
    assert f"Next renewal {next_renewal}" in text
    for words in (
        "Renews automatically every month at ¥25.00 until cancelled.",
        "A reminder SMS is sent 5 days before each renewal.",
        "Cancel any time: reply TD to the SMS, at a business-hall counter, or on the TV.",
    ):
        assert words in text, words


def test_the_receipt_says_nothing_of_renewal_once_it_is_cancelled(clerk):
    order = auto_renewing_sale(clerk)
    clerk.post(cancel_url(order.subscription), {"phone": PHONE, "customer_asked": "yes"})

    receipt_html = clerk.get(f"/crm/orders/{order.order_no}/receipt/", **EN).content.decode()

    assert 'class="renew-note"' not in receipt_html


def test_a_second_auto_renewing_order_of_the_same_product_is_rejected_at_the_pre_check(clerk):
    auto_renewing_sale(clerk)

    response = place(clerk, auto_renew="yes")
    settle()

    again = Order.objects.get(order_no=response["Location"].rstrip("/").rsplit("/", 1)[-1])
    assert (again.status, again.failure_code) == (OrderStatus.REJECTED, "already_subscribed")
    assert Subscription.objects.count() == 1


# --- a customer's subscriptions -------------------------------------------------------------------------


def test_the_subscriptions_page_without_a_number_asks_for_one(clerk):
    html = subscriptions_page(clerk, phone=None)

    assert listed(html) == []
    assert "Type the customer's mobile number" in text_of(html)
    assert 'class="active"' in re.search(r'<a href="/crm/subscriptions/"[^>]*>', html).group(0)


def test_a_wrong_number_shows_an_inline_error(clerk):
    html = subscriptions_page(clerk, phone="12345")

    assert 'id="phone-error"' in html and 'aria-invalid="true"' in html
    assert listed(html) == []


def test_a_number_without_subscriptions_says_so(clerk):
    SubscriptionFactory(phone="13800000002")

    html = subscriptions_page(clerk)

    assert listed(html) == []
    assert "This number has no subscriptions." in text_of(html)


def test_the_customers_subscriptions_wherever_they_were_bought_newest_first(clerk, time_machine):
    time_machine.move_to(timezone.now(), tick=True)
    at_the_counter = auto_renewing_sale(clerk).subscription
    time_machine.shift(timedelta(minutes=1))
    on_the_tv = bought_on_the_tv("VIP-QUARTER")
    time_machine.shift(timedelta(minutes=1))
    lapsed = SubscriptionFactory(
        product=Product.objects.get(code="VIP-YEAR"), status=SubscriptionStatus.LAPSED, renewal_price_fen=24800
    )
    someone_else = SubscriptionFactory(phone="13800000002")

    html = subscriptions_page(clerk, phone="+86 138 0000 0001")  # typed as the customer says it

    assert listed(html) == [lapsed.subscription_no, on_the_tv.subscription_no, at_the_counter.subscription_no]
    assert someone_else.subscription_no not in html
    card = re.search(rf'data-subscription="{on_the_tv.subscription_no}">(.*?)</li>', html, re.S).group(1)
    text = text_of(card)
    on_the_tv.refresh_from_db()
    local = timezone.localtime
    assert "VIP 影视会员 · 包季" in text and "Active" in text and "¥68.00 / Quarterly" in text
    assert f"Paid until {local(on_the_tv.current_period_end):%Y-%m-%d %H:%M}" in text
    assert f"Next renewal {local(on_the_tv.next_renewal_at):%Y-%m-%d %H:%M}" in text
    assert "Bought on TV (EPG)" in text and "Payment method Phone bill" in text
    assert f'href="{cancel_url(on_the_tv)}?phone={PHONE}"' in card
    lapsed_card = re.search(rf'data-subscription="{lapsed.subscription_no}">(.*?)</li>', html, re.S).group(1)
    assert "Lapsed" in text_of(lapsed_card) and "None: it does not renew any more" in text_of(lapsed_card)
    assert "/cancel/" not in lapsed_card  # nothing to cancel


def test_a_clerk_of_another_store_sees_and_cancels_a_customers_subscription(clerk):
    subscription = auto_renewing_sale(clerk).subscription
    other = sign_in(sub="clerk09", name="外店营业员", store_code="NX-YC-002", virtual_staff_id="V0009")

    assert listed(subscriptions_page(other)) == [subscription.subscription_no]
    response = other.post(cancel_url(subscription), {"phone": PHONE, "customer_asked": "yes"})

    assert response.status_code == 302
    subscription.refresh_from_db()
    assert (subscription.status, subscription.cancel_channel) == (SubscriptionStatus.CANCELLED, CancelChannel.CRM)
    event = subscription.events.get(action="cancel")
    assert (event.actor_kind, event.actor_id) == ("clerk", "clerk09")
    assert "NX-YC-002" in event.reason


# --- cancelling one -----------------------------------------------------------------------------------------


def test_cancel_shows_a_confirmation_step_first(clerk):
    subscription = SubscriptionFactory()

    response = clerk.get(cancel_url(subscription), {"phone": PHONE}, **EN)

    assert response.status_code == 200
    html = response.content.decode()
    assert re.search(r'<input type="checkbox" name="customer_asked" value="yes" required', html)
    assert f'<input type="hidden" name="phone" value="{PHONE}">' in html
    end = timezone.localtime(subscription.current_period_end).strftime("%Y-%m-%d %H:%M")
    assert f"The customer keeps watching until {end}" in text_of(html)
    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.ACTIVE


def test_cancel_without_the_confirmation_changes_nothing(clerk):
    subscription = SubscriptionFactory()

    response = clerk.post(cancel_url(subscription), {"phone": PHONE}, **EN)

    assert response.status_code == 200
    error = re.search(r'<p class="error" id="asked-error" role="alert">(.*?)</p>', response.content.decode())
    assert error and error.group(1) == "Confirm that the customer asked for it first."
    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.ACTIVE
    assert not SubscriptionEvent.objects.exists()


def test_cancel_with_the_confirmation_turns_renewal_off_and_says_until_when(clerk):
    subscription = auto_renewing_sale(clerk).subscription

    response = clerk.post(cancel_url(subscription), {"phone": PHONE, "customer_asked": "yes"}, follow=True, **EN)

    assert response.redirect_chain == [(f"/crm/subscriptions/?phone={PHONE}", 302)]
    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.CANCELLED
    assert (subscription.cancel_channel, subscription.next_renewal_at) == (CancelChannel.CRM, None)
    event = subscription.events.get(action="cancel")
    assert (event.actor_kind, event.actor_id, event.from_status, event.to_status) == (
        "clerk",
        "clerk01",
        "active",
        "cancelled",
    )
    assert event.reason == "asked by the customer at the counter of store NX-YC-001"
    flash = re.search(r'<p class="flash success" role="alert">(.*?)</p>', response.content.decode())
    end = timezone.localtime(subscription.current_period_end).strftime("%Y-%m-%d %H:%M")
    assert flash and text_of(flash.group(1)) == (
        "Automatic renewal of VIP 影视会员 · 包月 is cancelled: nothing more will be charged. "
        f"The customer can watch until {end}."
    )
    card = text_of(re.search(r"<li class=\"card sub\".*?</li>", response.content.decode(), re.S).group(0))
    assert "Cancelled" in card and "Business hall (CRM)" in card

    again = clerk.post(cancel_url(subscription), {"phone": PHONE, "customer_asked": "yes"}, follow=True, **EN)

    assert "was cancelled already" in text_of(again.content.decode())
    assert subscription.events.filter(action="cancel").count() == 1


@pytest.mark.parametrize("status", [SubscriptionStatus.LAPSED, SubscriptionStatus.ENDED])
def test_cancel_of_a_lapsed_or_ended_subscription_shows_the_error(clerk, status):
    subscription = SubscriptionFactory(status=status)

    confirmation = clerk.get(cancel_url(subscription), {"phone": PHONE}, **EN).content.decode()
    assert 'name="customer_asked"' not in confirmation
    label = SubscriptionStatus(status).label
    assert f"This subscription is {label.lower()}: there is no renewal to cancel." in text_of(confirmation)

    # A page left open while it lapsed: the service refuses, and the clerk reads why.
    response = clerk.post(cancel_url(subscription), {"phone": PHONE, "customer_asked": "yes"}, follow=True, **EN)

    flash = re.search(r'<p class="flash error" role="alert">(.*?)</p>', response.content.decode())
    assert flash and flash.group(1) == f"A subscription that is {label} cannot be cancelled."
    subscription.refresh_from_db()
    assert subscription.status == status and subscription.cancelled_at is None


def test_a_subscription_is_reached_only_through_the_customers_number(clerk):
    subscription = SubscriptionFactory()

    for query in ({}, {"phone": "13800000002"}, {"phone": "not a number"}):
        assert clerk.get(cancel_url(subscription), query).status_code == 404, query
        assert clerk.post(cancel_url(subscription), {**query, "customer_asked": "yes"}).status_code == 404, query
    assert clerk.get("/crm/subscriptions/no-such-thing!/cancel/", {"phone": PHONE}).status_code == 404
    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.ACTIVE


def test_signed_out_browsers_and_non_clerks_see_no_subscription(demo, django_user_model):
    subscription = SubscriptionFactory()
    assert Client().get("/crm/subscriptions/", {"phone": PHONE}).status_code == 401
    assert Client().post(cancel_url(subscription), {"phone": PHONE, "customer_asked": "yes"}).status_code == 401
    staff = Client()
    staff.force_login(django_user_model.objects.create_user("not-a-clerk", password="unused-password-1"))
    assert staff.get("/crm/subscriptions/", {"phone": PHONE}).status_code == 403
    assert not Clerk.objects.filter(user__username="not-a-clerk").exists()
    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.ACTIVE


def test_the_subscriptions_list_costs_the_same_queries_for_5_rows_as_for_50(clerk):
    def one_more() -> None:
        SubscriptionFactory(product=ProductFactory(renewable=True))

    path = f"/crm/subscriptions/?phone={PHONE}"
    assert_constant(lambda: queries(clerk, path), one_more)
    assert len(listed(subscriptions_page(clerk))) == 50
