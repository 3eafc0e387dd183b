"""Deduction contracts of the QR methods (docs/interfaces.md §8): the QR code of an auto-renewing order pays the
first period and signs WeChat Pay's 委托代扣 or Alipay's 周期扣款 contract in the same scan.

1. **Offered** with the QR payment (``billing.ProviderContract``, ``pending``): one per QR payment, under our
   contract code (WeChat Pay's contract_code, Alipay's external_agreement_no).
2. **Both halves in.** The payment notification completes the order as any QR payment does; the signing
   notification signs the contract. They arrive in either order, twice or late: the subscription starts
   ``active`` when the paid order has completed *and* its contract is signed, in the transaction of whichever
   came last (lifecycle.subscriptions.subscription_start).
3. **Never half.** At ``due_at`` (``CONTRACT_SIGN_WAIT_SECONDS`` after the QR window, or at once when the order
   ended unpaid) a contract still without its subscription is ended at the provider (unsigned by our code,
   which also ends one whose signing notification was lost): a paid order keeps the period it paid for and
   its history says that the subscription did not start; money that arrives for an ended order goes back as
   any late payment does (lifecycle.paid).
4. **Ended.** The user ends it in the payment app → the provider's notification → the subscription is
   ``cancelled`` on the channel ``provider``. A cancel from any other channel, a lapse or an end unsigns it
   at the provider (a task, retried, then a work item).

Locks: the order first, then the subscription, then the contract.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, time, timedelta

from dateutil.relativedelta import relativedelta
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from adapters.providers import get_provider
from adapters.providers.types import (
    ContractEvent,
    ContractNotice,
    ContractOrderRequest,
    NotificationRejected,
    ProviderRefused,
    ProviderUnavailable,
    UnsignRequest,
)
from billing.models import ContractEnd, ContractStatus, Payment, PaymentStatus, ProviderContract, WorkItemKind
from billing.services.notifications import notification_store
from billing.services.payments import OPEN_STATUSES
from billing.services.work import work_item_open
from ipvas import outbox
from ipvas.actors import Actor, ActorKind
from lifecycle import subscriptions, tasks
from lifecycle.transitions import lock_order, record_event
from orders.constants import ACTIVE_STATUSES, CancelChannel, OrderStatus, SubscriptionStatus
from orders.models import Entitlement, Order, Subscription
from orders.periods import add_months

logger = logging.getLogger(__name__)

ACTOR = Actor.task("contracts")
# While the order of a contract is still being paid or provisioned, how often the deadline looks again.
WATCH = timedelta(minutes=5)
# An unsign that has not reported back by then is started again (its own retries back off to 5 minutes).
UNSIGN_WATCH = timedelta(minutes=30)
MAX_UNSIGN_ATTEMPTS = 10
PROVIDER_NAMES = {"wechatpay": "WeChat Pay", "alipay": "Alipay"}
# Alipay's period rule: the agreed day is a day 1–28 of the month (docs/decisions.md).
LAST_AGREED_DAY = 28


# --- 1. offered with the QR code ------------------------------------------------------------


def contract_offer(order: Order, payment: Payment) -> ProviderContract:
    """The contract the QR code of ``payment`` offers (inside the transaction that writes the payment)."""
    return ProviderContract.objects.create(
        provider=payment.provider,
        contract_code=contract_code(payment),
        order=order,
        payment=payment,
        period_months=order.product.period_months or 1,
        amount_fen=order.amount_fen,
        plan_at=_local_midnight(agreed_day(estimated_first_end(order))),
        due_at=(payment.expires_at or timezone.now()) + timedelta(seconds=settings.CONTRACT_SIGN_WAIT_SECONDS),
    )


def contract_code(payment: Payment) -> str:
    """Ours, unique across providers: a QR code's first trade is the order's number at each provider, and an
    order switched from one provider's QR code to the other's offers a contract at each (26–30 characters of
    the 32 both allow)."""
    return f"C{payment.provider[0].upper()}{payment.out_trade_no}"


def contract_order_request(order: Order, payment: Payment, contract: ProviderContract) -> ContractOrderRequest:
    return ContractOrderRequest(
        out_trade_no=payment.out_trade_no,
        amount_fen=payment.amount_fen,
        description=order.product.name,
        expires_at=payment.expires_at or timezone.now(),
        contract_code=contract.contract_code,
        request_serial=contract.pk,
        display_account=order.tv_account,
        period_months=contract.period_months,
        renewal_amount_fen=contract.amount_fen,
        first_deduction_on=timezone.localtime(contract.plan_at).date() if contract.plan_at else date.today(),
    )


def estimated_first_end(order: Order) -> datetime:
    """When the first paid period will end: the stacking rule's start (the later of now and the account's
    current entitlement to the product) plus the period. The SMP decides; this is what the contract is
    signed with (Alipay's first agreed day)."""
    now = timezone.now()
    current = (
        Entitlement.objects.filter(
            tv_account=order.tv_account, product=order.product, revoked_at__isnull=True, ends_at__gt=now
        )
        .order_by("-ends_at")
        .values_list("ends_at", flat=True)
        .first()
    )
    return add_months(max(now, current or now), order.product.period_months or 1)


def agreed_day(period_end: datetime) -> date:
    """Alipay's agreed deduction day for a period that ends at ``period_end``: its day when 1–28, else the 28th
    (Alipay refuses the 29th–31st). Never after the period's end, also once February has moved the periods'
    ends to the 28th: the renewal is charged in the 3 days before it, or on it (renewals.schedule_next_period
    moves it no later than that day)."""
    day = timezone.localtime(period_end).date()
    return day.replace(day=min(day.day, LAST_AGREED_DAY))


def next_agreed(plan_at: datetime, months: int) -> datetime:
    """Alipay's agreed day ``months`` on: the same day of the month, in Beijing's calendar (where it is a day
    1–28), at its midnight; not ``plan_at`` plus months in UTC, where that midnight is the evening before."""
    day = timezone.localtime(plan_at).date() + relativedelta(months=months)
    return _local_midnight(day)


def _local_midnight(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time(0)))


