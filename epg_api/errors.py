"""Every error of the EPG API in one shape: {"error": {"code", "message", "fields"}}."""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.utils.translation import gettext as _
from rest_framework import exceptions as drf
from rest_framework.response import Response
from rest_framework.views import set_rollback

from ipvas.errors import ApplicationError, RateLimited

logger = logging.getLogger(__name__)


def error_body(code: str, message: str, fields: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


def _flatten(detail: Any) -> dict[str, list[str]]:
    if isinstance(detail, dict):
        out: dict[str, list[str]] = {}
        for key, value in detail.items():
            if isinstance(value, dict):
                for sub, messages in _flatten(value).items():
                    out[f"{key}.{sub}"] = messages
            else:
                out[str(key)] = [str(v) for v in (value if isinstance(value, list) else [value])]
        return out
    return {"non_field_errors": [str(d) for d in (detail if isinstance(detail, list) else [detail])]}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    headers: dict[str, str] = {}
    if isinstance(exc, ApplicationError):
        body = error_body(exc.code, str(exc.message), exc.fields)
        status = exc.status
        if isinstance(exc, RateLimited):
            headers["Retry-After"] = str(exc.retry_after)
    elif isinstance(exc, drf.ValidationError):
        body = error_body("invalid", _("The request is not valid."), _flatten(exc.detail))
        status = 400
    elif isinstance(exc, drf.ParseError):
        body = error_body("invalid", _("The body is not valid JSON."))
        status = 400
    elif isinstance(exc, drf.NotAuthenticated | drf.AuthenticationFailed):
        body = error_body("unauthorized", str(exc.detail))
        status = 401
        headers["WWW-Authenticate"] = "Api-Key"
    elif isinstance(exc, drf.PermissionDenied | PermissionDenied):
        body = error_body("forbidden", _("You may not do this."))
        status = 403
    elif isinstance(exc, drf.NotFound | Http404):
        body = error_body("not_found", _("Not found."))
        status = 404
    elif isinstance(exc, drf.MethodNotAllowed):
        body = error_body("method_not_allowed", str(exc.detail))
        status = 405
    elif isinstance(exc, drf.NotAcceptable):
        body = error_body("not_acceptable", str(exc.detail))
        status = 406
    elif isinstance(exc, drf.UnsupportedMediaType):
        body = error_body("unsupported_media_type", _("Send the body as application/json."))
        status = 415
    elif isinstance(exc, drf.Throttled):
        body = error_body("rate_limited", _("Too many requests."))
        status = 429
        if exc.wait:
            headers["Retry-After"] = str(int(exc.wait) + 1)
    elif isinstance(exc, drf.APIException):
        body = error_body(str(exc.default_code), str(exc.detail))
        status = exc.status_code
    else:
        return None  # a real fault: Django's 500 handling, logged
    set_rollback()
    # Always JSON, whatever the client asked for (a PNG, for instance).
    return Response(body, status=status, headers=headers, content_type="application/json")
