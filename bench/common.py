"""What every benchmark shares: the bench environment, processes, load generation, statistics and tables.

The benchmarks run against their own PostgreSQL database and Redis databases
(never the developers'), the web server pinned to one core and the load
generator (wrk, or bench/loadgen.py when wrk is missing) pinned to the other.
Every figure is printed beside a baseline measured in the same run.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".venv" / "bin"
PYTHON = BIN / "python"
BENCH_VAR = ROOT / "var" / "bench"
LUA_DIR = ROOT / "bench" / "lua"

DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/ipvas_bench")
REDIS_CACHE_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/5")
REDIS_BROKER_URL = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/6")
HOST = "127.0.0.1"
PORT = int(os.environ.get("BENCH_PORT", "8765"))
BASE_URL = f"http://{HOST}:{PORT}"

# The server gets the first core, the load generator the last one.
CPUS = os.cpu_count() or 1
SERVER_CPUS = os.environ.get("BENCH_SERVER_CPUS", "0")
LOADGEN_CPUS = os.environ.get("BENCH_LOADGEN_CPUS", str(CPUS - 1))
SERVER_CORES = len(SERVER_CPUS.split(","))


def say(message: str) -> None:
    print(f"\033[1m[bench]\033[0m {message}", flush=True)


# --- the environment -----------------------------------------------------------------


def bench_env(**extra: str) -> dict[str, str]:
    """The production-like settings of `python3 dev.py prod`, on the bench's own database and Redis."""
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "ipvas.settings",
            "IPVAS_VAR_DIR": str(BENCH_VAR),
            "DATABASE_URL": DATABASE_URL,
            "REDIS_URL": REDIS_CACHE_URL,
            "CELERY_BROKER_URL": REDIS_BROKER_URL,
            "IPVAS_BENCH": "1",
            "IPVAS_SANDBOX": "1",
            "DEBUG": "0",
            "LOG_LEVEL": "WARNING",
            "LOG_FORMAT": "json",
            "PYTHONUNBUFFERED": "1",
            "PROMETHEUS_MULTIPROC_DIR": str(BENCH_VAR / "prometheus"),
            "PUBLIC_BASE_URL": BASE_URL,
            # The bench creates orders far faster than one EPG vendor may.
            "EPG_ORDERS_PER_CLIENT_PER_MINUTE": "100000000",
        }
    )
    env.update(extra)
    return env


def _up(argv: list[str]) -> bool:
    return subprocess.run(argv, capture_output=True, check=False).returncode == 0


