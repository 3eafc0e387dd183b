"""The fault campaign (issue #11): every dependency fails under a running IPVAS, with orders in flight.

One IPVAS of its own (tests/reliability/stack.py: gunicorn, a Celery worker and
Celery beat over a PostgreSQL cluster and two Redis servers of the test's own)
is used by customers over HTTP while, one at a time:

* the broker's Redis is killed (``kill -9``) and started again, empty: the
  worker must survive and reconnect (it used to exit for good: ipvas/broker.py),
  the web server and beat go on, and the orders in flight complete;
* the cache's Redis is killed and started again;
* PostgreSQL stops as in a crash (``pg_ctl -m immediate``) and starts again;
* the simulated WeChat Pay, Alipay, SMS gateway and CRM go down, slow (the
  work is done, the answer comes after the caller's timeout) and flaky.

Each ends with the bank-style check (every order terminal, ledger = providers
= SMP = CRM, nothing doubled, nothing left subscribed), and records the orders
in flight when the fault came, the outcome and the time to recover (a new
order placed when the dependency is back completes) for bench/reliability.py.
The disk of ``var/`` filling up under the embedded set-up is test_disk_full.py.

The short faults run with the suite; the soak set (every mode of every
simulated system, and more orders) with ``make reliability``.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.reliability.services import OwnRedis, own_servers
from tests.reliability.stack import Customers, Stack, running_stack
from tests.reliability.support import record

pytestmark = [pytest.mark.integration]

SETTLE_SECONDS = 150


@dataclass(frozen=True)
class Fault:
    slug: str
    what: str
    methods: tuple[str, ...]
    down_seconds: float = 6
    slow_smp: bool = False  # tasks in hand (3 s SMP calls) when the fault comes
    partners: tuple[tuple[str, str], ...] = ()  # simulated systems and their fault modes, all at once


INFRASTRUCTURE = [
    Fault(
        "broker",
        "broker Redis killed (kill -9) and restarted empty",
        ("phone_bill", "wechat_qr", "phone_bill_sms"),
        slow_smp=True,
    ),
    Fault("cache", "cache Redis killed (kill -9) and restarted empty", ("phone_bill_sms", "alipay_qr", "phone_bill")),
    Fault("postgres", "PostgreSQL stopped (-m immediate) and started again", ("phone_bill", "wechat_qr", "cash")),
]
SIMULATED = {
    "wechatpay": ("wechat_qr",),
    "alipay": ("alipay_qr",),
    "sms": ("phone_bill_sms",),
    "crm": ("cash",),
}
NAMES = {"wechatpay": "WeChat Pay", "alipay": "Alipay", "sms": "SMS gateway", "crm": "CRM"}


def simulated(system: str, mode: str) -> Fault:
    return Fault(f"{system}-{mode}", f"{NAMES[system]} {mode}", SIMULATED[system], partners=((system, mode),))


# The suite's short run: the partners fail all at once, each in another mode (the soak run takes them one by one).
PARTNERS_AT_ONCE = (("wechatpay", "down"), ("alipay", "flaky"), ("sms", "slow"), ("crm", "flaky"))
SHORT = [
    *INFRASTRUCTURE,
    Fault(
        "partners",
        ", ".join(f"{NAMES[system]} {mode}" for system, mode in PARTNERS_AT_ONCE) + ", at once",
        tuple(method for system, _ in PARTNERS_AT_ONCE for method in SIMULATED[system]),
        partners=PARTNERS_AT_ONCE,
    ),
]
SOAK = [
    *INFRASTRUCTURE,
    *(simulated(system, mode) for system in SIMULATED for mode in ("down", "slow", "flaky")),
]


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, Any]]:
    with own_servers(OwnRedis) as made:
        yield made


@pytest.fixture(scope="module")
def stack(servers, tmp_path_factory) -> Iterator[Stack]:
    with running_stack("faults", servers, tmp_path_factory.mktemp("stack-var")) as running:
        yield running


def injection(
    fault: Fault, servers: dict[str, Any], customers: Customers
) -> tuple[Callable[[], None], Callable[[], None]]:
    if fault.slug in ("broker", "rabbitmq"):
        return servers["broker"].kill, servers["broker"].start
    if fault.slug == "cache":
        return servers["cache"].kill, servers["cache"].start
    if fault.slug == "postgres":
        return servers["postgres"].stop_immediately, servers["postgres"].start

    def inject() -> None:
        for system, mode in fault.partners:
            customers.set_fault(system, mode)

    def restore() -> None:
        for system, _ in fault.partners:
            customers.set_fault(system, "ok")

    return inject, restore


def settle(stack: Stack, customers: Customers, plans: list, *, timeout: float) -> dict[str, Any]:
    """The customers finish what they started; then run until quiet and check the books."""
    deadline = time.monotonic() + timeout
    books: dict[str, Any] = {}
    while time.monotonic() < deadline:
        customers.drive(plans, seconds=3, until_settled=True)
        books = stack.check([p.order_no for p in plans if p.order_no])
        if not books.get("unsettled") and not books.get("refunds_under_way") and not books.get("problems"):
            break
        time.sleep(1)
    return books


def run_fault(stack: Stack, servers: dict[str, Any], fault: Fault, *, orders: int) -> dict[str, Any]:
    customers = Customers(stack, prefix=f"f{re.sub('[^a-z]', '', fault.slug)[:8]}{int(time.time()) % 10**5}x")
    inject, restore = injection(fault, servers, customers)
    plans = customers.add(orders, list(fault.methods))
    if fault.slow_smp:
        customers.set_fault("smp", "slow")
    customers.drive(plans, seconds=1.5)  # placed and pre-checked; the customers are choosing
    in_flight = customers.in_flight(plans)
    inject()
    faulted_at = time.monotonic()
    customers.drive(plans, seconds=fault.down_seconds)  # the customers go on meanwhile
    survived = {name: stack.alive(name) for name in ("web", "worker", "beat")}
    restore()
    back_at = time.monotonic()
    if fault.slow_smp:
        customers.set_fault("smp", "ok")
    recovered = customers.probe(timeout=120)
    books = settle(stack, customers, plans + customers.plans[-1:], timeout=SETTLE_SECONDS)
    settled = time.monotonic() - back_at
    worker_log = stack.log("worker")
    result = {
        "kind": fault.what,
        "fault": fault.slug,
        "orders": len(plans),
        "in_flight": in_flight,
        "down_seconds": round(back_at - faulted_at, 1),
        "recovered_seconds": None if recovered is None else round(recovered, 1),
        "settled_seconds": round(settled, 1),
        "statuses": books.get("statuses", {}),
        "processes_survived": survived,
        "processes_alive_after": {name: stack.alive(name) for name in ("web", "worker", "beat")},
        "worker_unrecoverable": "Unrecoverable" in worker_log,
        "answers_during_the_fault": dict(customers.figures),
        "not_completed": [
            f"{p.order_no} {p.channel} {p.method}: {' > '.join(p.notes)}" for p in plans if p.status != "completed"
        ],
        "books": books,
        "ok": (
            not books.get("problems")
            and not books.get("smp_left_subscribed")
            and not books.get("unsettled")
            and all(survived.values())
            and recovered is not None
        ),
    }
    record(f"fault-{fault.slug}", **result)
    return result


def check(result: dict[str, Any]) -> None:
    books = result["books"]
    assert result["processes_survived"] == {"web": True, "worker": True, "beat": True}, result
    assert not result["worker_unrecoverable"], "the worker logged an Unrecoverable error"
    assert books.get("problems") == [], books
    assert books.get("smp_left_subscribed") == [], books
    assert books.get("unsettled") == 0 and books.get("refunds_under_way") == 0, books
    assert result["recovered_seconds"] is not None, f"no new order completed after the fault: {result}"


@pytest.mark.parametrize("fault", SHORT, ids=[f.slug for f in SHORT])
def test_short_a_dependency_fails_with_orders_in_flight_and_the_books_balance(stack, servers, fault):
    short = dataclasses.replace(fault, down_seconds=3)  # the suite's budget; the soak run keeps each down 6 s
    check(run_fault(stack, servers, short, orders=8 if fault.partners else 4))


@pytest.mark.soak
@pytest.mark.parametrize("fault", SOAK, ids=[f.slug for f in SOAK])
def test_soak_a_dependency_fails_with_orders_in_flight_and_the_books_balance(stack, servers, fault):
    check(run_fault(stack, servers, fault, orders=12))
