"""A worker keeps its PostgreSQL connections between tasks, as a web process does between requests.

Celery's Django fixup closes them around every task (celery 5.6 and later), so every task opened a new
connection and PostgreSQL started a backend for it: about half of the database's CPU per order (issue #17,
docs/performance.md). settings.CELERY_DB_REUSE_MAX puts that off and ipvas.signals closes only what is
broken or older than DB_CONN_MAX_AGE (a PostgreSQL restarted under a worker: tests/reliability).
"""

from __future__ import annotations

import pytest
from django.db import connection

from ipvas.actors import Actor, ActorKind
from lifecycle.paying import payment_choose
from lifecycle.placing import order_create
from orders.constants import OrderStatus, PaymentMethod
from orders.models import Order
from sandbox.models import SimSmpAccount
from tests.integration.conftest import Worker, wait_for

EPG = Actor(ActorKind.EPG_CLIENT, "integration")
ORDERS = 6


def sessions() -> int:
    """How many connections PostgreSQL has accepted to the test database so far (pg_stat_database)."""
    with connection.cursor() as cursor:
        cursor.execute("select pg_stat_clear_snapshot()")
        cursor.execute("select sessions from pg_stat_database where datname = current_database()")
        return int(cursor.fetchone()[0])


def in_status(orders: list[Order], status: str) -> bool:
    return Order.objects.filter(pk__in=[o.pk for o in orders], status=status).count() == len(orders)


@pytest.mark.django_db(transaction=True)
def test_a_worker_runs_many_tasks_on_the_connections_it_opened_once(demo, celery_worker_process: Worker):
    worker = celery_worker_process  # the session's: the only worker running (the other tests stop theirs)
    accounts = [f"tv{5001 + i}" for i in range(ORDERS + 4)]
    SimSmpAccount.objects.bulk_create(
        SimSmpAccount(tv_account=account, phone=f"1380000{5001 + i}", status="active", balance_fen=100_000)
        for i, account in enumerate(accounts)
    )

    def succeeded() -> int:
        return worker.output().count(" succeeded in ")

    def place(accounts: list[str]) -> list[Order]:
        return [
            order_create(channel="epg", product_code="VIP-MONTH", tv_account=account, actor=EPG) for account in accounts
        ]

    # Warm up: each of the worker's processes opens its connection on its first task.
    warm = place(accounts[ORDERS:])
    wait_for(lambda: in_status(warm, OrderStatus.AWAITING_PAYMENT), what="the warm-up")
    before, tasks_before = sessions(), succeeded()
    orders = place(accounts[:ORDERS])
    wait_for(lambda: in_status(orders, OrderStatus.AWAITING_PAYMENT), what="the pre-checks")
    for order in orders:
        payment_choose(order_id=order.pk, method=PaymentMethod.PHONE_BILL, actor=EPG)
    wait_for(lambda: in_status(orders, OrderStatus.COMPLETED), what="provisioning")
    opened = sessions() - before

    wait_for(lambda: succeeded() - tasks_before >= 2 * ORDERS, what=f"{2 * ORDERS} tasks in the worker's log")
    tasks = succeeded() - tasks_before
    # A pre-check and a provisioning task an order (and the notices after them): one new connection per task
    # before, none now (2 allowed: a connection kept longer than DB_CONN_MAX_AGE is replaced).
    assert opened <= 2, f"{opened} connections opened for {tasks} tasks"
    # And PostgreSQL can tell them apart from the web's (pg_stat_activity, PgBouncer's SHOW CLIENTS).
    with connection.cursor() as cursor:
        cursor.execute(
            "select count(*) from pg_stat_activity where datname = current_database() and application_name = %s",
            ["ipvas-worker"],
        )
        assert cursor.fetchone()[0] >= 1
