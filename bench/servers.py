"""Which web server: gunicorn (gthread, 2 workers per core, 4 threads) or granian (WSGI, 1 worker per core).

Both on one core with the load generator on the other, on our real endpoints:
the entitlement check (cached, the hot path) and order creation
(POST /api/epg/v1/orders/, which writes the order, its event and its outbox
message and publishes the pre-check to Redis), and on /bench/bare/.
Baseline: gunicorn. granian is the default of `python3 dev.py prod` only while
it wins the hot path clearly (>= 1.1x throughput and CPU on the entitlement
check) and does at least as well on order creation (>= 0.95x).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from bench.common import Figure, Load, Server, Stat, http_request, print_figures, run_load, say, write_requests
from bench.data import Dataset
from bench.entitlements import prime_cache, requests_files

SERVERS = ("gunicorn", "granian")
CLEAR_WIN = 1.1
NOT_WORSE = 0.95


@dataclass
class Settings:
    seconds: float
    repeats: int
    connections: int


def order_requests(ds: Dataset) -> Path:
    auth = {"Authorization": f"Api-Key {ds.api_key}", "Content-Type": "application/json"}
    return write_requests(
        (
            http_request(
                "POST",
                "/api/epg/v1/orders/",
                auth,
                json.dumps({"tv_account": f"srv{i:06d}", "product_code": "VIP-MONTH"}).encode(),
            )
            for i in range(5000)
        ),
        "orders",
    )


def run(ds: Dataset, s: Settings) -> list[Figure]:
    from bench.data import purge_broker, quiesce

    say(f"servers: gunicorn vs granian on one core, {s.connections} connections, {s.seconds:.0f} s x {s.repeats}")
    checks, bare = (Path(p) for p in requests_files(ds, "-servers"))
    orders = order_requests(ds)
    endpoints = {"entitlement check": checks, "order creation": orders, "bare endpoint": bare}
    results: dict[tuple[str, str], list[Load]] = {}
    prime_cache(ds)
    # The servers take turns, a fresh start each time, so that a change in what else runs on the
    # machine falls on both.
    for i in range(s.repeats):
        for kind in SERVERS:
            with Server(kind):
                for path in endpoints.values():
                    run_load(path, seconds=2, connections=s.connections)  # warm-up
                for name, path in endpoints.items():
                    results.setdefault((kind, name), []).append(
                        run_load(path, seconds=s.seconds, connections=s.connections)
                    )
            last = {name: results[(kind, name)][-1] for name in endpoints}
            say(
                f"  {kind} {i + 1}/{s.repeats}: "
                + "; ".join(f"{name} {x.rps:,.0f} req/s ({x.cpu_us:,.0f} µs CPU)" for name, x in last.items())
            )
            quiesce()  # the orders created here stay in prechecking: nobody is to act on them
            purge_broker()
    for (kind, name), loads in results.items():
        errors = sum(x.errors for x in loads)
        if errors:
            raise RuntimeError(f"{kind} {name}: {errors} errors")

    def stat(kind: str, name: str, what: str) -> Stat:
        return Stat([getattr(x, what) for x in results[(kind, name)]])

    figures = []
    for name in endpoints:
        for what, label, unit, higher in (
            ("rps", "throughput", "req/s", True),
            ("cpu_us", "server CPU per request", "µs", False),
            ("p99_ms", "p99 latency", "ms", False),
        ):
            figures.append(
                Figure(
                    f"granian vs gunicorn, {name}: {label}",
                    stat("granian", name, what),
                    unit,
                    stat("gunicorn", name, what),
                    "gunicorn",
                    higher_is_better=higher,
                )
            )

    def ratio(endpoint: str, what: str) -> float:
        [f] = [f for f in figures if f.name == f"granian vs gunicorn, {endpoint}: {what}"]
        return f.ratio or 0.0

    # The entitlement check is nearly all of the traffic (every set-top box asks it), order creation a
    # small share: granian must win the first clearly and not lose the second.
    hot = ratio("entitlement check", "throughput"), ratio("entitlement check", "server CPU per request")
    orders = ratio("order creation", "throughput"), ratio("order creation", "server CPU per request")
    clear = hot[0] >= CLEAR_WIN and hot[1] <= 1 / CLEAR_WIN and orders[0] >= NOT_WORSE and orders[1] <= 1 / NOT_WORSE
    verdict = "granian" if clear else "gunicorn"
    say(
        f"servers: {verdict} is the pick (granian/gunicorn, throughput and CPU per request: entitlement check "
        f"{hot[0]:.2f}, {hot[1]:.2f}; order creation {orders[0]:.2f}, {orders[1]:.2f}; granian must win the "
        f"entitlement check by >= {CLEAR_WIN}x and do at least {NOT_WORSE}x as well on order creation)"
    )
    for f in figures:
        f.note = f"pick: {verdict}"
    print_figures("Web server: gunicorn vs granian", figures)
    return figures
