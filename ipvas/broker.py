"""Celery's broker transports, made to survive what the stock ones do not (docs/decisions.md).

Settings name these by dotted path (``CELERY_BROKER_TRANSPORT``), chosen from the
scheme of ``CELERY_BROKER_URL``:

* ``redis://`` and ``rediss://`` → :class:`RedisTransport`. kombu's Redis channel
  stops closing half way when the broker is gone while the channel waits in
  ``BRPOP``: reading that pending reply raises, and the rest of ``close()`` —
  cancelling its consumers and putting its unacknowledged messages back —
  never runs. Celery 5.7's consumer then closes the connection a second time,
  after it has detached the transport, and the postponed restore looks for
  the broker's host on ``None``: ``AttributeError: 'NoneType' object has no
  attribute 'hostname'``, which is not a connection error, so the worker exits
  ("Unrecoverable error") and never comes back. Here a channel finishes
  closing whatever the pending read raises, while the transport is still
  attached, so the second close has nothing left to do.
* ``filesystem://`` (the embedded set-up) → :class:`FilesystemTransport`. kombu
  writes a message straight into the queue folder, where another process can
  take it before it is complete (``JSONDecodeError``, and the worker exits),
  and takes one by moving it to the system's temporary folder, which on
  another file system is a copy that two consumers can both make. Here a
  message is written aside, flushed to disk, then renamed into the queue (a
  reader sees all of it or nothing), and taken by renaming it into this
  process's claim (one rename wins); a file that cannot be read is set aside
  in ``bad/`` and logged, never raised into the worker.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
import uuid
from pathlib import Path
from queue import Empty
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import filesystem, redis, virtual
from kombu.utils.encoding import bytes_to_str, str_to_bytes
from kombu.utils.json import dumps, loads
from kombu.utils.objects import cached_property
from kombu.utils.scheduling import round_robin_cycle

logger = logging.getLogger(__name__)

REDIS = "ipvas.broker:RedisTransport"
# The queue of the steps a person waits for at a screen (a TV user for the payment screen after the
# pre-check): a worker on Redis takes from it before any other queue (InteractiveFirst).
INTERACTIVE_QUEUE = "interactive"
FILESYSTEM = "ipvas.broker:FilesystemTransport"


def transport_for(url: str) -> str | None:
    """The transport (dotted path) for a broker URL, or None: kombu's own choice."""
    scheme = url.partition("://")[0].lower()
    if scheme in ("redis", "rediss"):
        return REDIS
    if scheme == "filesystem":
        return FILESYSTEM
    return None


# --- Redis ---------------------------------------------------------------------------------


class InteractiveFirst(round_robin_cycle):
    """The order a worker's Redis channel asks its queues in: the interactive queue first, the others in
    turn (kombu's round robin), and after ``IN_A_ROW`` messages in a row from the interactive queue the
    others get one turn before it.

    The channel sends one ``BRPOP`` over its queues' keys in this order, and Redis answers from the first
    key with a message, so a pre-check waits for no provisioning, deadline or SMS task queued before it,
    only for a free process (the prefetch is one a process). The bound keeps the other queues moving
    (paid orders' provisioning, refunds, the outbox relay, the sweeps) while pre-checks pour in: they get
    at least one message in ``IN_A_ROW + 1``. kombu's ``priority`` order would starve them behind the
    first queue; its default ``round_robin`` puts a pre-check behind one task of every other queue with a
    backlog.
    """

    IN_A_ROW = 4

    def __init__(self, it: Any = None) -> None:
        super().__init__(it)
        self.in_a_row = 0

    def update(self, it: Any) -> None:
        super().update(it)
        self._reorder()

    def rotate(self, last_used: str) -> str:
        super().rotate(last_used)
        self.in_a_row = self.in_a_row + 1 if last_used == INTERACTIVE_QUEUE else 0
        self._reorder()
        return last_used

    def _reorder(self) -> None:
        if INTERACTIVE_QUEUE not in self.items:
            return  # a worker started with -Q without it: plain round robin
        self.items.remove(INTERACTIVE_QUEUE)
        if self.in_a_row >= self.IN_A_ROW:
            self.items.append(INTERACTIVE_QUEUE)  # one turn for the others (taken anyway if they are empty)
        else:
            self.items.insert(0, INTERACTIVE_QUEUE)