# --- 2. both halves in ------------------------------------------------------------------------


def signed_contract(subscription: Subscription) -> ProviderContract | None:
    """The contract a subscription deducts under, while it is signed."""
    return ProviderContract.objects.filter(subscription=subscription, status=ContractStatus.SIGNED).first()


WAITING_FOR_SIGNING = "waiting for the provider's deduction contract to be signed"


def waiting_for_signing(order: Order) -> bool:
    """A paid auto-renewing QR order whose subscription waits for its deduction contract's signing."""
    return (
        order.auto_renew
        and order.status == OrderStatus.COMPLETED
        and order.subscription_id is None
        and ProviderContract.objects.filter(order=order, status=ContractStatus.PENDING).exists()
    )


def contract_to_start(order: Order) -> tuple[ProviderContract | None, str]:
    """The signed contract of the auto-renewing ``order``'s paid QR payment (locked), or None and why not."""
    paid = Payment.objects.filter(order=order, method=order.payment_method, status=PaymentStatus.PAID).first()
    contract = ProviderContract.objects.select_for_update().filter(payment=paid).first() if paid is not None else None
    if contract is None:
        return None, "no deduction contract was offered with the payment"
    if contract.status == ContractStatus.SIGNED and contract.subscription_id is None:
        return contract, ""
    if contract.status == ContractStatus.PENDING:
        return None, WAITING_FOR_SIGNING
    return None, f"the deduction contract is {contract.status}"


def contract_attach(contract: ProviderContract, subscription: Subscription) -> None:
    """The subscription started under ``contract`` (locked)."""
    contract.subscription = subscription
    contract.due_at = None
    contract.attempts = 0
    contract.save(update_fields=["subscription", "due_at", "attempts", "updated_at"])


def contract_notification_accept(*, notice: ContractNotice, headers: dict[str, str], body: str) -> str:
    """Apply a verified signing or termination notification; returns what happened.

    Applied, then stored under the provider's id, in one transaction (a duplicate is an answer: what it
    did is rolled back; lifecycle.paid.notification_accept).
    Raises NotificationRejected for a contract we never offered, or one the provider names differently.
    """
    ref = (
        ProviderContract.objects.filter(provider=notice.provider, contract_code=notice.contract_code)
        .values("pk", "order_id")
        .first()
    )
    if ref is None:
        raise NotificationRejected(f"unknown contract code {notice.contract_code[:40]}")
    with transaction.atomic():
        lock_order(ref["order_id"])
        # Read under the order's lock: a subscription is attached to the contract only under it, so the
        # subscription is locked before the contract here as on every other path (no lock-order inversion).
        subscription_id = ProviderContract.objects.values_list("subscription_id", flat=True).get(pk=ref["pk"])
        if subscription_id:
            subscriptions.lock_subscription(subscription_id)
        contract = ProviderContract.objects.select_for_update().select_related("payment").get(pk=ref["pk"])
        if contract.provider_contract_id and contract.provider_contract_id != notice.contract_id:
            raise NotificationRejected(f"contract id {notice.contract_id[:40]} is not the contract's")
        actor = Actor(ActorKind.PROVIDER, notice.provider)
        if notice.event == ContractEvent.SIGNED:
            outcome = _signed(contract, notice, actor=actor)
        else:
            outcome = _ended_by_provider(contract, notice, actor=actor)
        if not notification_store(
            provider=notice.provider,
            notification_id=notice.notification_id,
            payment=contract.payment,
            contract=contract,
            headers=headers,
            body=body,
            decoded=notice.decoded,
            outcome=f"contract {outcome}",
        ):
            return "duplicate"  # sent before: what applying it again did is rolled back
    return outcome


