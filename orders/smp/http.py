"""The client of a real SMP, speaking the JSON-over-HTTP protocol of docs/smp-protocol.md.

Only the protocol lives here: translating answers into IPVAS's terms is the
caller's job. Every changing call carries the order number, which the SMP
uses as its idempotency key, so a retry after a timeout never subscribes or
charges twice.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import asdict
from datetime import datetime
from typing import Any

import requests

from orders.smp.types import (
    AuthorizeResult,
    PrecheckRequest,
    PrecheckResult,
    SmpUnavailable,
    SubscribeRequest,
    SubscribeResult,
    UnsubscribeResult,
)

logger = logging.getLogger(__name__)
_local = threading.local()


def _session() -> requests.Session:
    # One keep-alive session per thread: workers and web threads reuse connections.
    session = getattr(_local, "session", None)
    if session is None:
        session = _local.session = requests.Session()
    return session


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
    def __init__(self, *, base_url: str, token: str, timeout: float) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def _post(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        url = f"{self.base_url}/{path}"
        try:
            response = _session().post(
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

    def unsubscribe(self, *, order_no: str) -> UnsubscribeResult:
        body = self._post("unsubscribe", {"order_no": order_no})
        return UnsubscribeResult(ok=bool(body.get("ok")), reversed_fen=int(body.get("reversed_fen") or 0))