class RedisChannel(redis.Channel):
    queue_order_strategy = "ipvas.broker:InteractiveFirst"
    _shared_client: Any = None

    def _create_client(self, asynchronous: bool = False) -> Any:
        """kombu builds a ``redis.Redis`` for every publish, fetch and acknowledgement, whose ``__init__``
        fills a table of some 170 response callbacks: 164 µs of CPU here, more than the LPUSH it sends, and
        29 % of the instructions of Celery's ``send_task`` (issue #17, docs/performance.md). One per
        connection pool does the same work: a client takes a connection from its pool for each command, and
        is safe to share between threads (ipvas/redis_cache.py does the same for the cache). A new channel
        (after a reconnection) has a new pool, and gets a new client."""
        if asynchronous:  # the consumer's BRPOP client (kombu makes that one once per use of ``client``)
            return super()._create_client(asynchronous=True)
        client = self._shared_client
        if client is None or client.connection_pool is not self.pool:
            client = self._shared_client = super()._create_client()
        return client

    def close(self) -> None:
        if self._in_poll:
            try:
                self._brpop_read()
            except Empty:
                pass
            except self.connection_errors as exc:
                # The broker went away while this channel waited for its BRPOP: there is
                # nothing to read; close the rest now, while the transport is attached.
                logger.info("broker gone while closing a channel: %r", exc)
        super().close()


class RedisTransport(redis.Transport):
    Channel = RedisChannel


# --- the file system (embedded) -------------------------------------------------------------


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class FilesystemChannel(filesystem.Channel):
    """Messages are files; each one appears whole, and is taken by exactly one consumer."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for folder in (self.writing_folder, self.claim_folder, self.bad_folder):
            folder.mkdir(parents=True, exist_ok=True)
        self._recover_claims()

    @cached_property
    def _root(self) -> Path:
        return Path(self.data_folder_out).parent

    @cached_property
    def writing_folder(self) -> Path:
        return Path(self.transport_options.get("writing_folder") or self._root / "writing")

    @cached_property
    def claim_folder(self) -> Path:
        return Path(self.transport_options.get("claim_folder") or self._root / "claimed")

    @cached_property
    def bad_folder(self) -> Path:
        return Path(self.transport_options.get("bad_folder") or self._root / "bad")

    def _recover_claims(self) -> None:
        """A consumer that died between taking a message and reading it left it claimed: back to its queue."""
        for claimed in self.claim_folder.iterdir():
            name, _, pid = claimed.name.rpartition(".")
            if not pid.isdigit() or _pid_alive(int(pid)):
                continue
            try:
                os.rename(claimed, Path(self.data_folder_in) / name)
                logger.warning("broker: message %s of a dead consumer (pid %s) put back", name, pid)
            except OSError:
                continue  # another process put it back first

    def _put(self, queue: str, payload: Any, **kwargs: Any) -> None:
        # Zero-padded wall-clock nanoseconds: names sort in publishing order across processes.
        name = f"{time.time_ns():020d}_{uuid.uuid4().hex}.{queue}.msg"
        writing = self.writing_folder / name
        try:
            with open(writing, "xb") as f:
                f.write(str_to_bytes(dumps(payload)))
                f.flush()
                os.fsync(f.fileno())
            os.rename(writing, Path(self.data_folder_out) / name)
        except OSError as exc:
            try:
                writing.unlink()
            except OSError:
                pass
            raise ChannelError(f"Cannot add message {name!r} to the queue: {exc}") from exc

    def _get(self, queue: str) -> Any:
        wanted = f"{queue}.msg"
        folder = Path(self.data_folder_in)
        for filename in sorted(os.listdir(folder)):
            if filename.partition(".")[2] != wanted:
                continue
            claimed = self.claim_folder / f"{filename}.{os.getpid()}"
            try:
                os.rename(folder / filename, claimed)
            except OSError:
                continue  # another consumer took it
            try:
                payload = claimed.read_bytes()
                message = loads(bytes_to_str(payload))
            except (OSError, ValueError) as exc:
                self._set_aside(claimed, filename, exc)
                continue
            claimed.unlink()
            return message
        raise Empty()

    # kombu makes an exchange's table by opening it for writing, then locking it, then writing: a process that
    # binds or reads it in between (the web, the worker and the beat starting together) read an empty file and
    # died of a JSONDecodeError. Here the table is made and changed under one lock, and empty reads as no binding.

    def get_table(self, exchange: str) -> list[Any]:
        path = self._exchange_file(exchange)
        try:
            with path.open("rb") as table:
                fcntl.flock(table.fileno(), fcntl.LOCK_SH)
                return _bindings(table.read())
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise ChannelError(f"Cannot open {path}") from exc

    def _queue_bind(self, exchange: str, routing_key: str, pattern: str, queue: str) -> None:
        path = self._exchange_file(exchange)
        self.control_folder.mkdir(exist_ok=True)
        binding = filesystem.exchange_queue_t(routing_key or "", pattern or "", queue or "")
        try:
            with os.fdopen(os.open(path, os.O_RDWR | os.O_CREAT, 0o644), "r+b", buffering=0) as table:
                fcntl.flock(table.fileno(), fcntl.LOCK_EX)
                bindings = _bindings(table.read())
                if binding not in bindings:
                    table.seek(0)
                    table.truncate()
                    table.write(str_to_bytes(dumps([binding, *bindings])))
        except OSError as exc:
            raise ChannelError(f"Cannot open {path}") from exc

    def _set_aside(self, claimed: Path, filename: str, exc: Exception) -> None:
        logger.error("broker: message file %s cannot be read (%r); set aside in %s", filename, exc, self.bad_folder)
        try:
            os.rename(claimed, self.bad_folder / filename)
        except OSError:
            pass


def _bindings(content: bytes) -> list[Any]:
    """An exchange's table as kombu writes it; an empty file (being made) is one with no binding yet."""
    text = bytes_to_str(content)
    return [filesystem.exchange_queue_t(*entry) for entry in loads(text)] if text else []