def _signed(contract: ProviderContract, notice: ContractNotice, *, actor: Actor) -> str:
    now = timezone.now()
    if not contract.provider_contract_id:
        contract.provider_contract_id = notice.contract_id
        contract.save(update_fields=["provider_contract_id", "updated_at"])
    if contract.status in (ContractStatus.UNSIGNING, ContractStatus.TERMINATED):
        if contract.ended_by == ContractEnd.USER:
            return "stale: ended by the user already"
        # We ended it (or were ending it) before this signing reached us: it must not stay signed.
        _unsign_later(contract, by=contract.ended_by or ContractEnd.UNUSED, reason=contract.end_reason)
        return "unsigning: signed after it was given up"
    if contract.status == ContractStatus.SIGNED:
        return "signed already"
    contract.status = ContractStatus.SIGNED
    contract.signed_at = notice.at or now
    contract.save(update_fields=["status", "signed_at", "updated_at"])
    order = Order.objects.get(pk=contract.order_id)
    record_event(
        order,
        "contract_signed",
        actor=actor,
        from_status=order.status,
        reason=f"{contract.provider} contract {contract.provider_contract_id} ({contract.contract_code})",
    )
    paid = contract.payment.status == PaymentStatus.PAID
    if order.status == OrderStatus.COMPLETED and paid and order.subscription_id is None:
        # The payment came first: the subscription starts now, under this contract.
        if subscriptions.subscription_start(order, actor=actor, now=now) is not None:
            return "signed: the subscription started"
        _unsign_later(contract, by=ContractEnd.UNUSED, reason="no subscription started with it")
        return "unsigning: no subscription started with it"
    if order.status in ACTIVE_STATUSES and contract.payment.status in (*OPEN_STATUSES, PaymentStatus.PAID):
        return "signed: waiting for the payment"
    _unsign_later(contract, by=ContractEnd.UNUSED, reason=f"its order is {order.status}, not paid by this QR code")
    return "unsigning: its order was not paid by it"


def _ended_by_provider(contract: ProviderContract, notice: ContractNotice, *, actor: Actor) -> str:
    """The provider says the contract ended: the user's doing, or the echo of our own unsign."""
    now = timezone.now()
    if not contract.provider_contract_id:
        contract.provider_contract_id = notice.contract_id
    if contract.status == ContractStatus.TERMINATED:
        contract.save(update_fields=["provider_contract_id", "updated_at"])
        return "ended already"
    ours = contract.status == ContractStatus.UNSIGNING
    source = contract.status
    contract.status = ContractStatus.TERMINATED
    contract.ended_at = notice.at or now
    contract.due_at = None
    if not ours:
        contract.ended_by = ContractEnd.USER
        contract.end_reason = f"ended in {PROVIDER_NAMES.get(contract.provider, contract.provider)}"
    contract.save()
    subscription = (
        Subscription.objects.filter(pk=contract.subscription_id).first() if contract.subscription_id else None
    )
    if subscription is not None:
        subscriptions.record(
            subscription,
            "contract_ended",
            actor=actor,
            reason=contract.end_reason,
            data={"contract_id": contract.provider_contract_id, "was": source, "by": contract.ended_by},
        )
        if not ours and subscription.status == SubscriptionStatus.ACTIVE:
            subscriptions.subscription_cancel(
                subscription_id=subscription.pk,
                channel=CancelChannel.PROVIDER,
                actor=actor,
                reason=f"the user ended the deduction contract in {PROVIDER_NAMES.get(contract.provider)}",
            )
            return "ended by the user: the subscription is cancelled"
    return "ended" if ours else "ended by the user"


