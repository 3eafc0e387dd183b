"""1. The entitlement check (GET /api/epg/v1/entitlements/), the set-top box's hot path.

Requests per second and p50/p99 latency with the server on one core and the
load generator on the other, against /bench/bare/ (no work, the same
middleware, the same server) measured in the same run. Then the same check
with the entitlement cache off (ENTITLEMENT_CACHE_SECONDS=0): what a cache hit
is worth.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.common import (
    PRODUCTION_SERVER,
    Figure,
    Load,
    Server,
    Stat,
    http_request,
    print_figures,
    run_load,
    say,
    write_requests,
)
from bench.data import Dataset

PATH = "/api/epg/v1/entitlements/"


@dataclass
class Settings:
    seconds: float
    repeats: int
    connections: int


def requests_files(ds: Dataset, tag: str = "") -> tuple[str, str]:
    auth = {"Authorization": f"Api-Key {ds.api_key}"}
    checks = [
        http_request("GET", f"{PATH}?tv_account={account}&product_code=VIP-MONTH", auth)
        for account in ds.sample_accounts
    ]
    bare = [http_request("GET", "/bench/bare/", auth)]
    return str(write_requests(checks, f"entitlements{tag}")), str(write_requests(bare, f"bare{tag}"))


def prime_cache(ds: Dataset) -> None:
    """Fill the per-account entries as the first question about each account would."""
    from orders import selectors

    for account in ds.sample_accounts:
        selectors.entitlement_check(tv_account=account)


def measure_pair(files: tuple[str, str], s: Settings, label: str) -> tuple[list[Load], list[Load]]:
    """Alternate the endpoint and the bare endpoint, ``repeats`` times each, after a warm-up of both."""
    from pathlib import Path

    checks, bare = (Path(f) for f in files)
    run_load(bare, seconds=2, connections=s.connections)
    run_load(checks, seconds=2, connections=s.connections)
    endpoint: list[Load] = []
    baseline: list[Load] = []
    for i in range(s.repeats):
        baseline.append(run_load(bare, seconds=s.seconds, connections=s.connections))
        endpoint.append(run_load(checks, seconds=s.seconds, connections=s.connections))
        say(
            f"  {label} {i + 1}/{s.repeats}: {endpoint[-1].rps:,.0f} req/s "
            f"(p50 {endpoint[-1].p50_ms:.2f} ms, p99 {endpoint[-1].p99_ms:.2f} ms); "
            f"bare {baseline[-1].rps:,.0f} req/s; server CPU per request {endpoint[-1].cpu_us:,.0f} µs, "
            f"bare {baseline[-1].cpu_us:,.0f} µs"
        )
        for load in (endpoint[-1], baseline[-1]):
            if load.errors:
                raise RuntimeError(f"{label}: {load.errors} errors out of {load.requests} requests")
    return endpoint, baseline


def run(ds: Dataset, s: Settings, *, server: str = PRODUCTION_SERVER) -> list[Figure]:
    say(f"1. entitlement check: {server} on one core, {s.connections} connections, {s.seconds:.0f} s x {s.repeats}")
    files = requests_files(ds)
    prime_cache(ds)
    with Server(server):
        cached, bare = measure_pair(files, s, "cached")
    with Server(server, ENTITLEMENT_CACHE_SECONDS="0"):
        uncached, bare_uncached = measure_pair(files, s, "uncached")
    tool = cached[0].tool

    def rps(loads: list[Load]) -> Stat:
        return Stat([x.rps for x in loads])

    def p50(loads: list[Load]) -> Stat:
        return Stat([x.p50_ms for x in loads])

    def p99(loads: list[Load]) -> Stat:
        return Stat([x.p99_ms for x in loads])

    def cpu(loads: list[Load]) -> Stat:
        return Stat([x.cpu_us for x in loads])

    note = f"{server}, {s.connections} conn., {tool}"
    figures = [
        Figure(
            "entitlement check, cached: throughput",
            rps(cached),
            "req/s",
            rps(bare),
            "bare endpoint",
            target=">= 0.8",
            note=note,
        ),
        Figure(
            "entitlement check, cached: p50 latency",
            p50(cached),
            "ms",
            p50(bare),
            "bare endpoint",
            higher_is_better=False,
            note=note,
        ),
        Figure(
            "entitlement check, cached: p99 latency",
            p99(cached),
            "ms",
            p99(bare),
            "bare endpoint",
            higher_is_better=False,
            note=note,
        ),
        Figure(
            "entitlement check, cached: server CPU per request",
            cpu(cached),
            "µs",
            cpu(bare),
            "bare endpoint",
            target="<= 1.25",
            higher_is_better=False,
            note="from /proc; 1/ratio = throughput ratio on a core of its own",
        ),
        Figure(
            "entitlement check, cache hit vs uncached: throughput",
            rps(cached),
            "req/s",
            rps(uncached),
            "uncached (ENTITLEMENT_CACHE_SECONDS=0)",
            target=">= 1.5",
            note=note,
        ),
        Figure(
            "entitlement check, uncached: server CPU per request",
            cpu(uncached),
            "µs",
            cpu(cached),
            "cached",
            higher_is_better=False,
            note="from /proc",
        ),
        Figure(
            "entitlement check, uncached: throughput",
            rps(uncached),
            "req/s",
            rps(bare_uncached),
            "bare endpoint",
            note=note,
        ),
        Figure(
            "entitlement check, uncached: p50 latency",
            p50(uncached),
            "ms",
            p50(bare_uncached),
            "bare endpoint",
            higher_is_better=False,
            note=note,
        ),
        Figure(
            "entitlement check, uncached: p99 latency",
            p99(uncached),
            "ms",
            p99(bare_uncached),
            "bare endpoint",
            higher_is_better=False,
            note=note,
        ),
    ]
    print_figures("1. Entitlement check (GET /api/epg/v1/entitlements/)", figures)
    return figures
