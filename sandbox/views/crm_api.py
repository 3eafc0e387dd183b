"""The simulated CRM's API served over HTTP (docs/protocols.md), so that the real client (``adapters.crm.http``)
can be run against it: the same marketing activities as the in-process simulator's, the same fault modes.
(The CRM's screens that frame the clerk pages are ``sandbox.views.crm``.)"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_POST

from adapters.crm.types import ActivityRequest, ActivityResult
from sandbox import crm
from sandbox.http import fen_field, sandbox_view, serve_api, text_field


def _serve(request: HttpRequest, work: Any) -> HttpResponse:
    return serve_api(request, system="crm", token=settings.CRM_API_TOKEN, work=work)


@sandbox_view
@require_POST
def activities(request: HttpRequest) -> HttpResponse:
    """``POST /sandbox/crm/api/activities``: a cash sale's marketing activity, once per ``order_no``."""

    def work(body: dict[str, Any]) -> ActivityResult:
        return crm.handle_activity(
            ActivityRequest(
                activity_code=text_field(body, "activity_code", max_length=64),
                phone=text_field(body, "phone", max_length=20),
                virtual_staff_id=text_field(body, "virtual_staff_id", required=False, max_length=32),
                order_no=text_field(body, "order_no", max_length=32),
                amount_fen=fen_field(body, "amount_fen"),
            )
        )

    return _serve(request, work)


@sandbox_view
@require_POST
def reverse(request: HttpRequest) -> HttpResponse:
    """``POST /sandbox/crm/api/activities/reverse {order_no}``: the activity taken back (none: nothing to do)."""
    return _serve(request, lambda body: crm.reverse_activity(order_no=text_field(body, "order_no", max_length=32)))
