"""A whole IPVAS of its own, driven from outside while its dependencies fail (issue #11's fault campaign).

``Stack`` runs the three kinds of process as production does — gunicorn, a
Celery worker, Celery beat — over servers of the test's own (a PostgreSQL
cluster, a Redis for the broker, another for the cache; ``services.py``) or
embedded (SQLite, the file-system broker and cache under its ``var/``), with
short business deadlines; ``Topology`` runs two of each, the web nodes
(granian, as ``dev.py prod``) behind haproxy. ``Customers`` use it as the outside world does,
over HTTP only: EPG orders through the EPG API with an Api-Key, cash sales
through the clerk's pages after the sandbox's CRM sign-on, payments through
the sandbox's WeChat Pay and Alipay, confirmations by SMS reply. The books are
checked by tests.reliability.support.check_money, run in a process of the
stack's settings (``stack_check.py``, kept between checks), so nothing here shares the test's database.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from tests.reliability.services import OwnPostgres, OwnRabbitMQ, OwnRedis, free_port, wait_port
from tests.support.answering import AnswerFailed, Answering, NoAnswer

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "stacks"
TERMINAL = {"completed", "rejected", "expired", "failed", "refunded", "cancelled"}
QR_PROVIDER = {"wechat_qr": "wechatpay", "alipay_qr": "alipay"}

# Short business deadlines, and outside systems that answer within a second unless a fault says otherwise.
SETTINGS = {
    "PAYMENT_WINDOW_SECONDS": "25",
    "ORDER_IDLE_SECONDS": "40",
    "PRECHECK_DEADLINE_SECONDS": "40",
    "PROVISIONING_DEADLINE_SECONDS": "60",
    "CRM_ACTIVITY_DEADLINE_SECONDS": "40",
    "ORDER_CLAIM_LEASE_SECONDS": "4",
    "OUTBOX_STALE_SECONDS": "2",
    "OUTBOX_RELAY_INTERVAL_SECONDS": "1",
    "DEADLINE_SWEEP_INTERVAL_SECONDS": "1",
    "SUBSCRIPTION_SWEEP_INTERVAL_SECONDS": "10",
    "SMP_TIMEOUT_SECONDS": "2",
    "SMP_SIMULATOR_SLOW_SECONDS": "3",
    "SIMULATOR_SLOW_SECONDS": "3",
    "WECHATPAY_TIMEOUT_SECONDS": "2",
    "ALIPAY_TIMEOUT_SECONDS": "2",
    "SMS_TIMEOUT_SECONDS": "2",
    "CRM_TIMEOUT_SECONDS": "2",
    "EPG_ORDERS_PER_CLIENT_PER_MINUTE": "100000",
    "SMS_CONFIRMATIONS_PER_NUMBER_PER_HOUR": "100000",
    "SMS_CONFIRMATIONS_PER_TV_ACCOUNT_PER_HOUR": "100000",
    "SMS_CONFIRMATIONS_PER_CLIENT_PER_MINUTE": "100000",
}


class Stack:
    """web + worker + beat over the given servers (None: the embedded default under ``var_dir``)."""

    def __init__(
        self,
        *,
        name: str,
        var_dir: Path,
        postgres: OwnPostgres | None = None,
        broker: OwnRedis | OwnRabbitMQ | None = None,
        cache: OwnRedis | None = None,
        worker_concurrency: int = 3,
    ) -> None:
        self.name = name
        self.var_dir = var_dir
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.logs = ARTIFACTS / f"{name}-{uuid.uuid4().hex[:6]}"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.worker_concurrency = worker_concurrency
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/tmp"),
            "DJANGO_SETTINGS_MODULE": "ipvas.settings",
            "PYTHONPATH": str(ROOT),
            "PYTHONUNBUFFERED": "1",
            "IPVAS_VAR_DIR": str(var_dir),
            "IPVAS_SANDBOX": "1",
            "PUBLIC_BASE_URL": self.base,
            "LOG_LEVEL": "INFO",
            **SETTINGS,
        }
        if postgres is not None:
            self.env["DATABASE_URL"] = postgres.url(f"ipvas_{name}")
            self.env["DB_CONN_MAX_AGE"] = "60"
        if broker is not None:
            self.env["CELERY_BROKER_URL"] = broker.url(0)
        if cache is not None:
            self.env["REDIS_URL"] = cache.url(0)
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.checker: Answering | None = None  # the books' process (``check``), started at the first check
        setup = [["seed_demo"], ["create_epg_client", f"stack {name}"]]
        if postgres is not None:
            postgres.create_migrated_database(f"ipvas_{name}", self.env)
        else:  # the embedded default: a SQLite file under var_dir
            setup.insert(0, ["migrate", "--no-input", "-v", "0"])
        # One process for the commands, not one each: Django's start-up is a second and a half.
        self.api_key = self.manage(*setup).strip().splitlines()[-1]

    # --- processes ---------------------------------------------------------------------------

    def manage(self, *commands: list[str]) -> str:
        """``manage.py`` commands, one after the other in one process of the stack's settings; their output."""
        script = (
            "import json, sys, django; django.setup(); from django.core.management import call_command\n"
            "for command in sys.argv[1:]: call_command(*json.loads(command))"
        )
        done = subprocess.run(
            [sys.executable, "-c", script, *map(json.dumps, commands)],
            cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"manage.py {commands} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
        return done.stdout

    def commands(self) -> dict[str, list[str]]:
        celery = [sys.executable, "-m", "celery", "-A", "ipvas"]
        return {
            "web": [sys.executable, "-m", "gunicorn", "ipvas.wsgi:application", "-b", f"127.0.0.1:{self.port}",
                    "-w", "2", "--worker-class", "gthread", "--threads", "4", "--timeout", "60"],
            "worker": [*celery, "worker", "-P", "prefork", "-c", str(self.worker_concurrency),
                       "-n", f"{self.name}-{self.port}@%h", "-l", "info", "--without-gossip", "--without-mingle"],
            "beat": [*celery, "beat", "-l", "info", "-s", str(self.var_dir / "beat-schedule"),
                     "--pidfile", str(self.var_dir / "beat.pid")],
        }  # fmt: skip

    def start(self, *names: str) -> None:
        commands = self.commands()
        for name in names or tuple(commands):
            log = (self.logs / f"{name}.log").open("ab")
            self.processes[name] = subprocess.Popen(
                commands[name], cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        for name in names or tuple(commands):
            self.wait_ready(name)

    def wait_ready(self, name: str) -> None:
        """Until the process ``name`` serves: the web server listens, the worker consumes."""
        if name == "web":
            wait_port(self.port, up=True, timeout=60)
        elif name == "worker":
            self.wait_for_log("worker", " ready.", timeout=60)

    def kill(self, name: str) -> None:
        """The node dies: ``kill -9`` of the process and of all it started (its process group)."""
        process = self.processes[name]
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    def wait_for_log(self, name: str, text: str, *, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.log(name):
            if self.processes[name].poll() is not None:
                raise RuntimeError(f"{name} exited:\n{self.log(name)[-3000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name}: no {text!r} in {timeout} s:\n{self.log(name)[-3000:]}")
            time.sleep(0.2)

    def log(self, name: str) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def alive(self, name: str) -> bool:
        process = self.processes.get(name)
        return process is not None and process.poll() is None

    def stop(self) -> None:
        if self.checker is not None:
            self.checker.stop()
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 8  # a warm shutdown; what is left of the tasks is not this test's
        for process in self.processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait()

    # --- the books --------------------------------------------------------------------------------

    def check(self, order_nos: list[str], *, settle: bool = True) -> dict[str, Any]:
        """tests.reliability.support.check_money in a process of the stack's settings, kept for the next check
        (and the store pays cash back)."""
        if self.checker is None or self.checker.process.poll() is not None:
            self.checker = Answering([sys.executable, "-m", "tests.reliability.stack_check"], env=self.env, cwd=ROOT)
        try:
            return self.checker.ask({"order_nos": order_nos, "settle": settle}, timeout=300)
        except AnswerFailed as failed:
            if isinstance(failed, NoAnswer):  # it hangs or exited: the next check starts another
                self.checker.stop()
                self.checker = None
            return {"error": str(failed)[-3000:], "unsettled": len(order_nos), "problems": ["the check failed"]}


HAPROXY_CONFIG = """\
# Two web nodes behind haproxy (docs/operations.md); written by tests/reliability/stack.py's Topology.
global
    maxconn 1024
    stats socket {socket} mode 600 level admin
    log stdout format raw local0 info

defaults
    mode http
    log global
    option httplog
    option forwardfor
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    # A node that refuses the connection (dead, restarting) is not an error for the client: haproxy tries again,
    # on the other node. A request the node took and died with is not retried (it may have been done): haproxy
    # answers 502, or closes a kept-alive client connection without an answer; the client retries it (an order
    # under the same Idempotency-Key).
    retries 3
    option redispatch 1

frontend ipvas
    bind 127.0.0.1:{port}
    default_backend web

backend web
    balance roundrobin
    # /healthz/ answers 200 while the node reaches PostgreSQL and the cache; two failures a second apart take it
    # out, two successes put it back.
    option httpchk
    http-check send meth GET uri /healthz/ ver HTTP/1.1 hdr Host 127.0.0.1
    http-check expect status 200
    default-server inter 1s fastinter 500ms downinter 1s fall 2 rise 2
{servers}
"""


class Topology(Stack):
    """Production's topology on one machine (issue #17): two web nodes (granian, as ``dev.py prod`` runs it)
    behind haproxy, two Celery worker nodes, two beats sharing the lock in Redis (``BEAT_LOCK=redis``).

    The processes are ``web-a``, ``web-b``, ``worker-a``, ``worker-b``, ``beat-a``, ``beat-b`` and ``proxy``;
    ``base`` is the proxy's address, which the customers and the providers (``PUBLIC_BASE_URL``) use.
    """

    NODES = ("a", "b")

    def __init__(self, *, haproxy: str, beat_lock_timeout: int = 10, web_workers: int = 1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.var_dir.mkdir(parents=True, exist_ok=True)
        self.haproxy = haproxy
        self.web_ports = {node: free_port() for node in self.NODES}
        self.env.update(
            {"BEAT_LOCK": "redis", "BEAT_LOCK_TIMEOUT_SECONDS": str(beat_lock_timeout), "WEB_WORKERS": str(web_workers)}
        )
        self.stats_socket = self.var_dir / "haproxy.sock"
        self.haproxy_config = self.var_dir / "haproxy.cfg"
        servers = "\n".join(
            [
                *(f"    server web-{n} 127.0.0.1:{port} check" for n, port in self.web_ports.items()),
                # The same nodes again, unchecked, used only when every checked one is down: PostgreSQL or Redis,
                # which every node shares, is down, not the nodes (docs/operations.md).
                "    option allbackups",
                *(f"    server any-{n} 127.0.0.1:{port} backup" for n, port in self.web_ports.items()),
            ]
        )
        self.haproxy_config.write_text(HAPROXY_CONFIG.format(socket=self.stats_socket, port=self.port, servers=servers))

    def commands(self) -> dict[str, list[str]]:
        from dev import web_server_command  # the production web server and its options, as dev.py prod starts it

        celery = [sys.executable, "-m", "celery", "-A", "ipvas"]
        made: dict[str, list[str]] = {}
        for node in self.NODES:
            made[f"web-{node}"] = web_server_command(self.env, "127.0.0.1", str(self.web_ports[node]))
            made[f"worker-{node}"] = [
                *celery, "worker", "-P", "prefork", "-c", str(self.worker_concurrency),
                "-n", f"{self.name}-{node}-{self.port}@%h", "-l", "info", "--without-gossip", "--without-mingle",
            ]  # fmt: skip
            made[f"beat-{node}"] = [
                *celery, "beat", "-l", "info", "-s", str(self.var_dir / f"beat-{node}-schedule"),
                "--pidfile", str(self.var_dir / f"beat-{node}.pid"),
            ]  # fmt: skip
        made["proxy"] = [self.haproxy, "-db", "-f", str(self.haproxy_config)]
        return made

    def wait_ready(self, name: str) -> None:
        kind, _, node = name.partition("-")
        if kind == "web":
            wait_port(self.web_ports[node], up=True, timeout=60)
        elif kind == "worker":
            self.wait_for_log(name, " ready.", timeout=60)
        elif kind == "proxy":
            wait_port(self.port, up=True, timeout=30)
            deadline = time.monotonic() + 30
            while set(self.proxy_servers().values()) != {"UP"}:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"haproxy: not every web node is up: {self.proxy_servers()}")
                time.sleep(0.2)

    def proxy_stats(self) -> dict[str, dict[str, str]]:
        """haproxy's counters (``show stat`` on its socket), by proxy and server: ``["ipvas/FRONTEND"]["req_tot"]``."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as stats:
            stats.settimeout(5)
            stats.connect(str(self.stats_socket))
            stats.sendall(b"show stat\n")
            answer = b""
            while chunk := stats.recv(65536):
                answer += chunk
        head, *lines = answer.decode().strip().splitlines()
        names = head.lstrip("# ").split(",")
        rows = [dict(zip(names, line.split(","), strict=False)) for line in lines if line]
        return {f"{row['pxname']}/{row['svname']}": row for row in rows}

    def proxy_servers(self) -> dict[str, str]:
        """What haproxy's health checks say of each web node: {"web-a": "UP", "web-b": "DOWN"} ("UP 1/2" is UP)."""
        return {
            row["svname"]: row["status"].split()[0]
            for row in self.proxy_stats().values()
            if row["pxname"] == "web" and row["svname"].startswith("web-")
        }

    def settled_books(self, order_nos: list[str], *, timeout: float) -> dict[str, Any]:
        """``check`` until nothing is under way any more (a refund finishing, the last tasks), or ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            books = self.check(order_nos, settle=False)
            quiet = not books.get("unsettled") and not books.get("refunds_under_way") and not books.get("problems")
            if quiet or time.monotonic() > deadline:
                return books
            time.sleep(1)

    def beats_holding_the_lock(self) -> list[str]:
        """The running beats that acquired the lock (celery-redbeat logs it): one, once they have started."""
        return [f"beat-{n}" for n in self.NODES if self.alive(f"beat-{n}") and "Acquired lock" in self.log(f"beat-{n}")]


@dataclass
class Plan:
    """One customer: an account of their own, what they buy and how they pay."""

    n: int
    method: str
    account: str
    phone: str
    channel: str = "epg"
    order_no: str = ""
    status: str = ""
    paid: bool = False
    think: float = 0.0  # seconds the customer takes to choose, and again to pay (scan, reply)
    waiting_since: float = 0.0  # when the order started waiting for the customer's next step
    notes: list[str] = field(default_factory=list)

    def note(self, what: str) -> None:
        self.notes.append(what)


class Customers:
    """EPG users and a clerk, acting over HTTP only; every refusal a fault causes is tried again later."""

    def __init__(self, stack: Stack, *, prefix: str) -> None:
        self.stack = stack
        self.prefix = prefix
        self.http = requests.Session()
        self.api = {"Authorization": f"Api-Key {stack.api_key}"}
        self.clerk: requests.Session | None = None
        self.plans: list[Plan] = []
        self.figures: Counter = Counter()

    # --- plumbing --------------------------------------------------------------------------------

    def _call(self, method: str, path: str, *, session: requests.Session | None = None, **kwargs: Any):  # type: ignore[no-untyped-def]
        try:
            response = (session or self.http).request(method, self.stack.base + path, timeout=15, **kwargs)
        except requests.RequestException as exc:
            self.figures["requests that found no answer"] += 1
            return exc
        if response.status_code >= 500:
            self.figures[f"answers {response.status_code}"] += 1
        return response

    def sandbox(self, path: str, body: dict[str, Any]):  # type: ignore[no-untyped-def]
        return self._call("POST", f"/sandbox/{path}", json=body)

    def set_fault(self, system: str, mode: str) -> None:
        for _ in range(30):
            answer = self.sandbox(f"{system}/faults/", {"mode": mode})
            if isinstance(answer, requests.Response) and answer.status_code == 200:
                return
            time.sleep(1)
        raise RuntimeError(f"could not set {system} {mode}")

    # --- the customers ---------------------------------------------------------------------------

    def add(self, count: int, methods: list[str]) -> list[Plan]:
        made = []
        for i in range(count):
            n = len(self.plans) + i
            method = methods[i % len(methods)]
            phone = f"139{abs(hash((self.prefix, n))) % 10**8:08d}"
            account = f"{self.prefix}{n}"
            channel = "crm" if method == "cash" else "epg"
            think = 1 + (n % 4) * 1.5
            made.append(Plan(n=n, method=method, account=account, phone=phone, channel=channel, think=think))
            answer = self.sandbox(
                f"smp/accounts/{account}/", {"status": "active", "balance_fen": 10**9, "phone": phone}
            )
            assert isinstance(answer, requests.Response) and answer.status_code == 200, answer
        self.plans += made
        return made

    def _sign_in_clerk(self) -> requests.Session | None:
        clerk = requests.Session()
        query = "staff_id=clerk01&store_code=NX-YC-001&virtual_staff_id=V0001&name=stack"
        answer = self._call("GET", f"/sandbox/crm/launch/?{query}", session=clerk)
        if not isinstance(answer, requests.Response) or "sessionid" not in clerk.cookies:
            return None
        return clerk

    def _clerk_form(self, path: str, data: dict[str, str]):  # type: ignore[no-untyped-def]
        if self.clerk is None:
            self.clerk = self._sign_in_clerk()
            if self.clerk is None:
                return None
        page = self._call("GET", "/crm/orders/new/", session=self.clerk)
        if not isinstance(page, requests.Response) or page.status_code != 200:
            return None
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        if token is None:
            return None
        return self._call(
            "POST", path, session=self.clerk, data={**data, "csrfmiddlewaretoken": token[1]},
            headers={"Referer": self.stack.base + "/crm/orders/new/"}, allow_redirects=False,
        )  # fmt: skip

    def place(self, plan: Plan) -> None:
        if plan.channel == "crm":
            answer = self._clerk_form("/crm/orders/new/", {"product": "VIP-MONTH", "phone": plan.phone})
            if isinstance(answer, requests.Response) and answer.status_code == 302:
                plan.order_no = answer.headers["Location"].rstrip("/").rsplit("/", 1)[-1]
        else:
            # One key per order the customer means to place, sent again with every retry (docs/interfaces.md §2):
            # an order created by a request whose answer was lost (a web node died) is answered again, not doubled.
            body = {"tv_account": plan.account, "product_code": "VIP-MONTH"}
            headers = {**self.api, "Idempotency-Key": f"order-{plan.account}"}
            answer = self._call("POST", "/api/epg/v1/orders/", json=body, headers=headers)
            if isinstance(answer, requests.Response) and answer.status_code in (200, 201):
                plan.order_no = answer.json()["order_no"]
                if answer.status_code == 200:
                    self.figures["orders answered again under their Idempotency-Key"] += 1
        if plan.order_no:
            plan.status = "prechecking"
            self.figures["orders placed"] += 1

    def step(self, plan: Plan) -> None:
        """Whatever the customer does next, given the order as the EPG (or the clerk's page) shows it."""
        if not plan.order_no:
            self.place(plan)
            return
        if plan.status in TERMINAL:
            return
        if plan.channel == "crm":
            answer = self._call("GET", f"/crm/orders/{plan.order_no}/status.json", session=self.clerk)
        else:
            answer = self._call("GET", f"/api/epg/v1/orders/{plan.order_no}/", headers=self.api)
        if not isinstance(answer, requests.Response) or answer.status_code != 200:
            return
        order = answer.json()
        if order["status"] != plan.status:
            plan.note(f"{order['status']}")
            plan.status = order["status"]
            plan.waiting_since = time.monotonic()
        if time.monotonic() - plan.waiting_since < plan.think:
            return  # the customer is still reading the screen
        if plan.status == "awaiting_payment":
            self.choose(plan)
        elif plan.status == "payment_pending" and not plan.paid:
            self.pay(plan, order)

    def choose(self, plan: Plan) -> None:
        if plan.channel == "crm":
            answer = self._clerk_form(f"/crm/orders/{plan.order_no}/pay/", {"method": "cash", "cash_received": "yes"})
        else:
            answer = self._call(
                "POST", f"/api/epg/v1/orders/{plan.order_no}/payment/", json={"method": plan.method}, headers=self.api
            )
        if isinstance(answer, requests.Response) and answer.status_code in (200, 302):
            plan.note(f"chose {plan.method}")
        elif isinstance(answer, requests.Response) and answer.status_code == 429 and plan.channel == "epg":
            # Told to come back later (429: here, five tries in a minute at a provider that is down): the customer
            # gives up and cancels, as a viewer does, rather than leaving the order to expire.
            plan.note("choosing: 429, cancels")
            self._call("POST", f"/api/epg/v1/orders/{plan.order_no}/cancel/", headers=self.api)
        elif isinstance(answer, requests.Response):
            plan.note(f"choosing: {answer.status_code}")
        else:
            plan.note("choosing: no answer")

    def pay(self, plan: Plan, order: dict[str, Any]) -> None:
        if plan.method in QR_PROVIDER:
            payment = order.get("payment") or {}
            if not payment.get("out_trade_no"):
                return
            answer = self.sandbox(f"{QR_PROVIDER[plan.method]}/pay/", {"out_trade_no": payment["out_trade_no"]})
        elif plan.method == "phone_bill_sms":
            outbox = self._call("GET", "/sandbox/sms/outbox/", params={"to": plan.phone})
            if not isinstance(outbox, requests.Response) or outbox.status_code != 200 or not outbox.json()["results"]:
                return  # the phone has not received the confirmation yet
            answer = self.sandbox("sms/reply/", {"from": plan.phone, "text": "Y"})
        else:
            return
        if isinstance(answer, requests.Response) and answer.status_code == 200 and answer.json().get("delivered"):
            plan.paid = True  # the provider (or the gateway) delivered it, and was told it was applied
            plan.note("paid" if plan.method in QR_PROVIDER else "replied Y")
        elif isinstance(answer, requests.Response) and answer.status_code == 409:
            plan.paid = True  # the provider refuses a second payment of the trade: it was paid already
            plan.note("paid already")
        elif isinstance(answer, requests.Response):
            plan.note(f"paying: {answer.status_code}")

    def drive(self, plans: list[Plan], *, seconds: float, until_settled: bool = False) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for plan in plans:
                self.step(plan)
            if until_settled and all(p.order_no and p.status in TERMINAL for p in plans):
                return
            time.sleep(0.3)

    def in_flight(self, plans: list[Plan]) -> int:
        return sum(1 for p in plans if p.order_no and p.status not in TERMINAL)

    def probe(self, *, timeout: float, method: str = "phone_bill") -> float | None:
        """How long a new order takes from placing to completed, now: the time the system needs to work again."""
        (plan,) = self.add(1, [method])
        plan.think = 0  # the probe does not hesitate
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            self.step(plan)
            if plan.status == "completed":
                return time.monotonic() - started
            if plan.status in TERMINAL:
                plan.notes.append(f"probe ended {plan.status}")
                return None
            time.sleep(0.3)
        return None


@contextlib.contextmanager
def running_stack(name: str, servers: dict[str, Any], var_dir: Path) -> Iterator[Stack]:
    """A started ``Stack`` over ``services.own_servers``'s servers, stopped afterwards."""
    running = Stack(
        name=name, var_dir=var_dir, postgres=servers["postgres"], broker=servers["broker"], cache=servers["cache"]
    )
    try:
        running.start()
        yield running
    finally:
        running.stop()
