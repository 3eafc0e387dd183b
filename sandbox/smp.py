"""The simulated SMP: accounts, products and subscriptions in the sandbox tables.

Both faces of the simulator call these functions: the in-process adapter
(``sandbox.simulators.smp``) and the JSON-over-HTTP app under ``/sandbox/smp/``.
Like a real SMP, ``subscribe`` and ``unsubscribe`` are idempotent on the
order number.
"""

from __future__ import annotations

import secrets

from django.db import transaction
from django.db.models import Max, Q
from django.utils import timezone

from adapters.smp import SmpCharge
from adapters.smp.types import (
    AuthorizeResult,
    PrecheckRequest,
    PrecheckResult,
    SubscribeRequest,
    SubscribeResult,
    UnsubscribeResult,
)
from orders.constants import FailureCode, ProductKind
from orders.periods import period_end
from sandbox.models import SimSmpAccount, SimSmpAnswer, SimSmpProduct, SimSmpSubscription, SmpAccountStatus

_STATUS_REASON = {
    SmpAccountStatus.SUSPENDED: FailureCode.ACCOUNT_SUSPENDED,
    SmpAccountStatus.IN_ARREARS: FailureCode.ACCOUNT_IN_ARREARS,
}


def _find_account(*, tv_account: str = "", phone: str = "") -> SimSmpAccount | None:
    if tv_account:
        return SimSmpAccount.objects.filter(tv_account=tv_account).first()
    if phone:
        return SimSmpAccount.objects.filter(phone=phone).order_by("pk").first()
    return None


def _live(tv_account: str, product_code: str):  # type: ignore[no-untyped-def]
    return SimSmpSubscription.objects.filter(
        tv_account=tv_account, product_code=product_code, cancelled_at__isnull=True, ends_at__gt=timezone.now()
    )


# What the simulated SMP says when it refuses, as the operator's SMP says it: in Chinese (docs/interfaces.md §6).
_SAID = {
    FailureCode.ACCOUNT_NOT_FOUND: "账号不存在",
    FailureCode.ACCOUNT_SUSPENDED: "账号已停机",
    FailureCode.ACCOUNT_IN_ARREARS: "账号欠费",
    FailureCode.PRODUCT_NOT_AVAILABLE: "该账号不能订购此产品",
}


def _said(reason: str) -> str:
    return f"模拟业管平台：{_SAID.get(reason, reason)}"


def _refusal(account: SimSmpAccount | None, product_code: str) -> str:
    if account is None:
        return FailureCode.ACCOUNT_NOT_FOUND
    if account.status in _STATUS_REASON:
        return _STATUS_REASON[account.status]
    product = SimSmpProduct.objects.filter(code=product_code, active=True).first()
    if product is None or product_code in (account.blocked_products or []):
        return FailureCode.PRODUCT_NOT_AVAILABLE
    return ""


def precheck(request: PrecheckRequest) -> PrecheckResult:
    account = _find_account(tv_account=request.tv_account, phone=request.phone)
    reason = _refusal(account, request.product_code)
    if reason:
        return PrecheckResult(ok=False, reason=reason, message=_said(reason))
    assert account is not None
    if (
        request.kind == ProductKind.PER_VIEW
        and _live(account.tv_account, request.product_code).filter(content_id=request.content_id).exists()
    ):
        return PrecheckResult(
            ok=False, reason=FailureCode.ALREADY_SUBSCRIBED, message="模拟业管平台：该内容仍在可观看期内"
        )
    return PrecheckResult(ok=True, tv_account=account.tv_account, phone=account.phone)


def _result(subscription: SimSmpSubscription) -> SubscribeResult:
    return SubscribeResult(
        ok=True,
        subscription_id=subscription.subscription_id,
        starts_at=subscription.starts_at,
        ends_at=subscription.ends_at,
    )


def subscription_of(order_no: str) -> SimSmpSubscription | None:
    """The subscription the SMP answered the order with: its own, or its period's (docs/protocols.md)."""
    own = SimSmpSubscription.objects.filter(order_no=order_no).first()
    if own is not None:
        return own
    answer = SimSmpAnswer.objects.select_related("subscription").filter(order_no=order_no).first()
    return answer.subscription if answer is not None else None


