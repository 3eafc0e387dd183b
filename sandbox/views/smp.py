"""The simulated SMP served over HTTP, so that the real SMP client can be run against it.

Same protocol as a real SMP (docs/protocols.md), same fault modes as the
in-process simulator; ``down`` answers 503 because a Django view cannot
refuse a TCP connection.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_POST

from adapters.smp.types import PrecheckRequest, SubscribeRequest, UnsubscribeResult
from ipvas.secrets_compare import same_secret
from sandbox import faults, smp, subscriptions
from sandbox.http import BadRequest, fen_field, int_field, json_body, sandbox_view, serve_api, text_field
from sandbox.models import FaultMode


def _serve(request: HttpRequest, work: Any) -> HttpResponse:
    return serve_api(request, system="smp", token=settings.SMP_API_TOKEN, work=work)


@sandbox_view
@require_POST
def precheck(request: HttpRequest) -> HttpResponse:
    return _serve(
        request,
        lambda b: smp.precheck(
            PrecheckRequest(
                product_code=text_field(b, "product_code"),
                kind=text_field(b, "kind"),
                tv_account=text_field(b, "tv_account", required=False),
                phone=text_field(b, "phone", required=False),
                content_id=text_field(b, "content_id", required=False),
            )
        ),
    )


@sandbox_view
@require_POST
def subscribe(request: HttpRequest) -> HttpResponse:
    def work(b: dict[str, Any]) -> Any:
        return smp.subscribe(
            SubscribeRequest(
                order_no=text_field(b, "order_no", max_length=32),
                tv_account=text_field(b, "tv_account"),
                product_code=text_field(b, "product_code"),
                package_code=text_field(b, "package_code", required=False),
                charge=text_field(b, "charge"),
                amount_fen=fen_field(b, "amount_fen"),
                kind=text_field(b, "kind"),
                period_months=int_field(b, "period_months"),
                view_hours=int_field(b, "view_hours"),
                content_id=text_field(b, "content_id", required=False),
                idempotency_key=text_field(b, "idempotency_key", required=False, max_length=64),
            )
        )

    return _serve(request, work)


@sandbox_view
@require_POST
def authorize(request: HttpRequest) -> HttpResponse:
    return _serve(
        request,
        lambda b: smp.authorize(
            tv_account=text_field(b, "tv_account"),
            product_code=text_field(b, "product_code"),
            content_id=text_field(b, "content_id", required=False),
        ),
    )


@sandbox_view
@require_POST
def unsubscribe(request: HttpRequest) -> HttpResponse:
    def work(body: dict[str, Any]) -> Any:
        order_no = text_field(body, "order_no", max_length=32)
        reverse = body.get("reverse", True)
        if not isinstance(reverse, bool):
            raise BadRequest("reverse must be true or false")
        if not reverse:
            subscriptions.smp_end(order_no)
            return UnsubscribeResult(ok=True, reversed_fen=0)
        return smp.unsubscribe(order_no=order_no)

    return _serve(request, work)


@sandbox_view
@require_POST
def reschedule(request: HttpRequest) -> HttpResponse:
    def work(body: dict[str, Any]) -> Any:
        starts_at, ends_at = _when(body, "starts_at"), _when(body, "ends_at")
        if ends_at <= starts_at:
            raise BadRequest("ends_at must be after starts_at")
        ok = subscriptions.smp_reschedule(
            text_field(body, "order_no", max_length=32), starts_at=starts_at, ends_at=ends_at
        )
        return {"ok": ok}

    return _serve(request, work)


def _when(body: dict[str, Any], name: str) -> datetime:
    try:
        value = datetime.fromisoformat(text_field(body, name, max_length=40))
    except ValueError:
        raise BadRequest(f"{name} must be an ISO 8601 time") from None
    if value.tzinfo is None:
        raise BadRequest(f"{name} needs a time zone")
    return value


@sandbox_view
@require_POST
def set_faults(request: HttpRequest, system: str = "smp") -> HttpResponse:
    """``POST /sandbox/<system>/faults/ {"mode"}`` for each simulated system (sandbox/faults.py SYSTEMS)."""
    mode = text_field(json_body(request), "mode")
    if mode not in FaultMode.values:
        raise BadRequest(f"mode must be one of {', '.join(FaultMode.values)}")
    faults.set_mode(system, mode)
    return JsonResponse({"system": system, "mode": mode})


@sandbox_view
def provisioning_list(request: HttpRequest) -> HttpResponse:
    """GET ?date=YYYY-MM-DD: the simulated SMP's daily provisioning list (docs/protocols.md)."""
    import io
    from datetime import date

    from sandbox.statements import write_smp_provisioning_list

    expected = f"Bearer {settings.SMP_API_TOKEN}"
    if not same_secret(request.headers.get("Authorization", ""), expected):
        return JsonResponse({"error": "bad token"}, status=401)
    try:
        day = date.fromisoformat(request.GET.get("date", ""))
    except ValueError:
        raise BadRequest("date must be YYYY-MM-DD") from None
    buffer = io.BytesIO()
    write_smp_provisioning_list(day, buffer)
    return HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
