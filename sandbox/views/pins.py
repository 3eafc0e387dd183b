"""``POST /sandbox/accounts/<tv_account>/purchase-pin/`` (docs/interfaces.md §9): set or clear a household's
purchase PIN as a clerk would, so that an integrator can test the PIN answers of the EPG API and the TV pages."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_POST

from ipvas.actors import Actor
from lifecycle.pins import PIN_RE, pin_clear, pin_set
from orders.validation import TV_ACCOUNT_RE
from sandbox.http import BadRequest, json_body, sandbox_view

SANDBOX = Actor.system("sandbox")


@sandbox_view
@require_POST
def purchase_pin(request: HttpRequest, tv_account: str) -> HttpResponse:
    if not TV_ACCOUNT_RE.match(tv_account):
        raise BadRequest("a TV account is 1-64 letters, digits, '_', '.', '-' or '@'")
    body = json_body(request)
    if "pin" not in body:
        raise BadRequest('pin is required: "1234" sets it, null clears it')
    pin = body["pin"]
    if pin is None:
        pin_clear(tv_account=tv_account, actor=SANDBOX, reason="sandbox")
    elif isinstance(pin, str) and PIN_RE.match(pin):
        pin_set(tv_account=tv_account, pin=pin, actor=SANDBOX, reason="sandbox")
    else:
        raise BadRequest("pin is 4 digits as a string, or null")
    return JsonResponse({"tv_account": tv_account, "purchase_pin_set": pin is not None})
