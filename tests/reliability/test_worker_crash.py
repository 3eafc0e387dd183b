"""Property 3, the worker: a Celery pool process killed in the middle of provisioning loses nothing.

The SMP (simulated, "slow") subscribes and charges at once, then takes 4 s
to answer; the pool process waiting for that answer is SIGKILLed. The worker
survives and its task is redelivered (acks late, reject on worker lost); the
claim's lease runs out, the sweep hands the order to the worker again, and
the SMP, idempotent on the order number, answers with the same subscription:
one subscription, one charge, one completion.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time

import pytest

from lifecycle.due import deadlines_sweep
from orders.constants import OrderStatus
from orders.models import Order
from sandbox import faults
from sandbox.models import SimSmpSubscription
from tests.integration.conftest import start_worker, stop_worker, wait_for
from tests.reliability.support import (
    balance,
    choose,
    make_rich,
    new_order,
    once,
    provisioned_once,
    record,
    size,
)
from tests.support.concurrency import require_postgresql

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def pool_children(worker) -> list[int]:  # type: ignore[no-untyped-def]
    out = subprocess.run(["pgrep", "-P", str(worker.process.pid)], capture_output=True, text=True).stdout
    return [int(pid) for pid in out.split()]


@pytest.mark.parametrize("rounds", size(1, 5))
def test_a_pool_process_killed_mid_provisioning_loses_nothing_and_charges_once(demo, django_db_setup, settings, rounds):
    require_postgresql()
    make_rich()
    settings.OUTBOX_RELAY_ON_COMMIT = True
    lease = 3
    settings.ORDER_CLAIM_LEASE_SECONDS = lease
    crashed = start_worker(
        concurrency=1,
        extra_env={"SMP_SIMULATOR_SLOW_SECONDS": "4", "SMP_TIMEOUT_SECONDS": "10", "ORDER_CLAIM_LEASE_SECONDS": "3"},
    )
    results: list[dict[str, object]] = []
    wrong: list[str] = []
    try:
        for _ in range(rounds):
            log_start = len(crashed.output())
            faults.set_mode("smp", "ok")
            order = new_order()
            wait_for(
                lambda order=order: Order.objects.filter(pk=order.pk, status=OrderStatus.AWAITING_PAYMENT).exists(),
                timeout=30,
                what="the worker's pre-check",
            )
            before = balance()
            faults.set_mode("smp", "slow")  # subscribes at once, then answers 4 s later
            choose(order, "phone_bill")
            wait_for(
                lambda order=order: SimSmpSubscription.objects.filter(order_no=order.order_no).exists(),
                timeout=30,
                what="the SMP subscribing while the task waits for its answer",
            )
            (child,) = pool_children(crashed)
            os.kill(child, signal.SIGKILL)
            killed_at = time.monotonic()
            faults.set_mode("smp", "ok")
            wait_for(
                lambda child=child: pool_children(crashed) not in ([], [child]),
                timeout=30,
                what="a new pool process",
            )
            survived = crashed.process.poll() is None

            # After the lease (and the sweep's grace), the sweep hands the order to the worker again.
            def swept_and_done(order=order, killed_at=killed_at) -> bool:
                if Order.objects.filter(pk=order.pk, status=OrderStatus.COMPLETED).exists():
                    return True
                if time.monotonic() - killed_at > lease:
                    deadlines_sweep()
                return False

            wait_for(swept_and_done, timeout=60, interval=0.5, what="the order provisioned after the crash")
            time.sleep(1)
            got = provisioned_once(order, charged=before - balance())
            log = crashed.output()[log_start:]
            task_ids = re.findall(r"Task lifecycle\.tasks\.provision_order\[([^]]+)\] received", log)
            redelivered = len(task_ids) != len(set(task_ids))
            results.append({"order": order.order_no, "worker survived": survived, "redelivered": redelivered, **got})
            if got != once(order) or not survived or not redelivered:
                wrong.append(f"{order.order_no}: survived={survived} redelivered={redelivered} {got}")
    finally:
        faults.set_mode("smp", "ok")
        stop_worker(crashed)

    record(
        f"crash-sigkill_mid_provisioning-{rounds}",
        kind="pool process SIGKILLed mid-provisioning",
        rounds=rounds,
        results=results,
        counterexamples=wrong,
        ok=not wrong,
    )
    assert wrong == []
    assert "WorkerLostError" in crashed.output() or "SIGKILL" in crashed.output()
