"""The broker transports of ipvas/broker.py (issue #11, items 1 and 5).

The embedded broker (files under var/broker/): a message appears whole or not
at all, exactly one consumer takes it, and a file that cannot be read is set
aside instead of killing the worker, shown with several publishing and
consuming processes at once and with a real worker. The Redis transport's
channel finishes closing when the broker is gone under its pending BRPOP (the
worker surviving a killed Redis is tests/reliability/test_dependency_faults.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from queue import Empty

import pytest

from ipvas.broker import FILESYSTEM, REDIS, transport_for
from tests.ipvas.broker_peer import connection
from tests.reliability.services import stop_group

ROOT = Path(__file__).resolve().parents[2]


def test_each_broker_url_gets_its_transport():
    assert transport_for("redis://127.0.0.1:6379/2") == REDIS
    assert transport_for("rediss://cache.example.com:6380/0") == REDIS
    assert transport_for("filesystem://") == FILESYSTEM
    assert transport_for("amqp://guest@localhost//") is None
    assert transport_for("memory://") is None


# --- the embedded broker -------------------------------------------------------------------


def test_an_empty_or_half_written_message_is_set_aside_and_the_next_one_delivered(tmp_path):
    root = str(tmp_path)
    with connection(root) as conn:
        queue = conn.SimpleQueue("default")
        queue.put({"id": "whole"})
        # What kombu's own transport leaves when a reader is faster than the writer, or the disk is full.
        (tmp_path / "queue" / "0_empty.default.msg").write_bytes(b"")
        (tmp_path / "queue" / "0_half.default.msg").write_bytes(b'{"body": "eyJ')
        message = queue.get(timeout=2)
        message.ack()
        with pytest.raises(Empty):
            queue.get(timeout=0.3)

    assert message.payload == {"id": "whole"}
    assert sorted(p.name for p in (tmp_path / "bad").iterdir()) == ["0_empty.default.msg", "0_half.default.msg"]
    assert list((tmp_path / "queue").iterdir()) == []


def test_kombus_own_file_system_transport_raises_on_an_empty_message(tmp_path):
    """Why the embedded broker is ours: the same empty file kills kombu's reader (and the worker)."""
    root = str(tmp_path)
    (tmp_path / "queue").mkdir()
    (tmp_path / "queue" / "0_empty.default.msg").write_bytes(b"")
    with connection(root, transport="filesystem") as conn:
        queue = conn.SimpleQueue("default")
        with pytest.raises(ValueError):  # json.JSONDecodeError
            queue.get(timeout=1)


def test_an_exchange_table_another_process_is_making_does_not_stop_a_bind(tmp_path):
    """kombu makes an exchange's table by opening it for writing, then locking it, then writing: a process that
    binds in between (the web, the worker and the beat starting together) found it empty and died of a
    JSONDecodeError (seen in CI, three publishers starting at once). Ours takes an empty table as one with no
    binding yet, binds, and the message goes through."""
    (tmp_path / "control").mkdir()
    (tmp_path / "control" / "default.exchange").write_bytes(b"")  # opened for writing, not yet written
    with connection(str(tmp_path)) as conn:
        queue = conn.SimpleQueue("default")
        queue.put({"id": "bound"})
        message = queue.get(timeout=2)
        message.ack()
    assert message.payload == {"id": "bound"}


def test_a_message_is_never_visible_before_it_is_complete(tmp_path, monkeypatch):
    root = str(tmp_path)
    seen_while_writing: list[list[str]] = []
    real_fsync = os.fsync

    def fsync_and_look(fd: int) -> None:
        seen_while_writing.append(sorted(os.listdir(tmp_path / "queue")))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync_and_look)
    with connection(root) as conn:
        conn.SimpleQueue("default").put({"id": "one"})

    assert seen_while_writing == [[]]  # written aside; renamed into the queue only once complete
    assert len(list((tmp_path / "queue").iterdir())) == 1
    assert list((tmp_path / "writing").iterdir()) == []


