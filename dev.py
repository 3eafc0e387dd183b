#!/usr/bin/env python3
"""The commands of the README, needing nothing but Python 3.11.

    python3 dev.py up      set up, then run web + Celery worker + Celery beat (Ctrl-C stops all;
                           a worker or beat that exits is started again)
    python3 dev.py test    set up, then run the whole test suite (extra arguments go to pytest)
    python3 dev.py prod    the production-like stack: PostgreSQL, Redis, a multi-process web
                           server, separate worker and beat, JSON logs, /metrics/ (docs/operations.md)
    python3 dev.py setup   only set up: .venv, pinned requirements, database, demo data

The embedded set-up (up) needs no server: SQLite under var/, Celery's broker
on the file system under var/broker/, the sandbox simulating every outside
system. Set DATABASE_URL, CELERY_BROKER_URL and REDIS_URL to use PostgreSQL
and Redis instead (docs/configuration.md).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / "python"
# Where the embedded set-up keeps its files: IPVAS_VAR_DIR, as the settings read it (docs/configuration.md).
VAR = Path(os.environ.get("IPVAS_VAR_DIR") or ROOT / "var")
STOP_GRACE_SECONDS = 15


def say(message: str) -> None:
    print(f"\033[1m[ipvas]\033[0m {message}", flush=True)


def run(*args: str | Path, env: dict[str, str] | None = None) -> None:
    subprocess.run([str(a) for a in args], cwd=ROOT, env=env, check=True)


def ensure_venv() -> None:
    if sys.version_info < (3, 11):
        sys.exit("IPVAS needs Python 3.11 or newer.")
    if not PYTHON.exists():
        say("creating .venv")
        venv.create(VENV, with_pip=True)
    requirements = (ROOT / "requirements.txt").read_bytes()
    stamp = VENV / ".requirements.sha256"
    digest = hashlib.sha256(requirements).hexdigest()
    if not stamp.exists() or stamp.read_text() != digest:
        say("installing the pinned requirements (first run takes a minute)")
        run(PYTHON, "-m", "pip", "install", "--disable-pip-version-check", "-qq", "-r", "requirements.txt")
        stamp.write_text(digest)


def embedded_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("IPVAS_SANDBOX", "1")
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def prod_like_env() -> dict[str, str]:
    """PostgreSQL and Redis (this machine's by default), DEBUG off, JSON logs, the sandbox for partners."""
    env = embedded_env()
    env.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/ipvas_prod")
    env.setdefault("REDIS_URL", "redis://127.0.0.1:6379/3")
    env.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/4")
    env.setdefault("LOG_FORMAT", "json")
    env.setdefault("DEBUG", "0")
    metrics_dir = VAR / "prometheus"
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True)
    env.setdefault("PROMETHEUS_MULTIPROC_DIR", str(metrics_dir))
    return env


def ensure_postgres_database(url: str) -> None:
    """Create the database of ``url`` if it does not exist (needs the server, not the database)."""
    code = (
        "import sys, psycopg\n"
        "from urllib.parse import urlsplit\n"
        "u = urlsplit(sys.argv[1]); name = u.path.lstrip('/')\n"
        "with psycopg.connect(sys.argv[1].rsplit('/', 1)[0] + '/postgres', autocommit=True) as c:\n"
        "    if not c.execute('select 1 from pg_database where datname=%s', (name,)).fetchone():\n"
        "        c.execute(f'create database \"{name}\"')\n"
    )
    run(PYTHON, "-c", code, url)


