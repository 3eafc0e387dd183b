"""Helpers for the sandbox's JSON endpoints."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from ipvas import jsonparse


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
    if required and not value:
        raise BadRequest(f"{name} is required")
    return value
