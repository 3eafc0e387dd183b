"""The simulated SMS gateway (``SMS_ADAPTER``): messages land in the sandbox's outbox (/sandbox/sms/outbox/)."""

from __future__ import annotations

from adapters.sms.types import SmsMessage, SmsUnavailable
from sandbox import faults, sms


class SimulatedSmsGateway:
    def send(self, message: SmsMessage) -> str:
        try:
            faults.gate("sms")
        except faults.SimulatedOutage as exc:
            raise SmsUnavailable(str(exc)) from exc
        return sms.send(message.to, message.text, reference=message.reference)
