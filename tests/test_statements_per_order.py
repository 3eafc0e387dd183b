"""How many statements an order costs the database, step by step (issue #17: count the round trips).

An EPG order paid by phone bill, from ``POST /orders/`` to ``completed``: each step's statements to the
database are counted (the in-process SMP simulator's own tables, ``sandbox_*``, are not ours and are left
out; BEGIN, COMMIT and savepoints are counted, they are round trips too). The budgets are today's counts:
a change that adds a statement to an order's path fails here and has to say why. docs/performance.md
lists the statements.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from ipvas.celery import app
from ipvas.models import OutboxMessage
from tests.epg_api.support import new_api_key
from tests.support.tasks import import_tasks

pytestmark = pytest.mark.django_db(transaction=True)

# Statements per step, on PostgreSQL and SQLite alike (issue #17 took them from 60 to 46).
# A poll with If-None-Match reads the order's version for its ETag (two rows, no objects built), and the
# order for its answer only when it changed (two more); without, the order at once (2026-12-06).
BUDGET = {"create": 8, "precheck": 10, "choose phone bill": 8, "provision": 14, "poll": 2, "poll unchanged": 2}


def ours(queries: CaptureQueriesContext) -> list[str]:
    """The statements of ours: not the simulator's (its tables, and its transactions left empty without them)."""
    kept = [q["sql"] for q in queries.captured_queries if "sandbox_" not in q["sql"]]
    for i in range(len(kept) - 1, 0, -1):
        if kept[i - 1].startswith("BEGIN") and kept[i] == "COMMIT":
            del kept[i - 1 : i + 1]
    return kept


def due_message(name: str) -> OutboxMessage:
    message = (
        OutboxMessage.objects.filter(relayed_at__isnull=True, due_at__lte=timezone.now(), task_name=name)
        .order_by("pk")
        .first()
    )
    OutboxMessage.objects.filter(pk=message.pk).update(relayed_at=timezone.now())
    return message


def run(message: OutboxMessage) -> object:
    return app.tasks[message.task_name].apply(kwargs=message.kwargs, throw=True).get()


def test_an_order_paid_by_phone_bill_stays_within_its_statements(demo, settings):
    import_tasks()
    epg = Client(HTTP_AUTHORIZATION=f"Api-Key {new_api_key()}")
    counted: dict[str, list[str]] = {}

    with CaptureQueriesContext(connection) as queries:
        created = epg.post(
            "/api/epg/v1/orders/",
            {"product_code": "VIP-MONTH", "tv_account": "tv1001"},
            content_type="application/json",
        )
    assert created.status_code == 201, created.content
    counted["create"] = ours(queries)
    order_no = created.json()["order_no"]

    message = due_message("lifecycle.tasks.precheck_order")
    with CaptureQueriesContext(connection) as queries:
        assert run(message) == "passed"
    counted["precheck"] = ours(queries)

    with CaptureQueriesContext(connection) as queries:
        chosen = epg.post(
            f"/api/epg/v1/orders/{order_no}/payment/", {"method": "phone_bill"}, content_type="application/json"
        )
    assert chosen.status_code == 200, chosen.content
    counted["choose phone bill"] = ours(queries)

    message = due_message("lifecycle.tasks.provision_order")
    with CaptureQueriesContext(connection) as queries:
        assert run(message) == "completed"
    counted["provision"] = ours(queries)

    with CaptureQueriesContext(connection) as queries:
        polled = epg.get(f"/api/epg/v1/orders/{order_no}/")
    assert polled.json()["status"] == "completed"
    counted["poll"] = ours(queries)
    with CaptureQueriesContext(connection) as queries:
        assert epg.get(f"/api/epg/v1/orders/{order_no}/", HTTP_IF_NONE_MATCH=polled["ETag"]).status_code == 304
    counted["poll unchanged"] = ours(queries)

    report = {step: len(statements) for step, statements in counted.items()}
    print("statements per step:", report, "in all:", sum(report.values()))
    over = {step: (n, BUDGET[step]) for step, n in report.items() if n > BUDGET[step]}
    assert not over, "\n".join(
        f"{step}: {n} statements, budget {budget}:\n  " + "\n  ".join(s[:120] for s in counted[step])
        for step, (n, budget) in over.items()
    )
