"""prechecking → awaiting_payment or rejected: the SMP's pre-check, retried until its deadline."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from adapters.smp import PrecheckRequest, PrecheckResult, SmpUnavailable, get_smp
from ipvas.actors import Actor
from ipvas.locks import lock_name
from lifecycle import renewals, subscriptions
from lifecycle.claims import claim, lock_claimed, lock_if_due, retry_later
from lifecycle.transitions import transit
from orders import selectors
from orders.constants import PRECHECK_FAILURES, Channel, FailureCode, OrderStatus, ProductKind
from orders.models import Order
from orders.models.order import NO_MOBILE_TO_CONFIRM, NO_MOBILE_TO_REMIND, RENEWS_ALREADY
from orders.validation import bound_mobile


def precheck_cutoff(order: Order) -> datetime:
    return order.created_at + timedelta(seconds=settings.PRECHECK_DEADLINE_SECONDS)


def precheck_due(order_id: int, due_at: datetime | None) -> str:
    """Ask the SMP whether the account may order the product (and for its bound mobile number)."""
    actor = Actor.task("precheck")
    with transaction.atomic():
        order = lock_if_due(order_id, due_at, OrderStatus.PRECHECKING)
        if order is None:
            return "not_due"
        if timezone.now() >= precheck_cutoff(order):
            transit(
                order,
                _refused(order),
                code=FailureCode.SMP_UNAVAILABLE,
                actor=actor,
                reason="the SMP did not answer before the pre-check deadline",
            )
            return "rejected"
        claimed, product = claim(order), order.product
        request = PrecheckRequest(
            product_code=product.smp_product_code,
            kind=product.kind,
            tv_account=order.tv_account,
            phone=order.phone,
            content_id=order.content_id,
        )
    try:
        result: PrecheckResult | None = get_smp().precheck(request)
        error = ""
    except SmpUnavailable as exc:
        result, error = None, str(exc)
    with transaction.atomic():
        order = lock_claimed(order_id, claimed, OrderStatus.PRECHECKING, product=product)
        if order is None:
            return "superseded"
        if result is None:
            retry_later(order, actor=actor, why=error, cutoff=precheck_cutoff(order))
            return "retry"
        if result.ok:
            # One per-view order per account and content at a time (the SMP knows only what it subscribed).
            order.tv_account = result.tv_account or order.tv_account
            if order.product.kind == ProductKind.PER_VIEW:
                lock_name(f"per-view:{order.tv_account}:{order.content_id}")
            taken = selectors.per_view_taken(order)
            if taken:
                return _refuse(order, FailureCode.ALREADY_SUBSCRIBED, taken, actor=actor)
        phone = bound_mobile(result.phone) if result.ok else ""
        if (
            result.ok
            and order.auto_renew
            and subscriptions.active_subscription_exists(
                tv_account=result.tv_account or order.tv_account, product_id=order.product_id
            )
        ):
            # docs/interfaces.md §8: one active subscription per account and product.
            return _refuse(order, FailureCode.ALREADY_SUBSCRIBED, RENEWS_ALREADY, actor=actor)
        if result.ok and order.auto_renew and not phone:
            # §8: no renewal is charged unless its reminder SMS went to the bound number, and the SMP gives
            # none: refused now, rather than offering methods that could only be refused.
            return _refuse(order, FailureCode.PRODUCT_NOT_AVAILABLE, NO_MOBILE_TO_REMIND, actor=actor)
        if result.ok and not phone and _only_by_sms_confirmation(order):
            # Paid only with an SMS confirmation here, and no number to send it to: refused now, rather than
            # waiting for a payment that no method offered could make.
            return _refuse(order, FailureCode.PRODUCT_NOT_AVAILABLE, NO_MOBILE_TO_CONFIRM, actor=actor)
        if result.ok:
            now = timezone.now()
            transit(
                order,
                order.precheck_passed,
                tv_account=result.tv_account or order.tv_account,
                phone=phone,
                deadline_at=now + timedelta(seconds=settings.ORDER_IDLE_SECONDS),
                now=now,
                actor=actor,
                reason="the SMP's pre-check passed",
            )
            if order.channel == Channel.RENEWAL:
                renewals.renewal_charge_start(order, actor=actor)
            return "passed"
        # The SMP's reason codes that are failure codes of ours too; any other is "not available".
        code = result.reason if result.reason in PRECHECK_FAILURES else FailureCode.PRODUCT_NOT_AVAILABLE
        transit(
            order, _refused(order), code=code, detail=result.message or result.reason, actor=actor, reason=result.reason
        )
        return "rejected"


def _refuse(order: Order, code: str, why: str, *, actor: Actor) -> str:
    """The pre-check refuses the order for a reason of ours (kept as its failure detail)."""
    transit(order, _refused(order), code=code, detail=why, actor=actor, reason=why)
    return "rejected"


def _only_by_sms_confirmation(order: Order) -> bool:
    """The order has a method to pay with only when an SMS confirmation can be sent (a renewal order has none:
    it is charged as its subscription renews)."""
    return bool(order.methods_payable(with_mobile=True)) and not order.methods_payable(with_mobile=False)


def _refused(order: Order):  # type: ignore[no-untyped-def]
    """The transition of a failed pre-check: a customer's order is ``rejected``; a renewal order ``failed``
    with the same code (docs/interfaces.md §8: "the renewal order ends failed with its §1 code")."""
    return order.renewal_refused if order.channel == Channel.RENEWAL else order.reject
