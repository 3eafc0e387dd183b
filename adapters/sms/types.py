"""The SMS gateway as IPVAS sees it: messages out (MT). Replies come in on /sms/inbound/ (callbacks)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


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
