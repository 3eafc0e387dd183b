"""2. The order pipeline: orders per second from POST /orders/ to completed, paid by phone bill.

The real path: a web server (granian, all cores), N Celery worker processes
(``celery worker -c N`` on every queue) relaying the outbox on commit, the
simulated SMP. The driver keeps a fixed number of orders in flight: it creates
each through the EPG API, chooses phone_bill through the API as soon as the
pre-check lets the order wait for a payment, and counts it when it is
completed (it watches statuses in the database, so that polling does not load
the web server). The pre-check's queueing delay is the order's created_at to
its precheck_passed event. Baseline: 1 worker process (ratios 2/1 and 4/1).
"""

from __future__ import annotations

import http.client
import json
import statistics
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from bench.common import (
    DATABASE_URL,
    HOST,
    PORT,
    PRODUCTION_SERVER,
    Figure,
    Proc,
    Server,
    Stat,
    celery_worker,
    group_cpu_seconds,
    not_measured,
    pids_cpu_seconds,
    postgres_backends,
    postgres_ended_cpu_seconds,
    print_figures,
    redis_cpu_seconds,
    say,
)
from bench.data import PIPELINE_ACCOUNTS, Dataset, purge_broker, quiesce

API = "/api/epg/v1"
WORKER_COUNTS = (1, 2, 4)
_local = threading.local()
_next_account = 0


@dataclass
class Settings:
    orders: int
    repeats: int
    in_flight: int = 16
    timeout: float = 300


# The SMP simulator runs out of process, behind its HTTP API on a port of its own, as the real SMP would:
# the worker pays for its HTTP client (ours), not for the simulator (not ours), whose CPU is not counted.
SMP_PORT = PORT + 1
SMP_TOKEN = "bench-smp-token"  # noqa: S105 - the sandbox SMP's, for the bench only
SMP_CLIENT_ENV = {
    "SMP_ADAPTER": "http",
    "SMP_URL": f"http://{HOST}:{SMP_PORT}/sandbox/smp/api",
    "SMP_API_TOKEN": SMP_TOKEN,
}
# What the CPU per completed order is counted over: ours (web, worker) and the services' (PostgreSQL's
# backends serving them, Redis, shared with whatever else uses it); not the driver's, not the simulator's.
CPU_KINDS = ("web", "worker", "postgresql", "redis")


@dataclass
class PipelineRun:
    workers: int
    completed: int
    failed: int
    seconds: float
    precheck_delays_ms: list[float]
    end_to_end_ms: list[float]
    cpu_seconds: dict[str, float]

    def cpu_ms_per_order(self, kind: str) -> float:
        return 1000 * self.cpu_seconds[kind] / self.completed if self.completed else 0.0

    @property
    def orders_per_second(self) -> float:
        return self.completed / self.seconds if self.seconds else 0.0


def _post(key: str, path: str, body: dict) -> dict:
    conn = getattr(_local, "conn", None)
    if conn is None:
        conn = _local.conn = http.client.HTTPConnection(HOST, PORT, timeout=30)
    payload = json.dumps(body)
    headers = {"Authorization": f"Api-Key {key}", "Content-Type": "application/json"}
    try:
        conn.request("POST", API + path, payload, headers)
        response = conn.getresponse()
    except (OSError, http.client.HTTPException):
        conn.close()
        conn = _local.conn = http.client.HTTPConnection(HOST, PORT, timeout=30)
        conn.request("POST", API + path, payload, headers)
        response = conn.getresponse()
    data = response.read()
    if response.status not in (200, 201):
        raise RuntimeError(f"POST {path}: {response.status} {data[:300]!r}")
    return json.loads(data)


def accounts(count: int) -> list[str]:
    """Distinct SMP accounts for the orders of one run, so that no two wait on one account's lock."""
    global _next_account
    chosen = [f"pipe{(_next_account + i) % PIPELINE_ACCOUNTS:06d}" for i in range(count)]
    _next_account += count
    return chosen


