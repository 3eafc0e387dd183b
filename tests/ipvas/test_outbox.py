"""The transactional outbox (ipvas.outbox): work asked for in a transaction runs only if it commits.

What is published is observed with Celery's own ``after_task_publish``
signal, which fires once the message is handed to the broker (``memory://``
in tests, Redis when the suite runs against it).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import SimpleNamespace

import pytest
from celery.signals import after_task_publish
from django.conf import settings as django_settings
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from ipvas import outbox
from ipvas.models import OutboxMessage
from tests.support.tasks import import_tasks

pytestmark = pytest.mark.django_db

# No worker knows this task: if a worker ever receives one, it drops it. The outbox
# takes a task by reference and keeps its name; a stand-in with the name will do.
PROBE = "tests.outbox_probe"
PROBE_TASK = SimpleNamespace(name=PROBE)
START = "2026-11-25 12:00:00+08:00"
ON_POSTGRESQL = connection.vendor == "postgresql"


@dataclass(frozen=True)
class Published:
    task: str
    kwargs: dict
    eta: str | None


@pytest.fixture
def published() -> Iterator[list[Published]]:
    sent: list[Published] = []

    def record(sender: str | None = None, body=None, headers=None, **_: object) -> None:
        if sender == PROBE:
            sent.append(Published(task=sender, kwargs=body[1], eta=(headers or {}).get("eta")))

    after_task_publish.connect(record, weak=False)
    yield sent
    after_task_publish.disconnect(record)


def probe(n: int = 1, *, due_at: datetime | None = None) -> OutboxMessage:
    return outbox.enqueue(PROBE_TASK, kwargs={"n": n}, due_at=due_at)


def unrelayed() -> int:
    return OutboxMessage.objects.filter(relayed_at__isnull=True).count()


class TestOnCommit:
    @pytest.fixture(autouse=True)
    def _relay_on_commit(self, settings):
        settings.OUTBOX_RELAY_ON_COMMIT = True

    def test_a_rolled_back_transaction_leaves_nothing(self, published, django_capture_on_commit_callbacks):
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            with pytest.raises(RuntimeError), transaction.atomic():
                probe()
                raise RuntimeError("the change failed")

        assert callbacks == []
        assert not OutboxMessage.objects.exists()
        assert published == []

    def test_a_committed_message_is_published_on_commit(self, published, django_capture_on_commit_callbacks):
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            with transaction.atomic():
                message = probe(7)
            # Nothing leaves before the commit.
            assert published == []

        assert len(callbacks) == 1
        assert published == [Published(task=PROBE, kwargs={"n": 7}, eta=None)]
        message.refresh_from_db()
        assert message.relayed_at is not None
        # The beat relay does not publish it again.
        assert outbox.relay_pending() == 0
        assert len(published) == 1

    def test_the_relay_on_commit_is_one_statement_for_all_the_messages_of_a_commit(
        self, published, django_capture_on_commit_callbacks
    ):
        """Issue #17: the messages are in memory; the relay only marks them, in one UPDATE."""
        with django_capture_on_commit_callbacks(execute=False) as callbacks, transaction.atomic():
            outbox.enqueue_many(PROBE_TASK, kwargs_list=[{"n": n} for n in range(5)])
        with CaptureQueriesContext(connection) as queries:
            for callback in callbacks:
                callback()

        assert [q["sql"].split()[0] for q in queries.captured_queries] == ["UPDATE"]
        assert sorted(p.kwargs["n"] for p in published) == [0, 1, 2, 3, 4]
        assert unrelayed() == 0

    def test_published_but_not_marked_is_published_again_by_the_beat_relay_once_stale(
        self, published, django_capture_on_commit_callbacks, time_machine, settings
    ):
        """The process dies between the publish and the mark: the task runs twice (every task allows it),
        it is never lost; and the beat relay leaves a young message to the relay on commit."""
        time_machine.move_to(START, tick=False)
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            probe(3)
        with dying_after_the_publish(), pytest.raises(Died):
            callbacks[0]()
        assert len(published) == 1 and unrelayed() == 1

        assert outbox.relay_pending() == 0  # young: the on-commit relay's
        time_machine.move_to(timezone.now() + timedelta(seconds=settings.OUTBOX_STALE_SECONDS + 1), tick=False)
        assert outbox.relay_pending() == 1
        assert [p.kwargs for p in published] == [{"n": 3}, {"n": 3}]
        assert unrelayed() == 0

    def test_a_message_due_soon_is_published_on_commit_with_its_eta(
        self, published, django_capture_on_commit_callbacks, time_machine
    ):
        time_machine.move_to(START, tick=False)
        due_at = timezone.now() + timedelta(seconds=30)
        with django_capture_on_commit_callbacks(execute=True):
            probe(due_at=due_at)

        assert published == [Published(task=PROBE, kwargs={"n": 1}, eta=due_at.isoformat())]

    def test_a_message_due_beyond_the_horizon_waits_in_the_outbox(
        self, published, django_capture_on_commit_callbacks, time_machine
    ):
        time_machine.move_to(START, tick=False)
        due_at = timezone.now() + timedelta(seconds=outbox.RELAY_HORIZON_SECONDS + 600)
        with django_capture_on_commit_callbacks(execute=True):
            message = probe(due_at=due_at)

        assert published == []
        message.refresh_from_db()
        assert message.relayed_at is None

        time_machine.move_to(due_at - timedelta(seconds=outbox.RELAY_HORIZON_SECONDS), tick=False)
        assert outbox.relay_pending() == 1
        assert published == [Published(task=PROBE, kwargs={"n": 1}, eta=due_at.isoformat())]


