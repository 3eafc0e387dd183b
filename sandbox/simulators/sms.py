"""The simulated SMS gateway (``SMS_ADAPTER``): messages land in the sandbox's outbox (/sandbox/sms/outbox/)."""

from __future__ import annotations

from django.conf import settings

from adapters.sms.types import SmsMessage, SmsUnavailable
from sandbox import faults, sms


class SimulatedSmsGateway:
    def send(self, message: SmsMessage) -> str:
        try:
            delay = faults.gate("sms")
        except faults.SimulatedOutage as exc:
            raise SmsUnavailable(str(exc)) from exc
        sent = sms.send(message.to, message.text, reference=message.reference)
        faults.answer_late(delay, settings.SMS_TIMEOUT_SECONDS, SmsUnavailable, "sms")
        return sent
