"""A payment method the order may not be paid with is refused before anything is written, whoever asks."""

from __future__ import annotations

import pytest

from billing.models import Payment
from ipvas.actors import Actor
from ipvas.errors import InvalidInput
from lifecycle.paying import payment_choose
from orders.models import Order, OrderEvent
from tests.epg_api.support import Api, api

__all__ = ["api"]

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("method", ["cash", "bitcoin", ""])
def test_a_method_not_allowed_or_unknown_names_the_allowed_ones_and_writes_nothing(api: Api, method):
    order_no = api.place()["order_no"]  # an EPG order: cash is the counter's only
    order = Order.objects.get(order_no=order_no)
    events = OrderEvent.objects.filter(order=order).count()

    with pytest.raises(InvalidInput) as refused:
        payment_choose(order_id=order.pk, method=method, actor=Actor.task("test"))

    (message,) = refused.value.fields["method"]
    assert "wechat_qr, alipay_qr, phone_bill, phone_bill_sms" in message
    assert Order.objects.get(pk=order.pk).status == "awaiting_payment"
    assert OrderEvent.objects.filter(order=order).count() == events
    assert not Payment.objects.filter(order=order).exists()
