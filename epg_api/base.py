"""What every view of the EPG API shares: Api-Key authentication, the caller, its orders."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiResponse
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from epg_api.authentication import ApiKeyAuthentication, EpgPrincipal
from epg_api.serializers import OrderSerializer, serialized
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
        """The caller's order ``order_no`` (NotFound if it is not one), with what its answer shows."""
        return self._found(order_no, selectors.order_for_epg_client)

    def get_order_version(self, order_no: str) -> tuple:
        """What the answer about the caller's order ``order_no`` can change with (orders.selectors.ORDER_VERSION),
        for its ETag; NotFound as get_order."""
        return self._found(order_no, selectors.order_version_for_epg_client)

    def get_order_id(self, order_no: str) -> int:
        """The id of the caller's own order ``order_no``, for a view that acts on it (its step locks and
        reads the order itself); a renewal order, readable by any client, is not found here."""
        return self._found(order_no, selectors.order_id_for_epg_client)

    def _found(self, order_no: str, lookup: Callable[..., Any]) -> Any:
        found = None
        if ORDER_NO_RE.match(order_no):  # anything else cannot be ours (and never reaches the database)
            found = lookup(order_no=order_no, client_id=self.request.user.client_id)
        if found is None:
            raise NotFound(_("There is no order %(order_no)s.") % {"order_no": order_no[:40]})
        return found

    def order_response(self, order_id: int, status: int = 200) -> Response:
        order = Order.objects.select_related("product", "entitlement", "subscription").get(pk=order_id)
        return Response(serialized(OrderSerializer, order), status=status)
