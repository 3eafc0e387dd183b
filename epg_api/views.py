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
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.permissions import BasePermission
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.qr import qr_png, showing_qr_content
from epg_api import examples
from epg_api.authentication import ApiKeyAuthentication, EpgPrincipal, key_from_header, prefetched, remembered
from epg_api.models import IdempotencyRecord
from epg_api.serializers import (
    EntitlementCheckSerializer,
    EntitlementQuery,
    OrderCreateInput,
    OrderSerializer,
    PaymentInput,
    ProductSerializer,
)
from ipvas import ratelimit
from ipvas.actors import Actor, ActorKind
from ipvas.errors import IdempotencyConflict, InvalidInput, NotFound
from lifecycle.paying import order_cancel, payment_choose
from lifecycle.placing import order_create
from orders import selectors
from orders.constants import Channel, ProductKind
from orders.models import Order
from orders.validation import CONTENT_ID_RE, ORDER_NO_RE, TV_ACCOUNT_RE

IDEMPOTENCY_WINDOW = timedelta(hours=24)
IDEMPOTENCY_KEY_RE = re.compile(r"^[\x21-\x7e]{1,64}\Z")
ERROR = OpenApiResponse(description='Error: `{"error": {"code", "message", "fields"}}`')


class IsEpgClient(BasePermission):
    def has_permission(self, request: Request, view: Any) -> bool:
        return isinstance(request.user, EpgPrincipal)


class EpgView(APIView):
    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [IsEpgClient]

    def actor(self) -> Actor:
        return Actor(ActorKind.EPG_CLIENT, self.request.user.client_id)

    def get_order(self, order_no: str) -> Order:
        order = None
        if ORDER_NO_RE.match(order_no):  # anything else cannot be ours (and never reaches the database)
            order = selectors.order_for_epg_client(order_no=order_no, client_id=self.request.user.client_id)
        if order is None:
            raise NotFound(_("There is no order %(order_no)s.") % {"order_no": order_no[:40]})
        return order

    def order_response(self, order_id: int, status: int = 200) -> Response:
        order = Order.objects.select_related("product", "entitlement").get(pk=order_id)
        return Response(OrderSerializer(order).data, status=status)


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
        return Response({"results": ProductSerializer(products, many=True).data})


class OrderCreateView(EpgView):
    @extend_schema(
        summary="Start an order",
        description=(
            "Creates the order in `prechecking`; poll it every 1-2 s. With `Idempotency-Key`, the same key and "
            "body within 24 h answer the same order (200); another body answers 409 `idempotency_conflict`."
        ),
        request=OrderCreateInput,
        parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, required=False)],
        responses={
            201: OrderSerializer,
            200: OrderSerializer,
            400: ERROR,
            401: ERROR,
            404: ERROR,
            409: ERROR,
            429: ERROR,
        },
        examples=[examples.ORDER_CREATE, examples.ORDER_PRECHECKING],
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
        try:
            with transaction.atomic():
                order = order_create(
                    channel=Channel.EPG,
                    product_code=values["product_code"],
                    tv_account=values["tv_account"],
                    content_id=values.get("content_id", ""),
                    actor=self.actor(),
                )
                if key:
                    IdempotencyRecord.objects.create(client_id=client_id, key=key, fingerprint=fingerprint, order=order)
        except IntegrityError:
            # The same key in a concurrent request won: answer with its order.
            replay = self._replay(client_id, key, fingerprint) if key else None
            if replay is None:
                raise
            return replay
        return self.order_response(order.pk, status=201)

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
        responses={200: OrderSerializer, 401: ERROR, 404: ERROR},
        examples=[examples.ORDER_QR, examples.ORDER_COMPLETED, examples.ORDER_REJECTED],
    )
    def get(self, request: Request, order_no: str) -> Response:
        return Response(OrderSerializer(self.get_order(order_no)).data)


class OrderPaymentView(EpgView):
    @extend_schema(
        summary="Choose (or switch between QR) payment methods",
        request=PaymentInput,
        responses={200: OrderSerializer, 400: ERROR, 401: ERROR, 404: ERROR, 409: ERROR, 429: ERROR, 503: ERROR},
        examples=[examples.PAYMENT_CHOOSE, examples.ORDER_QR],
    )
    def post(self, request: Request, order_no: str) -> Response:
        order = self.get_order(order_no)
        data = PaymentInput(data=request.data if isinstance(request.data, dict) else {})
        data.is_valid(raise_exception=True)
        payment_choose(order_id=order.pk, method=data.validated_data["method"], actor=self.actor())
        return self.order_response(order.pk)


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
        order = self.get_order(order_no)
        order_cancel(order_id=order.pk, actor=self.actor())
        return self.order_response(order.pk)


