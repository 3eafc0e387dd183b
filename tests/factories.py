from __future__ import annotations

import factory
from django.utils import timezone

from ipvas.actors import ActorKind
from orders.constants import Channel, OrderStatus, PaymentMethod, ProductKind, SubscriptionStatus
from orders.models import Order, Product, Subscription
from orders.numbers import new_order_no


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product
        django_get_or_create = ["code"]

    code = factory.Sequence(lambda n: f"P{n:04d}")
    name = factory.LazyAttribute(lambda p: f"Product {p.code}")
    kind = ProductKind.MONTHLY
    price_fen = 2500
    view_hours = None
    smp_product_code = factory.LazyAttribute(lambda p: f"SMP-{p.code}")
    smp_zero_price_package_code = factory.LazyAttribute(lambda p: f"SMP-{p.code}-0")
    crm_activity_code = factory.LazyAttribute(lambda p: f"MKT-{p.code}")
    channels = factory.LazyFunction(lambda: [Channel.EPG, Channel.CRM])
    payment_methods = factory.LazyFunction(lambda: [m.value for m in PaymentMethod])


class OrderFactory(factory.django.DjangoModelFactory):
    """An order put straight into a status, for tests of what happens from there."""

    class Meta:
        model = Order

    order_no = factory.LazyFunction(new_order_no)
    channel = Channel.EPG
    tv_account = "tv1001"
    phone = "13800000001"
    product = factory.SubFactory(ProductFactory)
    amount_fen = factory.LazyAttribute(lambda o: o.product.price_fen)
    status = OrderStatus.AWAITING_PAYMENT
    status_changed_at = factory.LazyFunction(timezone.now)
    deadline_at = factory.LazyFunction(lambda: timezone.now() + timezone.timedelta(seconds=900))
    origin_kind = ActorKind.EPG_CLIENT
    origin_id = "test-client"


class SubscriptionFactory(factory.django.DjangoModelFactory):
    """A subscription put straight into a status (the status is set once, at creation), for tests of pages."""

    class Meta:
        model = Subscription

    subscription_no = factory.LazyFunction(new_order_no)
    tv_account = "tv1001"
    phone = "13800000001"
    product = factory.SubFactory(ProductFactory, renewable=True)
    status = SubscriptionStatus.ACTIVE
    payment_method = PaymentMethod.PHONE_BILL
    renewal_price_fen = factory.LazyAttribute(lambda s: s.product.price_fen)
    current_period_end = factory.LazyFunction(lambda: timezone.now() + timezone.timedelta(days=30))
    next_renewal_at = factory.LazyAttribute(
        lambda s: s.current_period_end - timezone.timedelta(hours=24) if s.status == SubscriptionStatus.ACTIVE else None
    )
    next_reminder_at = factory.LazyAttribute(
        lambda s: s.next_renewal_at - timezone.timedelta(days=5) if s.next_renewal_at else None
    )
    consent_channel = Channel.EPG
    consent_method = PaymentMethod.PHONE_BILL
    consent_at = factory.LazyFunction(timezone.now)
    consent_evidence = factory.LazyAttribute(lambda s: {"placed_by": "epg_client:test-client"})
