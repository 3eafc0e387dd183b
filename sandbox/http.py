"""Helpers for the sandbox's JSON endpoints."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime
from functools import wraps
from typing import Any

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from ipvas import jsonparse
from ipvas.secrets_compare import same_secret
from ipvas.text import storable
from sandbox import faults


class BadRequest(Exception):
    pass


def sandbox_view(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Every /sandbox/ URL answers 404 unless IPVAS_SANDBOX is on; bad JSON is a 400."""

    @csrf_exempt
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not settings.SANDBOX:
            raise Http404("the sandbox is off")
        try:
            address = [*kwargs.values(), *request.GET.keys(), *request.GET.values()]
            if not all(storable(str(value)) for value in address):
                raise BadRequest("the address holds a character no record can (a NUL, a lone surrogate)")
            return view(request, *args, **kwargs)
        except BadRequest as exc:
            return JsonResponse({"error": {"code": "invalid", "message": str(exc)}}, status=400)

    return wrapper


def json_body(request: HttpRequest) -> dict[str, Any]:
    try:
        body = jsonparse.loads(request.body or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    return body


def text_field(body: dict[str, Any], name: str, *, required: bool = True, max_length: int = 128) -> str:
    value = body.get(name, "")
    if value is None:
        value = ""
    if not isinstance(value, str) or len(value) > max_length:
        raise BadRequest(f"{name} must be a string of at most {max_length} characters")
    if not storable(value):
        raise BadRequest(f"{name} holds a character no record can (a NUL, a lone surrogate)")
    if required and not value:
        raise BadRequest(f"{name} is required")
    return value


def int_field(body: dict[str, Any], name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise BadRequest(f"{name} must be an integer")
    return value


def fen_field(body: dict[str, Any], name: str) -> int:
    """A required amount in fen: a non-negative integer."""
    value = int_field(body, name)
    if value is None or value < 0:
        raise BadRequest(f"{name} must be a non-negative integer")
    return value


def serve_api(request: HttpRequest, *, system: str, token: str, work: Callable[[dict[str, Any]], Any]) -> HttpResponse:
    """A simulated system's API call as a real one would answer it: the bearer token checked, the system's
    fault mode honoured (``down`` is a 503, as a Django view cannot refuse the connection; ``slow`` does the
    work and answers late), the answer (a dataclass or a dict) as JSON with times in ISO 8601."""
    if not same_secret(request.headers.get("Authorization", ""), f"Bearer {token}"):
        return JsonResponse({"error": "bad token"}, status=401)
    try:
        delay = faults.gate(system)
    except faults.SimulatedOutage as exc:
        return JsonResponse({"error": str(exc)}, status=503)
    result = work(json_body(request))
    if delay:
        time.sleep(delay)
    fields = result if isinstance(result, dict) else asdict(result)
    return JsonResponse({k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in fields.items()})
