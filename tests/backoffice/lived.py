"""A back office with something on every page: the demo, a finished demo day (sandbox/demo_day.py), and today's
orders, subscriptions, PINs, work items of every kind and admin's own actions, all made the way they happen
(the services, the sandbox, admin's forms). Shared by the page tests and the screenshots.
"""

from __future__ import annotations

import contextlib
import io
import json
from dataclasses import dataclass, field
from typing import Any

from allauth.mfa.models import Authenticator
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command
from django.test import Client

from billing.models import Discrepancy, Payment, WorkItem, WorkItemKind
from billing.services.work import work_item_open
from channels_crm.models import Clerk
from epg_api.models import EpgClient
from ipvas.actors import Actor, ActorKind
from lifecycle.manual import work_item_resolve
from lifecycle.paying import order_cancel, payment_choose
from lifecycle.pins import PurchasePinWrong, pin_check, pin_set
from lifecycle.placing import order_create
from orders.constants import Channel, OrderStatus, PaymentMethod
from orders.models import Order, Product, Subscription
from sandbox.demo_day import build_demo_day, run_due_work

STAFF = "运营小王"  # the admin who walks through the pages


@dataclass
class Lived:
    staff: Any
    epg: EpgClient
    orders: dict[str, Order] = field(default_factory=dict)
    subscription: Subscription | None = None
    work_items: dict[str, WorkItem] = field(default_factory=dict)
    discrepancy: Discrepancy | None = None


def _paid_by_sandbox(client: Client, order: Order, provider: str) -> None:
    payment = Payment.objects.filter(order=order).order_by("-created_at", "-pk").first()
    answer = client.post(
        f"/sandbox/{provider}/pay/",
        data=json.dumps({"out_trade_no": payment.out_trade_no}),
        content_type="application/json",
    )
    assert answer.status_code == 200, answer.content