class CpuMeter:
    """CPU seconds spent by each kind of process between start() and stop()."""

    def __init__(self, web: Proc, worker: Proc) -> None:
        self.web, self.worker = web, worker

    def read(self) -> tuple[dict[str, float], dict[int, float]]:
        kinds = {
            "web": group_cpu_seconds(self.web.pid),
            "worker": group_cpu_seconds(self.worker.pid),
            "redis": redis_cpu_seconds(),
            "postgresql ended": postgres_ended_cpu_seconds(),
        }
        return kinds, pids_cpu_seconds(postgres_backends())

    def start(self) -> None:
        self.before, self.backends_before = self.read()

    def stop(self) -> dict[str, float]:
        after, backends_after = self.read()
        spent = {kind: after[kind] - self.before[kind] for kind in after}
        # A backend that started during the run counts from zero; one that ended during it is counted by its
        # parent, the postmaster (with those of any other database that ended meanwhile).
        spent["postgresql"] = spent.pop("postgresql ended") + sum(
            cpu - self.backends_before.get(pid, 0.0) for pid, cpu in backends_after.items()
        )
        return spent


def drive(ds: Dataset, s: Settings, workers: int, meter: CpuMeter | None = None) -> PipelineRun:
    from orders.constants import TERMINAL_STATUSES, OrderStatus
    from orders.models import Order, OrderEvent

    if meter:
        meter.start()

    todo = deque(accounts(s.orders))
    creating: set[Future] = set()
    paying: set[Future] = set()
    waiting: dict[str, str] = {}  # order_no -> what we last saw
    done: dict[str, str] = {}
    started = time.monotonic()
    last_done = started
    with ThreadPoolExecutor(s.in_flight) as pool:
        while len(done) < s.orders:
            if time.monotonic() - started > s.timeout:
                say(f"  timed out with {len(waiting)} orders in flight: {sorted(set(waiting.values()))}")
                break
            while todo and len(creating) + len(waiting) < s.in_flight:
                creating.add(
                    pool.submit(
                        _post, ds.api_key, "/orders/", {"tv_account": todo.popleft(), "product_code": "VIP-MONTH"}
                    )
                )
            for future in [f for f in creating if f.done()]:
                creating.discard(future)
                waiting[future.result()["order_no"]] = OrderStatus.PRECHECKING
            for future in [f for f in paying if f.done()]:
                paying.discard(future)
                future.result()
            if waiting:
                for order_no, status in Order.objects.filter(order_no__in=list(waiting)).values_list(
                    "order_no", "status"
                ):
                    if status == OrderStatus.AWAITING_PAYMENT and waiting[order_no] != "paying":
                        waiting[order_no] = "paying"
                        paying.add(
                            pool.submit(_post, ds.api_key, f"/orders/{order_no}/payment/", {"method": "phone_bill"})
                        )
                    elif status in TERMINAL_STATUSES:
                        done[order_no] = status
                        del waiting[order_no]
                        last_done = time.monotonic()
            time.sleep(0.01)
    cpu = meter.stop() if meter else dict.fromkeys(CPU_KINDS, 0.0)
    completed = [n for n, status in done.items() if status == OrderStatus.COMPLETED]
    rows = Order.objects.filter(order_no__in=completed).values_list("pk", "created_at", "status_changed_at")
    created = {pk: at for pk, at, _ in rows}
    end_to_end = [(finished - at).total_seconds() * 1000 for _, at, finished in rows]
    passed = OrderEvent.objects.filter(order_id__in=list(created), action="precheck_passed").values_list(
        "order_id", "at"
    )
    delays = [(at - created[order_id]).total_seconds() * 1000 for order_id, at in passed]
    return PipelineRun(
        workers=workers,
        completed=len(completed),
        failed=len(done) - len(completed),
        seconds=last_done - started,
        precheck_delays_ms=delays,
        end_to_end_ms=end_to_end,
        cpu_seconds=cpu,
    )