def ensure_services() -> None:
    """Start this machine's PostgreSQL and Redis when they are down, as .ci/run does."""
    pg_up = ["pg_isready", "-h", HOST, "-q"]
    redis_up = ["redis-cli", "-h", HOST, "ping"]
    if shutil.which("pg_isready") and not _up(pg_up) and Path("/etc/postgresql").exists():
        say("starting PostgreSQL")
        version = sorted(p.name for p in Path("/etc/postgresql").iterdir())[-1]
        _up(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"])
    if shutil.which("redis-server") and not _up(redis_up):
        say("starting Redis")
        _up(["redis-server", "--daemonize", "yes", "--bind", HOST, "--save", "", "--appendonly", "no"])
    for _ in range(30):
        if _up(pg_up) and _up(redis_up):
            return
        time.sleep(1)


def ensure_database() -> None:
    """Create the bench database if it is missing (as dev.py does for its own)."""
    import psycopg

    name = DATABASE_URL.rsplit("/", 1)[1]
    with psycopg.connect(DATABASE_URL.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        if not conn.execute("select 1 from pg_database where datname=%s", (name,)).fetchone():
            conn.execute(f'create database "{name}"')


def setup_django() -> None:
    """Configure this process with the bench environment and set Django up."""
    BENCH_VAR.mkdir(parents=True, exist_ok=True)
    reset_metrics_dir()
    os.environ.update(bench_env(OUTBOX_RELAY_ON_COMMIT="0", DATABASE_URL=not_measured(DATABASE_URL, "bench-driver")))
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def reset_metrics_dir() -> None:
    metrics = BENCH_VAR / "prometheus"
    shutil.rmtree(metrics, ignore_errors=True)
    metrics.mkdir(parents=True)


def flush_redis() -> None:
    """Empty the bench's Redis databases (cache and broker), and only those. A RabbitMQ broker
    (``BENCH_BROKER_URL=amqp://…``) is emptied by purging its queues (bench.data.purge_broker)."""
    import redis

    for url in (REDIS_CACHE_URL, REDIS_BROKER_URL):
        if url.startswith(("redis://", "rediss://")):
            redis.Redis.from_url(url).flushdb()


def machine(database_url: str = DATABASE_URL) -> dict[str, str]:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = "?"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram = f"{int(line.split()[1]) / 1024 / 1024:.0f} GiB"
    except OSError:
        pass
    pg = subprocess.run(
        [str(PYTHON), "-c", f"import psycopg; print(psycopg.connect({database_url!r}).info.server_version)"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    pg_version = f"{int(pg) // 10000}.{int(pg) % 10000}" if pg.isdigit() else "?"
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpus": str(CPUS),
        "cpu": model,
        "ram": ram,
        "python": sys.version.split()[0],
        "postgresql": pg_version,
    }


# --- processes -------------------------------------------------------------------------

_RUNNING: list[Proc] = []


class Proc:
    """A child process leading its own process group; stopping it stops everything it forked."""

    def __init__(
        self, name: str, argv: Sequence[str], env: dict[str, str], log: Path | None = None, cwd: Path = ROOT
    ) -> None:
        self.name = name
        self.log = log or (BENCH_VAR / f"{name}.log")
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self.popen = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=env,
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        _RUNNING.append(self)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def output(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, grace: float = 15.0) -> None:
        if self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                say(f"{self.name} did not stop in {grace:.0f} s; killing it")
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)  # whatever is left in its group
        except ProcessLookupError:
            pass
        self.popen.wait()
        if self in _RUNNING:
            _RUNNING.remove(self)


def stop_all() -> None:
    for proc in list(reversed(_RUNNING)):
        proc.stop(grace=5)


def pinned(cpus: str, argv: Sequence[str]) -> list[str]:
    return ["taskset", "-c", cpus, *argv] if shutil.which("taskset") else list(argv)


def server_command(kind: str, *, cores: int, port: int = PORT) -> list[str]:
    """The web server as `python3 dev.py prod` runs it (no access log, so that both servers do the same work).

    gunicorn: gthread, two workers per core, four threads each; granian: WSGI, one worker per core, four
    Python threads ("blocking threads") per worker. Without that limit granian runs up to 256 Python
    threads per worker, each holding its own database connection, and PostgreSQL refuses connections past
    max_connections (100) under load. Not --backpressure: it caps the connections a worker accepts, not
    the requests it runs, so idle keep-alive clients would hold every place (docs/decisions.md).
    """
    if kind == "granian":
        return [str(BIN / "granian"), "--interface", "wsgi", "--host", HOST, "--port", str(port),
                "--workers", str(cores), "--blocking-threads", "4", "--no-ws", "--log-level", "warning",
                "ipvas.wsgi:application"]  # fmt: skip
    if kind == "gunicorn":
        return [str(BIN / "gunicorn"), "ipvas.wsgi:application", "-b", f"{HOST}:{port}", "-w", str(2 * cores),
                "--worker-class", "gthread", "--threads", "4", "--log-level", "warning"]  # fmt: skip
    raise ValueError(kind)


# The web server of `python3 dev.py prod`, chosen by the servers piece (bench/servers.py).
PRODUCTION_SERVER = "granian"


class Server:
    """A web server on the bench port (or ``port``), started with the bench environment (plus ``extra_env``)."""

    def __init__(
        self, kind: str = PRODUCTION_SERVER, *, cpus: str | None = SERVER_CPUS, port: int = PORT, **extra_env: str
    ) -> None:
        self.kind = kind
        self.port = port
        cores = len(cpus.split(",")) if cpus else CPUS
        argv = server_command(kind, cores=cores, port=port)
        # BENCH_SERVER_CWD: serve another checkout (same virtualenv, same data), to compare code versions.
        cwd = Path(os.environ.get("BENCH_SERVER_CWD", ROOT))
        name = f"server-{kind}" if port == PORT else f"server-{kind}-{port}"
        self.proc = Proc(name, pinned(cpus, argv) if cpus else argv, bench_env(**extra_env), cwd=cwd)

    def __enter__(self) -> Server:
        wait_http(f"http://{HOST}:{self.port}/healthz/", proc=self.proc)
        _SERVING.append(self.proc)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc in _SERVING:
            _SERVING.remove(self.proc)
        self.proc.stop()
        wait_port_free(self.port)


def wait_http(url: str, *, proc: Proc, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited at start:\n{proc.output()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - our own server
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer in {timeout:.0f} s:\n{proc.output()[-3000:]}")


def wait_port_free(port: int = PORT, timeout: float = 20) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex((HOST, port)) != 0:
                return
        time.sleep(0.2)


# --- CPU time by kind of process -------------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _proc_stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()  # the fields after "pid (comm)"


def group_cpu_seconds(pgid: int) -> float:
    """User + system CPU of every process of a process group (a Proc and what it forked), with the
    children it has reaped (a prefork pool's replaced children)."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _proc_stat(int(entry.name))
        if fields is None or int(fields[2]) != pgid:  # field 5 of stat: the process group
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
        if int(entry.name) == pgid:
            total += int(fields[13]) + int(fields[14])  # cutime, cstime
    return total / _TICK


def pids_cpu_seconds(pids: Iterable[int]) -> dict[int, float]:
    """User + system CPU of each process still alive."""
    seconds = {}
    for pid in pids:
        fields = _proc_stat(pid)
        if fields is not None:
            seconds[pid] = (int(fields[11]) + int(fields[12])) / _TICK
    return seconds


# What the processes that are not the system under test call themselves to PostgreSQL (application_name).
NOT_MEASURED = ("bench-driver", "bench-simulator")


def not_measured(database_url: str, who: str) -> str:
    """``database_url`` for a process whose PostgreSQL work is not the system's (the driver, a simulator)."""
    assert who in NOT_MEASURED
    return f"{database_url}{'&' if '?' in database_url else '?'}application_name={who}"


def postgres_backends(database_url: str = DATABASE_URL) -> list[int]:
    """The PostgreSQL server processes serving the system's connections to the bench's database: not this
    query's, not the driver's, not a simulator's."""
    import psycopg

    name = database_url.rsplit("/", 1)[1]
    with psycopg.connect(database_url, autocommit=True) as conn:
        rows = conn.execute(
            "select pid from pg_stat_activity where datname = %s and pid <> pg_backend_pid()"
            " and application_name <> all(%s)",
            (name, list(NOT_MEASURED)),
        ).fetchall()
    return [pid for (pid,) in rows]


def postgres_ended_cpu_seconds(database_url: str = DATABASE_URL) -> float:
    """The CPU of the PostgreSQL backends that have ended so far (the postmaster's reaped children: cutime +
    cstime), whatever database they served: a connection opened and closed during a run (one per task, say)
    is not among the live backends at its end."""
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:
        (backend,) = conn.execute("select pg_backend_pid()").fetchone()
        # Read while the connection is open: its backend ends with it (a run once failed on that race).
        status = Path(f"/proc/{backend}/status").read_text()
    postmaster = int(next(line.split()[1] for line in status.splitlines() if line.startswith("PPid:")))
    fields = _proc_stat(postmaster)
    return (int(fields[13]) + int(fields[14])) / _TICK if fields else 0.0


def redis_cpu_seconds(url: str = REDIS_CACHE_URL) -> float:
    """The Redis server's own CPU (user + system) so far: the whole server, shared with whatever else uses it."""
    import redis

    info = redis.Redis.from_url(url).info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def celery_worker(concurrency: int, **extra_env: str) -> Proc:
    """A Celery worker with ``concurrency`` processes on every queue, relaying the outbox on commit."""
    import shlex
    import socket

    from django.conf import settings

    from ipvas.broker import INTERACTIVE_QUEUE
    from ipvas.celery import app

    name = f"bench-c{concurrency}-{int(time.time() * 1000) % 100000}@{socket.gethostname()}"
    pool = os.environ.get("BENCH_WORKER_POOL", "prefork")  # to compare Celery's pools: threads, prefork

    def worker(processes: str, node: str, *queues: str) -> list[str]:
        return [str(BIN / "celery"), "-A", "ipvas", "worker", "-P", pool, "-c", processes, "-n", node,
                *(["-Q", ",".join(queues)] if queues else []),
                "-l", "warning", "--without-gossip", "--without-mingle", "--without-heartbeat"]  # fmt: skip

    argv = worker(str(concurrency), name)
    interactive = os.environ.get("BENCH_INTERACTIVE_WORKER", "0")
    if interactive != "0":
        # As docs/operations.md says for RabbitMQ: the pre-checks' queue gets a worker of its own (this many
        # processes) beside the others, in the same process group (so its CPU is counted with theirs).
        own = worker(interactive, f"interactive-{name}", INTERACTIVE_QUEUE)
        others = worker(str(concurrency), name, *(q for q in settings.CELERY_QUEUE_NAMES if q != INTERACTIVE_QUEUE))
        argv = ["sh", "-c", f"{shlex.join(own)} & exec {shlex.join(others)}"]
    proc = Proc(f"worker-c{concurrency}", argv, bench_env(OUTBOX_RELAY_ON_COMMIT="1", **extra_env))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"the worker exited at start:\n{proc.output()[-3000:]}")
        with contextlib.suppress(Exception):  # the broker may not answer yet
            if app.control.ping(destination=[name], timeout=0.5):
                return proc
        time.sleep(0.3)
    proc.stop()
    raise RuntimeError(f"the Celery worker did not start in 60 s:\n{proc.output()[-3000:]}")


# --- load generation -----------------------------------------------------------------


@dataclass
class Load:
    """One run of the load generator."""

    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int = 0  # non-2xx answers and socket errors
    tool: str = "wrk"
    server_cpu_s: float = 0.0  # CPU time the web server's processes used meanwhile
    redis_cpu_s: float = 0.0  # and Redis's

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def cpu_us(self) -> float:
        """Server CPU per request: what sets the throughput of a core of its own, however busy the machine."""
        return 1e6 * self.server_cpu_s / self.requests if self.requests else 0.0

    @property
    def redis_cpu_us(self) -> float:
        return 1e6 * self.redis_cpu_s / self.requests if self.requests else 0.0


_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_seconds(*, group: int | None = None, name: str | None = None) -> float:
    """CPU time (user + system) of the processes in a process group, or of those with a command name."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        command, rest = text[text.index("(") + 1 : text.rindex(")")], text[text.rindex(")") + 2 :].split()
        # rest: state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime ...
        if (group is not None and int(rest[2]) == group) or (name is not None and command == name):
            total += int(rest[11]) + int(rest[12])
    return total / _TICK


_SERVING: list[Proc] = []


def have_tool(command: str, package: str = "") -> bool:
    """``command`` is on this machine, installed from Debian's ``package`` (default: its name) if it was missing
    and we are root."""
    if shutil.which(command):
        return True
    package = package or command
    if os.geteuid() == 0 and shutil.which("apt-get"):
        say(f"{command} is missing: installing Debian's package {package}")
        done = subprocess.run(["apt-get", "install", "-y", "-q", package], capture_output=True, check=False)
        if done.returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], capture_output=True, check=False)
            subprocess.run(["apt-get", "install", "-y", "-q", package], capture_output=True, check=False)
    return bool(shutil.which(command))


def have_wrk() -> bool:
    return have_tool("wrk")


_WRK: bool | None = None


def loadgen_tool() -> str:
    global _WRK
    if _WRK is None:
        _WRK = have_wrk() and not os.environ.get("BENCH_NO_WRK")
        if not _WRK:
            say("wrk is not available: using bench/loadgen.py (Python asyncio) as the load generator")
    return "wrk" if _WRK else "loadgen.py"


def write_requests(requests: Iterable[bytes], name: str) -> Path:
    """Raw HTTP/1.1 requests, NUL-separated: what both load generators replay."""
    path = BENCH_VAR / f"requests-{name}.bin"
    path.write_bytes(b"\0".join(requests))
    return path


def http_request(method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}:{PORT}"]
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + body


def run_load(
    requests_file: Path,
    *,
    seconds: float,
    connections: int,
    once: bool = False,
    timeout: float = 10,
    python: bool = False,
) -> Load:
    """Replay the requests (cycling, or each ``once``) for ``seconds`` on the load generator's core.

    wrk when it is there, unless ``once`` or ``python`` asks for bench/loadgen.py. Also records the CPU
    time the server being measured (and Redis) used meanwhile.
    """
    server = _SERVING[-1].pid if _SERVING else None
    before = (cpu_seconds(group=server) if server else 0.0, cpu_seconds(name="redis-server"))
    load = _generate(requests_file, seconds=seconds, connections=connections, once=once, timeout=timeout, python=python)
    load.server_cpu_s = (cpu_seconds(group=server) if server else 0.0) - before[0]
    load.redis_cpu_s = cpu_seconds(name="redis-server") - before[1]
    return load


def _generate(
    requests_file: Path, *, seconds: float, connections: int, once: bool, timeout: float, python: bool
) -> Load:
    if loadgen_tool() == "wrk" and not once and not python:
        return _wrk(requests_file, seconds=seconds, connections=connections, timeout=timeout)
    argv = [str(PYTHON), str(ROOT / "bench" / "loadgen.py"), "--host", HOST, "--port", str(PORT),
            "--requests", str(requests_file), "--seconds", str(seconds), "--connections", str(connections)]  # fmt: skip
    if once:
        argv.append("--once")
    done = subprocess.run(pinned(LOADGEN_CPUS, argv), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"loadgen failed:\n{done.stderr[-3000:]}")
    data = json.loads(done.stdout.strip().splitlines()[-1])
    return Load(
        requests=data["requests"],
        seconds=data["seconds"],
        p50_ms=data["p50_ms"],
        p99_ms=data["p99_ms"],
        errors=data["errors"],
        tool="loadgen.py",
    )


_WRK_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _wrk(requests_file: Path, *, seconds: float, connections: int, timeout: float) -> Load:
    argv = ["wrk", "-t1", "-c", str(connections), "-d", f"{max(1, round(seconds))}s", "--latency",
            "--timeout", f"{timeout:.0f}s", "-s", str(LUA_DIR / "replay.lua"), BASE_URL,
            "--", str(requests_file)]  # fmt: skip
    done = subprocess.run(pinned(LOADGEN_CPUS, argv), capture_output=True, text=True, check=False)
    out = done.stdout
    if done.returncode != 0 or "Requests/sec" not in out:
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{out[-2000:]}\n{done.stderr[-2000:]}")
    report = json.loads(next(line for line in out.splitlines() if line.startswith("BENCH ")).split(" ", 1)[1])
    # The latency distribution of --latency, as wrk prints it.
    percentiles: dict[str, float] = {}
    for match in re.finditer(r"^\s+(\d+)%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.MULTILINE):
        percentiles[match.group(1)] = float(match.group(2)) * _WRK_UNITS[match.group(3)]
    errors = report["status"] + report["connect"] + report["read"] + report["write"] + report["timeout"]
    return Load(
        requests=report["requests"],
        seconds=report["duration_us"] / 1e6,
        p50_ms=percentiles.get("50", report["p50_us"] / 1000),
        p99_ms=percentiles.get("99", report["p99_us"] / 1000),
        errors=errors,
    )


# --- statistics and tables -----------------------------------------------------------


@dataclass
class Stat:
    """Repeated measurements of one quantity."""

    values: list[float]

    @property
    def min(self) -> float:
        return min(self.values)

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def max(self) -> float:
        return max(self.values)


@dataclass
class Figure:
    """One line of a table: a figure, its baseline, their ratio, and the spread of the figure."""

    name: str
    value: Stat
    unit: str
    baseline: Stat | None = None
    baseline_name: str = ""
    target: str = ""  # e.g. ">= 0.8"
    higher_is_better: bool = True
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.baseline is None or not self.baseline.median:
            return None
        return self.value.median / self.baseline.median

    @property
    def reached(self) -> bool | None:
        if not self.target or self.ratio is None:
            return None
        op, number = self.target.split()
        return self.ratio >= float(number) if op == ">=" else self.ratio <= float(number)


def fmt(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def spread(stat: Stat) -> str:
    return f"{fmt(stat.min)} / {fmt(stat.median)} / {fmt(stat.max)}"


def figure_row(f: Figure) -> list[str]:
    ratio = "" if f.ratio is None else f"{f.ratio:.2f}"
    if f.target:
        ratio += f" (target {f.target}: {'reached' if f.reached else 'NOT reached'})"
    baseline = f"{fmt(f.baseline.median)} {f.unit} ({f.baseline_name})" if f.baseline is not None else "-"
    return [f.name, f"{fmt(f.value.median)} {f.unit}", spread(f.value), baseline, ratio, f.note]


HEADER = ["figure", "median", "min / median / max", "baseline (median)", "ratio", "note"]


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    rows = [list(r) for r in rows]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
    return "\n".join(lines)


def print_figures(title: str, figures: Sequence[Figure]) -> None:
    print()
    print(f"### {title}")
    print()
    print(markdown_table(HEADER, (figure_row(f) for f in figures)))
    print(flush=True)


def repeat(times: int, measure: Callable[[int], Any]) -> list[Any]:
    return [measure(i) for i in range(times)]


def cpu_times() -> list[int]:
    """The machine's CPU times from /proc/stat: user nice system idle iowait irq softirq steal ..."""
    try:
        return [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return []


def steal_share(before: list[int], after: list[int]) -> float:
    """The share of CPU time the hypervisor gave to other machines between two ``cpu_times()``."""
    if len(before) < 8 or len(after) < 8:
        return 0.0
    total = sum(after[:8]) - sum(before[:8])
    return (after[7] - before[7]) / total if total else 0.0


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def temp_dir() -> Path:
    BENCH_VAR.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(dir=BENCH_VAR))
