"""Placing an order: validate everything first, then write it and ask for its pre-check."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from ipvas import logs
from ipvas.actors import Actor
from ipvas.errors import InvalidInput
from ipvas.locks import lock_name
from lifecycle.transitions import record_event, schedule_due
from orders.constants import Channel, OrderStatus, ProductKind
from orders.models import Order, Product
from orders.numbers import new_order_no
from orders.selectors import product_for_sale
from orders.validation import CONTENT_ID_RE, TV_ACCOUNT_RE


def order_create(
    *,
    channel: str,
    product_code: str,
    actor: Actor,
    tv_account: str = "",
    phone: str = "",
    content_id: str = "",
    clerk: AbstractBaseUser | None = None,
    store_code: str = "",
    auto_renew: bool = False,
    product: Product | None = None,
    pin_pending: bool = False,
) -> Order:
    """Create an order in ``prechecking``; the SMP pre-check runs next, in a task.

    The EPG identifies the customer by TV account, the clerk by mobile
    number (already normalised by the caller); the SMP's pre-check fills in
    the other one. ``auto_renew`` is the customer's explicit choice of automatic renewal
    (docs/interfaces.md §8): only for a renewable period product, never assumed.
    ``product``: what the caller's ``order_input_check`` gave, when it has checked already (the EPG API
    does, before the purchase PIN); else it is asked here. ``pin_pending``: placed before the household's
    purchase PIN was asked (the TV pages ask it on the next screen); no payment starts until it was entered.
    """
    product = order_input_check(
        channel=channel, product_code=product_code, tv_account=tv_account, phone=phone, content_id=content_id,
        auto_renew=auto_renew, product=product,
    )  # fmt: skip

    now = timezone.now()
    # No savepoint inside a caller's transaction (the EPG API's, with its Idempotency-Key): nobody
    # catches a failure here and carries on in that transaction, it is rolled back whole.
    with transaction.atomic(savepoint=False):
        order = Order.objects.create(
            order_no=new_order_no(),
            channel=channel,
            tv_account=tv_account,
            phone=phone,
            product=product,
            content_id=content_id,
            amount_fen=product.price_fen,
            status=OrderStatus.PRECHECKING,
            deadline_at=now,  # pre-check at once
            status_changed_at=now,
            origin_kind=actor.kind,
            origin_id=actor.id,
            clerk=clerk,
            store_code=store_code,
            auto_renew=auto_renew,
            pin_pending=pin_pending,
        )
        logs.bind(order_no=order.order_no)
        # The event keeps the customer's choice of automatic renewal: the evidence of consent.
        record_event(order, "create", actor=actor, from_status="", now=now, data={"auto_renew": auto_renew})
        schedule_due(order)
    return order


# The same order asked for again this soon, from the same screen (a remote's OK pressed twice), is the first one.
REPEAT_WINDOW = timedelta(seconds=30)


def order_create_or_repeat(*, screen: str, actor: Actor, **order: Any) -> Order:
    """``order_create``, unless the same screen (``screen``: a TV session, say) asked for the same order
    (account, product, content, renewal choice) by the same actor within ``REPEAT_WINDOW`` and it is still
    waiting for its payment: then that one. One at a time per screen, so that two presses racing place one."""
    with transaction.atomic():
        lock_name(f"order-screen:{screen}")
        earlier = (
            Order.objects.filter(
                channel=order["channel"],
                tv_account=order.get("tv_account", ""),
                product__code=order["product_code"],
                content_id=order.get("content_id", ""),
                auto_renew=order.get("auto_renew", False),
                origin_kind=actor.kind,
                origin_id=actor.id,
                status__in=[OrderStatus.PRECHECKING, OrderStatus.AWAITING_PAYMENT],
                created_at__gte=timezone.now() - REPEAT_WINDOW,
            )
            .order_by("-pk")
            .first()
        )
        return earlier or order_create(actor=actor, **order)


def order_input_check(
    *,
    channel: str,
    product_code: str,
    tv_account: str = "",
    phone: str = "",
    content_id: str = "",
    auto_renew: bool = False,
    product: Product | None = None,
) -> Product:
    """The input checks of an order (docs/interfaces.md §2, §8), nothing written: the product for sale, or
    ``InvalidInput`` (400) / ``NotFound`` (404). The EPG API asks them before the purchase PIN (§9), so that
    bad input is a 400 whether a PIN is set or not, and never counts as a wrong PIN."""
    if channel not in Channel.values:
        raise InvalidInput(fields={"channel": [_("Unknown channel.")]})
    fields: dict[str, list[str]] = {}
    if tv_account and not TV_ACCOUNT_RE.match(tv_account):
        fields["tv_account"] = [_("A TV account is 1-64 letters, digits, '_', '.', '-' or '@'.")]
    if not tv_account and not phone:
        fields["tv_account"] = [_("A TV account or a mobile number is required.")]
    if fields:
        raise InvalidInput(fields=fields)
    if product is None or product.code != product_code or not product.is_on_sale(channel):
        product = product_for_sale(code=product_code, channel=channel)  # raises NotFound if not for sale
    if product.kind == ProductKind.PER_VIEW:
        if not content_id:
            fields["content_id"] = [_("A per-view product needs the content_id of what is bought.")]
        elif not CONTENT_ID_RE.match(content_id):
            fields["content_id"] = [_("A content id is 1-64 letters, digits, '_', '.', ':' or '-'.")]
    elif content_id:
        fields["content_id"] = [_("Only per-view products take a content_id.")]
    if not isinstance(auto_renew, bool):
        fields["auto_renew"] = [_("auto_renew is true or false.")]
    elif auto_renew and not product.renewable:
        fields["auto_renew"] = [_("This product does not renew automatically.")]
    if fields:
        raise InvalidInput(fields=fields)
    return product
