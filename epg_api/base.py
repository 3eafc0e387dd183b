"""What every view of the EPG API shares: Api-Key authentication, the caller, its orders."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiResponse
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from epg_api.authentication import ApiKeyAuthentication, EpgPrincipal
from epg_api.serializers import OrderSerializer
from ipvas.actors import Actor, ActorKind
from ipvas.errors import NotFound
from orders import selectors
from orders.models import Order
from orders.validation import ORDER_NO_RE

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
        order = Order.objects.select_related("product", "entitlement", "subscription").get(pk=order_id)
        return Response(OrderSerializer(order).data, status=status)
