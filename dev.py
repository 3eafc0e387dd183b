#!/usr/bin/env python3
"""The two commands of the README, needing nothing but Python 3.11.

    python3 dev.py up      set up, then run web + Celery worker + Celery beat (Ctrl-C stops all)
    python3 dev.py test    set up, then run the whole test suite (extra arguments go to pytest)
    python3 dev.py setup   only set up: .venv, pinned requirements, database, demo data

The embedded set-up needs no server: SQLite under var/, Celery's broker on
the file system under var/broker/, the sandbox simulating every outside
system. Set DATABASE_URL, CELERY_BROKER_URL and REDIS_URL to use
PostgreSQL and Redis instead (docs/configuration.md).
"""

from __future__ import annotations

import hashlib
import os
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
VAR = ROOT / "var"
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
        run(PYTHON, "-m", "pip", "install", "--disable-pip-version-check", "-q", "-r", "requirements.txt")
        stamp.write_text(digest)


def embedded_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("IPVAS_SANDBOX", "1")
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def prepare_database(env: dict[str, str]) -> None:
    say("migrating the database")
    run(PYTHON, "manage.py", "migrate", "--no-input", "-v", "0", env=env)
    say("loading the demo data")
    run(PYTHON, "manage.py", "seed_demo", env=env)
    key_file = VAR / "demo_epg_key.txt"
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


def up() -> int:
    ensure_venv()
    env = embedded_env()
    prepare_database(env)
    host = env.get("IPVAS_HOST", "127.0.0.1")
    port = env.get("IPVAS_PORT", "8000")
    env.setdefault("PUBLIC_BASE_URL", f"http://{host}:{port}")
    celery = str(BIN / "celery")
    processes = {
        "web": [str(PYTHON), "manage.py", "runserver", f"{host}:{port}", "--noreload"],
        "worker": [
            celery,
            "-A",
            "ipvas",
            "worker",
            "-l",
            "info",
            "-c",
            "2",
            "-Q",
            "default,deadlines,provisioning,sms",
            "-n",
            "ipvas@%h",
        ],
        "beat": [celery, "-A", "ipvas", "beat", "-l", "info", "-s", str(VAR / "celerybeat-schedule")],
    }
    children: dict[str, subprocess.Popen[bytes]] = {}
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    for name, argv in processes.items():
        # Each child leads its own process group, so that stopping it also
        # stops what it forked (the worker's pool) and nothing is orphaned.
        children[name] = subprocess.Popen(argv, cwd=ROOT, env=env, start_new_session=True)
    base = f"http://{host}:{port}"
    key_file = VAR / "demo_epg_key.txt"
    say("running: web, Celery worker, Celery beat. Ctrl-C stops them all.")
    say(f"  home        {base}/")
    say(f"  admin       {base}/admin/   (user 'admin', password in var/demo_admin_password.txt)")
    say(f"  EPG API     {base}/api/epg/v1/   docs {base}/api/epg/v1/docs/")
    say(
        f"  clerk (CRM) {base}/sandbox/crm/frame/?staff_id=clerk01&store_code=NX-YC-001&virtual_staff_id=V0001&name=demo"
    )
    if key_file.exists():
        say(f"  demo EPG key in var/demo_epg_key.txt: Authorization: Api-Key {key_file.read_text().strip()}")
    exit_code = 0
    while not stopping:
        for name, child in children.items():
            if child.poll() is not None:
                say(f"{name} stopped (exit {child.returncode}); stopping the others")
                exit_code = child.returncode or 1
                stopping = True
                break
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


def test(args: list[str]) -> int:
    ensure_venv()
    env = dict(os.environ)
    return subprocess.call([str(PYTHON), "-m", "pytest", *args], cwd=ROOT, env=env)


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else "up"
    if command == "up":
        return up()
    if command == "test":
        return test(argv[2:])
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
