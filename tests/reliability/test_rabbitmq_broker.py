"""RabbitMQ as the broker (issue #17; docs/decisions.md, "The broker"): its node killed with orders in flight.

The same run as tests/reliability/test_dependency_faults.py, with a RabbitMQ node of our own as the broker
(quorum queues on a topic exchange, publisher confirms: ipvas/settings.py) instead of a Redis: the node is
killed (``kill -9``) while the customers pay and the worker holds tasks, and started again on its data.
The web server, the worker and the beat outlive it, every order ends, and the books balance. run_fault keeps
the figures in test-artifacts/reliability/fault-rabbitmq.json (bench/reliability.py's scale-out table).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.reliability.services import OwnRabbitMQ, own_servers
from tests.reliability.stack import Stack, running_stack
from tests.reliability.test_dependency_faults import Fault, check, run_fault

pytestmark = [pytest.mark.integration]

RABBITMQ_KILLED = Fault(
    "rabbitmq",
    "broker RabbitMQ killed (kill -9) and started again on its data",
    ("phone_bill", "wechat_qr", "phone_bill_sms"),
    down_seconds=3,
    slow_smp=True,
)


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, Any]]:
    with own_servers(OwnRabbitMQ) as made:
        yield made


@pytest.fixture(scope="module")
def stack(servers, tmp_path_factory) -> Iterator[Stack]:
    with running_stack("rabbit", servers, tmp_path_factory.mktemp("stack-var")) as running:
        yield running


def test_the_rabbitmq_node_killed_with_orders_in_flight_and_the_books_balance(stack, servers):
    result = run_fault(stack, servers, RABBITMQ_KILLED, orders=4)
    check(result)
    assert result["statuses"], result
