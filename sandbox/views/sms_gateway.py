"""The simulated SMS gateway served over HTTP (docs/protocols.md), so that the real client
(``adapters.sms.http``) can be run against it: the messages land in the same outbox as the in-process
simulator's (/sandbox/sms/outbox/), with the same fault modes."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_POST

from sandbox import sms
from sandbox.http import sandbox_view, serve_api, text_field


@sandbox_view
@require_POST
def messages(request: HttpRequest) -> HttpResponse:
    """``POST /sandbox/sms/api/messages {to, text, client_ref}`` → ``{message_id}``; once per ``client_ref``."""

    def work(body: dict[str, Any]) -> dict[str, str]:
        sent = sms.send(
            text_field(body, "to", max_length=20),
            text_field(body, "text", max_length=500),
            reference=text_field(body, "client_ref", required=False, max_length=64),
        )
        return {"message_id": sent}

    return serve_api(request, system="sms", token=settings.SMS_GATEWAY_TOKEN, work=work)
