"""The EPG API v1 (docs/interfaces.md §2): thin views over the service layer."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from django.urls import Resolver404, resolve
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework.exceptions import APIException, MethodNotAllowed, NotAcceptable, ValidationError
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.mediatypes import media_type_matches

from billing.qr import qr_png, showing_qr_content
from epg_api import examples
from epg_api.authentication import key_from_header, principal_and_entries
from epg_api.base import ERROR, EpgView
from epg_api.errors import error_body, exception_handler
from epg_api.models import IdempotencyRecord
from epg_api.serializers import (
    EntitlementCheckSerializer,
    OrderCreateInput,
    OrderSerializer,
    PaymentInput,
    ProductSerializer,
    entitlement_query,
    etag_matches,
    order_etag,
    serialized,
)
from ipvas import ratelimit
from ipvas.errors import IdempotencyConflict, InvalidInput, NotFound
from lifecycle.paying import order_cancel, payment_choose
from lifecycle.pins import pin_check
from lifecycle.placing import order_create, order_input_check
from orders import selectors
from orders.constants import Channel, ProductKind

IDEMPOTENCY_WINDOW = timedelta(hours=24)
IDEMPOTENCY_KEY_RE = re.compile(r"^[\x21-\x7e]{1,64}\Z")


class ProductListView(EpgView):
    @extend_schema(
        summary="Products sold on the TV",
        parameters=[OpenApiParameter("kind", str, enum=ProductKind.values, required=False)],
        responses={
            200: inline_serializer("ProductList", fields={"results": ProductSerializer(many=True)}),
            400: ERROR,
            401: ERROR,
        },
        examples=[examples.PRODUCTS],
    )
    def get(self, request: Request) -> Response:
        kind = request.query_params.get("kind", "")
        if kind and kind not in ProductKind.values:
            raise InvalidInput(fields={"kind": [_("One of: %(kinds)s.") % {"kinds": ", ".join(ProductKind.values)}]})
        products = selectors.products_on_sale(channel=Channel.EPG, kind=kind)
        return Response({"results": [serialized(ProductSerializer, product) for product in products]})


class OrderCreateView(EpgView):
    @extend_schema(
        summary="Start an order",
        description=(
            "Creates the order in `prechecking`; poll it every 1-2 s. With `Idempotency-Key`, the same key and "
            "body within 24 h answer the same order (200); another body answers 409 `idempotency_conflict`. "
            "An account with a purchase PIN needs `purchase_pin` (403 `purchase_pin_required`, "
            "`purchase_pin_wrong`, or `purchase_pin_locked` with `Retry-After`); it is not part of that comparison."
        ),
        request=OrderCreateInput,
        parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, required=False)],
        responses={
            201: OrderSerializer,
            200: OrderSerializer,
            400: ERROR,
            401: ERROR,
            403: ERROR,
            404: ERROR,
            409: ERROR,
            429: ERROR,
        },
        examples=[examples.ORDER_CREATE, examples.ORDER_CREATE_AUTO_RENEW, examples.ORDER_PRECHECKING],
    )
    def post(self, request: Request) -> Response:
        client_id = request.user.client_id
        key = request.headers.get("Idempotency-Key", "")
        if key and not IDEMPOTENCY_KEY_RE.match(key):
            raise InvalidInput(fields={"Idempotency-Key": [_("At most 64 printable ASCII characters.")]})
        if not isinstance(request.data, dict):
            raise InvalidInput(_("The body must be a JSON object."))
        data = OrderCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        purchase_pin = values.pop("purchase_pin", None)  # not part of the Idempotency-Key comparison (§9)
        fingerprint = hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()
        if key:
            replay = self._replay(client_id, key, fingerprint)
            if replay is not None:
                return replay
        ratelimit.hit(
            "epg-orders",
            client_id,
            limit=settings.EPG_ORDERS_PER_CLIENT_PER_MINUTE,
            window_seconds=60,
            message=_("Too many orders from this client; slow down."),
        )
        # docs/interfaces.md §9: the household's purchase PIN, after the input checks (an unknown product is 404).
        product = order_input_check(
            channel=Channel.EPG, product_code=values["product_code"], tv_account=values["tv_account"],
            content_id=values.get("content_id", ""), auto_renew=values["auto_renew"],
        )  # fmt: skip
        pin_check(tv_account=values["tv_account"], pin=purchase_pin, actor=self.actor(), channel="epg_api")
        try:
            with transaction.atomic():
                order = order_create(
                    channel=Channel.EPG,
                    product_code=values["product_code"],
                    tv_account=values["tv_account"],
                    content_id=values.get("content_id", ""),
                    auto_renew=values["auto_renew"],
                    actor=self.actor(),
                    product=product,
                )
                if key:
                    IdempotencyRecord.objects.create(client_id=client_id, key=key, fingerprint=fingerprint, order=order)
        except IntegrityError:
            # The same key in a concurrent request won: answer with its order.
            replay = self._replay(client_id, key, fingerprint) if key else None
            if replay is None:
                raise
            return replay
        # The order just made is in memory: answered as it is, not read back.
        return Response(serialized(OrderSerializer, order), status=201)

    def _replay(self, client_id: str, key: str, fingerprint: str) -> Response | None:
        record = IdempotencyRecord.objects.filter(client_id=client_id, key=key).first()
        if record is None:
            return None
        if record.created_at < timezone.now() - IDEMPOTENCY_WINDOW:
            record.delete()  # an expired key starts afresh
            return None
        if record.fingerprint != fingerprint:
            raise IdempotencyConflict(_("This Idempotency-Key was used with another request body."))
        return self.order_response(record.order_id, status=200)


class OrderDetailView(EpgView):
    @extend_schema(
        summary="The order (poll while not terminal)",
        description=(
            "Every answer carries an `ETag`. Polling with `If-None-Match` set to the last one gets "
            "`304 Not Modified` with no body while the order's answer is unchanged, and the order as usual "
            "as soon as anything in it changes."
        ),
        parameters=[OpenApiParameter("If-None-Match", str, OpenApiParameter.HEADER, required=False)],
        responses={200: OrderSerializer, 304: None, 401: ERROR, 404: ERROR},
        examples=[examples.ORDER_QR, examples.ORDER_COMPLETED, examples.ORDER_REJECTED],
    )
    def get(self, request: Request, order_no: str) -> Response:
        # Asked whether it changed: the order's version first (two rows), the order itself only if it did.
        language = get_language()
        asked = request.headers.get("If-None-Match", "")
        if asked:
            etag = order_etag(self.get_order_version(order_no), language)
            if etag_matches(asked, etag):
                return Response(status=304, headers={"ETag": etag})
        order = self.get_order(order_no)
        return Response(serialized(OrderSerializer, order), headers={"ETag": order_etag(order, language)})


class OrderPaymentView(EpgView):
    @extend_schema(
        summary="Choose (or switch between QR) payment methods",
        request=PaymentInput,
        responses={200: OrderSerializer, 400: ERROR, 401: ERROR, 404: ERROR, 409: ERROR, 429: ERROR, 503: ERROR},
        examples=[examples.PAYMENT_CHOOSE, examples.ORDER_QR],
    )
    def post(self, request: Request, order_no: str) -> Response:
        order_id = self.get_order_id(order_no)
        data = PaymentInput(data=request.data if isinstance(request.data, dict) else {})
        data.is_valid(raise_exception=True)
        # As it stood when the choice committed (not read back).
        order = payment_choose(order_id=order_id, method=data.validated_data["method"], actor=self.actor())
        return Response(serialized(OrderSerializer, order))


class PngRenderer(BaseRenderer):
    """Lets a client ask for the QR code with ``Accept: image/png``; errors stay JSON."""

    media_type = "image/png"
    format = "png"
    charset = None

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        return data if isinstance(data, bytes) else json.dumps(data, ensure_ascii=False).encode()


class OrderQrView(EpgView):
    renderer_classes = [JSONRenderer, PngRenderer]

    @extend_schema(
        summary="The QR code of the pending payment, as PNG",
        responses={(200, "image/png"): OpenApiTypes.BINARY, 401: ERROR, 404: ERROR},
    )
    def get(self, request: Request, order_no: str) -> HttpResponse:
        content = showing_qr_content(self.get_order(order_no))
        if not content:
            raise NotFound(_("This order has no QR code to show now."))
        response = HttpResponse(qr_png(content), content_type="image/png")
        response["Cache-Control"] = "private, max-age=60"
        return response


class OrderCancelView(EpgView):
    @extend_schema(
        summary="Cancel before payment",
        request=None,
        responses={200: OrderSerializer, 401: ERROR, 404: ERROR, 409: ERROR},
    )
    def post(self, request: Request, order_no: str) -> Response:
        order_id = self.get_order_id(order_no)
        order_cancel(order_id=order_id, actor=self.actor())
        return self.order_response(order_id)


class EntitlementsDoc(EpgView):
    """Only the OpenAPI description of GET /entitlements/, which the plain view ``entitlements`` answers:
    drf-spectacular describes DRF views only. urls.py routes the URL to that view first."""

    @extend_schema(
        summary="What a TV account may watch (the hot path)",
        description=(
            "The live entitlements we provisioned for the account, filtered by `product_code` and `content_id`; "
            "`entitled` is true when one of them is in force now (a `per_view` entitlement matches only its own "
            "`content_id`)."
        ),
        parameters=[
            OpenApiParameter("tv_account", str, required=True),
            OpenApiParameter("product_code", str, required=False),
            OpenApiParameter("content_id", str, required=False),
        ],
        responses={200: EntitlementCheckSerializer, 400: ERROR, 401: ERROR},
        examples=[examples.ENTITLEMENTS],
    )
    def get(self, request: Request) -> Response:
        raise NotImplementedError("GET /entitlements/ is answered by epg_api.views.entitlements")


ENTITLEMENTS_ALLOW = "GET, HEAD, OPTIONS"
JSON_MEDIA_TYPE = "application/json"
# What DRF's JSONRenderer writes (compact, UTF-8), made once.
_json = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode
_negotiation = DefaultContentNegotiation()
ENTITLEMENTS_OPTIONS = _json(
    {"name": "Entitlements", "description": "", "renders": [JSON_MEDIA_TYPE], "parses": [JSON_MEDIA_TYPE]}
)


@csrf_exempt
def entitlements(request: HttpRequest) -> HttpResponse:
    """GET /api/epg/v1/entitlements/ (docs/interfaces.md §2), the hot path: a plain view, no DRF.

    One round trip to Redis reads the API key's revocation marker and the account's entitlements
    together. The answers are those of the API's DRF views: an unacceptable Accept header → 406, no
    or a bad key → 401, another method → 405, bad parameters → 400, in that order; errors as
    epg_api.errors makes them.
    """
    try:
        if not _accepts_json(request):
            raise NotAcceptable()
        key = key_from_header(request.META.get("HTTP_AUTHORIZATION", ""))
        query, errors = entitlement_query(request.GET)
        entries = [] if errors else [selectors.entitlements_cache_key(query["tv_account"])]
        _principal, found = principal_and_entries(key, entries)
        if request.method == "OPTIONS":  # what DRF's metadata answers for the API's other views
            return HttpResponse(
                ENTITLEMENTS_OPTIONS, content_type=JSON_MEDIA_TYPE, headers={"Allow": ENTITLEMENTS_ALLOW}
            )
        if request.method not in ("GET", "HEAD"):
            raise MethodNotAllowed(request.method)
        if errors:
            raise ValidationError(errors)
    except APIException as exc:
        return _error(exc)
    entitled, rows = selectors.entitlement_check(**query, cached=found.get(entries[0], selectors.NOT_READ))
    here = timezone.get_current_timezone()  # timezone.localtime(), looked up once
    body = {
        "tv_account": query["tv_account"],
        "entitled": entitled,
        "entitlements": [
            {
                "product_code": row["product_code"],
                "kind": row["kind"],
                "starts_at": row["starts_at"].astimezone(here).isoformat(),
                "ends_at": row["ends_at"].astimezone(here).isoformat(),
                "content_id": row["content_id"] or None,
            }
            for row in rows
        ],
    }
    return _json_response(body, 200)


def _accepts_json(request: HttpRequest) -> bool:
    """Whether DRF's content negotiation would answer with JSON, the API's only renderer."""
    if "HTTP_ACCEPT" not in request.META:
        return True  # read as */*
    return any(media_type_matches(JSON_MEDIA_TYPE, accepted) for accepted in _negotiation.get_accept_list(request))


def _error(exc: APIException) -> HttpResponse:
    """The error epg_api.errors answers to ``exc`` in the API's DRF views."""
    answer = exception_handler(exc, {})
    assert answer is not None  # it answers every APIException
    response = _json_response(answer.data, answer.status_code)
    for name, value in answer.items():  # WWW-Authenticate for a 401
        if name != "Content-Type":  # DRF sets that when it renders
            response[name] = value
    return response


def _json_response(data: Any, status: int) -> HttpResponse:
    return HttpResponse(_json(data), content_type=JSON_MEDIA_TYPE, status=status, headers={"Allow": ENTITLEMENTS_ALLOW})


@csrf_exempt
def unknown_path(request: HttpRequest, path: str = "") -> HttpResponse:
    """Any other address under /api/epg/v1/: the API's 404, never an HTML page or a redirect.

    Django would redirect an address without its trailing slash to the one with it (APPEND_SLASH), which
    loses a POST's body; here the answer is a 404 that names the right address instead.
    """
    message = _("Not found.")
    if not request.path.endswith("/"):
        try:
            match = resolve(request.path + "/")
        except Resolver404:
            match = None
        if match is not None and match.url_name != "unknown":
            message = _("Not found. This address ends with a slash: %(url)s") % {"url": request.path + "/"}
    return HttpResponse(_json(error_body("not_found", message)), content_type=JSON_MEDIA_TYPE, status=404)
