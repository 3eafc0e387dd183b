"""An auto-renewing order paid by a QR code on the TV pages (docs/interfaces.md §8, §9): the QR screen shows the
code that pays the first period and signs the deduction contract in the same scan, and the pages end on success
with the subscription started."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from billing.models import ProviderContract
from orders.models import Order
from tests.epg_api.support import Api, new_api_key, settle
from tests.tv.support import decode_qr
from tests.tv.test_pages import launch, token_of


@pytest.fixture
def api(demo) -> Api:
    return Api(new_api_key("EPG with TV pages"))


@pytest.mark.parametrize("method,provider", [("wechat_qr", "wechatpay"), ("alipay_qr", "alipay")])
def test_a_renewing_order_paid_by_qr_on_the_tv_pays_signs_and_subscribes(api, method, provider):
    browser = launch(api)
    page = browser.get("/tv/products/VIP-MONTH/?renew=1").content.decode()
    browser.post("/tv/products/VIP-MONTH/order/", {"method": method, "renew": "1", "token": token_of(page)})
    settle()
    order = Order.objects.get()
    assert order.auto_renew
    confirm = browser.get(f"/tv/orders/{order.order_no}/?method={method}").content.decode()
    browser.post(f"/tv/orders/{order.order_no}/confirm/", {"method": method, "token": token_of(confirm)})
    qr_screen = browser.get(f"/tv/orders/{order.order_no}/").content.decode()
    assert "screen-qr" in qr_screen
    contract = ProviderContract.objects.get(order=order)
    shown = decode_qr(browser.get(f"/tv/orders/{order.order_no}/qr.png").content)
    assert shown == contract.payment.qr_code_url  # the code that pays and signs

    paid = (
        Client()
        .post(
            f"/sandbox/{provider}/pay/",
            data=json.dumps({"out_trade_no": contract.payment.out_trade_no}),
            content_type="application/json",
        )
        .json()
    )
    assert paid["delivered"] and paid["contract_delivered"]
    settle()
    status = browser.get(f"/tv/orders/{order.order_no}/status.json").json()
    order.refresh_from_db()
    assert order.status == "completed" and order.subscription.contract_id
    assert "success" in json.dumps(status) or status.get("status") == "completed"