def contract_gone(contract: ProviderContract, *, actor: Actor, why: str) -> None:
    """A deduction was refused because the provider no longer has the contract: the user ended it and the
    notification never reached us. The same as that notification (subscription locked, then the contract)."""
    contract = ProviderContract.objects.select_for_update().get(pk=contract.pk)
    if contract.status != ContractStatus.SIGNED:
        return
    contract.status = ContractStatus.TERMINATED
    contract.ended_at = timezone.now()
    contract.ended_by = ContractEnd.USER
    contract.end_reason = why[:255]
    contract.due_at = None
    contract.save()
    if contract.subscription_id:
        subscription = Subscription.objects.get(pk=contract.subscription_id)
        if subscription.status == SubscriptionStatus.ACTIVE:
            subscriptions.subscription_cancel(
                subscription_id=subscription.pk, channel=CancelChannel.PROVIDER, actor=actor, reason=why
            )


# --- 3. never half: the deadline ---------------------------------------------------------------


def order_gave_up(order: Order) -> None:
    """An auto-renewing order ended without completing (locked): its contracts are settled at once."""
    now = timezone.now()
    pending = ProviderContract.objects.filter(
        order=order, subscription__isnull=True, status__in=[ContractStatus.PENDING, ContractStatus.SIGNED]
    )
    for contract_id in pending.values_list("pk", flat=True):
        ProviderContract.objects.filter(pk=contract_id).update(due_at=now)
        outbox.enqueue(tasks.contract_due, kwargs={"contract_id": contract_id})


def contracts_sweep(*, batch_size: int | None = None) -> int:
    """Act on every contract whose ``due_at`` has come; one bounded batch. Returns how many."""
    batch_size = batch_size or settings.SUBSCRIPTION_SWEEP_BATCH
    due = list(
        ProviderContract.objects.filter(due_at__lte=timezone.now())
        .order_by("due_at")
        .values_list("pk", flat=True)[:batch_size]
    )
    for contract_id in due:
        try:
            contract_process_due(contract_id=contract_id)
        except Exception:
            logger.exception("contract sweep: contract %s failed", contract_id)
            ProviderContract.objects.filter(pk=contract_id).update(due_at=timezone.now() + WATCH)
    return len(due)


def contract_process_due(*, contract_id: int) -> str:
    """Settle a contract whose deadline came: start its subscription, wait a little more, or end it."""
    ref = ProviderContract.objects.filter(pk=contract_id).values("order_id", "subscription_id").first()
    if ref is None:
        return "gone"
    with transaction.atomic():
        order = lock_order(ref["order_id"])
        if ref["subscription_id"]:
            subscriptions.lock_subscription(ref["subscription_id"])
        contract = ProviderContract.objects.select_for_update().select_related("payment").get(pk=contract_id)
        now = timezone.now()
        if contract.due_at is None or contract.due_at > now:
            return "not_due"
        if contract.status == ContractStatus.TERMINATED or contract.subscription_id:
            contract.due_at = None
            contract.save(update_fields=["due_at", "updated_at"])
            return "settled"
        if contract.status == ContractStatus.UNSIGNING:
            # The unsign's own chain was lost (a crash): start it again.
            contract.due_at = now + UNSIGN_WATCH
            contract.save(update_fields=["due_at", "updated_at"])
            outbox.enqueue(tasks.unsign_contract, kwargs={"contract_id": contract.pk})
            return "unsigning"
        payment_alive = contract.payment.status in (*OPEN_STATUSES, PaymentStatus.PAID)
        if order.status in ACTIVE_STATUSES and payment_alive:
            contract.due_at = now + WATCH
            contract.save(update_fields=["due_at", "updated_at"])
            return "waiting"
        paid = contract.payment.status == PaymentStatus.PAID and order.status == OrderStatus.COMPLETED
        if contract.status == ContractStatus.SIGNED and paid and order.subscription_id is None:
            if subscriptions.subscription_start(order, actor=ACTOR, now=now) is not None:
                return "started"
        if paid and order.subscription_id is None:
            subscriptions.order_note(
                order,
                "auto_renew_not_started",
                actor=ACTOR,
                reason=f"the {contract.provider} deduction contract was not signed in time: the paid period stays",
            )
        why = "never signed in time" if contract.status == ContractStatus.PENDING else "no subscription started"
        _unsign_later(contract, by=ContractEnd.UNUSED, reason=f"{why}; order {order.order_no} is {order.status}")
        return "unsigning"


# --- 4. ended: by us, at the provider ----------------------------------------------------------


def subscription_ended(subscription: Subscription, *, channel: str, reason: str) -> None:
    """The subscription renews no more (cancelled on a channel other than the provider's, lapsed or ended):
    its contract is ended at the provider. Call with the subscription locked."""
    if channel == CancelChannel.PROVIDER:
        return  # the user ended it there already
    for contract in ProviderContract.objects.select_for_update().filter(
        subscription=subscription, status=ContractStatus.SIGNED
    ):
        _unsign_later(contract, by=ContractEnd.MERCHANT, reason=reason)


