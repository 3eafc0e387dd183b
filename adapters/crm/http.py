"""The operator's CRM over HTTP: marketing activities of cash sales."""

from __future__ import annotations

import logging

import requests
from django.conf import settings

from adapters.crm.types import ActivityRequest, ActivityResult, CrmUnavailable
from adapters.http import keep_alive_session

logger = logging.getLogger(__name__)


class HttpCrmClient:
    """The operator's CRM: POST {url}/activities and {url}/activities/reverse, JSON, bearer token."""

    def __init__(self, *, url: str = "", token: str | None = None, timeout: float | None = None) -> None:
        self.url = (url or settings.CRM_URL).rstrip("/")
        self.token = settings.CRM_API_TOKEN if token is None else token
        self.timeout = settings.CRM_TIMEOUT_SECONDS if timeout is None else timeout

    def _post(self, path: str, payload: dict[str, object]) -> ActivityResult:
        try:
            response = keep_alive_session(self.url).post(
                f"{self.url}/{path}",
                json=payload,
                headers={"Authorization": f"Bearer {self.token}"},
                timeout=self.timeout,
            )
        except requests.RequestException as exc:
            raise CrmUnavailable(f"CRM {path}: {exc.__class__.__name__}") from exc
        if response.status_code >= 500 or response.status_code in (408, 429):
            raise CrmUnavailable(f"CRM {path}: HTTP {response.status_code}")
        if response.status_code != 200:
            # A 4xx is a fault on our side (token, protocol), not the CRM's answer about the sale; it will not
            # heal by itself, but the order must still end, so it is reported as an outage (as the SMP's are).
            logger.error("CRM %s refused our request: HTTP %s %s", path, response.status_code, response.text[:200])
            raise CrmUnavailable(f"CRM {path}: HTTP {response.status_code}")
        try:
            body = response.json()
        except ValueError as exc:
            raise CrmUnavailable(f"CRM {path}: not JSON") from exc
        if not isinstance(body, dict):
            raise CrmUnavailable(f"CRM {path}: the answer is not a JSON object")
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
