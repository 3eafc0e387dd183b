from __future__ import annotations

import sys
import threading
import time

from django.core.cache import cache
from django.core.exceptions import RequestDataTooBig
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views import csrf as django_csrf
from django.views import defaults as django_defaults
from django.views.decorators.cache import never_cache

from ipvas import answers
from ipvas.queues import consumed_queues, routed_queues, unconsumed


def home(request: HttpRequest) -> HttpResponse:
    """Where a sign-in lands: clerks go to their pages, staff to admin."""
    user = request.user
    if user.is_authenticated and hasattr(user, "clerk"):
        return redirect("crm:order-new")
    if user.is_authenticated and user.is_staff:
        return redirect("admin:index")
    return render(request, "home.html")


def favicon(request: HttpRequest) -> HttpResponse:
    return redirect(static("favicon.svg"), permanent=True)


@never_cache
def health(request: HttpRequest) -> HttpResponse:
    """For load balancers: 200 when the database and the cache answer, else 503."""
    checks: dict[str, str] = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - any failure means unhealthy
        checks["database"] = f"error: {exc.__class__.__name__}"
    try:
        cache.set("healthz", "1", 5)
        checks["cache"] = "ok" if cache.get("healthz") == "1" else "error: no read-back"
    except Exception as exc:  # noqa: BLE001
        checks["cache"] = f"error: {exc.__class__.__name__}"
    healthy = all(v == "ok" for v in checks.values())
    return JsonResponse({"status": "ok" if healthy else "unhealthy", "checks": checks}, status=200 if healthy else 503)


def bench_bare(request: HttpRequest) -> HttpResponse:
    """The baseline of the benchmarks: no work, the same middleware (only with IPVAS_BENCH=1)."""
    return JsonResponse({"ok": True})


# /healthz/workers/ answers anyone (the monitoring probes each node on plain HTTP, docs/decisions.md), and each
# ask of the workers waits its whole second for their answers: asked on every request, a few requests a second
# from anyone held every thread of a node (4 per process) and flooded the workers' control queue. The workers'
# answer is asked at most once per WORKERS_HEALTH_MAX_AGE_SECONDS per process, by one request at a time; while
# one asks, the others answer the last answer at once.
WORKERS_HEALTH_MAX_AGE_SECONDS = 5.0
_workers_lock = threading.Lock()
_workers_answer: tuple[float, dict[str, set[str]]] | None = None  # (time.monotonic() when asked, the answer)


def _consumed_lately() -> dict[str, set[str]]:
    global _workers_answer
    last = _workers_answer
    if last is not None and time.monotonic() - last[0] < WORKERS_HEALTH_MAX_AGE_SECONDS:
        return last[1]
    if not _workers_lock.acquire(blocking=last is None):
        assert last is not None
        return last[1]  # another request is asking the workers: the last answer meanwhile
    try:
        if _workers_answer is not last and _workers_answer is not None:
            return _workers_answer[1]  # asked by the request this one waited for
        consumed = consumed_queues(timeout=1.0)
        _workers_answer = (time.monotonic(), consumed)
        return consumed
    finally:
        _workers_lock.release()


@never_cache
def workers_health(request: HttpRequest) -> HttpResponse:
    """For monitoring, not load balancers: 200 when every routed Celery queue has a worker, else 503 (the
    workers' answer of the last WORKERS_HEALTH_MAX_AGE_SECONDS)."""
    consumed = _consumed_lately()
    missing = unconsumed(routed_queues(), consumed)
    healthy = bool(consumed) and not missing
    body = {
        "status": "ok" if healthy else "unhealthy",
        "workers": {worker: sorted(queues) for worker, queues in sorted(consumed.items())},
        "queues_without_worker": missing,
    }
    return JsonResponse(body, status=200 if healthy else 503)


# --- Django's error handlers (ipvas/urls.py): each caller's shape (ipvas/answers.py) -------------------


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """A request Django refused before any view: too large a body, too many fields, a bad host."""
    if isinstance(exception, RequestDataTooBig):
        return answers.error_answer(
            request, status=413, code="request_too_large", message=_("The request body is too large.")
        )
    return answers.error_answer(request, status=400, code="invalid", message=_("The request is not valid."))


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """A form refused for its CSRF token. On the clerk's pages that is, nearly always, a page opened before the
    counter signed in again (the CRM opened our pages anew: the sign-in renews the token): said in the clerk's
    words, with the way back to the page, instead of Django's bare 403. Nothing the form asked for was done."""
    if not request.path.startswith("/crm/"):
        return django_csrf.csrf_failure(request, reason)
    back = request.META.get("HTTP_REFERER", "")
    if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}) or "/crm/" not in back:
        back = "/crm/"
    return render(request, "crm/page_out_of_date.html", {"back": back}, status=403)


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if answers.shape_of(request.path) == "html":
        return django_defaults.page_not_found(request, exception)
    return answers.error_answer(request, status=404, code="not_found", message=_("Not found."))


def server_error(request: HttpRequest) -> HttpResponse:
    """What escaped every view: 503 when an outside dependency failed (try again), else 500."""
    if answers.is_dependency_failure(sys.exc_info()[1]):
        return answers.unavailable(request)
    if answers.shape_of(request.path) == "html":
        return django_defaults.server_error(request)
    return answers.error_answer(
        request, status=500, code="server_error", message=_("Something went wrong on our side; please try again.")
    )
