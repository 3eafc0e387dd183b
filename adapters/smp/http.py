"""The client of a real SMP, speaking the JSON-over-HTTP protocol of docs/protocols.md.

Only the protocol lives here: translating answers into IPVAS's terms is the
caller's job. Every changing call carries the order number, which the SMP
uses as its idempotency key, so a retry after a timeout never subscribes or
charges twice.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from datetime import date, datetime
from typing import Any

import requests
from django.conf import settings

from adapters.http import keep_alive_session
from adapters.smp.types import (
    AuthorizeResult,
    PrecheckRequest,
    PrecheckResult,
    SmpUnavailable,
    SubscribeRequest,
    SubscribeResult,
    UnsubscribeResult,
)
from adapters.statements import COPY_CHUNK, DOWNLOAD_TIMEOUT, StatementFile, StatementUnavailable, spool

logger = logging.getLogger(__name__)


def _when(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError as exc:
        raise SmpUnavailable(f"SMP answered an unreadable time {value!r}") from exc
    if parsed.tzinfo is None:
        raise SmpUnavailable(f"SMP answered a time without a zone {value!r}")
    return parsed


class HttpSmpClient:
    """``SMP_URL``, ``SMP_API_TOKEN``, ``SMP_TIMEOUT_SECONDS``; tests may name others."""

    def __init__(self, *, base_url: str = "", token: str | None = None, timeout: float | None = None) -> None:
        self.base_url = (base_url or settings.SMP_URL).rstrip("/")
        self.token = settings.SMP_API_TOKEN if token is None else token
        self.timeout = settings.SMP_TIMEOUT_SECONDS if timeout is None else timeout

    def _post(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        url = f"{self.base_url}/{path}"
        try:
            response = keep_alive_session(self.base_url).post(
                url,
                json=payload,
                headers={"Authorization": f"Bearer {self.token}"},
                timeout=self.timeout,
            )
        except requests.RequestException as exc:
            raise SmpUnavailable(f"SMP {path}: {exc.__class__.__name__}") from exc
        if response.status_code >= 500 or response.status_code in (408, 429):
            raise SmpUnavailable(f"SMP {path}: HTTP {response.status_code}")
        if response.status_code != 200:
            # A 4xx is a fault on our side (token, protocol); it will not heal by
            # itself, but the order must still end, so it is reported as an outage.
            logger.error("SMP %s refused our request: HTTP %s %s", path, response.status_code, response.text[:200])
            raise SmpUnavailable(f"SMP {path}: HTTP {response.status_code}")
        try:
            body = response.json()
        except ValueError as exc:
            raise SmpUnavailable(f"SMP {path}: not JSON") from exc
        if not isinstance(body, dict):
            raise SmpUnavailable(f"SMP {path}: not a JSON object")
        return body

    def precheck(self, request: PrecheckRequest) -> PrecheckResult:
        body = self._post("precheck", asdict(request))
        return PrecheckResult(
            ok=bool(body.get("ok")),
            tv_account=str(body.get("tv_account") or ""),
            phone=str(body.get("phone") or ""),
            reason=str(body.get("reason") or ""),
            message=str(body.get("message") or ""),
        )

    def subscribe(self, request: SubscribeRequest) -> SubscribeResult:
        body = self._post("subscribe", asdict(request))
        return SubscribeResult(
            ok=bool(body.get("ok")),
            subscription_id=str(body.get("subscription_id") or ""),
            starts_at=_when(body.get("starts_at")),
            ends_at=_when(body.get("ends_at")),
            reason=str(body.get("reason") or ""),
            message=str(body.get("message") or ""),
        )

    def authorize(self, *, tv_account: str, product_code: str, content_id: str = "") -> AuthorizeResult:
        body = self._post(
            "authorize", {"tv_account": tv_account, "product_code": product_code, "content_id": content_id}
        )
        return AuthorizeResult(authorized=bool(body.get("authorized")), ends_at=_when(body.get("ends_at")))

    def unsubscribe(self, *, order_no: str, reverse: bool = True) -> UnsubscribeResult:
        body = self._post("unsubscribe", {"order_no": order_no, "reverse": reverse})
        return UnsubscribeResult(ok=bool(body.get("ok")), reversed_fen=int(body.get("reversed_fen") or 0))

    def reschedule(self, *, order_no: str, starts_at: datetime, ends_at: datetime) -> bool:
        body = self._post(
            "reschedule", {"order_no": order_no, "starts_at": starts_at.isoformat(), "ends_at": ends_at.isoformat()}
        )
        return bool(body.get("ok"))

    def download_statement(self, day: date) -> StatementFile:
        """``GET {SMP_URL}/provisioning-list?date=YYYY-MM-DD``: the SMP's subscriptions of the day (CSV)."""
        file = spool()
        try:
            with keep_alive_session(self.base_url).get(
                f"{self.base_url}/provisioning-list",
                params={"date": day.isoformat()},
                headers={"Authorization": f"Bearer {self.token}", "Accept": "text/csv"},
                stream=True,
                timeout=DOWNLOAD_TIMEOUT,
            ) as response:
                if response.status_code == 404:
                    raise StatementUnavailable(f"SMP provisioning list of {day}: not ready (HTTP 404)")
                response.raise_for_status()
                for chunk in response.iter_content(COPY_CHUNK):
                    file.write(chunk)
        except requests.RequestException as exc:
            raise StatementUnavailable(f"SMP provisioning list: {exc.__class__.__name__}") from exc
        file.seek(0)
        return StatementFile(file, f"smp_provisioning_{day:%Y-%m-%d}.csv")
