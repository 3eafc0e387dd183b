"""The operator's CRM over HTTP: marketing activities of cash sales."""

from __future__ import annotations

import requests
from django.conf import settings

from adapters.crm.types import ActivityRequest, ActivityResult, CrmUnavailable


class HttpCrmClient:
    """The operator's CRM: POST {url}/activities and {url}/activities/reverse, JSON, bearer token."""

    def __init__(self, *, url: str = "", token: str | None = None, timeout: float | None = None) -> None:
        self.url = (url or settings.CRM_URL).rstrip("/")
        self.token = settings.CRM_API_TOKEN if token is None else token
        self.timeout = settings.CRM_TIMEOUT_SECONDS if timeout is None else timeout

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