def run(ds: Dataset, s: Settings) -> list[Figure]:
    say(
        f"2. order pipeline: {s.orders} orders x {s.repeats} per worker count {WORKER_COUNTS}, "
        f"{s.in_flight} in flight, {PRODUCTION_SERVER} on all cores"
    )
    runs: dict[int, list[PipelineRun]] = {}
    simulator = Server(
        cpus=None, port=SMP_PORT, SMP_API_TOKEN=SMP_TOKEN, DATABASE_URL=not_measured(DATABASE_URL, "bench-simulator")
    )
    with simulator, Server(cpus=None, OUTBOX_RELAY_ON_COMMIT="1", **SMP_CLIENT_ENV) as web:
        for workers in WORKER_COUNTS:
            quiesce()
            purge_broker()
            worker = celery_worker(workers, **SMP_CLIENT_ENV)
            meter = CpuMeter(web.proc, worker)
            try:
                drive(ds, Settings(orders=min(20, s.orders), repeats=1, in_flight=s.in_flight), workers)  # warm-up
                runs[workers] = []
                for i in range(s.repeats):
                    result = drive(ds, s, workers, meter)
                    runs[workers].append(result)
                    say(
                        f"  {workers} worker process(es) {i + 1}/{s.repeats}: {result.orders_per_second:.1f} orders/s"
                        f" ({result.completed} completed, {result.failed} failed); pre-check delay median "
                        f"{statistics.median(result.precheck_delays_ms or [0]):.0f} ms; CPU per order "
                        + ", ".join(f"{kind} {result.cpu_ms_per_order(kind):.1f} ms" for kind in CPU_KINDS)
                    )
                    if result.failed or result.completed < s.orders:
                        raise RuntimeError(f"{s.orders - result.completed} orders did not complete")
            finally:
                worker.stop()

    def ops(n: int) -> Stat:
        return Stat([r.orders_per_second for r in runs[n]])

    def delay(n: int, q: float) -> Stat:
        values = []
        for r in runs[n]:
            ordered = sorted(r.precheck_delays_ms)
            values.append(ordered[min(len(ordered) - 1, int(q * len(ordered)))])
        return Stat(values)

    def e2e(n: int) -> Stat:
        return Stat([statistics.median(r.end_to_end_ms) for r in runs[n]])

    note = f"{s.in_flight} orders in flight"
    figures = []
    for n in WORKER_COUNTS:
        base = None if n == 1 else ops(1)
        figures.append(
            Figure(
                f"order pipeline, {n} worker process(es): orders completed per second",
                ops(n),
                "orders/s",
                base,
                "1 worker process" if base else "",
                note=note,
            )
        )
    for n in WORKER_COUNTS:
        figures.append(
            Figure(
                f"order pipeline, {n} worker process(es): pre-check queueing delay p50",
                delay(n, 0.5),
                "ms",
                None if n == 1 else delay(1, 0.5),
                "1 worker process",
                higher_is_better=False,
                note="created_at -> precheck_passed",
            )
        )
        figures.append(
            Figure(
                f"order pipeline, {n} worker process(es): pre-check queueing delay p90",
                delay(n, 0.9),
                "ms",
                None if n == 1 else delay(1, 0.9),
                "1 worker process",
                higher_is_better=False,
                note="created_at -> precheck_passed",
            )
        )
    for n in WORKER_COUNTS:
        figures.append(
            Figure(
                f"order pipeline, {n} worker process(es): created -> completed p50",
                e2e(n),
                "ms",
                None if n == 1 else e2e(1),
                "1 worker process",
                higher_is_better=False,
                note=note,
            )
        )
    for kind in CPU_KINDS:
        figures.append(
            Figure(
                f"order pipeline, 2 worker processes: CPU per completed order, {kind}",
                Stat([r.cpu_ms_per_order(kind) for r in runs[2]]),
                "ms",
                Stat([r.cpu_ms_per_order(kind) for r in runs[1]]),
                "1 worker process",
                higher_is_better=False,
                note="user + system CPU of those processes over the run / orders completed"
                + ("; the whole Redis server" if kind == "redis" else ""),
            )
        )
    ours = [r.cpu_ms_per_order("web") + r.cpu_ms_per_order("worker") for r in runs[2]]
    figures.append(
        Figure(
            "order pipeline, 2 worker processes: CPU per completed order, ours (web + worker)",
            Stat(ours),
            "ms",
            Stat([r.cpu_ms_per_order("web") + r.cpu_ms_per_order("worker") for r in runs[1]]),
            "1 worker process",
            higher_is_better=False,
            note="issue #17's target: <= 10 ms; the SMP simulator and the driver are not counted",
        )
    )
    print_figures("2. Order pipeline (POST /orders/ -> completed, phone bill)", figures)
    return figures