def test_a_message_that_cannot_be_written_leaves_nothing_behind(tmp_path, monkeypatch):
    """The disk is full: the publisher gets an error (the outbox keeps the message), no file is half there."""
    root = str(tmp_path)

    def no_space(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    with connection(root) as conn:
        with pytest.raises(Exception, match="No space left"):
            conn.SimpleQueue("default").put({"id": "one"})

    assert list((tmp_path / "queue").iterdir()) == []
    assert list((tmp_path / "writing").iterdir()) == []


def test_a_message_claimed_by_a_consumer_that_died_goes_back_to_its_queue(tmp_path):
    root = str(tmp_path)
    with connection(root) as conn:
        conn.SimpleQueue("default")  # the folders
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    claimed = tmp_path / "claimed" / f"0_lost.default.msg.{int(dead.stdout)}"
    claimed.write_text('{"body": "x"}')

    with connection(root) as conn:
        conn.SimpleQueue("default").qsize()  # a new channel looks for the dead's claims

    assert (tmp_path / "queue" / "0_lost.default.msg").exists()
    assert not claimed.exists()


def test_concurrent_publishers_and_consumers_deliver_every_message_exactly_once(tmp_path):
    """Several processes at once: none loses, doubles or half-reads a message."""
    root = str(tmp_path / "broker")
    publishers, consumers, each = 3, 3, 150
    stop = tmp_path / "stop"
    outs = [tmp_path / f"consumer-{n}.txt" for n in range(consumers)]
    peer = [sys.executable, "-m", "tests.ipvas.broker_peer"]
    taking = [
        subprocess.Popen([*peer, "consume", root, str(out), str(stop)], cwd=ROOT, stderr=subprocess.PIPE)
        for out in outs
    ]
    sending = [
        subprocess.Popen([*peer, "publish", root, f"p{n}", str(each)], cwd=ROOT, stderr=subprocess.PIPE)
        for n in range(publishers)
    ]
    try:
        for process in sending:
            assert process.wait(timeout=120) == 0, process.stderr.read().decode()[-2000:]
        stop.touch()
        for process in taking:
            assert process.wait(timeout=120) == 0, process.stderr.read().decode()[-2000:]
    finally:
        for process in [*sending, *taking]:
            if process.poll() is None:
                process.kill()

    received = Counter(line for out in outs for line in out.read_text().split())
    expected = {f"p{p}-{n}" for p in range(publishers) for n in range(each)}
    assert set(received) == expected, f"lost: {sorted(expected - set(received))[:10]}"
    assert [m for m, times in received.items() if times > 1] == []
    assert list(Path(root, "bad").iterdir()) == []
    assert sum(1 for out in outs if out.read_text()) > 1, "only one consumer took messages: no race was tried"


def test_the_embedded_worker_survives_an_empty_message_file(tmp_path):
    """An empty ``…default.msg`` (a reader that overtook its writer) once stopped the worker, and with it
    ``dev.py up``. The worker must set it aside and go on answering."""
    env = {
        **os.environ,
        "IPVAS_VAR_DIR": str(tmp_path / "var"),
        "DJANGO_SETTINGS_MODULE": "ipvas.settings",
        "IPVAS_SANDBOX": "1",
    }
    for name in ("CELERY_BROKER_URL", "DATABASE_URL", "REDIS_URL", "CELERY_TASK_ALWAYS_EAGER"):
        env.pop(name, None)
    name = f"fs-{uuid.uuid4().hex[:6]}@test"
    log = tmp_path / "worker.log"
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "ipvas", "worker", "-P", "solo", "-n", name, "-l", "info",
         "--without-gossip", "--without-mingle"],
        cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while b" ready." not in log.read_bytes():
            assert worker.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
        queue = tmp_path / "var" / "broker" / "queue"
        (queue / "0000_empty.default.msg").write_bytes(b"")
        (queue / "0001_half.deadlines.msg").write_bytes(b'{"body": "eyJ')
        time.sleep(2)  # the worker polls every 0.1 s
        ping = subprocess.run(
            [sys.executable, "-m", "celery", "-A", "ipvas", "inspect", "ping", "-d", name, "-t", "10"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        alive = worker.poll() is None
    finally:
        stop_group(worker, timeout=20)

    output = log.read_text(errors="replace")
    assert alive, output[-3000:]
    assert "pong" in ping.stdout, ping.stdout + ping.stderr
    assert "Unrecoverable" not in output
    assert sorted(p.name for p in (tmp_path / "var" / "broker" / "bad").iterdir()) == [
        "0000_empty.default.msg",
        "0001_half.deadlines.msg",
    ]


# --- Redis ---------------------------------------------------------------------------------

# kombu's own transport fails this test (celery 5.7.0, kombu 5.7.0: the worker exits with AttributeError
# 'NoneType' object has no attribute 'hostname'); the cause is in docs/decisions.md (issue #11).


def test_a_worker_with_a_task_in_hand_survives_its_redis_broker_killed_and_works_when_it_returns(tmp_path):
    from tests.reliability.services import OwnRedis

    broker = OwnRedis()
    env = {**os.environ, "PEER_BROKER_URL": broker.url(), "PEER_BROKER_TRANSPORT": REDIS}
    log = tmp_path / "worker.log"
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "tests.ipvas.celery_peer", "worker", "-P", "prefork", "-c", "2",
         "-n", f"peer-{uuid.uuid4().hex[:6]}@test", "-l", "info", "--without-gossip", "--without-mingle"],
        cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip

    def send(seconds: float, done: Path) -> None:
        code = f"from tests.ipvas.celery_peer import nap; nap.delay({seconds}, {str(done)!r})"
        subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True, timeout=60)

    def wait(predicate, what: str, timeout: float = 30) -> None:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        while not predicate():
            assert time.monotonic() < deadline, f"{what}:\n{log.read_text(errors='replace')[-3000:]}"
            time.sleep(0.1)

    in_hand, after = tmp_path / "in-hand.done", tmp_path / "after.done"
    try:
        wait(lambda: b" ready." in log.read_bytes(), "the worker did not start")
        send(3, in_hand)
        wait(lambda: b"received" in log.read_bytes(), "the task was not received")
        time.sleep(0.5)  # the task runs; the worker, with a process free, waits in BRPOP for more
        broker.kill()
        time.sleep(4)  # the worker used to be gone within 5 s
        survived = worker.poll() is None
        broker.start()
        if survived:
            send(0.1, after)
            wait(after.exists, "the worker did not take work after the broker came back", timeout=60)
    finally:
        stop_group(worker, timeout=20)
        broker.stop()

    output = log.read_text(errors="replace")
    assert survived, output[-3000:]
    assert "Unrecoverable" not in output
    assert in_hand.exists() and after.exists()


