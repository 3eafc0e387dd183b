"""The operator's SMS gateway: ``POST {SMS_GATEWAY_URL}/messages {"to","text","client_ref"}`` -> ``{"message_id"}``."""

from __future__ import annotations

import requests
from django.conf import settings

from adapters.http import keep_alive_session
from adapters.sms.types import SmsMessage, SmsUnavailable


class HttpSmsGateway:
    def __init__(self, *, url: str = "", token: str | None = None, timeout: float | None = None) -> None:
        self.url = (url or settings.SMS_GATEWAY_URL).rstrip("/")
        self.token = settings.SMS_GATEWAY_TOKEN if token is None else token
        self.timeout = settings.SMS_TIMEOUT_SECONDS if timeout is None else timeout

    def send(self, message: SmsMessage) -> str:
        try:
            response = keep_alive_session(self.url).post(
                f"{self.url}/messages",
                json={"to": message.to, "text": message.text, "client_ref": message.reference},
                headers={"Authorization": f"Bearer {self.token}"},
                timeout=self.timeout,
            )
            response.raise_for_status()
            body = response.json()
            message_id = body.get("message_id") if isinstance(body, dict) else None
            if not isinstance(message_id, str | int) or isinstance(message_id, bool) or message_id == "":
                raise ValueError("no message_id in the answer")  # not sent, as far as we know: sent again
            return str(message_id)
        except (requests.RequestException, ValueError) as exc:
            raise SmsUnavailable(f"SMS gateway: {exc.__class__.__name__}") from exc
