"""Errors that no view answered, in the shape each caller reads (issue #11, items 3, 6, 8).

Django answers what escapes a view (an outside dependency down, a body too
large, an unknown URL) with HTML pages. The EPG API, the providers and the SMS
gateway read something else; ``ipvas/urls.py`` routes Django's 400, 404 and
500 handlers here, which answer by the path:

| path | shape |
|---|---|
| ``/api/`` | the EPG API's ``{"error": {"code", "message", "fields"}}`` (docs/interfaces.md §2) |
| ``/billing/notify/wechatpay/`` | WeChat Pay's ``{"code": "FAIL", "message"}`` (it retries) |
| ``/billing/notify/alipay/`` | Alipay's plain ``fail`` (it retries) |
| ``/sms/``, ``/sandbox/``, other ``/billing/notify/`` | ``{"error": {"code", "message"}}`` |
| anything else | a short HTML page (the clerk's pages, admin) |

A failure of an outside dependency (Redis, the database, the broker, a full
disk) is 503 with ``Retry-After``: nothing the caller did wrong, and worth
trying again; anything else that escaped is 500.
"""

from __future__ import annotations

import errno
import json

from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from django.utils.html import escape
from django.utils.translation import gettext as _
from kombu.exceptions import OperationalError as BrokerError
from redis.exceptions import RedisError

RETRY_AFTER_SECONDS = 10
DEPENDENCY_ERRORS: tuple[type[BaseException], ...] = (RedisError, OperationalError, InterfaceError, BrokerError)
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def is_dependency_failure(exc: BaseException | None) -> bool:
    """An outside dependency failed (down, unreachable, out of space), rather than our code."""
    seen = 0
    while exc is not None and seen < 5:  # an adapter may wrap the original
        if isinstance(exc, DEPENDENCY_ERRORS):
            return True
        if isinstance(exc, OSError) and exc.errno in DISK_FULL:
            return True
        if isinstance(exc, DatabaseError) and "disk" in str(exc).lower() and "full" in str(exc).lower():
            return True  # SQLite: "database or disk is full"
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


def shape_of(path: str) -> str:
    if path.startswith("/api/"):
        return "epg"
    if path.startswith("/billing/notify/wechatpay/"):
        return "wechatpay"
    if path.startswith("/billing/notify/alipay/"):
        return "alipay"
    if path.startswith(("/sms/", "/sandbox/", "/billing/notify/")):
        return "json"
    return "html"


def error_answer(
    request: HttpRequest, *, status: int, code: str, message: str, retry_after: int | None = None
) -> HttpResponse:
    shape = shape_of(request.path)
    if shape == "epg":
        body = json.dumps({"error": {"code": code, "message": message, "fields": {}}}, ensure_ascii=False)
        response = HttpResponse(body, status=status, content_type="application/json")
    elif shape == "wechatpay":
        body = json.dumps({"code": "FAIL", "message": message}, ensure_ascii=False)
        response = HttpResponse(body, status=status, content_type="application/json")
    elif shape == "alipay":
        response = HttpResponse("fail", status=status, content_type="text/plain")
    elif shape == "json":
        body = json.dumps({"error": {"code": code, "message": message}}, ensure_ascii=False)
        response = HttpResponse(body, status=status, content_type="application/json")
    else:
        page = (
            f'<!doctype html><html><head><meta charset="utf-8"><title>{status}</title></head>'
            f"<body><p>{escape(message)}</p></body></html>"
        )
        response = HttpResponse(page, status=status, content_type="text/html; charset=utf-8")
    if retry_after is not None:
        response["Retry-After"] = str(retry_after)
    return response


def unavailable(request: HttpRequest) -> HttpResponse:
    return error_answer(
        request,
        status=503,
        code="service_unavailable",
        message=_("The service is unavailable at the moment; please try again shortly."),
        retry_after=RETRY_AFTER_SECONDS,
    )
