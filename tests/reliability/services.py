"""Servers of our own for fault tests: a Redis or a PostgreSQL cluster that a test may kill and start again.

The machine's shared PostgreSQL (5432), Redis (6379) and RabbitMQ are never
stopped: other engineers and runs use them. Each server here listens on a
free port of its own, lives in a temporary directory, and is stopped by its
own process id (or its own ``pg_ctl -D``), never by name.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def stop_group(process: subprocess.Popen, *, timeout: float) -> None:
    """End a process started with ``start_new_session=True`` and its children: SIGTERM, then SIGKILL after
    ``timeout`` seconds. Nothing when it has ended already."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def wait_port(port: int, *, up: bool, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                if up:
                    return
        except OSError:
            if not up:
                return
        time.sleep(0.1)
    raise RuntimeError(f"port {port} did not go {'up' if up else 'down'} in {timeout} s")


def program(name: str, *, package: str) -> str:
    """The path of a program a test runs (``/usr/sbin`` too, which is not on every user's PATH). Missing, the
    test skips here and fails in CI, as the integration tier does without its services (tests/conftest.py)."""
    found = shutil.which(name) or shutil.which(name, path="/usr/local/sbin:/usr/sbin:/sbin")
    if found:
        return found
    cannot_run(f"{name} is not installed (apt-get install {package})")


def cannot_run(why: str) -> NoReturn:
    """A fault test that cannot run here skips, and fails in CI, which must run every one of them."""
    if os.environ.get("CI"):
        pytest.fail(f"{why}: CI must run this test", pytrace=False)
    pytest.skip(why)


class OwnRedis:
    """``redis-server`` on its own port, no persistence: killed, it comes back empty, as a restarted
    cache or a broker without AOF does."""

    def __init__(self, port: int | None = None) -> None:
        self.server = program("redis-server", package="redis-server")
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.server, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--daemonize", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_port(self.port, up=True)

    def kill(self) -> None:
        """``kill -9``: no goodbye to its clients."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
        wait_port(self.port, up=False)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class OwnRabbitMQ:
    """A RabbitMQ node of our own: its own node name, AMQP and distribution ports, and data under a temporary
    directory. ``kill()`` is ``kill -9`` of its Erlang VM; ``start()`` brings it back on the same data, so its
    quorum queues keep what they held, as a node that crashed and restarted does. (Debian's ``rabbitmq-server``
    runs the node as the ``rabbitmq`` user: the directory is given to it.)"""

    def __init__(self) -> None:
        self.program = program("rabbitmq-server", package="rabbitmq-server")
        self.port = free_port()
        self.node = f"ipvastest{self.port}@localhost"
        self.root = Path(tempfile.mkdtemp(prefix="ipvas-rabbitmq-"))
        (self.root / "enabled_plugins").write_text("[].\n")  # no management plugin: it starts faster
        (self.root / "log").mkdir()
        if os.geteuid() == 0:
            shutil.chown(self.root, "rabbitmq", "rabbitmq")
            for path in self.root.iterdir():
                shutil.chown(path, "rabbitmq", "rabbitmq")
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    def url(self, db: int = 0) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}//"

    def _env(self) -> dict[str, str]:
        root = self.root
        return {
            **os.environ,
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.port + 20000 if self.port < 45000 else self.port - 20000),
            "RABBITMQ_MNESIA_BASE": str(root / "mnesia"),
            "RABBITMQ_MNESIA_DIR": str(root / "mnesia" / "node"),
            "RABBITMQ_LOG_BASE": str(root / "log"),
            "RABBITMQ_PID_FILE": str(root / "pid"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(root / "enabled_plugins"),
            "RABBITMQ_FEATURE_FLAGS_FILE": str(root / "feature_flags"),
            "RABBITMQ_PLUGINS_EXPAND_DIR": str(root / "plugins-expand"),
            "RABBITMQ_CONFIG_FILE": str(root / "rabbitmq"),
        }

    def start(self) -> None:
        log = (self.root / "server.log").open("ab")
        self.process = subprocess.Popen(
            [self.program], env=self._env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        wait_port(self.port, up=True, timeout=90)

    def _vm_pids(self) -> list[int]:
        """The node's processes (the Erlang VM, its helpers, the shells that started it): those whose
        environment names this node. Debian's script starts the VM in a session of its own under ``su``, so
        the process group of ``start()``'s child does not hold it; the node's name does."""
        mark = f"RABBITMQ_NODENAME={self.node}".encode()
        pids = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if mark in (entry / "environ").read_bytes().split(b"\0"):
                        pids.append(int(entry.name))
                except OSError:
                    continue
        return pids

    def kill(self) -> None:
        """``kill -9`` of the node's processes: no goodbye to its clients."""
        for pid in self._vm_pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if self.process is not None:
            self.process.wait()
        wait_port(self.port, up=False)

    def stop(self) -> None:
        for pid in self._vm_pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        if self.process is not None:
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
        for pid in self._vm_pids():  # what did not end in time
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.root, ignore_errors=True)


