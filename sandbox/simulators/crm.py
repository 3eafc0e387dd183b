"""The simulated CRM (``CRM_ADAPTER``): marketing activities in the sandbox's tables."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings

from adapters.crm.types import ActivityRequest, ActivityResult, CrmUnavailable
from sandbox import crm, faults


class SimulatedCrm:
    def _call(self, work: Callable[[], ActivityResult]) -> ActivityResult:
        try:
            delay = faults.gate("crm")
        except faults.SimulatedOutage as exc:
            raise CrmUnavailable(str(exc)) from exc
        result = work()
        faults.answer_late(delay, settings.CRM_TIMEOUT_SECONDS, CrmUnavailable, "crm")
        return result

    def handle_activity(self, request: ActivityRequest) -> ActivityResult:
        return self._call(lambda: crm.handle_activity(request))

    def reverse_activity(self, *, order_no: str) -> ActivityResult:
        return self._call(lambda: crm.reverse_activity(order_no=order_no))
