"""The SMS gateway adapter: confirmations out (MT). Replies come in on /sms/inbound/."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import requests
from django.conf import settings


class SmsUnavailable(Exception):
    """The gateway did not take the message: try again later."""


@dataclass(frozen=True)
class SmsMessage:
    to: str
    text: str
    reference: str  # ours, unique per message: the gateway de-duplicates on it


class SmsGateway(Protocol):
    def send(self, message: SmsMessage) -> str:
        """Hand the message to the gateway; return its message id."""
        ...


class HttpSmsGateway:
    """The operator's SMS gateway: POST {url}/messages {"to","text","client_ref"} -> {"message_id"}."""

    def __init__(self, *, url: str, token: str, timeout: float) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def send(self, message: SmsMessage) -> str:
        try:
            response = requests.post(
                f"{self.url}/messages",
                json={"to": message.to, "text": message.text, "client_ref": message.reference},
                headers={"Authorization": f"Bearer {self.token}"},
                timeout=self.timeout,
            )
            response.raise_for_status()
            return str(response.json()["message_id"])
        except (requests.RequestException, ValueError, KeyError) as exc:
            raise SmsUnavailable(f"SMS gateway: {exc.__class__.__name__}") from exc


class SimulatedSmsGateway:
    """The sandbox's gateway: messages land in its outbox (/sandbox/sms/outbox/)."""

    def send(self, message: SmsMessage) -> str:
        from sandbox import faults, sms

        try:
            faults.gate("sms")
        except faults.SimulatedOutage as exc:
            raise SmsUnavailable(str(exc)) from exc
        return sms.send(message.to, message.text, reference=message.reference)


_FACTORIES: dict[str, Callable[[], SmsGateway]] = {
    "http": lambda: HttpSmsGateway(
        url=settings.SMS_GATEWAY_URL, token=settings.SMS_GATEWAY_TOKEN, timeout=settings.SMS_TIMEOUT_SECONDS
    ),
    "simulator": SimulatedSmsGateway,
}


def get_sms_gateway() -> SmsGateway:
    return _FACTORIES[settings.SMS_ADAPTER]()