def _postgres_bin() -> Path | None:
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.path.exists(os.path.join(candidate, "initdb")):
            return Path(candidate)
    found = shutil.which("initdb")
    return Path(found).parent if found else None


# The dump of the first database migrated in this test process (``OwnPostgres.create_migrated_database``).
_migrated_dump: Path | None = None


class OwnPostgres:
    """A PostgreSQL cluster of our own: ``initdb`` into a temporary directory, its own port and socket
    directory; ``restart()`` stops it with ``-m immediate`` (as a crash would) and starts it again."""

    PREFIX = "ipvas-pg-"  # of its temporary directory

    def __init__(self) -> None:
        bindir = _postgres_bin()
        if bindir is None:
            cannot_run("PostgreSQL's initdb is not installed (apt-get install postgresql)")
        self.bin = bindir
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix=self.PREFIX))
        self.data = self.root / "data"
        self.socket_dir = self.root / "socket"
        self.socket_dir.mkdir()
        self.log = self.root / "postgres.log"
        # PostgreSQL refuses to run as root: as root, the cluster belongs to the postgres user.
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            self.as_user = ["runuser", "-u", "postgres", "--"]
            shutil.chown(self.root, "postgres")
            shutil.chown(self.socket_dir, "postgres")
        self._make_cluster()
        self.start()

    def _make_cluster(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")

    def _run(self, program: str, *args: str) -> None:
        subprocess.run([*self.as_user, str(self.bin / program), *args], check=True, capture_output=True)

    def url(self, name: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{name}"

    def start(self) -> None:
        options = f"-p {self.port} -k {self.socket_dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.log), "-w", "start")
        wait_port(self.port, up=True)

    def stop_immediately(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        wait_port(self.port, up=False)

    def restart(self) -> None:
        self.stop_immediately()
        self.start()

    def create_database(self, name: str) -> None:
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f'create database "{name}"')

    def create_migrated_database(self, name: str, env: dict[str, str]) -> None:
        """A database as ``manage.py migrate`` leaves it (``env``: the settings of the processes that will use
        it). The first of a test process is migrated, then dumped; the later ones, in this cluster or another,
        are restored from that dump: the same tables and rows in under a second instead of 9 s of migrating,
        most of which is Django loading and planning the migrations."""
        global _migrated_dump
        self.create_database(name)
        url = self.url(name)
        if _migrated_dump is None:
            migrated = subprocess.run(
                [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"],
                cwd=ROOT, env={**env, "DATABASE_URL": url}, capture_output=True, text=True, timeout=300,
            )  # fmt: skip
            if migrated.returncode != 0:
                raise RuntimeError(f"manage.py migrate failed:\n{migrated.stdout[-2000:]}\n{migrated.stderr[-4000:]}")
            dump = Path(tempfile.mkdtemp(prefix="ipvas-migrated-")) / "migrated.dump"
            subprocess.run([str(self.bin / "pg_dump"), "-Fc", "-f", str(dump), url], check=True, capture_output=True)
            _migrated_dump = dump
            atexit.register(shutil.rmtree, dump.parent, ignore_errors=True)
            return
        subprocess.run(
            [str(self.bin / "pg_restore"), "--exit-on-error", "--single-transaction", "-d", url, str(_migrated_dump)],
            check=True, capture_output=True,
        )  # fmt: skip

    def destroy(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        except subprocess.CalledProcessError:
            pass  # not running
        shutil.rmtree(self.root, ignore_errors=True)


class OwnStandby(OwnPostgres):
    """A hot standby of an ``OwnPostgres``, streaming from it: ``pg_basebackup -R`` into a directory of its own,
    started on its own port. ``pause()`` stops it replaying what it receives, ``resume()`` goes on."""

    PREFIX = "ipvas-pg-standby-"

    def __init__(self, primary: OwnPostgres) -> None:
        self.primary = primary
        super().__init__()

    def _make_cluster(self) -> None:
        self._run(
            "pg_basebackup", "-h", "127.0.0.1", "-p", str(self.primary.port), "-U", "postgres",
            "-D", str(self.data), "-R", "-X", "stream", "-c", "fast", "--no-sync",
        )  # fmt: skip

    def _sql(self, url: str, statement: str, *params: object) -> Any:
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            return conn.execute(statement, params).fetchone()

    def pause(self) -> None:
        self._sql(self.url("postgres"), "select pg_wal_replay_pause()")

    def resume(self) -> None:
        self._sql(self.url("postgres"), "select pg_wal_replay_resume()")

    def cut_off(self, timeout: float = 30) -> None:
        """Its primary out of reach (a network cut): streaming stops, the standby goes on answering."""
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute("alter system set primary_conninfo = 'host=127.0.0.1 port=1'")
            conn.execute("select pg_reload_conf()")
        deadline = time.monotonic() + timeout
        while self._sql(self.url("postgres"), "select count(*) from pg_stat_wal_receiver")[0]:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the standby still streams from its primary after {timeout} s")
            time.sleep(0.05)

    def wait_for_primary(self, *, replayed: bool = True, timeout: float = 30) -> None:
        """Until everything the primary has written so far is received (and, with ``replayed``, replayed)."""
        (lsn,) = self._sql(self.primary.url("postgres"), "select pg_current_wal_lsn()::text")
        function = "pg_last_wal_replay_lsn" if replayed else "pg_last_wal_receive_lsn"
        deadline = time.monotonic() + timeout
        while not self._sql(self.url("postgres"), f"select coalesce({function}() >= %s::pg_lsn, false)", lsn)[0]:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the standby did not reach the primary's {lsn} in {timeout} s")
            time.sleep(0.05)


class OwnPgBouncer:
    """PgBouncer in front of an ``OwnPostgres``, as docs/capacity.md puts one in front of many web and worker
    processes: transaction pooling, and a server connection taken round robin for each transaction
    (``server_round_robin``), so that anything that counts on keeping one server connection between
    transactions (a cursor held open, a session setting, a prepared statement) fails here, not by luck."""

    def __init__(self, postgres: OwnPostgres, *, pool_size: int = 6) -> None:
        self.binary = program("pgbouncer", package="pgbouncer")
        self.postgres = postgres
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="ipvas-pgbouncer-"))
        self.pidfile = self.root / "pgbouncer.pid"
        (self.root / "userlist.txt").write_text('"postgres" ""\n')
        (self.root / "pgbouncer.ini").write_text(
            "[databases]\n"
            f"* = host=127.0.0.1 port={postgres.port}\n"
            "[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {self.port}\nunix_socket_dir =\n"
            f"auth_type = trust\nauth_file = {self.root / 'userlist.txt'}\nadmin_users = postgres\n"
            f"pool_mode = transaction\nserver_round_robin = 1\ndefault_pool_size = {pool_size}\n"
            "max_client_conn = 500\nignore_startup_parameters = extra_float_digits,options\n"
            f"logfile = {self.root / 'pgbouncer.log'}\npidfile = {self.pidfile}\n"
        )
        # PgBouncer refuses to run as root, as PostgreSQL does.
        self.as_user = postgres.as_user
        if self.as_user:
            for path in (self.root, *self.root.iterdir()):
                shutil.chown(path, "postgres")
        subprocess.run([*self.as_user, self.binary, "-d", str(self.root / "pgbouncer.ini")], check=True)
        wait_port(self.port, up=True)

    def url(self, name: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{name}"

    def create_database(self, name: str) -> None:
        self.postgres.create_database(name)

    def create_migrated_database(self, name: str, env: dict[str, str]) -> None:
        self.postgres.create_migrated_database(name, env)

    def pools(self) -> list[dict[str, Any]]:
        """``SHOW POOLS`` of its admin console: per database, its clients and server connections."""
        import psycopg

        with psycopg.connect(self.url("pgbouncer"), autocommit=True, prepare_threshold=None) as conn:
            cursor = conn.execute("SHOW POOLS")
            names = [column.name for column in cursor.description or ()]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def stop(self) -> None:
        with contextlib.suppress(FileNotFoundError, ProcessLookupError, ValueError):
            os.kill(int(self.pidfile.read_text().strip()), signal.SIGTERM)
        wait_port(self.port, up=False)
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def own_servers(broker: type[OwnRedis] | type[OwnRabbitMQ] = OwnRedis) -> Iterator[dict[str, Any]]:
    """A PostgreSQL cluster, a broker (a Redis or a RabbitMQ node) and a cache Redis of the test's own, as
    ``{"postgres", "broker", "cache"}``; stopped, and the cluster removed, afterwards."""
    made: dict[str, Any] = {}
    try:
        made["postgres"] = OwnPostgres()
        made["broker"] = broker()
        made["cache"] = OwnRedis()
        yield made
    finally:
        for name in ("broker", "cache"):
            if name in made:
                made[name].stop()
        if "postgres" in made:
            made["postgres"].destroy()