def contracts_given_up_by_td(*, phone: str, product_code: str, actor: Actor) -> list[Order]:
    """A ``TD`` from ``phone`` (inside its transaction): the auto-renewing orders of the number whose deduction
    contract was offered or signed but whose subscription has not started (the signing, or the payment, still
    on the way) start none. Their contract is ended at the provider now, and again if its signing comes later
    (``_signed``); the order, once paid, stays a plain period. Returns those orders."""
    waiting = ProviderContract.objects.filter(
        status__in=(ContractStatus.PENDING, ContractStatus.SIGNED),
        subscription__isnull=True,
        order__phone=phone,
        order__auto_renew=True,
        order__status__in=[*ACTIVE_STATUSES, OrderStatus.COMPLETED],
    )
    if product_code:
        waiting = waiting.filter(order__product__code__iexact=product_code)
    given_up = []
    for contract_id, order_id in waiting.order_by("order_id").values_list("pk", "order_id"):
        order = lock_order(order_id)  # the order before its contract, as the notifications lock them
        contract = ProviderContract.objects.select_for_update().get(pk=contract_id)
        if contract.status not in (ContractStatus.PENDING, ContractStatus.SIGNED) or contract.subscription_id:
            continue
        _unsign_later(contract, by=ContractEnd.MERCHANT, reason="SMS reply TD before the subscription started")
        record_event(
            order,
            "auto_renew_cancelled",
            actor=actor,
            from_status=order.status,
            reason="SMS reply TD before its deduction contract started a subscription",
        )
        given_up.append(order)
    return given_up


def _unsign_later(contract: ProviderContract, *, by: str, reason: str) -> None:
    """End the contract at the provider after this transaction commits (contract locked)."""
    contract.status = ContractStatus.UNSIGNING
    contract.ended_by = by
    contract.end_reason = reason[:255]
    contract.due_at = timezone.now() + UNSIGN_WATCH
    contract.attempts = 0
    contract.save()
    outbox.enqueue(tasks.unsign_contract, kwargs={"contract_id": contract.pk})


def contract_unsign(*, contract_id: int, attempt: int = 0) -> str:
    """Ask the provider to end the contract (by our code, and its id when known). Safe to run twice."""
    contract = ProviderContract.objects.select_related("order").get(pk=contract_id)
    if contract.status != ContractStatus.UNSIGNING:
        return "nothing_to_do"
    try:
        result = get_provider(contract.provider).unsign(
            UnsignRequest(
                contract_code=contract.contract_code,
                contract_id=contract.provider_contract_id,
                reason=contract.end_reason,
            )
        )
        ended, why = result.ended, result.message
    except (ProviderUnavailable, ProviderRefused) as exc:
        ended, why = False, str(exc)
    if not ended:
        return _unsign_again_or_ask(contract, attempt, why)
    with transaction.atomic():
        contract = ProviderContract.objects.select_for_update().get(pk=contract_id)
        if contract.status != ContractStatus.UNSIGNING:
            return "ended_meanwhile"
        contract.status = ContractStatus.TERMINATED
        contract.ended_at = timezone.now()
        contract.due_at = None
        contract.save(update_fields=["status", "ended_at", "due_at", "updated_at"])
    logger.info("contract %s ended at %s: %s", contract.contract_code, contract.provider, contract.end_reason)
    return "ended"


def _unsign_again_or_ask(contract: ProviderContract, attempt: int, why: str) -> str:
    if attempt + 1 >= MAX_UNSIGN_ATTEMPTS:
        # The provider will not end it: a person ends it in the merchant platform; nothing more is tried.
        ProviderContract.objects.filter(pk=contract.pk).update(due_at=None)
        work_item_open(
            order=contract.order,
            kind=WorkItemKind.PROVIDER_DISAGREES,
            detail=f"could not end {contract.provider} deduction contract {contract.contract_code}: {why}",
        )
        logger.error("contract %s: unsign at %s gave up: %s", contract.contract_code, contract.provider, why)
        return "gave_up"
    with transaction.atomic():
        ProviderContract.objects.filter(pk=contract.pk).update(attempts=attempt + 1)
        outbox.enqueue(
            tasks.unsign_contract,
            kwargs={"contract_id": contract.pk, "attempt": attempt + 1},
            due_at=timezone.now() + timedelta(seconds=min(2**attempt * 5, 300)),
        )
    return "retry"
