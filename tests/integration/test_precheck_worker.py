"""The pre-check through the real Celery worker, against PostgreSQL and Redis."""

from __future__ import annotations

import pytest

from ipvas.actors import Actor, ActorKind
from lifecycle.placing import order_create
from orders.constants import FailureCode, OrderStatus
from orders.models import Order
from tests.integration.conftest import wait_for

EPG = Actor(ActorKind.EPG_CLIENT, "integration")


@pytest.mark.django_db(transaction=True)
def test_every_demo_account_is_prechecked_by_the_worker(demo, celery_worker_process):
    expected = {
        "tv1001": (OrderStatus.AWAITING_PAYMENT, ""),
        "tv1002": (OrderStatus.AWAITING_PAYMENT, ""),
        "tv1003": (OrderStatus.REJECTED, FailureCode.ACCOUNT_SUSPENDED),
        "tv1004": (OrderStatus.REJECTED, FailureCode.ACCOUNT_IN_ARREARS),
        "nobody": (OrderStatus.REJECTED, FailureCode.ACCOUNT_NOT_FOUND),
    }
    orders = {
        account: order_create(channel="epg", product_code="VIP-MONTH", tv_account=account, actor=EPG)
        for account in expected
    }

    def settled() -> bool:
        return not Order.objects.filter(pk__in=[o.pk for o in orders.values()], status=OrderStatus.PRECHECKING).exists()

    wait_for(settled, what="every order pre-checked by the worker")
    for account, order in orders.items():
        order.refresh_from_db()
        assert (order.status, order.failure_code) == expected[account], account
        assert order.events.filter(action="precheck_passed").count() + order.events.filter(action="reject").count() == 1