def live(*, demo_day: bool = True) -> Lived:
    """Everything, made as it happens. Call inside a test with the database (no worker: due work runs here)."""
    call_command("seed_demo", stdout=io.StringIO())
    if demo_day:
        build_demo_day()
    staff = get_user_model().objects.create_superuser(STAFF, email="", password="unused-password-1")
    client_row, _key = EpgClient.objects.create_key(name="某某 IPTV EPG")
    epg = Actor(ActorKind.EPG_CLIENT, client_row.pk)
    clerk = Clerk.objects.select_related("store", "user").get(staff_id="clerk01")
    counter = Actor(ActorKind.CLERK, clerk.staff_id)
    sandbox = Client()
    lived = Lived(staff=staff, epg=client_row)

    def on_tv(product: str, tv_account: str = "tv1001", **extra: Any) -> Order:
        order = order_create(channel=Channel.EPG, product_code=product, tv_account=tv_account, actor=epg, **extra)
        run_due_work()
        return order

    def at_counter(product: str, phone: str = "13800000001", **extra: Any) -> Order:
        order = order_create(
            channel=Channel.CRM,
            product_code=product,
            phone=phone,
            actor=counter,
            clerk=clerk.user,
            store_code=clerk.store.code,
            **extra,
        )
        run_due_work()
        return order

    # Today on the TV: a QR payment, an SMS confirmation answered Y, an order cancelled by the EPG, a renewal.
    wechat = on_tv("VIP-MONTH")
    payment_choose(order_id=wechat.pk, method=PaymentMethod.WECHAT_QR, actor=epg)
    run_due_work()
    _paid_by_sandbox(sandbox, wechat, "wechatpay")
    run_due_work()
    lived.orders["wechat"] = wechat

    sms = on_tv("VIP-QUARTER")
    payment_choose(order_id=sms.pk, method=PaymentMethod.PHONE_BILL_SMS, actor=epg)
    run_due_work()
    reply = json.dumps({"from": "13800000001", "text": "Y"})
    sandbox.post("/sandbox/sms/reply/", data=reply, content_type="application/json")
    run_due_work()
    lived.orders["sms"] = sms

    cancelled = on_tv("VIP-YEAR")
    order_cancel(order_id=cancelled.pk, actor=epg)
    lived.orders["cancelled_by_epg"] = cancelled

    renewing = on_tv("VIP-MONTH", auto_renew=True)
    payment_choose(order_id=renewing.pk, method=PaymentMethod.PHONE_BILL, actor=epg)
    run_due_work()
    renewing.refresh_from_db()
    lived.orders["renewing"] = renewing
    lived.subscription = renewing.subscription

    # Paid and signed in one scan (Alipay's 周期扣款): a deduction contract with its subscription.
    signed = on_tv("VIP-QUARTER", tv_account="tv1002", auto_renew=True)
    payment_choose(order_id=signed.pk, method=PaymentMethod.ALIPAY_QR, actor=epg)
    run_due_work()
    _paid_by_sandbox(sandbox, signed, "alipay")
    run_due_work()
    signed.refresh_from_db()
    assert signed.subscription is not None, (signed.status, signed.failure_code)
    lived.orders["signed"] = signed

    # A household's PIN, set at the counter, with one wrong entry on the TV.
    pin_set(tv_account="tv1001", pin="2468", actor=counter, reason=f"at the counter of store {clerk.store.code}")
    with contextlib.suppress(PurchasePinWrong):  # refused: that is the point
        pin_check(tv_account="tv1001", pin="0000", actor=epg, channel="epg_api")

    # Today at the counter: cash refunded in admin (the store pays it back), a rejected number, one waiting.
    cash = at_counter("VIP-MONTH")
    payment_choose(order_id=cash.pk, method=PaymentMethod.CASH, actor=counter)
    run_due_work()
    lived.orders["cash"] = cash
    lived.orders["rejected"] = at_counter("VIP-MONTH", phone="13900000009")
    lived.orders["awaiting"] = at_counter("VIP-YEAR")

    admin = Client()
    admin.force_login(staff)
    answer = admin.post(f"/admin/orders/order/{cash.pk}/refund/", {"reason": "顾客不想要了，门店退还现金"})
    assert answer.status_code == 302, answer.content.decode()[:2000]
    lived.work_items["cash_refund"] = WorkItem.objects.get(order=cash, kind=WorkItemKind.CASH_PAYBACK)

    # The other kinds of work item, as the lifecycle opens them (their details are its notes).
    phone_bill = Order.objects.filter(payment_method=PaymentMethod.PHONE_BILL, status=OrderStatus.COMPLETED).first()
    qr = Order.objects.filter(payment_method=PaymentMethod.ALIPAY_QR, status=OrderStatus.COMPLETED).first()
    details = {
        WorkItemKind.REFUND_FAILED: (qr, "R20261205A1: SYSTEMERROR 系统超时"),
        # An outside system's answer after the colon stays as it came: here its error codes.
        WorkItemKind.PROVISIONING_UNCERTAIN: (phone_bill, "SMP reversal not confirmed: ECONNREFUSED"),
        WorkItemKind.PROVIDER_DISAGREES: (wechat, "SMP unsubscribe failed: HTTP 504"),
        WorkItemKind.CRM_UNCERTAIN: (cash, "CRM did not answer: HTTP 503"),
    }
    for kind, (order, detail) in details.items():
        lived.work_items[kind] = work_item_open(order=order, kind=kind, detail=detail)
    # And one a person closed, with their note (the queue's "resolved" state).
    closed = work_item_open(order=sms, kind=WorkItemKind.PROVIDER_DISAGREES, detail="SMP unsubscribe failed: HTTP 502")
    work_item_resolve(item_id=closed.pk, note="已在业管平台核对，无需处理", actor=Actor(ActorKind.ADMIN, STAFF))

    # Admin's own changes: a product's price (its history says old → new), a staff group, an authenticator.
    product = Product.objects.get(code="VIP-YEAR")
    form = admin.get(f"/admin/orders/product/{product.pk}/change/")
    assert form.status_code == 200
    data = {
        "code": product.code, "name": product.name, "description": product.description, "kind": product.kind,
        "is_active": "on", "price_fen": "23800", "smp_product_code": product.smp_product_code,
        "smp_zero_price_package_code": product.smp_zero_price_package_code,
        "crm_activity_code": product.crm_activity_code, "channels": product.channels,
        "payment_methods": product.payment_methods, "renewable": "on", "change_reason": "年终促销，降价 10 元",
    }  # fmt: skip
    answer = admin.post(f"/admin/orders/product/{product.pk}/change/", data)
    assert answer.status_code == 302, answer.content.decode()[:3000]
    group = Group.objects.create(name="营业厅主管")
    group.permissions.add(*Permission.objects.filter(codename__in=["view_order", "view_subscription"]))
    Authenticator.objects.create(user=staff, type=Authenticator.Type.TOTP, data={"secret": "not-a-real-secret"})
    lived.discrepancy = Discrepancy.objects.first()
    return lived
