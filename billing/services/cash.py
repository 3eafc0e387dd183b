"""Cash in the business hall: the CRM bills the clerk's virtual staff id, the SMP the marketing account."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from billing.models import Payment, PaymentStatus, Provider
from ipvas.actors import Actor
from ipvas.errors import InvalidState
from orders.constants import Channel, OrderStatus, PaymentMethod
from orders.models import Order
from orders.services.transitions import lock_order, transit


def cash_received(*, order_id: int, actor: Actor) -> Order:
    """The clerk confirms the cash is in hand; the CRM activity runs next, in a task."""
    with transaction.atomic():
        order = lock_order(order_id)
        if order.channel != Channel.CRM:
            raise InvalidState(_("Cash is only taken in business halls."))
        if order.status != OrderStatus.AWAITING_PAYMENT:
            raise InvalidState(
                _("A payment method cannot be chosen for an order that is %(status)s.")
                % {"status": OrderStatus(order.status).label},
                extra={"status": order.status},
            )
        Payment.objects.create(
            order=order,
            method=PaymentMethod.CASH,
            provider=Provider.CRM,
            out_trade_no=order.order_no,
            amount_fen=order.amount_fen,
            status=PaymentStatus.PENDING,
        )
        now = timezone.now()
        transit(
            order,
            "start_payment",
            payment_method=PaymentMethod.CASH,
            deadline_at=now,
            now=now,
            actor=actor,
            reason="the clerk confirmed the cash received",
            data={"method": PaymentMethod.CASH},
        )
    return order


def virtual_staff_id_of(order: Order) -> str:
    clerk = getattr(order.clerk, "clerk", None) if order.clerk_id else None
    return clerk.virtual_staff_id if clerk else ""
