"""Property 4, the single failures: the database, the cache and the SMP failing at a bad moment.

* PostgreSQL down when a payment notification arrives: a second IPVAS
  process (gunicorn: a real WSGI server) whose DATABASE_URL points at a closed
  port must answer a failure, never a success, so that the provider retries;
  the same notification delivered to the healthy system is applied once.
* The cache (Redis) down when a notification arrives: never a success either,
  and the answer keeps the contract's shape.
* The SMP subscribes but answers too late, then stays down until the order
  is given up: the money goes back, and the SMP must not keep the product.

The randomised run of many orders through all of these at once is in
test_random_run.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import timedelta

import pytest
import requests
from django.conf import settings as django_settings
from django.test import override_settings
from django.utils import timezone

from billing.models import LedgerEntry, PaymentNotification, WorkItem, WorkItemKind
from ipvas.actors import Actor, ActorKind
from ipvas.models import OutboxMessage
from lifecycle.manual import work_item_resolve
from orders.constants import OrderStatus
from orders.models import Order
from sandbox import faults
from sandbox import payments as sandbox_payments
from sandbox.models import SimSmpSubscription
from tests.integration.conftest import ARTIFACTS, ROOT
from tests.reliability.services import free_port
from tests.reliability.support import (
    PHONES,
    SMS_URL,
    check_money,
    choose,
    client,
    make_rich,
    move_deadline,
    new_order,
    paid_notification,
    record,
    run_due,
    said_success,
    sms_reply,
    trade_of,
)
from tests.support.concurrency import require_postgresql

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

CLOSED_PORT_DATABASE = "postgres://postgres@127.0.0.1:9/ipvas_unreachable"
DEAD_REDIS = "redis://127.0.0.1:9/0"
STORE = Actor(ActorKind.CLERK, "store-manager")


class Server:
    """IPVAS served by gunicorn in its own process, behind a real WSGI server as in production."""

    def __init__(self, env: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        ARTIFACTS.mkdir(exist_ok=True)
        self.log = ARTIFACTS / f"gunicorn-{self.port}.log"
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "ipvas.wsgi:application",
                "-b",
                f"127.0.0.1:{self.port}",
                "-w",
                "1",
                "--timeout",
                "30",
            ],
            cwd=ROOT,
            env=env,
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            self._wait_until_it_answers(timeout=60)
        except BaseException:
            self.stop()
            raise

    def _wait_until_it_answers(self, *, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited:\n{self.log.read_text(errors='replace')[-3000:]}")
            try:
                requests.get(self.url + "/billing/notify/wechatpay/", timeout=10)  # the first one loads Django
                return
            except requests.RequestException:
                time.sleep(0.2)
        raise RuntimeError(f"gunicorn did not answer in {timeout:.0f} s")

    def post(self, path: str, body: bytes, content_type: str, headers: dict[str, str]) -> requests.Response:
        return requests.post(self.url + path, data=body, headers={"Content-Type": content_type, **headers}, timeout=20)

    def stop(self) -> None:
        import signal

        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()


@pytest.fixture
def server_without_database(django_db_setup):
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "DATABASE_URL": CLOSED_PORT_DATABASE,
            "REDIS_URL": django_settings.REDIS_URL,
            "CELERY_BROKER_URL": django_settings.CELERY_BROKER_URL,
            "DB_CONN_MAX_AGE": "0",
        }
    )
    server = Server(env)
    yield server
    server.stop()


def test_a_notification_arriving_while_the_database_is_down_is_refused_then_applied_once(demo, server_without_database):
    require_postgresql()
    make_rich()
    deliveries = []
    for method in ("wechat_qr", "alipay_qr"):
        order = new_order()
        run_due()
        order = choose(order, method)
        trade = trade_of(order)
        deliveries.append((order, paid_notification(sandbox_payments.pay_trade(trade.provider, trade.out_trade_no))))
    sms_order = new_order()
    run_due()
    choose(sms_order, "phone_bill_sms")
    run_due()
    deliveries.append((sms_order, sms_reply(PHONES["tv1001"], "Y")))

    down: dict[str, tuple[int, str]] = {}
    for _order, delivery in deliveries:
        for _ in range(2):  # the provider retries: still down
            answer = server_without_database.post(delivery.path, delivery.body, delivery.content_type, delivery.headers)
            down[delivery.path] = (answer.status_code, answer.text[:200])
    nothing_yet = {
        "notifications stored": PaymentNotification.objects.count(),
        "ledger entries": LedgerEntry.objects.count(),
        "orders moved": Order.objects.exclude(status=OrderStatus.PAYMENT_PENDING).count(),
    }

    healthy = {}
    for _order, delivery in deliveries:
        for _ in range(2):  # the retry reaches the healthy system, then once more
            response = delivery.post(client())
            healthy.setdefault(delivery.path, []).append(said_success(delivery, response))
    run_due()
    report = check_money([o.pk for o, _ in deliveries])

    record(
        "outside-database_down_notification",
        kind="PostgreSQL down when a notification arrives",
        answers_while_down={path: list(v) for path, v in down.items()},
        ok=not report.problems,
    )
    # While the database is down: a failure the provider retries, in the contract's words.
    wechat, alipay, sms = (down[p] for p in ("/billing/notify/wechatpay/", "/billing/notify/alipay/", SMS_URL))
    assert wechat[0] >= 500 and wechat[1].startswith('{"code": "FAIL"'), wechat
    assert alipay[0] >= 500 and alipay[1] != "success", alipay
    assert sms[0] >= 500, sms
    assert nothing_yet == {"notifications stored": 0, "ledger entries": 0, "orders moved": 0}
    # Delivered again to the healthy system: applied once, answered success every time.
    assert healthy == {path: [True, True] for path in healthy}
    assert report.statuses == {OrderStatus.COMPLETED: 3}, report.summary()
    assert report.problems == [], report.summary()
    assert PaymentNotification.objects.count() == 2


DEAD_CACHE = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": DEAD_REDIS}}


def test_a_notification_arriving_while_the_cache_is_down_is_never_answered_success(demo):
    require_postgresql()
    order = new_order()
    run_due()
    order = choose(order, "wechat_qr")
    trade = trade_of(order)
    delivery = paid_notification(sandbox_payments.pay_trade(trade.provider, trade.out_trade_no))

    with override_settings(CACHES=DEAD_CACHE):
        answer = delivery.post(client(raise_request_exception=False))
    nothing = PaymentNotification.objects.count()
    again = delivery.post(client())
    run_due()

    order.refresh_from_db()
    assert answer.status_code >= 500 and not said_success(delivery, answer)
    assert nothing == 0
    assert said_success(delivery, again) and order.status == OrderStatus.COMPLETED


def test_a_notification_arriving_while_the_cache_is_down_is_answered_in_the_contracts_shape(demo):
    require_postgresql()
    order = new_order()
    run_due()
    order = choose(order, "wechat_qr")
    trade = trade_of(order)
    delivery = paid_notification(sandbox_payments.pay_trade(trade.provider, trade.out_trade_no))

    with override_settings(CACHES=DEAD_CACHE):
        answer = delivery.post(client(raise_request_exception=False))

    assert answer.status_code >= 500
    assert answer["Content-Type"].startswith("application/json"), answer.content[:80]
    assert answer.json()["code"] == "FAIL"


# --- the SMP subscribed without our hearing it, then the order was given up -------------------------


def given_up(order: Order, settings) -> Order:  # type: ignore[no-untyped-def]
    """After a first attempt that the SMP carried out but answered too late, the SMP is down
    until the provisioning deadline has passed: the order is given up, the money goes back."""
    order.refresh_from_db()
    assert order.status == OrderStatus.PROVISIONING
    assert SimSmpSubscription.objects.filter(order_no=order.order_no).exists()
    faults.set_mode("smp", "down")
    past = timezone.now() - timedelta(seconds=settings.PROVISIONING_DEADLINE_SECONDS + 1)
    order = move_deadline(order, status_changed_at=past)
    from lifecycle.due import order_process_due

    order_process_due(order_id=order.pk, due_at=order.deadline_at)
    run_due()  # what follows the decision runs while the SMP is still down: it is retried later
    faults.set_mode("smp", "ok")
    for item in WorkItem.objects.filter(order=order, kind=WorkItemKind.CASH_PAYBACK, resolved_at__isnull=True):
        work_item_resolve(item_id=item.pk, note="cash paid back at the till", actor=STORE, cash_paid_back=True)
    for _ in range(3):  # the retries, made due now (time travel)
        OutboxMessage.objects.filter(relayed_at__isnull=True).update(due_at=timezone.now())
        run_due()
    order.refresh_from_db()
    return order


@pytest.mark.parametrize(
    "method",
    [
        "phone_bill",
        pytest.param("wechat_qr"),
        pytest.param("alipay_qr"),
        pytest.param("cash"),
    ],
)
def test_an_order_given_up_after_the_smp_subscribed_silently_leaves_nothing_on_the_smp(demo, settings, method):
    require_postgresql()
    make_rich()
    order = new_order(channel="crm" if method == "cash" else "epg")
    run_due()
    order = choose(order, method)
    if method in ("wechat_qr", "alipay_qr"):
        trade = trade_of(order)
        paid_notification(sandbox_payments.pay_trade(trade.provider, trade.out_trade_no)).post(client())
    faults.set_mode("smp", "slow")  # tests.settings: 1 s of work against a 0.5 s timeout
    run_due()  # (the CRM activity of a cash sale, then) the first attempt to subscribe

    order = given_up(order, settings)

    report = check_money([order.pk])
    assert order.status in (OrderStatus.REFUNDED, OrderStatus.FAILED)
    assert report.problems == [], report.summary()
    assert report.smp_left_subscribed == []