class Died(BaseException):
    """The process ends here (not an error any code of ours handles)."""


@contextmanager
def dying_after_the_publish() -> Iterator[None]:
    """The process dies as soon as the broker has the message, before the outbox marks it relayed."""

    def die(**_: object) -> None:
        raise Died

    after_task_publish.connect(die, weak=False)  # after the `published` fixture's receiver, which records it
    try:
        yield
    finally:
        after_task_publish.disconnect(die)


class TestBeatRelay:
    """OUTBOX_RELAY_ON_COMMIT is off in tests: the process that committed 'was killed' before relaying."""

    def test_not_relayed_on_commit_when_relaying_on_commit_is_off(self, published, django_capture_on_commit_callbacks):
        assert django_settings.OUTBOX_RELAY_ON_COMMIT is False
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            probe()
        assert callbacks == []
        assert published == []
        assert unrelayed() == 1

    def test_a_stale_message_is_published_once(self, published, time_machine, settings):
        time_machine.move_to(START, tick=False)
        settings.OUTBOX_STALE_SECONDS = 10
        message = probe(3)

        # The on-commit relay gets its chance first.
        time_machine.move_to(message.created_at + timedelta(seconds=9), tick=False)
        assert outbox.relay_pending() == 0
        assert published == []

        time_machine.move_to(message.created_at + timedelta(seconds=10), tick=False)
        assert outbox.relay_pending() == 1
        assert published == [Published(task=PROBE, kwargs={"n": 3}, eta=None)]
        message.refresh_from_db()
        assert message.relayed_at == timezone.now()

        assert outbox.relay_pending() == 0
        time_machine.move_to(message.created_at + timedelta(hours=1), tick=False)
        assert outbox.relay_pending() == 0
        assert len(published) == 1

    def test_a_message_due_far_ahead_is_published_when_within_the_horizon(self, published, time_machine):
        time_machine.move_to(START, tick=False)
        due_at = timezone.now() + timedelta(minutes=15)
        probe(due_at=due_at)

        time_machine.move_to(due_at - timedelta(seconds=outbox.RELAY_HORIZON_SECONDS + 1), tick=False)
        assert outbox.relay_pending() == 0

        time_machine.move_to(due_at - timedelta(seconds=outbox.RELAY_HORIZON_SECONDS), tick=False)
        assert outbox.relay_pending() == 1
        # Published ahead of time with the ETA, so the task still runs when it is due.
        assert published == [Published(task=PROBE, kwargs={"n": 1}, eta=due_at.isoformat())]
        assert outbox.relay_pending() == 0

    def test_relays_in_bounded_batches_oldest_due_first(self, published, time_machine):
        time_machine.move_to(START, tick=False)
        now = timezone.now()
        for n in range(5):
            probe(n, due_at=now - timedelta(minutes=n))
        time_machine.move_to(now + timedelta(minutes=1), tick=False)

        assert outbox.relay_pending(batch_size=2) == 2
        assert [p.kwargs["n"] for p in published] == [4, 3]
        assert outbox.relay_pending(batch_size=2) == 2
        assert outbox.relay_pending(batch_size=2) == 1
        assert outbox.relay_pending(batch_size=2) == 0
        assert sorted(p.kwargs["n"] for p in published) == [0, 1, 2, 3, 4]

    def test_the_beat_task_relays(self, published, time_machine):
        from ipvas.tasks import relay_outbox

        time_machine.move_to(START, tick=False)
        probe()
        time_machine.shift(timedelta(minutes=1))
        assert relay_outbox.apply().get() == 1
        assert len(published) == 1