def subscribe(request: SubscribeRequest) -> SubscribeResult:
    with transaction.atomic():
        account = SimSmpAccount.objects.select_for_update().filter(tv_account=request.tv_account).first()
        done = subscription_of(request.order_no)
        if done is not None and done.order_no != request.order_no and done.cancelled_at is not None:
            done = None  # the period's subscription this order was answered with was reversed since: not an answer
        if done is None and request.idempotency_key and request.idempotency_key != request.order_no:
            # A renewal's period is charged once, whichever renewal order asks (docs/protocols.md); the order
            # names that subscription from now on (unsubscribe, reschedule).
            done = SimSmpSubscription.objects.filter(
                idempotency_key=request.idempotency_key, cancelled_at__isnull=True
            ).first()
            if done is not None:
                SimSmpAnswer.objects.update_or_create(order_no=request.order_no, defaults={"subscription": done})
        if done is not None:
            return _result(done)
        reason = _refusal(account, request.product_code)
        if reason:
            return SubscribeResult(ok=False, reason=reason, message=_said(reason))
        assert account is not None
        if request.charge == SmpCharge.PREPAID:
            product = SimSmpProduct.objects.get(code=request.product_code)
            if request.package_code != product.zero_price_package_code:
                return SubscribeResult(
                    ok=False,
                    reason=FailureCode.PRODUCT_NOT_AVAILABLE,
                    message=f"模拟业管平台：{request.package_code} 不是该产品的 0 元包",
                )
        charged = 0
        if request.charge == SmpCharge.PHONE_BILL:
            if account.balance_fen < request.amount_fen:
                return SubscribeResult(
                    ok=False,
                    reason=FailureCode.INSUFFICIENT_BALANCE,
                    message=f"模拟业管平台：话费余额不足（余额 {account.balance_fen} 分，需 {request.amount_fen} 分）",
                )
            account.balance_fen -= request.amount_fen
            account.save(update_fields=["balance_fen"])
            charged = request.amount_fen
        elif request.charge == SmpCharge.MARKETING_ACCOUNT:
            charged = request.amount_fen
        now = timezone.now()
        if request.kind == ProductKind.PER_VIEW:
            starts_at = now
        else:
            latest = _live(account.tv_account, request.product_code).aggregate(end=Max("ends_at"))["end"]
            starts_at = max(now, latest) if latest else now
        subscription = SimSmpSubscription.objects.create(
            order_no=request.order_no,
            idempotency_key=request.idempotency_key or request.order_no,
            subscription_id="SUB" + secrets.token_hex(8).upper(),
            tv_account=account.tv_account,
            product_code=request.product_code,
            package_code=request.package_code,
            charge=request.charge,
            amount_fen=charged,
            content_id=request.content_id,
            starts_at=starts_at,
            ends_at=period_end(start=starts_at, period_months=request.period_months, view_hours=request.view_hours),
        )
        return _result(subscription)


def authorize(*, tv_account: str, product_code: str, content_id: str = "") -> AuthorizeResult:
    now = timezone.now()
    live = _live(tv_account, product_code).filter(starts_at__lte=now)
    live = live.filter(Q(content_id="") | Q(content_id=content_id))
    latest = live.order_by("-ends_at").first()
    return AuthorizeResult(authorized=latest is not None, ends_at=latest.ends_at if latest else None)


def unsubscribe(*, order_no: str) -> UnsubscribeResult:
    with transaction.atomic():
        found = subscription_of(order_no)
        if found is None:
            return UnsubscribeResult(ok=True, reversed_fen=0)
        subscription = SimSmpSubscription.objects.select_for_update().get(pk=found.pk)
        if subscription.cancelled_at is None:
            subscription.cancelled_at = timezone.now()
            if subscription.charge == SmpCharge.PHONE_BILL:
                subscription.reversed_fen = subscription.amount_fen
                account = SimSmpAccount.objects.select_for_update().get(tv_account=subscription.tv_account)
                account.balance_fen += subscription.amount_fen
                account.save(update_fields=["balance_fen"])
            subscription.save(update_fields=["cancelled_at", "reversed_fen"])
        return UnsubscribeResult(ok=True, reversed_fen=subscription.reversed_fen)