def _take_in_order(
    broker_url: str, transport: str, queues: list[str], backlog: dict[str, int], interactive: int = 1
) -> list[str]:
    """Publish ``backlog`` (queue -> how many), then ``interactive`` messages to "interactive"; consume one
    message at a time from all of ``queues`` in one channel, as a worker with a prefetch of one does: the
    queues in the order their messages came."""
    from kombu import Connection, Consumer, Exchange, Producer, Queue

    exchange = Exchange("ipvas-test", type="direct")
    declared = [Queue(name, exchange, routing_key=name) for name in queues]
    taken: list[str] = []
    with Connection(broker_url, transport=transport) as conn:
        channel = conn.channel()
        producer = Producer(channel, exchange)
        for queue in declared:
            queue(channel).declare()
        for name, count in backlog.items():
            for i in range(count):
                producer.publish({"n": i}, routing_key=name)
        for i in range(interactive):
            producer.publish({"n": i}, routing_key="interactive")

        def on_message(body: dict, message) -> None:  # type: ignore[no-untyped-def]
            taken.append(message.delivery_info["routing_key"])
            message.ack()

        total = sum(backlog.values()) + interactive
        with Consumer(conn.channel(), declared, callbacks=[on_message], prefetch_count=1):
            while len(taken) < total:
                conn.drain_events(timeout=5)
    return taken


