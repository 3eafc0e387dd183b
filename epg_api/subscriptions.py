"""Subscriptions in the EPG API (docs/interfaces.md §8): list, read, cancel."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from epg_api import examples
from epg_api.base import ERROR, EpgView
from epg_api.serializers import FailureSerializer, ProductBriefSerializer, tv_account_errors
from ipvas.errors import InvalidInput, NotFound
from lifecycle.subscriptions import renewal_orders, subscription_cancel
from orders.constants import CancelChannel
from orders.models import Subscription
from orders.validation import ORDER_NO_RE


class RenewalSerializer(serializers.Serializer):
    order_no = serializers.CharField()
    status = serializers.CharField()
    amount_fen = serializers.IntegerField()
    failure = FailureSerializer(allow_null=True)
    period_start = serializers.DateTimeField(allow_null=True)
    period_end = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()


class ConsentSerializer(serializers.Serializer):
    channel = serializers.CharField()
    method = serializers.CharField()
    at = serializers.DateTimeField()


class SubscriptionSerializer(serializers.ModelSerializer):
    """The subscription resource, field for field as docs/interfaces.md §8 says."""

    phone_masked = serializers.CharField(allow_null=True)
    product = ProductBriefSerializer()
    next_reminder_at = serializers.SerializerMethodField()
    next_renewal_at = serializers.SerializerMethodField()
    renewals = serializers.SerializerMethodField()
    consent = serializers.SerializerMethodField()
    cancel_channel = serializers.SerializerMethodField()

    class Meta:
        model = Subscription
        # A resource read, never written through this serializer: every field is in every answer (OpenAPI
        # marks them required, as §8 lists them).
        read_only_fields = fields = [
            "subscription_no",
            "tv_account",
            "phone_masked",
            "product",
            "status",
            "payment_method",
            "renewal_price_fen",
            "current_period_end",
            "next_reminder_at",
            "reminder_sent_at",
            "next_renewal_at",
            "renewals",
            "consent",
            "cancelled_at",
            "cancel_channel",
            "created_at",
        ]

    def _active(self, subscription: Subscription) -> bool:
        return subscription.status == "active"

    @extend_schema_field(serializers.DateTimeField(allow_null=True))
    def get_next_reminder_at(self, subscription: Subscription) -> str | None:
        return self._when(subscription.next_reminder_at) if self._active(subscription) else None

    @extend_schema_field(serializers.DateTimeField(allow_null=True))
    def get_next_renewal_at(self, subscription: Subscription) -> str | None:
        return self._when(subscription.next_renewal_at) if self._active(subscription) else None

    @extend_schema_field(serializers.ChoiceField(choices=CancelChannel.choices, allow_null=True))
    def get_cancel_channel(self, subscription: Subscription) -> str | None:
        return subscription.cancel_channel or None

    @extend_schema_field(ConsentSerializer)
    def get_consent(self, subscription: Subscription) -> dict[str, Any]:
        return ConsentSerializer(
            {
                "channel": subscription.consent_channel,
                "method": subscription.consent_method,
                "at": subscription.consent_at,
            }
        ).data

    @extend_schema_field(RenewalSerializer(many=True))
    def get_renewals(self, subscription: Subscription) -> list[dict[str, Any]]:
        rows = []
        for order in renewal_orders(subscription):
            entitlement = getattr(order, "entitlement", None)
            rows.append(
                {
                    "order_no": order.order_no,
                    "status": order.status,
                    "amount_fen": order.amount_fen,
                    "failure": {"code": order.failure_code, "message": order.failure_message}
                    if order.failure_code
                    else None,
                    "period_start": entitlement.starts_at if entitlement else None,
                    "period_end": entitlement.ends_at if entitlement else None,
                    "created_at": order.created_at,
                }
            )
        return RenewalSerializer(rows, many=True).data

    @staticmethod
    def _when(value: Any) -> str | None:
        return serializers.DateTimeField().to_representation(value) if value else None


def _subscriptions_of(tv_account: str) -> list[Subscription]:
    return list(
        Subscription.objects.filter(tv_account=tv_account).select_related("product").order_by("-created_at", "-pk")
    )


def subscription_by_no(subscription_no: str) -> Subscription:
    subscription = None
    if ORDER_NO_RE.match(subscription_no):
        subscription = Subscription.objects.select_related("product").filter(subscription_no=subscription_no).first()
    if subscription is None:
        raise NotFound(_("There is no subscription %(subscription_no)s.") % {"subscription_no": subscription_no[:40]})
    return subscription


class SubscriptionListView(EpgView):
    @extend_schema(
        operation_id="subscriptions_list",
        summary="A TV account's subscriptions, newest first, whatever channel sold them",
        parameters=[OpenApiParameter("tv_account", str, required=True)],
        responses={
            200: inline_serializer("SubscriptionList", fields={"results": SubscriptionSerializer(many=True)}),
            400: ERROR,
            401: ERROR,
        },
        examples=[examples.SUBSCRIPTIONS],
    )
    def get(self, request: Request) -> Response:
        tv_account = request.query_params.get("tv_account")
        errors = tv_account_errors(tv_account)
        if errors:
            raise InvalidInput(fields={"tv_account": errors})
        return Response({"results": SubscriptionSerializer(_subscriptions_of(tv_account), many=True).data})


class SubscriptionDetailView(EpgView):
    @extend_schema(
        operation_id="subscriptions_retrieve",
        summary="One subscription",
        responses={200: SubscriptionSerializer, 401: ERROR, 404: ERROR},
        examples=[examples.SUBSCRIPTION],
    )
    def get(self, request: Request, subscription_no: str) -> Response:
        return Response(SubscriptionSerializer(subscription_by_no(subscription_no)).data)


class SubscriptionCancelView(EpgView):
    @extend_schema(
        operation_id="subscriptions_cancel",
        summary="Turn automatic renewal off (the paid period runs to its end); a repeat changes nothing",
        request=None,
        responses={200: SubscriptionSerializer, 401: ERROR, 404: ERROR, 409: ERROR},
        examples=[examples.SUBSCRIPTION],
    )
    def post(self, request: Request, subscription_no: str) -> Response:
        subscription = subscription_by_no(subscription_no)
        subscription_cancel(
            subscription_id=subscription.pk, channel=CancelChannel.EPG, actor=self.actor(), reason="cancelled on the TV"
        )
        return Response(SubscriptionSerializer(subscription_by_no(subscription_no)).data)
