"""Found by a review of the TV pages (2026-12-06), fixed in tv/screens.py (screen_key).

An auto-renewing order paid by WeChat Pay's pay-and-sign QR code: the payment and the contract-signed
notifications come separately, in either order (docs/interfaces.md, IPVAS notes §8: the subscription starts
"whichever comes last"). When the payment comes first, the TV's success screen shows and says nothing about
renewal; the signing a moment later starts the subscription, but ``screens.screen_key`` (what the page polls
and compares, ``screen:method``) does not change, so the screen never reloads and never says that the product
now renews automatically. A stale status on a screen that the viewer reads as the outcome of the purchase."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from django.test import Client

from billing.models import ProviderContract
from orders.models import Order
from sandbox import contracts, payments
from sandbox.delivery import deliver
from sandbox.views.providers import deliver_contract
from tests.epg_api.support import Api, new_api_key, settle

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(demo) -> Api:
    return Api(new_api_key("TV vendor"))


def token_of(page: str) -> str:
    return re.search(r'name="token" value="([0-9a-f]+)"', page).group(1)


def shown_key(page: str) -> str:
    return re.search(r'data-screen="([^"]*)"', page).group(1)


def test_the_success_screen_moves_on_when_the_subscription_starts_after_the_payment(api):
    answer = api.post("/tv-sessions/", {"tv_account": "tv1001", "return_url": "https://epg.example.com/b"})
    box = Client()
    box.get(urlsplit(answer.json()["url"]).path)
    token = token_of(box.get("/tv/products/VIP-MONTH/?renew=1").content.decode())
    box.post("/tv/products/VIP-MONTH/order/", {"method": "wechat_qr", "renew": "1", "token": token})
    settle()
    order = Order.objects.get()
    box.post(f"/tv/orders/{order.order_no}/confirm/", {"method": "wechat_qr", "token": token})
    contract = ProviderContract.objects.get(order=order)

    # The customer scans: the payment notification comes first...
    trade = payments.pay_trade(payments.WECHATPAY, contract.payment.out_trade_no)
    signed = contracts.sign_paid(trade)
    body = contracts.wechatpay_v2_payment_notification(trade)
    assert deliver("/billing/notify/wechatpay/v2/", body=body, content_type="text/xml", headers={})[0]
    settle()
    order.refresh_from_db()
    assert order.status == "completed" and order.subscription is None
    before = box.get(f"/tv/orders/{order.order_no}/").content.decode()
    assert "screen-success" in before

    # ...then the contract-signed one: the subscription starts.
    assert deliver_contract(signed)[0]
    settle()
    order.refresh_from_db()
    assert order.subscription is not None and order.subscription.status == "active"
    after = box.get(f"/tv/orders/{order.order_no}/").content.decode()
    assert "renews automatically" in after or "自动续费" in after

    polled = box.get(f"/tv/orders/{order.order_no}/status.json").json()["screen"]
    assert polled != shown_key(before), "the success screen shown before the signing never reloads"
