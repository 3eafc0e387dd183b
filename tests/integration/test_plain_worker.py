"""Celery's own documented way, ``celery -A ipvas worker`` with no ``-Q``, runs an order to its end.

(This module sorts before every other one that starts a worker, so that this worker is the only one.)
"""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from ipvas.actors import Actor, ActorKind
from lifecycle.paying import payment_choose
from lifecycle.placing import order_create
from orders.constants import OrderStatus, PaymentMethod
from orders.models import Order
from tests.integration.conftest import start_worker, stop_worker, wait_for

EPG = Actor(ActorKind.EPG_CLIENT, "integration")


@pytest.mark.django_db(transaction=True)
def test_a_plain_worker_consumes_every_queue_and_completes_an_order(demo):
    worker = start_worker(queues=None)
    try:
        out = io.StringIO()
        call_command("check_queues", "--timeout", "3", stdout=out)
        assert f"{worker.name}@" in out.getvalue()
        assert "every routed queue has a worker: deadlines, default, interactive, provisioning, sms" in out.getvalue()

        order = order_create(channel="epg", product_code="VIP-MONTH", tv_account="tv1001", actor=EPG)
        wait_for(
            lambda: Order.objects.get(pk=order.pk).status == OrderStatus.AWAITING_PAYMENT,
            what="the pre-check (queue interactive)",
        )
        payment_choose(order_id=order.pk, method=PaymentMethod.PHONE_BILL, actor=EPG)
        wait_for(
            lambda: Order.objects.get(pk=order.pk).status == OrderStatus.COMPLETED,
            what="provisioning (queue provisioning)",
        )
        assert "lifecycle.tasks.provision_order" in worker.output()
        assert "'completed'" in worker.output()
    finally:
        stop_worker(worker)
