"""The simulated CRM (``CRM_ADAPTER``): marketing activities in the sandbox's tables."""

from __future__ import annotations

from adapters.crm.types import ActivityRequest, ActivityResult, CrmUnavailable
from sandbox import crm, faults


class SimulatedCrm:
    def _gate(self) -> None:
        try:
            faults.gate("crm")
        except faults.SimulatedOutage as exc:
            raise CrmUnavailable(str(exc)) from exc

    def handle_activity(self, request: ActivityRequest) -> ActivityResult:
        self._gate()
        return crm.handle_activity(request)

    def reverse_activity(self, *, order_no: str) -> ActivityResult:
        self._gate()
        return crm.reverse_activity(order_no=order_no)
