"""Django's WSGI handler, with a shorter way through the middleware for the set-top box's hot path.

The entitlement check (GET /api/epg/v1/entitlements/, nearly all of the traffic) cost, in Django's
middleware, about as much CPU as its own work, and most of that middleware serves people in browsers
(sessions, CSRF, users, messages, admin's second factor, static files) or measures every request
(django-prometheus: 16 metric updates each). ipvas/wsgi.py names the path and the middleware it skips: a
request for it goes through the rest of ``settings.MIDDLEWARE``, in the same order, into the same view,
routed by the same URLconf, and is measured by one histogram of its own; every other request goes through
all of it. docs/decisions.md says why each skipped middleware has nothing to do with the check;
tests/epg_api/test_entitlement_lean_path.py holds the answers equal.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, MiddlewareNotUsed
from django.core.handlers.base import BaseHandler
from django.core.handlers.exception import convert_exception_to_response
from django.core.handlers.wsgi import WSGIHandler
from django.http import HttpRequest, HttpResponse
from django.utils.module_loading import import_string
from prometheus_client import Histogram

# What django-prometheus's middleware would have measured of them, in one metric (about 3 µs a request
# instead of its 16 updates).
LEAN_PATH_SECONDS = Histogram(
    "ipvas_lean_path_seconds",
    "Requests on the lean paths (the entitlement check), which django-prometheus does not see, by path and status",
    ["path", "status"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)


class _Chain(BaseHandler):
    """Django's request handling through the middleware ``names`` only (WSGI: synchronous)."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = list(names)
        self.load_middleware()

    def load_middleware(self, is_async: bool = False) -> None:
        # BaseHandler.load_middleware, over self.names instead of settings.MIDDLEWARE (every middleware
        # of ours and of the libraries we use handles synchronous requests, which is all WSGI sends).
        self._view_middleware = []
        self._template_response_middleware = []
        self._exception_middleware = []
        handler = convert_exception_to_response(self._get_response)
        for name in reversed(self.names):
            try:
                middleware = import_string(name)(handler)
            except MiddlewareNotUsed:
                continue
            if hasattr(middleware, "process_view"):
                self._view_middleware.insert(0, middleware.process_view)
            if hasattr(middleware, "process_template_response"):
                self._template_response_middleware.append(middleware.process_template_response)
            if hasattr(middleware, "process_exception"):
                self._exception_middleware.append(middleware.process_exception)
            handler = convert_exception_to_response(middleware)
        self._middleware_chain = handler


class LeanPathsHandler(WSGIHandler):
    """Django's WSGIHandler, except that a request for one of ``paths`` skips the middleware ``skip`` names."""

    def __init__(self, *, paths: Sequence[str], skip: Sequence[str]) -> None:
        super().__init__()
        unknown = set(skip).difference(settings.MIDDLEWARE)
        if unknown:  # a renamed middleware would silently run again on the lean paths
            raise ImproperlyConfigured(f"These are not in MIDDLEWARE: {sorted(unknown)}")
        lean = _Chain([name for name in settings.MIDDLEWARE if name not in skip])
        self._lean = dict.fromkeys(paths, lean)

    def get_response(self, request: HttpRequest) -> HttpResponse:
        lean = self._lean.get(request.path_info)
        if lean is None:
            return super().get_response(request)
        started = time.perf_counter()
        response = lean.get_response(request)
        LEAN_PATH_SECONDS.labels(request.path_info, response.status_code).observe(time.perf_counter() - started)
        return response
