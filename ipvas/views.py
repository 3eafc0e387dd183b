from __future__ import annotations

from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.views.decorators.cache import never_cache

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


@never_cache
def workers_health(request: HttpRequest) -> HttpResponse:
    """For monitoring, not load balancers: 200 when every routed Celery queue has a worker, else 503."""
    consumed = consumed_queues(timeout=1.0)
    missing = unconsumed(routed_queues(), consumed)
    healthy = bool(consumed) and not missing
    body = {
        "status": "ok" if healthy else "unhealthy",
        "workers": {worker: sorted(queues) for worker, queues in sorted(consumed.items())},
        "queues_without_worker": missing,
    }
    return JsonResponse(body, status=200 if healthy else 503)
