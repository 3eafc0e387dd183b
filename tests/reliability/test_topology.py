"""Production's topology on one machine (issue #17, scale-out item 3): one of each killed mid-burst, nothing lost.

Two web nodes (granian, as ``dev.py prod`` runs it) behind haproxy (its config written under the test's
tmp dir, health checks on ``/healthz/``), two Celery worker nodes (``-n`` apart) and two beats sharing the
lock (``BEAT_LOCK=redis``), over a PostgreSQL and two Redis servers of the test's own
(tests/reliability/stack.py's ``Topology``). Customers in eight client threads place a burst of EPG orders
through the proxy, choose a payment method and pay at the sandbox's providers, retrying whatever found no
answer; an order is placed under an ``Idempotency-Key`` (docs/interfaces.md §2), so a retry of a POST whose
answer died with its node answers the same order. Half way through the placing, one web node, one worker
node and the beat holding the lock are ``kill -9``ed (each with every process it started).

Then: haproxy takes the dead node out; the other beat takes the lock over; every order reaches a terminal
status within a bound; every customer has exactly one order (none lost, none doubled by a retry); and the
books balance (tests.reliability.support.check_money: ledger = providers = SMP, nothing twice, nothing left
subscribed). The figures (orders per second through the proxy, the takeover, the time until all are
terminal) are printed and kept in test-artifacts/reliability/topology.json.

And the shared cache killed under the same proxy configuration (docs/operations.md's, its ``backup`` lines
included): ``/healthz/`` fails on every node at once and haproxy takes both out, yet the nodes keep answering
through the backups, as the table of "When a dependency fails" says, instead of haproxy's own 503 page.
"""

from __future__ import annotations

import os
import platform
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.reliability.services import own_servers, program
from tests.reliability.stack import TERMINAL, Customers, Topology
from tests.reliability.support import record
from tests.reliability.test_beat_takeover import wait_until

pytestmark = [pytest.mark.integration]

ORDERS = 120
CLIENTS = 8  # client threads, each a customer crowd with its own HTTP session
METHODS = ("phone_bill", "wechat_qr", "alipay_qr", "phone_bill_sms")
THINK_SECONDS = 0.5  # the customers choose and pay quickly: the burst is the point
LOCK_TIMEOUT = 10  # BEAT_LOCK_TIMEOUT_SECONDS, its minimum
TERMINAL_WITHIN = 75  # seconds after the kills: the payment window (25 s) and a provisioning retry, with room


@contextmanager
def running(tmp_path: Path, name: str, *processes: str, **options: Any) -> Iterator[tuple[Topology, dict]]:
    """A Topology over servers of its own, with ``processes`` started (all of them when none is named)."""
    haproxy = program("haproxy", package="haproxy")
    with own_servers() as servers:
        stack = Topology(
            name=name,
            var_dir=tmp_path / "var",
            postgres=servers["postgres"],
            broker=servers["broker"],
            cache=servers["cache"],
            haproxy=haproxy,
            **options,
        )
        try:
            stack.start(*processes)
            yield stack, servers
        finally:
            stack.stop()


@pytest.fixture
def topology(tmp_path) -> Iterator[Topology]:
    with running(tmp_path, "topology", worker_concurrency=2, beat_lock_timeout=LOCK_TIMEOUT) as (stack, _servers):
        yield stack


