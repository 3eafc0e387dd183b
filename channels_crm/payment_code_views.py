"""The clerk scans the customer's payment code (付款码, docs/interfaces.md §10).

The order page holds one field, focused, that takes the scanner's digits and its Enter; the page then
follows the order as it is charged, queried and settled (lifecycle.payment_code). A code that is nobody's
or was used before is refused at once (on the page already, and here) and the order stays as it was.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from channels_crm import selectors
from channels_crm.models import Clerk
from channels_crm.views import clerk_actor, clerk_page
from ipvas.errors import ApplicationError
from lifecycle.paying import payment_choose
from orders.constants import OrderStatus, PaymentMethod
from orders.validation import ORDER_NO_RE


@clerk_page
@require_POST
def order_pay_code(request: HttpRequest, clerk: Clerk, order_no: str) -> HttpResponse:
    order = selectors.order_for_clerk(clerk, order_no) if ORDER_NO_RE.match(order_no) else None
    if order is None:
        raise Http404("no such order in your store")
    try:
        payment_choose(
            order_id=order.pk,
            method=PaymentMethod.PAYMENT_CODE,
            code=request.POST.get("code", "")[:64],
            actor=clerk_actor(clerk),
        )
    except ApplicationError as exc:
        # A second Enter of the same scan lands here (the order moved on): show the order as it is.
        order.refresh_from_db()
        if not (order.payment_method == PaymentMethod.PAYMENT_CODE and order.status != OrderStatus.AWAITING_PAYMENT):
            messages.error(request, str(exc.message))
    return redirect("crm:order", order_no=order.order_no)