def prepare_database(env: dict[str, str]) -> Path:
    """Migrate and load the demo data; returns the file holding a demo EPG key for this database."""
    if env.get("DATABASE_URL", "").startswith("postgres"):
        ensure_postgres_database(env["DATABASE_URL"])
    say("migrating the database")
    run(PYTHON, "manage.py", "migrate", "--no-input", "-v", "0", env=env)
    say("loading the demo data")
    run(PYTHON, "manage.py", "seed_demo", env=env)
    label = hashlib.sha256(env.get("DATABASE_URL", "embedded").encode()).hexdigest()[:8]
    key_file = VAR / ("demo_epg_key.txt" if "DATABASE_URL" not in env else f"demo_epg_key-{label}.txt")
    if env.get("IPVAS_SANDBOX") == "1" and not key_file.exists():
        out = subprocess.run(
            [str(PYTHON), "manage.py", "create_epg_client", "demo EPG"],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        key_file.write_text(out.strip().splitlines()[-1])
        key_file.chmod(0o600)
    if env.get("IPVAS_SANDBOX") == "1":
        # Yesterday's demo sales, reconciled three ways, so that reconciliation can be tried at once (once a day).
        run(PYTHON, "manage.py", "sandbox_demo_day", env=env)
    return key_file


# A worker or beat that exits is started again after a pause that grows while it keeps failing
# (one that ran for RESTART_RESET_SECONDS starts again at once): a broker outage or a crash must
# not leave orders without a worker, nor stop the web server with it (docs/operations.md).
RESTARTED = ("worker", "beat")
RESTART_BACKOFF_SECONDS = (1, 2, 5, 10, 30)
RESTART_RESET_SECONDS = 60


def supervise(
    processes: dict[str, list[str]],
    env: dict[str, str],
    banner: list[str],
    *,
    restarted: tuple[str, ...] = RESTARTED,
) -> int:
    """Run the processes until Ctrl-C, then stop them all, leaving no orphan.

    One of ``restarted`` that exits is started again (with a growing pause while it keeps
    exiting); any other that exits (the web server: a port in use, a broken setting) stops them all.
    """
    children: dict[str, subprocess.Popen[bytes]] = {}
    started_at: dict[str, float] = {}
    failures: dict[str, int] = {}
    restart_at: dict[str, float] = {}
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    def start(name: str) -> None:
        # Each child leads its own process group, so that stopping it also
        # stops what it forked (the worker's pool) and nothing is orphaned.
        children[name] = subprocess.Popen(processes[name], cwd=ROOT, env=env, start_new_session=True)
        started_at[name] = time.monotonic()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    for name in processes:
        start(name)
    say(f"running: {', '.join(processes)}. Ctrl-C stops them all.")
    kept = [name for name in processes if name in restarted]
    if kept:
        say(f"  {' and '.join(kept)} start again if they exit")
    for line in banner:
        say(f"  {line}")
    exit_code = 0
    while not stopping:
        now = time.monotonic()
        for name, child in children.items():
            if name in restart_at:
                if now >= restart_at[name]:
                    del restart_at[name]
                    say(f"starting {name} again")
                    start(name)
                    break  # children changed
                continue
            if child.poll() is None:
                continue
            try:
                os.killpg(child.pid, signal.SIGKILL)  # what it left of its group (a pool process)
            except ProcessLookupError:
                pass
            if name not in restarted:
                say(f"{name} stopped (exit {child.returncode}); stopping the others")
                exit_code = child.returncode or 1
                stopping = True
                break
            if now - started_at[name] >= RESTART_RESET_SECONDS:
                failures[name] = 0
            pause = RESTART_BACKOFF_SECONDS[min(failures.get(name, 0), len(RESTART_BACKOFF_SECONDS) - 1)]
            failures[name] = failures.get(name, 0) + 1
            say(f"{name} stopped (exit {child.returncode}); starting it again in {pause} s")
            restart_at[name] = now + pause
        time.sleep(0.3)
    say("stopping")
    for child in children.values():
        if child.poll() is None:
            child.terminate()  # the worker finishes its tasks in hand (warm shutdown)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for name, child in children.items():
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            say(f"{name} did not stop in {STOP_GRACE_SECONDS} s; killing it")
        try:
            os.killpg(child.pid, signal.SIGKILL)  # anything left in its group
        except ProcessLookupError:
            pass
    say("stopped")
    return exit_code


def _shown(path: Path) -> str:
    """A path as the banner shows it: from the checkout when inside it, else whole (IPVAS_VAR_DIR elsewhere)."""
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def _banner(base: str, key_file: Path) -> list[str]:
    lines = [
        f"home        {base}/",
        f"admin       {base}/admin/   (user 'admin', password in {_shown(VAR / 'demo_admin_password.txt')})",
        f"EPG API     docs {base}/api/epg/v1/docs/   OpenAPI {base}/api/epg/v1/schema/",
        f"clerk (CRM) {base}/sandbox/crm/frame/?staff_id=clerk01&store_code=NX-YC-001&virtual_staff_id=V0001&name=demo",
        f"health      {base}/healthz/   metrics {base}/metrics/",
    ]
    if key_file.exists():
        lines.append(f"demo EPG key in {_shown(key_file)}: Authorization: Api-Key {key_file.read_text().strip()}")
    return lines


def up() -> int:
    ensure_venv()
    env = embedded_env()
    key_file = prepare_database(env)
    host = env.get("IPVAS_HOST", "127.0.0.1")
    port = env.get("IPVAS_PORT", "8000")
    env.setdefault("PUBLIC_BASE_URL", f"http://{host}:{port}")
    celery = str(BIN / "celery")
    processes = {
        "web": [str(PYTHON), "manage.py", "runserver", f"{host}:{port}", "--noreload"],
        "worker": [celery, "-A", "ipvas", "worker", "-l", "info", "-c", "2", "-n", "ipvas@%h"],  # every queue
        "beat": [celery, "-A", "ipvas", "beat", "-l", "info", "-s", str(VAR / "celerybeat-schedule")],
    }
    return supervise(processes, env, _banner(f"http://{host}:{port}", key_file))


def web_server_command(env: dict[str, str], host: str, port: str) -> list[str]:
    """The multi-process web server: granian or gunicorn (IPVAS_WEB_SERVER), chosen by benchmark."""
    cores = os.cpu_count() or 2
    if env.get("IPVAS_WEB_SERVER", "granian") == "granian":
        # Four Python threads per worker, each with its own database connection (docs/decisions.md). granian
        # writes no access lines unless GRANIAN_LOG_ACCESS_ENABLED; its default format has the path without the
        # query string, and its lines do not pass through ipvas.logs: a format with %(query_string)s would
        # write a clerk's search whole (tests/ipvas/test_web_server_logs.py).
        workers = env.get("WEB_WORKERS", str(cores))
        return [str(BIN / "granian"), "--interface", "wsgi", "--host", host, "--port", port,
                "--workers", workers, "--blocking-threads", "4", "--no-ws", "ipvas.wsgi:application"]  # fmt: skip
    workers = env.get("WEB_WORKERS", str(2 * cores))
    # gunicorn's access lines are its own, not Django's: its logger class masks them as ours (ipvas.logs).
    return [str(BIN / "gunicorn"), "ipvas.wsgi:application", "-b", f"{host}:{port}", "-w", workers,
            "--worker-class", "gthread", "--threads", "4", "--access-logfile", "-",
            "--logger-class", "ipvas.gunicorn_logs.RedactingLogger"]  # fmt: skip


def prod() -> int:
    ensure_venv()
    env = prod_like_env()
    key_file = prepare_database(env)
    say("collecting static files")
    run(PYTHON, "manage.py", "collectstatic", "--no-input", "-v", "0", env=env)
    host = env.get("IPVAS_HOST", "127.0.0.1")
    port = env.get("IPVAS_PORT", "8000")
    env.setdefault("PUBLIC_BASE_URL", f"http://{host}:{port}")
    celery = str(BIN / "celery")
    processes = {
        "web": web_server_command(env, host, port),
        "worker": [
            celery,
            "-A",
            "ipvas",
            "worker",
            "-l",
            "info",
            "-c",
            env.get("WORKER_CONCURRENCY", "4"),
            "-n",
            "ipvas-prod@%h",
        ],
        "beat": [celery, "-A", "ipvas", "beat", "-l", "info", "-s", str(VAR / "celerybeat-schedule-prod")],
    }
    return supervise(processes, env, _banner(f"http://{host}:{port}", key_file))


# The whole suite runs in two processes (pytest-xdist), a test file to each at a time: its browser and its
# servers wait much of the time, and two cores do the rest. Each process has its own test database, var/
# directory and Redis databases (tests/settings.py). The files are handed out longest first, in the order
# tests/conftest.py sorts them (LONGEST_FILES), not xdist's by number of tests. Given arguments (one file,
# -k...), one process, as usual.
PARALLEL = ["-n", "2", "--dist", "loadfile", "--no-loadscope-reorder"]


def test(args: list[str]) -> int:
    ensure_venv()
    extra = PARALLEL if not args else []
    return subprocess.call([str(PYTHON), "-m", "pytest", *extra, *args], cwd=ROOT, env=dict(os.environ))


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else "up"
    if command == "up":
        return up()
    if command == "test":
        return test(argv[2:])
    if command == "prod":
        return prod()
    if command == "setup-venv":
        ensure_venv()
        return 0
    if command == "setup":
        ensure_venv()
        prepare_database(embedded_env())
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
