"""The sales dashboard on a streaming replica (issue #17: "one PostgreSQL, with a replica for reports").

A PostgreSQL primary and a hot standby streaming from it (``pg_basebackup -R``), both of the test's own; the
dashboard is asked in a process of IPVAS's own settings with ``REPORTS_DATABASE_URL`` naming the standby, kept
running through the test as a web server is: its connections are kept between pages (``DB_CONN_MAX_AGE``), so
one to a standby that stopped must be given up. Its reads must come from the standby (a sale written while the
standby's replay is paused is not in its figures, and the page says how far behind they are), and the page must
go on from the primary when the standby is down.
"""

from __future__ import annotations

import csv
import html
import io
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.reliability.services import OwnPostgres, OwnStandby
from tests.support.answering import Answering

ROOT = Path(__file__).resolve().parents[2]
DATABASE = "ipvas_replica"
DAY = "2025-03-10"
# What the page says of a replica behind its primary.
BEHIND = re.compile(
    r"Figures from the reports' replica as of \d{4}-\d\d-\d\d \d\d:\d\d:\d\d: it is \d+ s behind the primary database\."
)

# Run in a kept process of IPVAS's settings (tests.support.answering): ["sell", fen, minute] books a completed
# phone-bill sale on DAY on the primary; ["page"] and ["csv"] ask the dashboard for DAY as a superuser;
# ["metrics"] counts the completed orders as /metrics/ does.
SCRIPT = """
import django
django.setup()
from django.contrib.auth import get_user_model
from django.test import Client
from billing.models import LedgerKind
from orders.constants import Channel, OrderStatus, PaymentMethod
from orders.models import Product
from tests.billing.test_reports import D1, at, make_order, money
from tests.factories import ProductFactory
from tests.support.answering import serve


def answer(question):
    what, *args = question
    if what == "sell":
        fen, minute = args
        product = Product.objects.filter(code="RPL").first() or ProductFactory(code="RPL", price_fen=fen)
        order = make_order(
            channel=Channel.EPG, product=product, created=at(D1, 9, minute), status=OrderStatus.COMPLETED,
            method=PaymentMethod.PHONE_BILL,
        )
        money(order, at(D1, 9, minute, 30), LedgerKind.PAYMENT, fen)
        return None
    if what == "metrics":
        from orders.metrics import _counts
        return {"completed": _counts().get(OrderStatus.COMPLETED, 0)}
    user = get_user_model().objects.filter(username="boss").first() or get_user_model().objects.create_superuser(
        "boss", password="unused-password-1"
    )
    client = Client()
    client.force_login(user)
    query = {"start": D1.isoformat(), "end": D1.isoformat()}
    if what == "csv":
        query["export"] = "revenue_by_day"
    response = client.get("/admin/reports/", query, HTTP_ACCEPT_LANGUAGE="en")
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return {"status": response.status_code, "body": body.decode()}


serve(answer)
"""


def django(env: dict[str, str]) -> Answering:
    return Answering([sys.executable, "-c", SCRIPT], env=env, cwd=ROOT)


def page(process: Answering) -> tuple[str, str]:
    """The page's net revenue and what it says of its source ("" when it says nothing)."""
    answer = process.ask(["page"])
    assert answer is not None and answer["status"] == 200
    body = answer["body"]
    net = re.search(r"Net revenue \(yuan\)</span> <strong class=\"reports-total-value\">([^<]+)</strong>", body)
    assert net, body[-2000:]
    source = re.search(r'id="reports-source">(.*?)</p>', body, re.S)
    return net.group(1), " ".join(html.unescape(source.group(1)).split()) if source else ""


def csv_net(process: Answering) -> str:
    answer = process.ask(["csv"])
    assert answer is not None and answer["status"] == 200
    rows = list(csv.reader(io.StringIO(answer["body"])))
    (day,) = [row for row in rows if row and row[0] == DAY]
    return day[-1]


@pytest.fixture
def primary_and_standby(tmp_path: Path) -> Iterator[tuple[OwnPostgres, OwnStandby, Answering, Answering]]:
    """The primary, its standby, and a process of IPVAS's settings on each: without a replica, and with it."""
    primary = OwnPostgres()
    standby = None
    running: list[Answering] = []
    try:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "IPVAS_VAR_DIR": str(tmp_path / "var"),
            "DATABASE_URL": primary.url(DATABASE),
        }
        for name in ("REDIS_URL", "CELERY_BROKER_URL", "REPORTS_DATABASE_URL"):
            env.pop(name, None)
        primary.create_migrated_database(DATABASE, env)
        standby = OwnStandby(primary)
        running += [django(env), django({**env, "REPORTS_DATABASE_URL": standby.url(DATABASE)})]
        yield primary, standby, *running
    finally:
        for process in running:
            process.stop()
        if standby is not None:
            standby.destroy()
        primary.destroy()


def test_the_dashboard_reads_from_the_replica_and_goes_on_from_the_primary_without_it(primary_and_standby):
    _, standby, on_primary, on_replica = primary_and_standby
    on_primary.ask(["sell", 2500, 0])
    standby.wait_for_primary()
    assert page(on_replica) == ("25.00", "Figures from the reports' replica, up to date.")
    assert page(on_primary) == ("25.00", "")  # without a replica the page says nothing of one

    # Replay paused: a sale on the primary reaches the standby but is not applied. The replica's page does not
    # have it, and says so; the primary has it.
    standby.pause()
    on_primary.ask(["sell", 1000, 1])
    standby.wait_for_primary(replayed=False)
    net, source = page(on_replica)
    assert net == "25.00"
    assert BEHIND.fullmatch(source), source
    assert csv_net(on_replica) == "25.00"
    assert page(on_primary)[0] == "35.00"
    # /metrics/' orders by status, a count over every order, read there too.
    assert on_replica.ask(["metrics"]) == {"completed": 1}
    assert on_primary.ask(["metrics"]) == {"completed": 2}

    standby.resume()
    standby.wait_for_primary()
    assert page(on_replica) == ("35.00", "Figures from the reports' replica, up to date.")
    assert csv_net(on_replica) == "35.00"
    assert on_replica.ask(["metrics"]) == {"completed": 2}

    # The standby down: the page and its CSV come from the primary, and the page says so.
    standby.stop_immediately()
    assert page(on_replica) == (
        "35.00",
        "The reports' replica did not answer: these figures come from the primary database.",
    )
    assert csv_net(on_replica) == "35.00"


def test_a_replica_cut_off_from_its_primary_does_not_say_it_is_up_to_date(primary_and_standby):
    """The standby loses its primary (a network cut, a replication password changed): it goes on answering with
    what it replayed before, and its received and replayed positions stay equal. Its page must not say it is up
    to date while a sale on the primary is missing from it."""
    _, standby, on_primary, on_replica = primary_and_standby
    on_primary.ask(["sell", 2500, 0])
    standby.wait_for_primary()
    assert page(on_replica) == ("25.00", "Figures from the reports' replica, up to date.")

    standby.cut_off()
    on_primary.ask(["sell", 1000, 1])
    assert page(on_primary)[0] == "35.00"
    net, source = page(on_replica)
    assert net == "25.00"
    assert BEHIND.fullmatch(source), source
