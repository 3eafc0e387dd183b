"""The TV pages' session (docs/interfaces.md §9): the one-time launch URL, then a cookie bound to one TV account
and one EPG client; and what every TV page's answer carries (language, framing rules, no caching).

The session is asked for by the EPG's server (``epg_api.tv_sessions``); this module opens it in the set-top
box's browser. The cookie is our own (not Django's session), scoped to ``/tv/``: the TV pages are embedded by
the EPG, so in production it is ``SameSite=None; Secure``, and our POST forms carry a token bound to the
session instead of relying on Django's CSRF cookie, which would not travel in the EPG's frame.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import wraps
from typing import Any
from urllib.parse import unquote_plus, urlencode, urlsplit, urlunsplit

from django.conf import settings
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone, translation
from django.utils.crypto import constant_time_compare, salted_hmac
from django.views.decorators.cache import never_cache
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.csrf import csrf_exempt

from epg_api.models import EpgClient, TvSession, origins
from epg_api.tv_sessions import COOKIE_SECONDS, token_hash

COOKIE_NAME = "ipvas_tv"
COOKIE_PATH = "/tv/"
LANGUAGE_OF_LOCALE = {"zh-Hans": "zh-hans", "en": "en"}

View = Callable[..., HttpResponse]


@dataclass(frozen=True)
class Refusal:
    """Why the TV pages cannot be shown: a page that says so, with its status."""

    reason: str  # unknown, used, expired, ended
    status: int
    session: TvSession | None = None


def with_query(url: str, **params: str) -> str:
    """``url`` with ``params`` added to its query (replacing any of the same names). The EPG's own pairs stay
    byte for byte as it wrote them: a GBK page's ``%D6%D0``, a bare flag, its choice of ``%20`` (decoding and
    encoding them again would change them); only pairs named like ours are left out."""
    parts = urlsplit(url)
    kept = [pair for pair in parts.query.split("&") if pair and unquote_plus(pair.split("=", 1)[0]) not in params]
    return urlunsplit(parts._replace(query="&".join([*kept, urlencode(list(params.items()))])))


def exit_url(session: TvSession, result: str, order_no: str = "") -> str:
    """Where the TV pages hand back to the EPG: ``return_url`` with ``result`` (and the order) in its query."""
    if order_no:
        return with_query(session.return_url, result=result, order_no=order_no)
    return with_query(session.return_url, result=result)


def client_usable(client: EpgClient) -> bool:
    return not client.revoked and not client.has_expired


def launch(token: str) -> tuple[TvSession | None, str, Refusal | None]:
    """Open the session of a launch token, once: (the session, the new cookie value, None), or a refusal."""
    session = None
    if 0 < len(token) <= 100:
        session = (
            TvSession.objects.select_related("client__acts_for").filter(launch_token_hash=token_hash(token)).first()
        )
    if session is None or not client_usable(session.client):
        return None, "", Refusal("unknown", 403)
    if session.launched_at is not None:
        return None, "", Refusal("used", 410, session)
    now = timezone.now()
    if session.launch_expires_at <= now:
        return None, "", Refusal("expired", 410, session)
    cookie = secrets.token_urlsafe(32)
    opened = TvSession.objects.filter(pk=session.pk, launched_at__isnull=True).update(
        launched_at=now, cookie_hash=token_hash(cookie), expires_at=now + timedelta(seconds=COOKIE_SECONDS)
    )
    if not opened:  # opened by another request in the meantime
        return None, "", Refusal("used", 410, session)
    session.refresh_from_db()
    return session, cookie, None


def session_of(request: HttpRequest) -> tuple[TvSession | None, Refusal | None]:
    """The session of the request's cookie, or why there is none."""
    cookie = request.COOKIES.get(COOKIE_NAME, "")
    session = None
    if 0 < len(cookie) <= 100:
        session = TvSession.objects.select_related("client__acts_for").filter(cookie_hash=token_hash(cookie)).first()
    if session is None:
        return None, Refusal("unknown", 403)
    if session.expires_at is None or session.expires_at <= timezone.now() or not client_usable(session.client):
        return None, Refusal("ended", 403, session)
    return session, None


