"""``POST /api/epg/v1/tv-sessions/`` (docs/interfaces.md §9): the EPG's server asks for a session of the TV pages.

Like a hosted checkout: the answer is a one-time ``url`` that the set-top box's browser opens within
``LAUNCH_SECONDS``; the TV pages (``tv/``) then keep the session in a cookie for ``COOKIE_SECONDS``, bound to
the TV account and to the EPG client that asked. Only hashes of the launch token and of the cookie are kept.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.utils import OpenApiExample, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from epg_api.base import ERROR, EpgView
from epg_api.models import TvSession
from epg_api.serializers import CONTENT_ID_MESSAGE, TV_ACCOUNT_MESSAGE, StrictCharField
from ipvas import ratelimit
from ipvas.errors import InvalidInput
from ipvas.purge import purge_in_batches
from orders.constants import Channel, ProductKind
from orders.selectors import product_for_sale
from orders.validation import CONTENT_ID_RE, TV_ACCOUNT_RE

LAUNCH_SECONDS = 120
COOKIE_SECONDS = 30 * 60
LOCALES = ("zh-Hans", "en")
# Sessions are kept a day after they end (for support questions), then purged by beat.
RETENTION = timedelta(days=1)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def valid_return_url(value: str) -> bool:
    """An absolute http(s) URL with a host and nothing that could break out of a URL (spaces, controls)."""
    if any(c.isspace() or ord(c) < 0x20 or c in '<>"\\' for c in value):
        return False
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


class TvSessionInput(serializers.Serializer):
    tv_account = StrictCharField(max_length=64)
    return_url = StrictCharField(max_length=512)
    product_code = StrictCharField(max_length=32, required=False)
    content_id = StrictCharField(max_length=64, required=False)
    locale = serializers.ChoiceField(choices=LOCALES, required=False, default="zh-Hans")

    def validate_tv_account(self, value: str) -> str:
        if not TV_ACCOUNT_RE.match(value):
            raise serializers.ValidationError(TV_ACCOUNT_MESSAGE)
        return value

    def validate_return_url(self, value: str) -> str:
        if not valid_return_url(value):
            raise serializers.ValidationError(gettext_lazy("An absolute http or https URL."))
        return value

    def validate_content_id(self, value: str) -> str:
        if not CONTENT_ID_RE.match(value):
            raise serializers.ValidationError(CONTENT_ID_MESSAGE)
        return value


def tv_session_create(
    *,
    client_id: str,
    tv_account: str,
    return_url: str,
    product_code: str = "",
    content_id: str = "",
    locale: str = "zh-Hans",
) -> tuple[TvSession, str]:
    """A new session and its launch token (shown once, in the URL). The product, when given, must be on sale
    on the EPG now, and take a ``content_id`` exactly when it is per view, as an order would."""
    if product_code:
        product = product_for_sale(code=product_code, channel=Channel.EPG)
        if product.kind == ProductKind.PER_VIEW and not content_id:
            raise InvalidInput(fields={"content_id": [_("A per-view product needs the content_id of what is bought.")]})
        if product.kind != ProductKind.PER_VIEW and content_id:
            raise InvalidInput(fields={"content_id": [_("Only per-view products take a content_id.")]})
    token = secrets.token_urlsafe(32)
    session = TvSession.objects.create(
        session_id="TS" + secrets.token_hex(15),
        client_id=client_id,
        tv_account=tv_account,
        return_url=return_url,
        product_code=product_code,
        content_id=content_id,
        locale=locale,
        launch_token_hash=token_hash(token),
        launch_expires_at=timezone.now() + timedelta(seconds=LAUNCH_SECONDS),
    )
    return session, token


def purge_tv_sessions() -> int:
    """Delete sessions a day after they ended (or after their launch URL expired unopened)."""
    cutoff = timezone.now() - RETENTION
    ended = Q(expires_at__lt=cutoff) | Q(expires_at__isnull=True, launch_expires_at__lt=cutoff)
    return purge_in_batches(TvSession.objects.filter(ended))


TV_SESSION_EXAMPLE = OpenApiExample(
    "A session for tv1001, on the product list",
    value={"tv_account": "tv1001", "return_url": "https://epg.example.com/vas/back", "locale": "zh-Hans"},
    request_only=True,
)
TV_SESSION_PRODUCT_EXAMPLE = OpenApiExample(
    "A session for one per-view film",
    value={
        "tv_account": "tv1001",
        "return_url": "https://epg.example.com/vas/back?film=MOVIE-001",
        "product_code": "PPV-MOVIE",
        "content_id": "MOVIE-001",
    },
    request_only=True,
)
TV_SESSION_ANSWER = OpenApiExample(
    "The session",
    value={
        "session_id": "TS3f9a0c5e7b1d2468ace0135792468",
        "url": "https://ipvas.example.com/tv/launch/q0yqB1mT4m7nQ0w1b2c3d4e5f6g7h8i9j0k1l2m3n4o/",
        "expires_at": "2026-12-05T12:02:00+08:00",
    },
    response_only=True,
)


class TvSessionCreateView(EpgView):
    @extend_schema(
        summary="Open the TV pages for a TV account",
        description=(
            "The answer's `url` opens once, within 120 s, in the set-top box's browser; the TV pages then keep "
            "the session for 30 minutes, bound to `tv_account` and this EPG client. Orders made there are this "
            "client's EPG orders. Success and cancel return to `return_url` with `result=success&order_no=...` "
            "or `result=cancel` added to its query."
        ),
        request=TvSessionInput,
        responses={
            201: inline_serializer(
                "TvSession",
                fields={
                    "session_id": serializers.CharField(),
                    "url": serializers.CharField(),
                    "expires_at": serializers.DateTimeField(),
                },
            ),
            400: ERROR,
            401: ERROR,
            404: ERROR,
            429: ERROR,
        },
        examples=[TV_SESSION_EXAMPLE, TV_SESSION_PRODUCT_EXAMPLE, TV_SESSION_ANSWER],
    )
    def post(self, request: Request) -> Response:
        if not isinstance(request.data, dict):
            raise InvalidInput(_("The body must be a JSON object."))
        data = TvSessionInput(data=request.data)
        data.is_valid(raise_exception=True)
        values: dict[str, Any] = data.validated_data
        ratelimit.hit(
            "epg-tv-sessions",
            request.user.client_id,
            limit=settings.EPG_ORDERS_PER_CLIENT_PER_MINUTE,
            window_seconds=60,
            message=_("Too many sessions from this client; slow down."),
        )
        # The session is the key's (revoking it ends the session); its orders are the client's (tv.views).
        session, token = tv_session_create(client_id=request.user.key_id, **values)
        body = {
            "session_id": session.session_id,
            "url": settings.PUBLIC_BASE_URL + reverse("tv:launch", kwargs={"token": token}),
            "expires_at": serializers.DateTimeField().to_representation(session.launch_expires_at),
        }
        return Response(body, status=201)
