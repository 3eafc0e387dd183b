"""The CRM adapter: handling (and reversing) the marketing activity of a cash sale.

``handle_activity`` is idempotent on the order number at the CRM, so a
retried cash sale never bills the clerk's virtual staff id twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import requests
from django.conf import settings


class CrmUnavailable(Exception):
    """The CRM did not answer: try again later."""


@dataclass(frozen=True)
class ActivityRequest:
    activity_code: str
    phone: str
    virtual_staff_id: str
    order_no: str
    amount_fen: int


@dataclass(frozen=True)
class ActivityResult:
    ok: bool
    activity_id: str = ""
    reason: str = ""


class CrmAdapter(Protocol):
    def handle_activity(self, request: ActivityRequest) -> ActivityResult: ...

    def reverse_activity(self, *, order_no: str) -> ActivityResult: ...


class HttpCrmClient:
    """The operator's CRM: POST {url}/activities and {url}/activities/reverse, JSON, bearer token."""

    def __init__(self, *, url: str, token: str, timeout: float) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def _post(self, path: str, payload: dict[str, object]) -> ActivityResult:
        try:
            response = requests.post(
                f"{self.url}/{path}",
                json=payload,
                headers={"Authorization": f"Bearer {self.token}"},
                timeout=self.timeout,
            )
        except requests.RequestException as exc:
            raise CrmUnavailable(f"CRM {path}: {exc.__class__.__name__}") from exc
        if response.status_code >= 500 or response.status_code in (408, 429):
            raise CrmUnavailable(f"CRM {path}: HTTP {response.status_code}")
        try:
            body = response.json()
        except ValueError as exc:
            raise CrmUnavailable(f"CRM {path}: not JSON") from exc
        if response.status_code != 200 or not isinstance(body, dict):
            return ActivityResult(
                ok=False, reason=str(body.get("reason") if isinstance(body, dict) else response.status_code)
            )
        return ActivityResult(
            ok=bool(body.get("ok")),
            activity_id=str(body.get("activity_id") or ""),
            reason=str(body.get("reason") or ""),
        )

    def handle_activity(self, request: ActivityRequest) -> ActivityResult:
        return self._post(
            "activities",
            {
                "activity_code": request.activity_code,
                "phone": request.phone,
                "virtual_staff_id": request.virtual_staff_id,
                "order_no": request.order_no,
                "amount_fen": request.amount_fen,
            },
        )

    def reverse_activity(self, *, order_no: str) -> ActivityResult:
        return self._post("activities/reverse", {"order_no": order_no})


class SimulatedCrm:
    def _gate(self) -> None:
        from sandbox import faults

        try:
            faults.gate("crm")
        except faults.SimulatedOutage as exc:
            raise CrmUnavailable(str(exc)) from exc

    def handle_activity(self, request: ActivityRequest) -> ActivityResult:
        from sandbox import crm

        self._gate()
        return crm.handle_activity(request)

    def reverse_activity(self, *, order_no: str) -> ActivityResult:
        from sandbox import crm

        self._gate()
        return crm.reverse_activity(order_no=order_no)


def get_crm() -> CrmAdapter:
    if settings.CRM_ADAPTER == "http":
        return HttpCrmClient(url=settings.CRM_URL, token=settings.CRM_API_TOKEN, timeout=settings.CRM_TIMEOUT_SECONDS)
    return SimulatedCrm()
