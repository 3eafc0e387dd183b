"""Response headers every page gets: a Content-Security-Policy, and the cookies the CRM frame needs."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

# The clerk pages: the only pages another origin (the CRM) may frame.
FRAMED_PREFIXES = ("/crm/",)


def content_security_policy(path: str) -> str:
    if path.startswith(FRAMED_PREFIXES):
        ancestors = " ".join(["'self'", *settings.CRM_FRAME_ORIGINS])
    elif path.startswith("/sandbox/crm/"):
        ancestors = "'self'"
    else:
        ancestors = "'none'"
    return (
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; "
        f"object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors {ancestors}"
    )


class SecurityHeadersMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", content_security_policy(request.path))
        if settings.CRM_FRAME_ORIGINS and settings.SESSION_COOKIE_SECURE:
            # Inside the CRM's iframe our cookies are third-party: only SameSite=None
            # (with Secure) lets the browser send them. That is done for the framed
            # pages' session and CSRF cookies, and for the language choice (which
            # the clerk makes from those pages); every other cookie stays Lax.
            names = [settings.LANGUAGE_COOKIE_NAME]
            if request.path.startswith(FRAMED_PREFIXES):
                names += [settings.SESSION_COOKIE_NAME, settings.CSRF_COOKIE_NAME]
            for name in names:
                if name in response.cookies:
                    response.cookies[name]["samesite"] = "None"
                    response.cookies[name]["secure"] = True
        return response