def test_one_web_node_worker_and_the_active_beat_killed_mid_burst_lose_and_double_nothing(topology, capsys):
    stack = topology
    wait_until(lambda: stack.beats_holding_the_lock(), 60)
    time.sleep(1)
    holding = stack.beats_holding_the_lock()
    assert len(holding) == 1, holding  # one lock, one beat ticking
    active = holding[0]
    standby = "beat-b" if active == "beat-a" else "beat-a"

    crowds = [Customers(stack, prefix=f"topo{i}x") for i in range(CLIENTS)]
    for i, crowd in enumerate(crowds):
        for plan in crowd.add(ORDERS // CLIENTS, [*METHODS[i % 4 :], *METHODS[: i % 4]]):
            plan.think = THINK_SECONDS
    plans = [plan for crowd in crowds for plan in crowd.plans]

    def placed() -> int:
        return sum(1 for plan in plans if plan.order_no)

    before = stack.proxy_stats()
    started = time.monotonic()
    clients = [
        threading.Thread(
            target=crowd.drive,
            args=(crowd.plans,),
            kwargs={"seconds": TERMINAL_WITHIN + 30, "until_settled": True},
            daemon=True,
        )
        for crowd in crowds
    ]
    for client in clients:
        client.start()
    wait_until(lambda: placed() >= ORDERS // 2, 60)
    killed_at = time.monotonic()
    placed_at_kill = placed()
    for name in ("web-a", "worker-a", active):
        stack.kill(name)

    seen: dict[str, float] = {}
    while time.monotonic() - killed_at < TERMINAL_WITHIN:
        now = time.monotonic()
        if "placed" not in seen and placed() == ORDERS:
            seen["placed"] = now
        if "taken out" not in seen and stack.proxy_servers().get("web-a") == "DOWN":
            seen["taken out"] = now
        if "takeover" not in seen and standby in stack.beats_holding_the_lock():
            seen["takeover"] = now
        if "terminal" not in seen and placed() == ORDERS and all(plan.status in TERMINAL for plan in plans):
            seen["terminal"] = now
        if {"placed", "taken out", "takeover", "terminal"} <= set(seen):
            break
        time.sleep(0.1)
    for client in clients:
        client.join(timeout=30)
    after = stack.proxy_stats()
    books = stack.settled_books([plan.order_no for plan in plans if plan.order_no], timeout=30)

    answers = sum((crowd.figures for crowd in crowds), Counter())

    def counted(row: str, counter: str) -> int:
        """How much haproxy's ``counter`` of ``row`` grew during the burst."""
        return int(after[row][counter] or 0) - int(before[row][counter] or 0)

    requests_through = counted("ipvas/FRONTEND", "req_tot")
    busy = (seen.get("terminal") or time.monotonic()) - started

    def since(mark: str, origin: float) -> float | None:
        return round(seen[mark] - origin, 1) if mark in seen else None

    figures = {
        "machine": f"{platform.node()}, {platform.machine()}, {os.cpu_count()} CPUs",
        "orders": ORDERS,
        "client_threads": CLIENTS,
        "placed_when_killed": placed_at_kill,
        "placing_seconds": since("placed", started),
        "orders_placed_per_second": round(ORDERS / (seen["placed"] - started), 1) if "placed" in seen else None,
        "orders_terminal_per_second": round(ORDERS / busy, 1) if "terminal" in seen else None,
        "requests_through_the_proxy": requests_through,
        "requests_per_second_through_the_proxy": round(requests_through / busy, 1),
        "proxy_5xx": counted("ipvas/FRONTEND", "hrsp_5xx"),
        "proxy_redispatched": counted("web/BACKEND", "wredis"),
        "requests_by_node": {node: counted(f"web/{node}", "stot") for node in ("web-a", "web-b")},
        "tasks_by_node": {node: stack.log(node).count(" succeeded in ") for node in ("worker-a", "worker-b")},
        "dead_node_taken_out_seconds": since("taken out", killed_at),
        "beat_takeover_seconds": since("takeover", killed_at),
        "all_terminal_after_the_kills_seconds": since("terminal", killed_at),
        "all_terminal_after_the_burst_began_seconds": since("terminal", started),
        "statuses": books.get("statuses", {}),
        "client_answers": dict(answers),
        "books": {k: v for k, v in books.items() if k != "events_of_orders_not_completed"},
        "not_completed": [f"{p.order_no} {p.method}: {' > '.join(p.notes)}" for p in plans if p.status != "completed"][
            :20
        ],
    }
    ok = (
        placed() == ORDERS
        and "terminal" in seen
        and books.get("missing") == 0
        and books.get("other_orders_of_their_accounts") == 0
        and books.get("problems") == []
        and books.get("smp_left_subscribed") == []
        and books.get("unsettled") == 0
        and books.get("refunds_under_way") == 0
    )
    record("topology", kind="one web node, one worker and the active beat killed mid-burst", ok=ok, **figures)
    with capsys.disabled():
        print(
            f"\ntopology: {ORDERS} orders through haproxy to 2 granian nodes, 2 workers, 2 beats;"
            f" {placed_at_kill} placed when web-a, worker-a and {active} were killed\n"
            f"  placed in {figures['placing_seconds']} s ({figures['orders_placed_per_second']} orders/s through the"
            f" proxy); {requests_through} requests through it ({figures['requests_per_second_through_the_proxy']}/s),"
            f" {figures['proxy_5xx']} answered 5xx, {figures['proxy_redispatched']} redispatched\n"
            f"  requests by web node {figures['requests_by_node']}, tasks by worker node {figures['tasks_by_node']}\n"
            f"  web-a out of haproxy after {figures['dead_node_taken_out_seconds']} s;"
            f" {standby} took the lock over after {figures['beat_takeover_seconds']} s\n"
            f"  all terminal {figures['all_terminal_after_the_kills_seconds']} s after the kills"
            f" ({figures['all_terminal_after_the_burst_began_seconds']} s after the burst began,"
            f" {figures['orders_terminal_per_second']} orders/s end to end): {figures['statuses']}\n"
            f"  client answers: {dict(answers)}"
        )

    assert placed() == ORDERS, f"customers without an order: {[p.account for p in plans if not p.order_no]}"
    assert "terminal" in seen, f"not every order terminal within {TERMINAL_WITHIN} s: {figures}"
    assert books.get("missing") == 0, books
    assert books.get("other_orders_of_their_accounts") == 0, f"a retry placed an order twice: {books}"
    assert books.get("problems") == [], books
    assert books.get("smp_left_subscribed") == [], books
    assert books.get("unsettled") == 0 and books.get("refunds_under_way") == 0, books
    assert seen.get("taken out") is not None, f"haproxy never took the dead node out: {stack.proxy_servers()}"
    assert seen.get("takeover") is not None, f"{standby} never took the beat lock over"
    assert seen["takeover"] - killed_at <= LOCK_TIMEOUT + 10, figures
    assert all(stack.alive(name) for name in ("web-b", "worker-b", standby, "proxy"))
    assert books["statuses"].get("completed", 0) >= ORDERS // 2, f"the surviving nodes completed little: {figures}"


@pytest.fixture
def web_nodes(tmp_path) -> Iterator[tuple[Topology, dict]]:
    """The two web nodes and the proxy only (no workers, no beats): what a cache outage meets first."""
    with running(tmp_path, "cachedown", "web-a", "web-b", "proxy") as started:
        yield started


def test_the_cache_down_on_every_node_leaves_them_answering_through_the_proxy(web_nodes):
    stack, servers = web_nodes
    api = requests.Session()
    api.headers["Authorization"] = f"Api-Key {stack.api_key}"
    check = f"{stack.base}/api/epg/v1/entitlements/?tv_account=tv1001&product_code=VIP-MONTH"
    assert api.get(check, timeout=10).status_code == 200

    servers["cache"].kill()
    wait_until(lambda: set(stack.proxy_servers().values()) == {"DOWN"}, 15)  # /healthz/ fails on both nodes

    answered = api.get(check, timeout=10)
    order = api.post(
        f"{stack.base}/api/epg/v1/orders/",
        json={"tv_account": "tv1002", "product_code": "VIP-MONTH"},
        headers={"Idempotency-Key": "cache-down-1"},
        timeout=15,
    )
    health = requests.get(f"{stack.base}/healthz/", timeout=10)
    servers["cache"].start()
    wait_until(lambda: set(stack.proxy_servers().values()) == {"UP"}, 15)

    # From PostgreSQL, by a node: not haproxy's "503 Service Unavailable … No server is available" page.
    assert (answered.status_code, answered.headers["Content-Type"]) == (200, "application/json"), answered.text
    assert "entitled" in answered.json()
    assert order.status_code == 201, order.text
    assert order.json()["status"] == "prechecking"
    assert health.status_code == 503 and health.headers["Content-Type"].startswith("application/json"), health.text
    assert stack.proxy_stats()["web/any-a"]["stot"] != "0" or stack.proxy_stats()["web/any-b"]["stot"] != "0"
