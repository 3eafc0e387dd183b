"""The subscription pages of admin make as many queries for 50 rows as for 5 (tests/test_query_counts.py).

Each subscription hangs on its own product, each renewal on its own order and entitlement, so that a
relation read row by row shows as a count that grows with the rows.
"""

from __future__ import annotations

from datetime import timedelta
from itertools import count

import pytest
from django.test import Client
from django.utils import timezone

from ipvas.actors import ActorKind
from orders.constants import Channel, NoticeKind, OrderStatus
from orders.models import Entitlement, Subscription, SubscriptionEvent, SubscriptionNotice
from tests.factories import OrderFactory, ProductFactory, SubscriptionFactory
from tests.test_query_counts import assert_constant, queries

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(django_user_model) -> Client:
    client = Client()
    client.force_login(django_user_model.objects.create_superuser("counter", "counter@example.com", "pw"))
    return client


def new_subscription() -> Subscription:
    return SubscriptionFactory(product=ProductFactory(renewable=True))


@pytest.mark.parametrize(
    "query",
    ["", "?status__exact=active", "?renewal_due_days=30", "?consent_channel=epg&payment_method=phone_bill"],
)
def test_subscription_changelist(staff, query):
    assert_constant(lambda: queries(staff, f"/admin/orders/subscription/{query}"), new_subscription)


def test_subscription_page_with_its_renewals_notices_and_events(staff):
    subscription = new_subscription()
    OrderFactory(product=subscription.product, subscription=subscription, auto_renew=True, status=OrderStatus.COMPLETED)
    serial = count(2)

    def more_of_its_life() -> None:
        period = next(serial)
        renewal = OrderFactory(
            product=subscription.product,
            channel=Channel.RENEWAL,
            subscription=subscription,
            renewal_period=period,
            status=OrderStatus.COMPLETED if period % 2 else OrderStatus.FAILED,
            deadline_at=None,
        )
        if period % 2:
            start = timezone.now() + timedelta(days=30 * period)
            Entitlement.objects.create(
                order=renewal,
                tv_account=renewal.tv_account,
                product=renewal.product,
                product_code=renewal.product.code,
                kind=renewal.product.kind,
                starts_at=start,
                ends_at=start + timedelta(days=30),
            )
        SubscriptionNotice.objects.create(
            subscription=subscription, kind=NoticeKind.REMINDER, period=period, phone="13800000001", text="reminder"
        )
        SubscriptionEvent.objects.create(
            subscription=subscription,
            at=timezone.now(),
            action="renewed",
            actor_kind=ActorKind.TASK,
            data={"p": period},
        )

    assert_constant(lambda: queries(staff, f"/admin/orders/subscription/{subscription.pk}/change/"), more_of_its_life)