def test_a_worker_on_redis_takes_the_interactive_queue_before_a_backlog_and_the_others_in_turn():
    """The pre-check (queue "interactive": the TV waits for its payment screen) must not wait behind the
    provisioning and deadline tasks queued before it: the worker's channel asks "interactive" first in every
    BRPOP, wherever it is in its list of queues, and the other queues keep their round robin."""
    from tests.reliability.services import OwnRedis

    broker = OwnRedis()
    try:
        queues = ["default", "deadlines", "provisioning", "interactive"]  # interactive declared last on purpose
        ours = _take_in_order(broker.url(2), REDIS, queues, {"provisioning": 4, "deadlines": 4})
        broker.stop()
        broker.start()
        stock = _take_in_order(broker.url(2), "redis", queues, {"provisioning": 4, "deadlines": 4})
    finally:
        broker.stop()

    assert ours[0] == "interactive", ours
    assert ours[1:] == ["deadlines", "provisioning"] * 4  # in turn: neither starves the other
    # kombu's own order (round robin) put it behind a task of each queue with a backlog, at best.
    assert stock.index("interactive") > 0, stock


def test_a_stream_of_pre_checks_leaves_the_other_queues_a_turn_in_every_five():
    """Pre-checks pouring in (a live event, the sweep handing back a batch after an outage) must not stop
    the paid orders' provisioning, refunds and the sweeps: after four interactive messages in a row the
    others get one turn."""
    from ipvas.broker import InteractiveFirst
    from tests.reliability.services import OwnRedis

    broker = OwnRedis()
    try:
        queues = ["default", "deadlines", "provisioning", "interactive"]
        taken = _take_in_order(broker.url(2), REDIS, queues, {"provisioning": 3, "deadlines": 3}, interactive=10)
    finally:
        broker.stop()

    assert InteractiveFirst.IN_A_ROW == 4
    assert taken[:10] == ["interactive"] * 4 + ["deadlines"] + ["interactive"] * 4 + ["provisioning"], taken
    assert taken[10:] == ["interactive", "interactive", "deadlines", "provisioning", "deadlines", "provisioning"]


def test_a_redis_channel_publishes_and_acknowledges_through_one_client_and_goes_on_after_the_broker_returns(
    monkeypatch,
):
    """kombu built a ``redis.Redis`` (some 170 response callbacks filled in) for every publish and every
    acknowledgement, which cost more CPU than the LPUSH itself (issue #17); our channel keeps one per
    connection pool, and a new channel (after the broker went and came back) a new one."""
    import redis as redis_py
    from kombu import Connection, Exchange, Queue

    from tests.reliability.services import OwnRedis

    built = Counter()
    init = redis_py.Redis.__init__

    def counted(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        built["clients"] += 1
        init(self, *args, **kwargs)

    queue = Queue("default", Exchange("ipvas-test", type="direct"), routing_key="default")

    def round_trip(conn: Connection, count: int) -> list[int]:
        producer = conn.Producer()
        for n in range(count):
            producer.publish({"n": n}, exchange=queue.exchange, routing_key="default", declare=[queue], retry=True)
        taken = []
        with conn.SimpleQueue(queue) as simple:
            for _ in range(count):
                message = simple.get(timeout=5)
                taken.append(message.payload["n"])
                message.ack()
        return taken

    broker = OwnRedis()
    try:
        with Connection(broker.url(2), transport=REDIS) as conn:
            round_trip(conn, 1)  # the channels and their pools
            monkeypatch.setattr(redis_py.Redis, "__init__", counted)
            assert round_trip(conn, 20) == list(range(20))
            assert built["clients"] <= 2, built  # kombu's own: one per publish, get and acknowledgement (60)

            broker.stop()
            broker.start()
            conn.close()  # as a worker's consumer does on a connection error: new channels, new pools
            assert round_trip(conn, 5) == list(range(5))
    finally:
        broker.stop()