class FilesystemTransport(filesystem.Transport):
    Channel = FilesystemChannel
    # kombu keeps one broker state (declared bindings) per process, whatever the folder: a second
    # broker folder in the same process would be thought bound already, and its messages dropped.
    _states: dict[str, virtual.BrokerState] = {}

    def __init__(self, client: Any, **kwargs: Any) -> None:
        super().__init__(client, **kwargs)
        folder = os.path.abspath(str(client.transport_options.get("control_folder", "control")))
        self.state = self._states.setdefault(folder, virtual.BrokerState())


# --- RabbitMQ: delayed tasks routable before any worker has started -------------------------------

_delays_ready: set[str] = set()  # the broker URLs whose delay exchanges this process has declared and bound


def prepare_rabbitmq_delays(app: Any) -> None:
    """Declare kombu's delay exchanges and queues and bind every queue of ours to them, once per process.

    With quorum queues Celery publishes a task due later to the ``celery_delayed_*`` exchanges, whose
    routing back to the task's queue is bound only by a worker's delayed-delivery step, for the queues that
    worker consumes. Published before such a worker ever started on the virtual host (a fresh deployment,
    a queue whose own worker is not up yet), the task is unroutable: the broker confirms it and drops it.
    The outbox calls this before its first delayed publish, so that every declared queue is routable.
    """
    from kombu.transport.native_delayed_delivery import (
        bind_queue_to_native_delayed_delivery_exchange,
        declare_native_delayed_delivery_exchanges_and_queues,
    )

    url = app.conf.broker_url
    if url in _delays_ready:
        return
    with app.connection_for_write() as connection:
        declare_native_delayed_delivery_exchanges_and_queues(connection, "quorum")
        for queue in app.amqp.queues.values():
            queue.bind(connection.default_channel).declare()
            bind_queue_to_native_delayed_delivery_exchange(connection, queue)
    _delays_ready.add(url)
