"""An order's answer is made by one serializer per thread, kept across answers (epg_api.serializers.serialized,
issue #17): each answer, also when many are made at the same time, is the one a new serializer makes, never an
earlier order's (a serializer keeps the ``data`` it made once)."""

from __future__ import annotations

import threading

from epg_api.serializers import OrderSerializer, serialized
from orders.models import Order
from tests.epg_api.support import Api, new_api_key
from tests.support.concurrency import run_in_threads


def test_answers_made_at_once_in_many_threads_are_each_their_own_orders(demo, client):
    api = Api(new_api_key(), client=client)
    placed = [api.place(f"tv100{i}", "VIP-MONTH") for i in range(1, 4)]
    api.pay_with(placed[0]["order_no"], "wechat_qr")  # one with a payment to show
    orders = list(Order.objects.select_related("product", "entitlement", "subscription").order_by("pk"))
    expected = {order.pk: OrderSerializer(order).data for order in orders}
    assert len({answer["status"] for answer in expected.values()}) > 1  # orders that differ

    wrong: list[str] = []
    offsets = iter(range(6))  # each thread starts at another order

    def answer(start: threading.Barrier) -> None:
        offset = next(offsets)
        start.wait()
        for i in range(60):
            order = orders[(i + offset) % len(orders)]
            got = serialized(OrderSerializer, order)
            if got != expected[order.pk]:
                wrong.append(f"{order.order_no}: {got} != {expected[order.pk]}")

    assert run_in_threads(6, answer) == []
    assert not wrong, wrong[:3]
