"""What the EPG API takes and gives (docs/interfaces.md §2), field for field."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from billing.models import Payment
from orders.constants import CHANNEL_METHODS, QR_METHODS, Channel, OrderStatus
from orders.models import Order, Product
from orders.validation import CONTENT_ID_RE, TV_ACCOUNT_RE

EPG_METHODS = CHANNEL_METHODS[Channel.EPG]


class StrictCharField(serializers.CharField):
    """A JSON string and nothing else: numbers and booleans are refused, spaces are not trimmed."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class OrderCreateInput(serializers.Serializer):
    tv_account = StrictCharField(max_length=64)
    product_code = StrictCharField(max_length=32)
    content_id = StrictCharField(max_length=64, required=False, allow_blank=False)

    def validate_tv_account(self, value: str) -> str:
        if not TV_ACCOUNT_RE.match(value):
            raise serializers.ValidationError(_("A TV account is 1-64 letters, digits, '_', '.', '-' or '@'."))
        return value

    def validate_content_id(self, value: str) -> str:
        if not CONTENT_ID_RE.match(value):
            raise serializers.ValidationError(_("A content id is 1-64 letters, digits, '_', '.', ':' or '-'."))
        return value


class PaymentInput(serializers.Serializer):
    method = serializers.ChoiceField(choices=[(m.value, m.label) for m in EPG_METHODS])


class EntitlementQuery(serializers.Serializer):
    tv_account = StrictCharField(max_length=64)
    product_code = StrictCharField(max_length=32, required=False)
    content_id = StrictCharField(max_length=64, required=False)

    def validate_tv_account(self, value: str) -> str:
        return OrderCreateInput().validate_tv_account(value)

    def validate_content_id(self, value: str) -> str:
        return OrderCreateInput().validate_content_id(value)


class ProductSerializer(serializers.ModelSerializer):
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
        ]

    def get_currency(self, product: Product) -> str:
        return "CNY"

    def get_payment_methods(self, product: Product) -> list[str]:
        return product.methods_on(Channel.EPG)


class ProductBriefSerializer(serializers.ModelSerializer):
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


class OrderSerializer(serializers.ModelSerializer):
    tv_account = serializers.CharField()
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
            "created_at",
            "updated_at",
        ]

    def get_content_id(self, order: Order) -> str | None:
        return order.content_id or None

    def get_payment_methods(self, order: Order) -> list[str]:
        if order.status != OrderStatus.AWAITING_PAYMENT:
            return []
        return order.product.methods_on(order.channel)

    def get_payment(self, order: Order) -> dict[str, Any] | None:
        if not order.payment_method:
            return None
        payment = (
            Payment.objects.filter(order=order, method=order.payment_method).order_by("-created_at", "-pk").first()
        )
        if payment is None:
            return None
        is_qr = payment.method in QR_METHODS
        showing = is_qr and payment.status == "pending" and order.status == OrderStatus.PAYMENT_PENDING
        return PaymentSerializer(
            {
                "method": payment.method,
                "out_trade_no": payment.out_trade_no if is_qr else None,
                "qr_code_url": payment.qr_code_url if showing else None,
                "qr_image_url": f"/api/epg/v1/orders/{order.order_no}/qr.png" if showing else None,
                "expires_at": payment.expires_at,
            }
        ).data

    def get_failure(self, order: Order) -> dict[str, str] | None:
        if not order.failure_code:
            return None
        return {"code": order.failure_code, "message": order.failure_message}

    def get_entitlement(self, order: Order) -> dict[str, Any] | None:
        entitlement = getattr(order, "entitlement", None)
        if entitlement is None:
            return None
        return EntitlementSerializer(
            {
                "product_code": entitlement.product_code,
                "starts_at": entitlement.starts_at,
                "ends_at": entitlement.ends_at,
                "content_id": entitlement.content_id or None,
            }
        ).data