def set_cookie(response: HttpResponse, value: str) -> None:
    # Inside the EPG's frame our cookie is a third-party one: only SameSite=None (with Secure) travels.
    secure = settings.SESSION_COOKIE_SECURE
    response.set_cookie(
        COOKIE_NAME,
        value,
        max_age=COOKIE_SECONDS,
        path=COOKIE_PATH,
        secure=secure,
        httponly=True,
        samesite="None" if secure else "Lax",
    )


def form_token(session: TvSession) -> str:
    """What the TV pages' POST forms carry: bound to this session's cookie, unknown to another site."""
    return salted_hmac("tv.form", session.cookie_hash or "", algorithm="sha256").hexdigest()[:32]


def form_token_ok(request: HttpRequest, session: TvSession) -> bool:
    return constant_time_compare(request.POST.get("token", ""), form_token(session))


def frame_origins(session: TvSession | None) -> list[str]:
    """Who may frame the page: the session's EPG client's origins; without a session (an unknown URL),
    any EPG client's, so that the EPG can show that page too."""
    if session is not None:  # the client's (its first key's), whichever of its keys asked for the session
        return origins((session.client.acts_for or session.client).tv_frame_origins)
    found: list[str] = []
    # The clients with a key not revoked: the first key's row holds the origins.
    standing = EpgClient.objects.filter(acts_for=None).filter(Q(revoked=False) | Q(later_keys__revoked=False))
    for text in standing.exclude(tv_frame_origins="").values_list("tv_frame_origins", flat=True).distinct():
        found += [o for o in origins(text) if o not in found]
    return found


def secure_headers(response: HttpResponse, session: TvSession | None) -> HttpResponse:
    allowed = frame_origins(session)
    ancestors = " ".join(["'self'", *allowed])
    response["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self'; style-src 'self'; script-src 'self'; connect-src 'self'; "
        "font-src 'none'; object-src 'none'; base-uri 'none'; form-action 'self'; "
        f"frame-ancestors {ancestors}"
    )
    if not allowed:
        # Old set-top box browsers know X-Frame-Options, not frame-ancestors; it cannot name other origins.
        response["X-Frame-Options"] = "SAMEORIGIN"
    return response


def language_of(session: TvSession | None) -> str:
    return LANGUAGE_OF_LOCALE.get(session.locale, settings.LANGUAGE_CODE) if session else settings.LANGUAGE_CODE


def refusal_page(request: HttpRequest, refusal: Refusal) -> HttpResponse:
    with translation.override(language_of(refusal.session)):
        leave = exit_url(refusal.session, "cancel") if refusal.session else ""
        context = {"reason": refusal.reason, "exit_url": leave, "back_url": leave, "screen": "ended"}
        response = render(request, "tv/ended.html", context, status=refusal.status)
    return secure_headers(response, refusal.session)


def tv_page(view: View) -> View:
    """A TV page: needs the session's cookie; answers in the session's language, with its framing rules; a POST
    needs the session's form token."""

    @xframe_options_exempt
    @never_cache
    @csrf_exempt  # form_token_ok instead: see the module's docstring
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        session, refusal = session_of(request)
        if refusal is not None:
            return refusal_page(request, refusal)
        assert session is not None
        if request.method == "POST" and not form_token_ok(request, session):
            return refusal_page(request, Refusal("forged", 403, session))
        language = language_of(session)
        with translation.override(language):
            response = view(request, session, *args, **kwargs)
        # Said here: LocaleMiddleware labels the answer after the override has ended, in the browser's language.
        response.headers.setdefault("Content-Language", language)
        return secure_headers(response, session)

    return wrapper
