"""The simulated SMS gateway: an outbox of sent messages, and signed replies (MO)."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets

from django.db import IntegrityError, transaction
from django.utils import timezone

from ipvas.keyfiles import sandbox_secret
from sandbox.delivery import deliver
from sandbox.models import SimSmsMessage


def send(to: str, text: str, *, reference: str = "") -> str:
    if reference:
        existing = SimSmsMessage.objects.filter(reference=reference).first()
        if existing is not None:
            return existing.gateway_id
    try:
        with transaction.atomic():
            message = SimSmsMessage.objects.create(
                to=to, text=text, reference=reference, gateway_id="MT" + secrets.token_hex(10).upper()
            )
    except IntegrityError:  # the same reference sent concurrently
        return SimSmsMessage.objects.get(reference=reference).gateway_id
    return message.gateway_id


def outbox(to: str = "", limit: int = 50) -> list[SimSmsMessage]:
    messages = SimSmsMessage.objects.all()
    if to:
        messages = messages.filter(to=to)
    return list(messages[:limit])


def signed_reply(sender: str, text: str) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(
        {"from": sender, "text": text, "received_at": timezone.now().isoformat()}, ensure_ascii=False
    ).encode()
    signature = hmac.new(sandbox_secret("sms_webhook_secret.txt").encode(), body, hashlib.sha256).hexdigest()
    return body, {"X-Signature": signature}


def reply(sender: str, text: str) -> tuple[bool, int]:
    body, headers = signed_reply(sender, text)
    return deliver("/sms/inbound/", body=body, content_type="application/json", headers=headers)
