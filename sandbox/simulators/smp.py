"""The SMP simulator, in process: the sandbox's simulated SMP behind the adapter protocol (``SMP_ADAPTER``).

Fault modes behave as a client of a real SMP would see them: ``down`` and
``flaky`` refuse before anything happens; ``slow`` does the work and then
answers too late, so the caller times out not knowing that it succeeded,
which is the case idempotency on the order number exists for.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date, datetime
from typing import TypeVar

from django.conf import settings

from adapters.smp.types import (
    AuthorizeResult,
    PrecheckRequest,
    PrecheckResult,
    SmpUnavailable,
    SubscribeRequest,
    SubscribeResult,
    UnsubscribeResult,
)
from adapters.statements import StatementFile
from sandbox import faults, smp, statements, subscriptions

T = TypeVar("T")


class SimulatedSmp:
    def __init__(self, *, timeout: float | None = None) -> None:
        self.timeout = settings.SMP_TIMEOUT_SECONDS if timeout is None else timeout

    def _call(self, work: Callable[[], T]) -> T:
        try:
            delay = faults.gate("smp")
        except faults.SimulatedOutage as exc:
            raise SmpUnavailable(str(exc)) from exc
        result = work()
        if delay:
            time.sleep(min(delay, self.timeout))
            if delay >= self.timeout:
                raise SmpUnavailable(f"SMP did not answer within {self.timeout} s")
        return result

    def precheck(self, request: PrecheckRequest) -> PrecheckResult:
        return self._call(lambda: smp.precheck(request))

    def subscribe(self, request: SubscribeRequest) -> SubscribeResult:
        return self._call(lambda: smp.subscribe(request))

    def authorize(self, *, tv_account: str, product_code: str, content_id: str = "") -> AuthorizeResult:
        return self._call(
            lambda: smp.authorize(tv_account=tv_account, product_code=product_code, content_id=content_id)
        )

    def unsubscribe(self, *, order_no: str, reverse: bool = True) -> UnsubscribeResult:
        if not reverse:
            return self._call(lambda: _end(order_no))
        return self._call(lambda: smp.unsubscribe(order_no=order_no))

    def reschedule(self, *, order_no: str, starts_at: datetime, ends_at: datetime) -> bool:
        return self._call(lambda: subscriptions.smp_reschedule(order_no, starts_at=starts_at, ends_at=ends_at))

    def download_statement(self, day: date) -> StatementFile:
        return StatementFile(statements.statement_file("smp", day), statements.file_name("smp", day))


def _end(order_no: str) -> UnsubscribeResult:
    subscriptions.smp_end(order_no)
    return UnsubscribeResult(ok=True, reversed_fen=0)
