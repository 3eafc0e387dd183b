"""A subscription's whole life through the real Celery worker, on PostgreSQL and Redis: consent, reminder,
renewal by phone bill, cancel, end at the SMP — moved through time by the sandbox's ``advance``."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from ipvas.actors import Actor, ActorKind
from lifecycle.paying import payment_choose
from lifecycle.placing import order_create
from lifecycle.subscriptions import subscription_cancel
from orders.constants import CancelChannel, Channel, OrderStatus, SubscriptionStatus
from orders.models import Order, Subscription
from sandbox.models import SimSmpAccount, SimSmsMessage
from tests.integration.conftest import wait_for

EPG = Actor(ActorKind.EPG_CLIENT, "integration")


def advance(number: str, to: str) -> dict:
    response = Client().post(
        f"/sandbox/subscriptions/{number}/advance/", data=json.dumps({"to": to}), content_type="application/json"
    )
    assert response.status_code == 200, response.content
    return response.json()


@pytest.mark.django_db(transaction=True)
def test_a_subscription_lives_and_ends_through_the_worker(demo, celery_worker_process):
    order = order_create(channel="epg", product_code="VIP-MONTH", tv_account="tv1001", actor=EPG, auto_renew=True)
    wait_for(lambda: Order.objects.get(pk=order.pk).status == OrderStatus.AWAITING_PAYMENT, what="pre-check")
    payment_choose(order_id=order.pk, method="phone_bill", actor=EPG)
    wait_for(lambda: Order.objects.get(pk=order.pk).subscription_id, what="the subscription started")
    subscription = Order.objects.get(pk=order.pk).subscription
    before = SimSmpAccount.objects.get(tv_account="tv1001").balance_fen

    advance(subscription.subscription_no, "reminder")
    wait_for(lambda: Subscription.objects.get(pk=subscription.pk).reminder_sent_at, what="the reminder sent")
    assert SimSmsMessage.objects.filter(to="13800000001", text__contains="将于").exists()

    advance(subscription.subscription_no, "renewal")
    wait_for(lambda: Subscription.objects.get(pk=subscription.pk).periods == 2, timeout=30, what="the renewal charged")
    renewal = Order.objects.get(subscription=subscription, channel=Channel.RENEWAL)
    assert renewal.status == OrderStatus.COMPLETED
    assert before - SimSmpAccount.objects.get(tv_account="tv1001").balance_fen == 2500

    subscription_cancel(subscription_id=subscription.pk, channel=CancelChannel.EPG, actor=EPG)
    advance(subscription.subscription_no, "end")
    wait_for(
        lambda: Subscription.objects.get(pk=subscription.pk).smp_unsubscribed_at,
        timeout=30,
        what="ended and unsubscribed at the SMP",
    )
    assert Subscription.objects.get(pk=subscription.pk).status == SubscriptionStatus.ENDED
