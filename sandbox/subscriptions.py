"""Time travel for one subscription (docs/interfaces.md §8, sandbox): a year of renewals in a minute.

``advance`` moves every time of the subscription — its paid periods and their entitlements (here and
in the simulated SMP), its reminder and renewal times, when its reminder was sent, the days its deduction
contract allows the coming deduction (here and at the simulated provider) — earlier by the same amount, so
that the named event is due now; then the system's own scheduled work acts on it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from billing.models import ProviderContract
from ipvas import outbox
from ipvas.errors import InvalidState
from lifecycle import tasks
from lifecycle.subscriptions import lock_subscription
from orders.constants import SubscriptionStatus
from orders.models import Entitlement, Order, Subscription
from orders.services import entitlements_changed
from sandbox import smp
from sandbox.models import SimContract, SimSmpAccount, SimSmpSubscription, SmpAccountStatus

EVENTS = ("reminder", "renewal", "end")
ACCOUNT_STATUSES = {
    "active": SmpAccountStatus.ACTIVE,
    "suspended": SmpAccountStatus.SUSPENDED,
    "arrears": SmpAccountStatus.IN_ARREARS,
}


def _when_due(subscription: Subscription, to: str) -> datetime:
    """When the named event comes; InvalidState when it cannot come."""
    if to == "end":
        return subscription.current_period_end
    if subscription.status != SubscriptionStatus.ACTIVE:
        raise InvalidState(f"a subscription that is {subscription.status} has no {to} to come")
    if to == "reminder":
        if subscription.reminder_sent_at is not None:
            raise InvalidState("the reminder of this period was sent already")
        return subscription.next_reminder_at
    if subscription.reminder_sent_at is None:
        raise InvalidState("the renewal cannot come before its reminder was sent")
    return subscription.next_renewal_at


def advance(subscription_no: str, to: str) -> Subscription:
    if to not in EVENTS:
        raise ValueError(f"to is one of {', '.join(EVENTS)}")
    with transaction.atomic():
        found = Subscription.objects.filter(subscription_no=subscription_no).values_list("pk", flat=True).first()
        if found is None:
            raise Subscription.DoesNotExist(subscription_no)
        subscription = lock_subscription(found)
        now = timezone.now()
        shift = max(_when_due(subscription, to) - now, timedelta(0))
        if shift:
            _shift(subscription, shift)
        Subscription.objects.filter(pk=subscription.pk).update(due_at=now)
        # The scheduled work acts within seconds: the sweep would find it, the task is quicker.
        outbox.enqueue(tasks.subscription_due, kwargs={"subscription_id": found})
    tv_account = subscription.tv_account
    transaction.on_commit(lambda: entitlements_changed(tv_account))
    return Subscription.objects.get(pk=found)


def _shift(subscription: Subscription, shift: timedelta) -> None:
    earlier = {
        name: F(name) - shift
        for name in ("current_period_end", "next_reminder_at", "reminder_sent_at", "next_renewal_at")
        if getattr(subscription, name) is not None
    }
    Subscription.objects.filter(pk=subscription.pk).update(**earlier)
    orders = Order.objects.filter(subscription=subscription)
    Entitlement.objects.filter(order__in=orders).update(starts_at=F("starts_at") - shift, ends_at=F("ends_at") - shift)
    SimSmpSubscription.objects.filter(order_no__in=orders.values("order_no")).update(
        starts_at=F("starts_at") - shift, ends_at=F("ends_at") - shift
    )
    # The deduction contract's days (WeChat Pay's notice window, Alipay's agreed day), here and at the provider.
    ours = ProviderContract.objects.filter(subscription=subscription)
    for name in ("notice_sent_at", "plan_at", "deduct_from", "deduct_until"):
        ours.filter(**{f"{name}__isnull": False}).update(**{name: F(name) - shift})
    signed = ours.exclude(provider_contract_id="").values("provider_contract_id")
    theirs = SimContract.objects.filter(contract_id__in=signed)
    for name in ("plan_at", "deduct_from", "deduct_until"):
        theirs.filter(**{f"{name}__isnull": False}).update(**{name: F(name) - shift})


def smp_end(order_no: str) -> None:
    """The simulated SMP ends a continuous subscription at the end of its paid period: no money moves."""
    _live_of(order_no).update(cancelled_at=timezone.now())


def smp_reschedule(order_no: str, *, starts_at: datetime, ends_at: datetime) -> bool:
    """The simulated SMP moves an order's subscription to a new period (nothing else changes)."""
    return bool(_live_of(order_no).update(starts_at=starts_at, ends_at=ends_at))


def _live_of(order_no: str):  # type: ignore[no-untyped-def]
    """The order's subscription at the simulated SMP (its own or its period's), while not ended."""
    found = smp.subscription_of(order_no)
    return SimSmpSubscription.objects.filter(pk=found.pk if found else None, cancelled_at__isnull=True)


def account_set(tv_account: str, *, status: str | None, balance_fen: int | None, phone: str | None) -> SimSmpAccount:
    """Change (or create, active, with the phone given) a simulated SMP account."""
    with transaction.atomic():
        account = SimSmpAccount.objects.select_for_update().filter(tv_account=tv_account).first()
        if account is None:
            account = SimSmpAccount(tv_account=tv_account, phone=phone or "", status=SmpAccountStatus.ACTIVE)
        if status is not None:
            account.status = ACCOUNT_STATUSES[status]
        if balance_fen is not None:
            account.balance_fen = balance_fen
        if phone is not None:
            account.phone = phone
        account.save()
    return account


def account_status_name(account: SimSmpAccount) -> str:
    return {value: name for name, value in ACCOUNT_STATUSES.items()}[account.status]
