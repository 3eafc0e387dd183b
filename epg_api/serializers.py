"""What the EPG API takes and gives (docs/interfaces.md §2), field for field."""

from __future__ import annotations

import copy
import hashlib
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ObjectDoesNotExist
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.validators import ProhibitSurrogateCharactersValidator

from billing.services.payments import shown_payment, shown_payments
from orders.constants import CHANNEL_METHODS, QR_METHODS, Channel, OrderStatus
from orders.models import Order, Product
from orders.selectors import ORDER_VERSION
from orders.validation import CONTENT_ID_RE, TV_ACCOUNT_RE

EPG_METHODS = CHANNEL_METHODS[Channel.EPG]
TV_ACCOUNT_MESSAGE = _("A TV account is 1-64 letters, digits, '_', '.', '-' or '@'.")
CONTENT_ID_MESSAGE = _("A content id is 1-64 letters, digits, '_', '.', ':' or '-'.")


class StrictCharField(serializers.CharField):
    """A JSON string and nothing else: numbers and booleans are refused, spaces are not trimmed."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """A JSON true or false and nothing else: "true", 1 or "yes" are refused (docs/interfaces.md §8)."""

    default_error_messages = {"invalid": _("Must be true or false.")}

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


class OrderCreateInput(serializers.Serializer):
    tv_account = StrictCharField(max_length=64)
    product_code = StrictCharField(max_length=32)
    content_id = StrictCharField(max_length=64, required=False, allow_blank=False)
    # Automatic renewal is the customer's explicit choice, never assumed (docs/interfaces.md §8).
    auto_renew = StrictBooleanField(required=False, default=False)
    # The household's purchase PIN, when it has one (docs/interfaces.md §9); checked by the view after these.
    purchase_pin = StrictCharField(required=False, allow_null=True, min_length=4, max_length=4)

    def validate_tv_account(self, value: str) -> str:
        if not TV_ACCOUNT_RE.match(value):
            raise serializers.ValidationError(TV_ACCOUNT_MESSAGE)
        return value

    def validate_content_id(self, value: str) -> str:
        if not CONTENT_ID_RE.match(value):
            raise serializers.ValidationError(CONTENT_ID_MESSAGE)
        return value

    def validate_purchase_pin(self, value: str | None) -> str | None:
        if value is not None and not (value.isascii() and value.isdigit()):
            raise serializers.ValidationError(_("A purchase PIN is 4 digits."))
        return value


class PaymentInput(serializers.Serializer):
    method = serializers.ChoiceField(choices=[(m.value, m.label) for m in EPG_METHODS])


# DRF's own messages (and so its translations) for what a CharField refuses.
_REQUIRED = serializers.Field.default_error_messages["required"]
_NOT_A_STRING = serializers.CharField.default_error_messages["invalid"]
_BLANK = serializers.CharField.default_error_messages["blank"]
_TOO_LONG = serializers.CharField.default_error_messages["max_length"]
# Django's (ProhibitNullCharactersValidator's), ours to translate: its Chinese says "no empty string".
_NUL = _("Null characters are not allowed.")
_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class QueryText:
    """A text parameter taken as a ``StrictCharField(max_length=...)`` takes it (not blank, not too long, no NUL
    or surrogate, spaces kept, DRF's messages), then matched against ``pattern``."""

    max_length: int
    required: bool = False
    pattern: re.Pattern[str] | None = None
    mismatch: str = ""

    def errors(self, value: Any) -> list[str]:
        if value is None:
            return [str(_REQUIRED)] if self.required else []
        if not isinstance(value, str):
            return [str(_NOT_A_STRING)]
        if not value:
            return [str(_BLANK)]
        errors = []
        if len(value) > self.max_length:
            errors.append(str(_TOO_LONG).format(max_length=self.max_length))
        if "\x00" in value:
            errors.append(str(_NUL))
        surrogate = _SURROGATE.search(value)
        if surrogate:  # never from a query string, which is decoded with replacement characters
            errors.append(str(ProhibitSurrogateCharactersValidator.message).format(code_point=ord(surrogate[0])))
        if not errors and self.pattern is not None and not self.pattern.match(value):
            errors.append(str(self.mismatch))
        return errors


def tv_account_errors(value: Any) -> list[str]:
    """What is wrong with ``value`` as a TV account given as a query parameter (required)."""
    return ENTITLEMENT_QUERY["tv_account"].errors(value)


# The query of the entitlement check (docs/interfaces.md §2): the one definition of its rules, applied by
# EntitlementQuery and by the plain view that answers the check (epg_api.views.entitlements).
ENTITLEMENT_QUERY = {
    "tv_account": QueryText(64, required=True, pattern=TV_ACCOUNT_RE, mismatch=TV_ACCOUNT_MESSAGE),
    "product_code": QueryText(32),
    "content_id": QueryText(64, pattern=CONTENT_ID_RE, mismatch=CONTENT_ID_MESSAGE),
}


def entitlement_query(params: Mapping[str, Any]) -> tuple[dict[str, str], dict[str, list[str]]]:
    """(the parameters given, the errors by parameter) of the entitlement check's query ``params``."""
    values = {}
    errors = {}
    for name, rule in ENTITLEMENT_QUERY.items():
        value = params.get(name)
        refused = rule.errors(value)
        if refused:
            errors[name] = refused
        elif value is not None:
            values[name] = value
    return values, errors


class EntitlementQuery(serializers.Serializer):
    """The entitlement check's query in DRF's terms: ENTITLEMENT_QUERY's rules, nothing of its own."""

    def to_internal_value(self, data: Any) -> dict[str, str]:
        if not isinstance(data, Mapping):
            return super().to_internal_value(data)  # DRF's refusal of what is not a mapping
        values, errors = entitlement_query(data)
        if errors:
            raise serializers.ValidationError(errors)
        return values


class ModelFieldsOnce(serializers.ModelSerializer):
    """A ModelSerializer that reads its model's fields once per class, not once per use.

    DRF's ``ModelSerializer.get_fields`` introspects the model and builds every field again each time a
    serializer is made: a third of the CPU of answering with an order (issue #17, cProfile of POST
    /orders/). What it builds depends only on the class (its Meta and declared fields), so the built
    fields are kept on the class and each use gets its own copy, as DRF does with declared fields.
    """

    def get_fields(self) -> dict[str, serializers.Field]:
        built = type(self).__dict__.get("_fields_built")
        if built is None:
            built = super().get_fields()
            type(self)._fields_built = built
        return copy.deepcopy(built)


_per_thread = threading.local()


def serialized(serializer_class: type[serializers.Serializer], instance: Any) -> dict[str, Any]:
    """``serializer_class(instance).data``, by one serializer of that class per thread, made once.

    Making a serializer deep-copies each of its fields, and DRF copies a field by making it again from its
    arguments: for an order's answer some 25 fields built and bound for every answer, a tenth of the CPU of
    ``POST /orders/`` (issue #17, cProfile). A ListSerializer serializes all its items with one child; this
    keeps one per thread across answers the same way (fields are bound to their serializer, so it is not shared
    between threads). For answers only: no data to validate, no context.
    """
    made = _per_thread.__dict__.setdefault("serializers", {})
    serializer = made.get(serializer_class)
    if serializer is None:
        serializer = made[serializer_class] = serializer_class()
    return serializer.to_representation(instance)


class ProductSerializer(ModelFieldsOnce):
    price_fen = serializers.IntegerField()
    currency = serializers.SerializerMethodField()
    period_months = serializers.IntegerField(allow_null=True)
    view_hours = serializers.IntegerField(allow_null=True)
    payment_methods = serializers.SerializerMethodField()

    class Meta:
        model = Product
        fields = [
            "code",
            "name",
            "kind",
            "price_fen",
            "currency",
            "period_months",
            "view_hours",
            "description",
            "payment_methods",
            "renewable",
        ]

    def get_currency(self, product: Product) -> str:
        return "CNY"

    def get_payment_methods(self, product: Product) -> list[str]:
        return product.methods_on(Channel.EPG)


class ProductBriefSerializer(ModelFieldsOnce):
    class Meta:
        model = Product
        fields = ["code", "name", "kind", "price_fen"]


class PaymentSerializer(serializers.Serializer):
    method = serializers.CharField()
    out_trade_no = serializers.CharField(allow_null=True)
    qr_code_url = serializers.CharField(allow_null=True)
    qr_image_url = serializers.CharField(allow_null=True)
    expires_at = serializers.DateTimeField(allow_null=True)


class FailureSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()


class EntitlementSerializer(serializers.Serializer):
    """The entitlement an order gave."""

    product_code = serializers.CharField()
    starts_at = serializers.DateTimeField()
    ends_at = serializers.DateTimeField()
    content_id = serializers.CharField(allow_null=True)


class EntitlementItemSerializer(EntitlementSerializer):
    """One live entitlement of an account, in the entitlement check."""

    kind = serializers.CharField()

    class Meta:
        fields = ["product_code", "kind", "starts_at", "ends_at", "content_id"]


class EntitlementCheckSerializer(serializers.Serializer):
    tv_account = serializers.CharField()
    entitled = serializers.BooleanField()
    entitlements = EntitlementItemSerializer(many=True)


class OrderSerializer(ModelFieldsOnce):
    tv_account = serializers.CharField()
    subscription_no = serializers.SerializerMethodField()
    phone_masked = serializers.CharField(allow_null=True)
    product = ProductBriefSerializer()
    content_id = serializers.SerializerMethodField()
    payment_methods = serializers.SerializerMethodField()
    payment = serializers.SerializerMethodField()
    failure = serializers.SerializerMethodField()
    entitlement = serializers.SerializerMethodField()

    class Meta:
        model = Order
        fields = [
            "order_no",
            "channel",
            "tv_account",
            "phone_masked",
            "product",
            "content_id",
            "amount_fen",
            "status",
            "payment_methods",
            "payment",
            "failure",
            "entitlement",
            "auto_renew",
            "subscription_no",
            "created_at",
            "updated_at",
        ]

    def get_subscription_no(self, order: Order) -> str | None:
        return order.subscription.subscription_no if order.subscription_id else None

    def get_content_id(self, order: Order) -> str | None:
        return order.content_id or None

    def get_payment_methods(self, order: Order) -> list[str]:
        if order.status != OrderStatus.AWAITING_PAYMENT:
            return []
        return order.methods_allowed()

    @extend_schema_field(PaymentSerializer(allow_null=True))
    def get_payment(self, order: Order) -> dict[str, Any] | None:
        payment = shown_payment(order)
        if payment is None:
            return None
        is_qr = payment.method in QR_METHODS
        # A renewal's deduction under the contract has no QR code (§8): nothing to show, and no image.
        pending = payment.status == "pending" and order.status == OrderStatus.PAYMENT_PENDING
        showing = bool(is_qr and payment.qr_code_url and pending)
        return serialized(
            PaymentSerializer,
            {
                "method": payment.method,
                "out_trade_no": payment.out_trade_no if is_qr else None,
                "qr_code_url": payment.qr_code_url if showing else None,
                "qr_image_url": f"/api/epg/v1/orders/{order.order_no}/qr.png" if showing else None,
                "expires_at": payment.expires_at,
            },
        )

    @extend_schema_field(FailureSerializer(allow_null=True))
    def get_failure(self, order: Order) -> dict[str, str] | None:
        if not order.failure_code:
            return None
        return {"code": order.failure_code, "message": order.failure_message}

    @extend_schema_field(EntitlementSerializer(allow_null=True))
    def get_entitlement(self, order: Order) -> dict[str, Any] | None:
        if order.status not in (OrderStatus.COMPLETED, OrderStatus.REFUNDED):
            return None  # granted when the order completes (a new order is not read for it)
        entitlement = getattr(order, "entitlement", None)
        if entitlement is None:
            return None
        return serialized(
            EntitlementSerializer,
            {
                "product_code": entitlement.product_code,
                "starts_at": entitlement.starts_at,
                "ends_at": entitlement.ends_at,
                "content_id": entitlement.content_id or None,
            },
        )


# What of an order's shown payment its answer can change with (order_etag), in this order.
PAYMENT_VERSION = ("pk", "status", "qr_code_url", "expires_at")


def _followed(obj: Any, path: str) -> Any:
    """``obj``'s value at an ORM lookup path (``"entitlement__pk"``) as values_list reads it: None past a
    missing related object."""
    for name in path.split("__"):
        try:
            obj = getattr(obj, name)
        except ObjectDoesNotExist:
            return None
        if obj is None:
            return None
    return obj


def order_etag(order: Order | tuple, language: str) -> str:
    """A weak validator of the order's answer (OrderSerializer) in ``language``, without building it.

    ``order`` is the order read for its answer (with its product, entitlement and subscription), or its
    ``orders.selectors.ORDER_VERSION`` row: a poll that may be answered 304 reads that row and its payment's
    instead (two rows, no objects built; issue #17). Both give the same tag: ORDER_VERSION and
    PAYMENT_VERSION name what it is made of, read from the row or from the objects.

    It changes whenever the answer may: the order's own row (every transition saves it), its
    product's, its payment's, its entitlement's (a refunded period moves the periods after it) and its
    subscription. The EPG polls an order every 1-2 s; an unchanged one is answered 304 (issue #17).
    """
    from_objects = isinstance(order, Order)
    version = tuple(_followed(order, name) for name in ORDER_VERSION) if from_objects else order
    (pk, updated_at, status, method, product_updated_at, entitlement, starts_at, ends_at, revoked_at, subscription) = (
        version
    )
    if from_objects:
        shown = shown_payment(order)
        payment = tuple(getattr(shown, name) for name in PAYMENT_VERSION) if shown else None
    else:
        payment = shown_payments(pk, method).values_list(*PAYMENT_VERSION).first() if method else None
    parts = (
        pk,
        updated_at.isoformat(),
        status,
        product_updated_at.isoformat(),
        (payment[0], payment[1], payment[2], str(payment[3])) if payment else None,
        (entitlement, str(starts_at), str(ends_at), str(revoked_at)) if entitlement else None,
        subscription,
        language,
    )
    return 'W/"' + hashlib.sha256(repr(parts).encode()).hexdigest()[:32] + '"'


def etag_matches(header: str, etag: str) -> bool:
    """``If-None-Match`` (RFC 9110 §13.1.2: weak comparison) names ``etag``, or is ``*``."""
    opaque = etag.removeprefix("W/")
    return any(tag.strip() == "*" or tag.strip().removeprefix("W/") == opaque for tag in header.split(","))
