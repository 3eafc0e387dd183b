"""bench/reliability.py's scale-out table (issue #17), from figures shaped like the JSON the tests write."""

from __future__ import annotations

from typing import Any

from bench.reliability import fault_rows, scaleout_rows

BOOKS = {
    "orders": 120,
    "statuses": {"completed": 120},
    "unsettled": 0,
    "refunds_under_way": 0,
    "problems": [],
    "smp_left_subscribed": [],
    "missing": 0,
    "other_orders_of_their_accounts": 0,
}


def topology(**changes: Any) -> dict[str, Any]:
    """tests/reliability/test_topology.py's topology.json, trimmed."""
    return {
        "kind": "one web node, one worker and the active beat killed mid-burst",
        "ok": True,
        "orders": 120,
        "placed_when_killed": 66,
        "placing_seconds": 3.4,
        "orders_placed_per_second": 35.1,
        "proxy_5xx": 0,
        "dead_node_taken_out_seconds": 1.3,
        "beat_takeover_seconds": 9.6,
        "all_terminal_after_the_kills_seconds": 12.3,
        "statuses": {"completed": 120},
        "books": BOOKS,
        "not_completed": [],
        **changes,
    }


def rabbitmq(**changes: Any) -> dict[str, Any]:
    """The fault-rabbitmq.json that test_rabbitmq_broker.py's run_fault writes, trimmed."""
    return {
        "kind": "broker RabbitMQ killed (kill -9) and started again on its data",
        "fault": "rabbitmq",
        "orders": 4,
        "in_flight": 4,
        "down_seconds": 7.9,
        "recovered_seconds": 4.7,
        "settled_seconds": 16.5,
        "statuses": {"completed": 5},
        "processes_survived": {"web": True, "worker": True, "beat": True},
        "books": {**BOOKS, "orders": 5, "statuses": {"completed": 5}},
        "ok": True,
        **changes,
    }


def beat(**changes: Any) -> dict[str, Any]:
    """tests/reliability/test_beat_takeover.py's scaleout-beat.json."""
    return {
        "kind": "two beats sharing celery-redbeat's lock, the active one killed (kill -9)",
        "ok": True,
        "lock_timeout_seconds": 10,
        "takeover_seconds": 11.0,
        "relayed_in_8_seconds": 8,
        "schedule_sent_twice": False,
        "relayed_in_4_seconds_after_the_takeover": 4,
        **changes,
    }


def test_one_row_per_scaleout_run_with_its_figures():
    found = {"scaleout-beat": beat(), "fault-rabbitmq": rabbitmq(), "topology": topology()}

    top, broker, beats = scaleout_rows(found)

    assert top[1] == "66 of 120 placed"
    assert top[2] == "completed 120; every order terminal, nothing lost, nothing doubled, the books balance"
    for figure in ("out of haproxy after 1.3 s", "takeover after 9.6 s", "12.3 s after the kills", "35.1 orders/s"):
        assert figure in top[3]
    assert broker[0] == "broker RabbitMQ killed (kill -9) and started again on its data"
    assert broker[1] == "4 of 4 in flight"
    assert "nothing lost, nothing doubled" in broker[2]
    assert broker[3] == "down 7.9 s; a new order completed 4.7 s after it came back; every order ended 16.5 s after"
    assert beats[2] == "one beat sent the schedule (8 outbox relays in 8 s), the other after the kill (4 in 4 s)"
    assert beats[3] == "takeover after 11.0 s (lock timeout 10 s)"


def test_only_the_runs_that_wrote_figures_have_a_row():
    assert scaleout_rows({}) == []
    assert [row[0] for row in scaleout_rows({"scaleout-beat": beat(), "race-x": {}})] == [beat()["kind"]]


def test_a_failed_run_shows_its_counterexample():
    books = {**BOOKS, "problems": ["order 7: 2 'subscribed' events"]}
    never = {"all_terminal_after_the_kills_seconds": None, "beat_takeover_seconds": None}
    found = {
        "topology": topology(ok=False, books=books, **never),
        "scaleout-beat": beat(ok=False, relayed_in_8_seconds=16, schedule_sent_twice=True),
    }

    top, beats = scaleout_rows(found)

    assert top[2] == "COUNTEREXAMPLE: order 7: 2 'subscribed' events"
    assert "beat takeover after NEVER" in top[3]
    assert beats[2] == "COUNTEREXAMPLE: the schedule sent twice (16 outbox relays in 8 s)"

    (late,) = scaleout_rows({"scaleout-beat": beat(ok=False, takeover_seconds=None)})
    assert late[2:] == (
        "COUNTEREXAMPLE: the other beat never took the lock over",
        "takeover after NEVER (lock timeout 10 s)",
    )


def test_the_fault_campaign_leaves_the_rabbitmq_run_to_the_scaleout_table():
    broker = rabbitmq(kind="broker Redis killed (kill -9) and restarted empty", fault="broker")

    assert [row[0] for row in fault_rows({"fault-rabbitmq": rabbitmq(), "fault-broker": broker})] == [broker["kind"]]


def test_a_fault_the_campaign_does_not_list_comes_last_instead_of_stopping_the_report():
    found = {
        "fault-newthing": rabbitmq(fault="newthing", kind="a new kind of fault"),
        "fault-postgres": rabbitmq(fault="postgres", kind="PostgreSQL killed"),
    }

    assert [row[0] for row in fault_rows(found)] == ["PostgreSQL killed", "a new kind of fault"]