class TestPurge:
    def test_removes_old_relayed_messages_only(self, time_machine):
        time_machine.move_to(START, tick=False)
        now = timezone.now()
        time_machine.move_to(now - timedelta(days=30), tick=False)  # written then, and relayed as below
        old_relayed = probe(1)
        old_unrelayed = probe(3)
        time_machine.move_to(now - timedelta(days=6, hours=1), tick=False)
        recent_relayed = probe(2)
        time_machine.move_to(now, tick=False)
        OutboxMessage.objects.filter(pk=old_relayed.pk).update(relayed_at=now - timedelta(days=8))
        OutboxMessage.objects.filter(pk=recent_relayed.pk).update(relayed_at=now - timedelta(days=6))
        OutboxMessage.objects.filter(pk=old_unrelayed.pk).update(due_at=now - timedelta(days=30))
        newest = probe(4)  # written now (not relayed yet): the first written since either cutoff here

        assert outbox.purge_relayed() == 1

        left = {recent_relayed.pk, old_unrelayed.pk, newest.pk}
        assert set(OutboxMessage.objects.values_list("pk", flat=True)) == left
        assert outbox.purge_relayed(older_than=timedelta(days=5)) == 1
        assert set(OutboxMessage.objects.values_list("pk", flat=True)) == {old_unrelayed.pk, newest.pk}

    def test_with_nothing_written_since_the_cutoff_every_old_relayed_message_goes(self, time_machine):
        time_machine.move_to(START, tick=False)
        now = timezone.now()
        time_machine.move_to(now - timedelta(days=9), tick=False)
        messages = [probe(n) for n in range(3)]
        OutboxMessage.objects.filter(pk__in=[m.pk for m in messages]).update(relayed_at=now - timedelta(days=8))
        time_machine.move_to(now, tick=False)
        assert outbox.purge_relayed(batch_size=2) == 3
        assert not OutboxMessage.objects.exists()

    @pytest.mark.skipif(not ON_POSTGRESQL, reason="rows read are counted by PostgreSQL's statistics")
    def test_a_run_reads_what_it_deletes_not_the_week_kept(self, time_machine):
        """The hourly run on a week's outbox: an hour's messages to forget among many newer ones. Before,
        its last batch read the whole table to find nothing more (``relayed_at`` has no index)."""
        time_machine.move_to(START, tick=False)
        now = timezone.now()
        week, hour = 20_000, 200

        def written(count: int, at: datetime) -> None:  # and relayed at once, as the relay does
            time_machine.move_to(at, tick=False)
            OutboxMessage.objects.bulk_create(
                OutboxMessage(task_name=PROBE_TASK, kwargs={}, due_at=at, relayed_at=at) for _ in range(count)
            )

        written(hour, now - timedelta(days=7, minutes=30))
        written(week, now - timedelta(days=3))
        time_machine.move_to(now, tick=False)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE ipvas_outboxmessage")
        before = _rows_read()

        assert outbox.purge_relayed(batch_size=100) == hour

        read = _rows_read() - before
        assert OutboxMessage.objects.count() == week
        assert read < week // 10, f"{read} rows read to forget {hour}"


def _rows_read() -> int:
    """Rows of the outbox read in this transaction, by sequential and index scans."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0) FROM pg_stat_xact_user_tables"
            " WHERE relname = 'ipvas_outboxmessage'"
        )
        return cursor.fetchone()[0]


# --- Celery against Redis: no message may outlive the visibility timeout -----------------


def visibility_timeout() -> int:
    return int(django_settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("visibility_timeout", 3600))


def our_tasks() -> dict:
    from ipvas.celery import app

    import_tasks()
    tasks = {name: task for name, task in app.tasks.items() if not name.startswith("celery.")}
    # The foundation's own tasks at least; every app's tasks are held to the same rules.
    assert {"ipvas.tasks.relay_outbox", "lifecycle.tasks.precheck_order", "lifecycle.tasks.sweep_deadlines"} <= set(
        tasks
    )
    return tasks


def test_every_task_acks_late_and_is_requeued_if_its_worker_dies():
    for name, task in our_tasks().items():
        assert task.acks_late is True, name
        assert task.reject_on_worker_lost is True, name


def test_no_retry_delay_outlives_the_visibility_timeout():
    limit = visibility_timeout()
    for name, task in our_tasks().items():
        assert task.retry_backoff_max < limit, name
        assert task.default_retry_delay < limit, name


def test_no_eta_published_by_the_outbox_outlives_the_visibility_timeout():
    assert outbox.RELAY_HORIZON_SECONDS < visibility_timeout()


class TestUnneededMessages:
    def test_messages_a_check_calls_unneeded_are_marked_relayed_and_not_published(
        self, published, time_machine, monkeypatch
    ):
        time_machine.move_to(START, tick=False)
        kept, dropped = probe(1), probe(2)
        monkeypatch.setitem(outbox._unneeded_checks, PROBE, lambda messages: {dropped.pk})
        time_machine.move_to(kept.created_at + timedelta(hours=1), tick=False)

        assert outbox.relay_pending() == 1
        assert published == [Published(task=PROBE, kwargs={"n": 1}, eta=None)]
        assert unrelayed() == 0

    def test_a_check_that_fails_publishes_every_message_as_before(self, published, time_machine, monkeypatch):
        def broken(messages: list[OutboxMessage]) -> set[int]:
            OutboxMessage.objects.raw("SELECT no_such_column FROM ipvas_outboxmessage")[0]  # a failed statement
            raise AssertionError("not reached")

        time_machine.move_to(START, tick=False)
        first = probe(1)
        probe(2)
        monkeypatch.setitem(outbox._unneeded_checks, PROBE, broken)
        time_machine.move_to(first.created_at + timedelta(hours=1), tick=False)

        assert outbox.relay_pending() == 2  # the relay's own statements still run after the failed one
        assert sorted(p.kwargs["n"] for p in published) == [1, 2]
        assert unrelayed() == 0