class EntitlementsView(EpgView):
    """The hot path: one round trip to Redis answers it (the key's marker and the account's entitlements).

    A plain request (GET, valid parameters, a key verified in the last minute,
    JSON acceptable) is answered before DRF's request handling, with the same
    body and headers; anything else takes DRF's way, whose answers (errors
    included) are the contract's.
    """

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        answer = self._answer_plain_request(request)
        return answer if answer is not None else super().dispatch(request, *args, **kwargs)

    def cache_prefetch(self, request: Request) -> list[str]:
        """Read the account's cache entry with the API key's marker (epg_api.authentication)."""
        tv_account = request._request.GET.get("tv_account", "")
        if not settings.ENTITLEMENT_CACHE_SECONDS or not TV_ACCOUNT_RE.match(tv_account):
            return []
        return [selectors.entitlements_cache_key(tv_account)]

    @extend_schema(
        summary="What a TV account may watch (the hot path)",
        parameters=[
            OpenApiParameter("tv_account", str, required=True),
            OpenApiParameter("product_code", str, required=False),
            OpenApiParameter("content_id", str, required=False),
        ],
        responses={200: EntitlementCheckSerializer, 400: ERROR, 401: ERROR},
        examples=[examples.ENTITLEMENTS],
    )
    def get(self, request: Request) -> Response:
        query = _valid_query(request._request.GET)
        if query is None:
            # Not valid as it stands: the serializer says why, in the API's words.
            checked = EntitlementQuery(data=request._request.GET.dict())
            checked.is_valid(raise_exception=True)
            values = checked.validated_data
            query = (values["tv_account"], values.get("product_code", ""), values.get("content_id", ""))
        cached = prefetched(request).get(selectors.entitlements_cache_key(query[0]), selectors.NOT_READ)
        return Response(_entitlements_body(*query, cached=cached))

    def _answer_plain_request(self, request: HttpRequest) -> HttpResponse | None:
        if request.method != "GET" or request.META.get("HTTP_ACCEPT", "*/*") not in PLAIN_ACCEPT:
            return None
        query = _valid_query(request.GET)
        if query is None or "format" in request.GET:
            return None
        try:
            key = key_from_header(request.META.get("HTTP_AUTHORIZATION", ""))
        except AuthenticationFailed:
            return None
        entry = selectors.entitlements_cache_key(query[0])
        principal, found = remembered(key, [entry] if settings.ENTITLEMENT_CACHE_SECONDS else [])
        if principal is None:
            return None  # the key must be verified (or refused): DRF's way
        request.user = principal  # as DRF leaves it
        body = _entitlements_body(*query, cached=found.get(entry, selectors.NOT_READ))
        response = HttpResponse(JSONRenderer().render(body), content_type="application/json")
        response["Allow"] = ", ".join(self.allowed_methods)
        return response


# Accept headers that DRF's content negotiation answers with JSON, the only renderer here.
PLAIN_ACCEPT = frozenset({"*/*", "application/json", "application/*"})


def _valid_query(params: Any) -> tuple[str, str, str] | None:
    """(tv_account, product_code, content_id) when EntitlementQuery would take them as they are, else None."""
    tv_account = params.get("tv_account", "")
    product_code = params.get("product_code")
    content_id = params.get("content_id")
    if (
        TV_ACCOUNT_RE.match(tv_account)
        and (product_code is None or _plain_text(product_code, 32))
        and (content_id is None or CONTENT_ID_RE.match(content_id))
    ):
        return tv_account, product_code or "", content_id or ""
    return None


def _plain_text(value: str, max_length: int) -> bool:
    """What EntitlementQuery accepts for a free-text field: not blank, not too long, no NUL or surrogate."""
    return 0 < len(value) <= max_length and "\x00" not in value and not any("\ud800" <= c <= "\udfff" for c in value)


def _entitlements_body(tv_account: str, product_code: str, content_id: str, *, cached: Any) -> dict[str, Any]:
    entitled, rows = selectors.entitlement_check(
        tv_account=tv_account, product_code=product_code, content_id=content_id, cached=cached
    )
    here = timezone.get_current_timezone()  # timezone.localtime(), looked up once
    return {
        "tv_account": tv_account,
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
