"""The simulated CRM's side of single sign-on: sign a ticket, and frame the clerk pages as CRM does."""

from __future__ import annotations

import secrets
import time
from urllib.parse import urlencode

import jwt
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET

from ipvas.keyfiles import sandbox_private_key_pem
from sandbox.http import BadRequest, sandbox_view

TICKET_SECONDS = 120


def sign_ticket(*, staff_id: str, store_code: str, virtual_staff_id: str, name: str) -> str:
    now = int(time.time())
    claims = {
        "iss": settings.CRM_SSO_ISSUER,
        "aud": settings.CRM_SSO_AUDIENCE,
        "sub": staff_id,
        "name": name,
        "store_code": store_code,
        "virtual_staff_id": virtual_staff_id,
        "iat": now,
        "exp": now + TICKET_SECONDS,
        "jti": secrets.token_urlsafe(16),
    }
    return jwt.encode(claims, sandbox_private_key_pem("crm_sso_private_key.pem"), algorithm="RS256")


def _clerk_params(request: HttpRequest) -> dict[str, str]:
    params = {}
    for name, limit in (("staff_id", 64), ("store_code", 32), ("virtual_staff_id", 32), ("name", 100)):
        value = request.GET.get(name, "").strip()
        if not value and name != "name":
            raise BadRequest(f"{name} is required")
        if len(value) > limit:
            raise BadRequest(f"{name} is at most {limit} characters")
        params[name] = value
    params["name"] = params["name"] or params["staff_id"]
    return params


@sandbox_view
@require_GET
def launch(request: HttpRequest) -> HttpResponse:
    """Sign a ticket for the clerk and send the browser to /crm/sso/, as the CRM would."""
    ticket = sign_ticket(**_clerk_params(request))
    return redirect(f"/crm/sso/?{urlencode({'ticket': ticket})}")


@sandbox_view
@require_GET
def frame(request: HttpRequest) -> HttpResponse:
    """A page standing in for the CRM's screen, with the clerk pages in an iframe."""
    params = _clerk_params(request)
    return render(
        request, "sandbox/crm_frame.html", {"launch_url": f"/sandbox/crm/launch/?{urlencode(params)}", **params}
    )
