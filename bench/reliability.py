"""Run the long (soak) versions of the reliability properties (issue #6) and print their figures.

    .venv/bin/python bench/reliability.py            the soak versions (~20 min on 2 cores)
    .venv/bin/python bench/reliability.py --short    the short versions of the default test run (~6 min)
    .venv/bin/python bench/reliability.py --no-fuzz  without counting the schema fuzzer's cases

It runs tests/reliability (PostgreSQL, Redis and real Celery workers: the
DATABASE_URL, REDIS_URL and CELERY_BROKER_URL of the environment, else this
machine's defaults below) with IPVAS_SOAK=1, then the EPG API's schema fuzzer
(tests/epg_api/test_schema.py) with Hypothesis's statistics, and prints one
line per property: how much was tried, and "nothing lost, nothing doubled" or
the first counterexample; then the fault campaign (issue #11), one line per
fault: the orders in flight, the outcome, the time to recover; then scale-out on one machine (issue #17),
one line per kill: a web node, a worker and the active beat behind haproxy, the RabbitMQ broker, a beat
holding the lock. The tests write what they did to test-artifacts/reliability/*.json; only what this run
wrote is shown.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FIGURES = ROOT / "test-artifacts" / "reliability"
LOGS = ROOT / "test-artifacts"
DEFAULTS = {
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/ipvas",
    "REDIS_URL": "redis://127.0.0.1:6379/1",
    "CELERY_BROKER_URL": "redis://127.0.0.1:6379/2",
}
FINE = "nothing lost, nothing doubled"


def say(message: str) -> None:
    print(f"\033[1m[reliability]\033[0m {message}", file=sys.stderr, flush=True)


def environment(soak: bool) -> dict[str, str]:
    env = dict(os.environ)
    for name, value in DEFAULTS.items():
        env.setdefault(name, value)
    env["IPVAS_SOAK"] = "1" if soak else "0"
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def pytest(args: list[str], env: dict[str, str], log: Path) -> tuple[int, str]:
    command = [sys.executable, "-m", "pytest", "-p", "no:logging", "-q", "-rfExX", *args]
    say(" ".join(command[1:]) + f"  (output: {log.relative_to(ROOT)})")
    with log.open("w") as out:
        code = subprocess.call(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    text = log.read_text(errors="replace")
    summary = [line for line in text.splitlines() if re.search(r"\d+ (passed|failed|error)", line)]
    return code, (summary[-1].strip("= ") if summary else "no summary")


def run_reliability(soak: bool, env: dict[str, str]) -> tuple[int, str, float]:
    args = ["tests/reliability"]
    if soak:
        args += ["-k", "not short"]  # the soak versions, and the properties that have one size
    started = time.time()
    code, summary = pytest(args, env, LOGS / "reliability-bench.log")
    return code, summary, started


def count_fuzz_cases(env: dict[str, str]) -> tuple[str, str]:
    log = LOGS / "reliability-bench-fuzz.log"
    code, summary = pytest(["tests/epg_api/test_schema.py", "-k", "fuzz", "--hypothesis-show-statistics"], env, log)
    text = log.read_text(errors="replace")
    # Hypothesis: "30 passing, 0 failing, and 9 invalid test cases" (older: "... examples"), per phase.
    tried = [
        (int(m[1]), int(m[2]), int(m[3] or 0))
        for m in re.finditer(
            r"(\d+) passing(?: examples?)?,?(?: and)? (\d+) failing(?: examples?)?(?:,? and (\d+) invalid)?", text
        )
    ]
    operations = len(re.findall(r"::test_fuzz_no_server_error\w*(?:\[[^\]]*\])?:\s*$", text, re.M))
    if not tried:
        return "not counted (no Hypothesis statistics in the output)", summary
    cases = sum(p + f for p, f, _ in tried)
    failing = sum(f for _, f, _ in tried)
    result = "no server error, every error in the contract's shape" if code == 0 and not failing else summary
    invalid = sum(i for *_, i in tried)
    return f"{cases} cases over {operations} operations ({invalid} invalid ones discarded)", result


def load(since: float) -> dict[str, dict[str, Any]]:
    found = {}
    for path in sorted(FIGURES.glob("*.json")):
        if path.stat().st_mtime >= since - 1:
            found[path.stem] = json.loads(path.read_text())
    return found


def verdict(figures: dict[str, Any]) -> str:
    if figures.get("ok"):
        return FINE
    examples = figures.get("counterexamples") or [f"{figures.get('effects') or figures.get('results')}"]
    return "COUNTEREXAMPLE: " + str(examples[0])[:300]


def rows(found: dict[str, dict[str, Any]]) -> list[tuple[str, str, str]]:
    table: list[tuple[str, str, str]] = []

    def each(prefix: str) -> list[tuple[str, dict[str, Any]]]:
        return [(name, f) for name, f in sorted(found.items()) if name.startswith(prefix)]

    order = ("replayed-wechat", "replayed-alipay", "concurrent-wechat", "concurrent-alipay", "sms", "cash")
    once = sorted(each("exactly_once-"), key=lambda item: [k in item[0] for k in order].index(True))
    deliveries = sum(f["delivered"] for _, f in once)
    for name, f in once:
        what = {
            "replayed": "notification replayed in a row",
            "concurrent": "notification delivered 50 at once (threads, own connections)",
            "sms": "SMS reply delivered 50 at once",
            "cash": "cash sale confirmed 50 at once",
        }[name.split("-")[1]]
        provider = "WeChat Pay " if "wechat" in name else "Alipay " if "alipay" in name else ""
        table.append((f"{provider}{what}", f"{f['delivered']} deliveries", verdict(f)))
    if once:
        fine = all(f.get("ok") for _, f in once)
        table.append(
            (
                "notifications, replies and confirmations replayed and raced",
                f"{deliveries} in all",
                FINE if fine else "see above",
            )
        )
    for _name, f in each("race-"):
        outcomes = ", ".join(f"{k}: {v}" for k, v in f.get("outcomes", {}).items())
        table.append((f["kind"], f"{f['rounds']} rounds ({outcomes})", verdict(f)))
    for name, f in each("crash-"):
        if "sigkill" in name:
            redelivered = sum(1 for r in f.get("results", []) if r.get("redelivered"))
            how = f"{f['rounds']} kills, worker survived each, task redelivered {redelivered}×"
        elif "relay" in name:
            how = f"{f['relays']} relays (2 at once), published {f['published']}×"
        else:
            how = "change + 2 side effects rolled back"
        table.append((f["kind"], how, verdict(f)))
    injected: dict[str, int] = {}
    for _name, f in each("random_run-"):
        for fault, n in f.get("faults_injected", {}).items():
            injected[fault] = injected.get(fault, 0) + n
        statuses = ", ".join(f"{k} {v}" for k, v in sorted(f["statuses"].items()))
        table.append(
            (
                "orders driven through failing outside systems (random, seed " + str(f["seed"]) + ")",
                f"{f['orders']} orders in {f['seconds']} s: {statuses}",
                verdict(f),
            )
        )
    for _name, f in each("outside-"):
        injected["PostgreSQL down when a notification arrives"] = 1
        table.append((f["kind"], "WeChat Pay, Alipay, SMS, each twice", verdict(f)))
    if injected:
        total = sum(injected.values())
        table.append(
            ("faults injected", f"{total}: " + ", ".join(f"{k} {v}×" for k, v in injected.items()), "see above")
        )
    return table


FAULT_ORDER = ("broker", "cache", "postgres", "partners", "wechatpay", "alipay", "sms", "crm", "disk_full")


def fault_rows(found: dict[str, dict[str, Any]]) -> list[tuple[str, str, str, str]]:
    """The fault campaign (issue #11): one row per fault, from tests/reliability/test_dependency_faults.py
    and test_disk_full.py: the orders in flight when it came, the outcome, the time to recover."""
    # test_rabbitmq_broker.py's run also writes fault-rabbitmq: its row is in the scale-out table.
    faults = [f for name, f in found.items() if name.startswith("fault-") and name != "fault-rabbitmq"]
    # In the campaign's order; a fault it does not list yet comes last rather than stopping the report.
    rank = {name: i for i, name in enumerate(FAULT_ORDER)}
    faults.sort(key=lambda f: (rank.get(f["fault"].split("-")[0], len(rank)), f["fault"]))
    return [fault_row(f) for f in faults]


def fault_row(f: dict[str, Any]) -> tuple[str, str, str, str]:
    statuses = ", ".join(f"{k} {v}" for k, v in sorted(f.get("statuses", {}).items()))
    survived = f.get("processes_survived", {})
    if f.get("ok"):
        outcome = f"{f['orders']} orders and a probe: {statuses}; {FINE}; " + (
            "web, worker and beat ran throughout" if all(survived.values()) else f"processes: {survived}"
        )
        if f["fault"] == "disk_full":
            outcome += (
                f"; {f.get('answers_while_full', {}).get('answers 503', 0)} answers 503 with Retry-After while "
                "full, none 500; SQLite integrity ok, no broker message half-written"
            )
    else:
        books = f.get("books", {})
        problems = books.get("problems") or books.get("smp_left_subscribed") or [f"unsettled: {books}"]
        outcome = f"COUNTEREXAMPLE: {str(problems[0])[:300]} (processes: {survived})"
    recovered = f.get("recovered_seconds")
    recovery = (
        f"down {f.get('down_seconds')} s; a new order completed {recovered} s after it came back; "
        f"every order ended {f.get('settled_seconds')} s after"
        if recovered is not None
        else "NOT RECOVERED: no new order completed"
    )
    return (f["kind"], f"{f['in_flight']} of {f['orders']}", outcome, recovery)


def scaleout_rows(found: dict[str, dict[str, Any]]) -> list[tuple[str, str, str, str]]:
    """Scale-out on one machine (issue #17), one row per run that wrote its figures: production's topology
    (tests/reliability/test_topology.py), RabbitMQ as the broker (test_rabbitmq_broker.py, which records
    through the fault campaign's run_fault) and two beats on one lock (test_beat_takeover.py)."""
    table = []
    if "topology" in found:
        table.append(topology_row(found["topology"]))
    if "fault-rabbitmq" in found:
        f = found["fault-rabbitmq"]
        what, _, outcome, recovery = fault_row(f)
        table.append((what, f"{f['in_flight']} of {f['orders']} in flight", outcome, recovery))
    if "scaleout-beat" in found:
        table.append(beat_row(found["scaleout-beat"]))
    return table


def topology_row(f: dict[str, Any]) -> tuple[str, str, str, str]:
    statuses = ", ".join(f"{k} {v}" for k, v in sorted(f.get("statuses", {}).items()))
    books = f.get("books", {})
    problems = books.get("problems") or books.get("smp_left_subscribed")
    if f.get("ok"):
        outcome = f"{statuses}; every order terminal, {FINE}, the books balance"
    elif problems:
        outcome = f"COUNTEREXAMPLE: {str(problems[0])[:300]}"
    elif f.get("placing_seconds") is None:
        outcome = "COUNTEREXAMPLE: a customer without an order"
    elif f.get("all_terminal_after_the_kills_seconds") is None:
        outcome = f"COUNTEREXAMPLE: not every order terminal ({statuses}): {str(f.get('not_completed'))[:300]}"
    else:
        outcome = f"COUNTEREXAMPLE: books {str(books)[:300]}"  # an order missing, doubled or unsettled
    times = (
        f"dead web node out of haproxy after {seconds(f.get('dead_node_taken_out_seconds'))}, "
        f"beat takeover after {seconds(f.get('beat_takeover_seconds'))}, every order terminal "
        f"{seconds(f.get('all_terminal_after_the_kills_seconds'))} after the kills; "
        f"{f.get('orders_placed_per_second')} orders/s placed through the proxy, {f.get('proxy_5xx')} answered 5xx"
    )
    what = f"haproxy, 2 web nodes (granian), 2 workers, 2 beats: {f['kind']}"
    return (what, f"{f['placed_when_killed']} of {f['orders']} placed", outcome, times)


def beat_row(f: dict[str, Any]) -> tuple[str, str, str, str]:
    sent = f["relayed_in_8_seconds"]
    after = f["relayed_in_4_seconds_after_the_takeover"]
    if f.get("ok"):
        outcome = f"one beat sent the schedule ({sent} outbox relays in 8 s), the other after the kill ({after} in 4 s)"
    elif f["schedule_sent_twice"]:
        outcome = f"COUNTEREXAMPLE: the schedule sent twice ({sent} outbox relays in 8 s)"
    elif f["takeover_seconds"] is None:
        outcome = "COUNTEREXAMPLE: the other beat never took the lock over"
    else:
        outcome = f"COUNTEREXAMPLE: {sent} outbox relays in 8 s before the kill, {after} in 4 s after the takeover"
    times = f"takeover after {seconds(f['takeover_seconds'])} (lock timeout {f['lock_timeout_seconds']} s)"
    return (f["kind"], "none (the schedule alone)", outcome, times)


def seconds(value: float | None) -> str:
    return "NEVER" if value is None else f"{value} s"


def known_bugs(log: Path) -> list[tuple[str, str, str]]:
    """The strict xfails of the run: properties that fail today, each with its reason (the bug)."""
    found = []
    for line in log.read_text(errors="replace").splitlines():
        match = re.match(r"XFAIL (\S+?)(?:\[(.*?)\])? - (BUG: .*)", line)
        if match:
            test = match[1].split("::")[-1].replace("_", " ").removeprefix("test ")
            found.append((f"known bug: {test}" + (f" [{match[2]}]" if match[2] else ""), "strict xfail", match[3]))
    return found


def markdown(table: list[tuple[str, ...]], head: tuple[str, ...] = ("property", "tried", "result")) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(row) + " |" for row in table]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--short", action="store_true", help="the short versions (the default test run's)")
    parser.add_argument("--no-fuzz", action="store_true", help="do not run the schema fuzzer")
    options = parser.parse_args()
    soak = not options.short
    env = environment(soak)
    LOGS.mkdir(exist_ok=True)
    code, summary, started = run_reliability(soak, env)
    found = load(started)
    table = rows(found) + known_bugs(LOGS / "reliability-bench.log")
    faults = fault_rows(found)
    scaleout = scaleout_rows(found)
    table.append(("reliability tests (pytest)", summary, "passed" if code == 0 else f"FAILED (exit {code})"))
    if not options.no_fuzz:
        cases, result = count_fuzz_cases(env)
        table.append(("EPG API schema fuzz (schemathesis, tests/epg_api/test_schema.py)", cases, result))
    machine = (
        f"{platform.node()}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}"
    )
    print(f"Reliability figures, {'soak' if soak else 'short'} versions, {time.strftime('%Y-%m-%d %H:%M %Z')}")
    print(f"Machine: {machine}")
    print(f"Database {env['DATABASE_URL'].rsplit('@', 1)[-1]}, Redis {env['REDIS_URL'].rsplit('@', 1)[-1]}")
    print()
    print(markdown(table))
    if faults:
        print()
        print("Fault campaign (each dependency failing under a running IPVAS, orders in flight):")
        print()
        print(markdown(faults, ("fault", "orders in flight", "outcome", "time to recover")))
    if scaleout:
        print()
        print("Scale-out on one machine (issue #17): a node of each kind killed (kill -9), orders in flight:")
        print()
        print(markdown(scaleout, ("killed", "orders when killed", "outcome", "times")))
    return code


if __name__ == "__main__":
    sys.exit(main())
