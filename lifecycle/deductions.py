"""A renewal by deduction under the WeChat Pay or Alipay contract (docs/interfaces.md §8), beside the phone
bill's: the renewal order (lifecycle.renewals) passes its pre-check, then the provider deducts it.

**When a deduction is allowed** is the provider's rule, which IPVAS keeps, not the provider's refusal:

* WeChat Pay (委托代扣, 预扣费通知): a pre-deduction notice goes out with the reminder SMS, only between 07:00
  and 22:00 Beijing time; it opens the 3rd to the 9th natural day (the notice's day is the 1st), 07:00–22:00,
  for one deduction of at most the amount announced. A renewal that would fall before those days moves to
  their first moment, as a late reminder moves it; one past them gets a new notice first.
* Alipay (周期扣款): from 3 days before the period's agreed day to that day (the period rule signed with the
  contract, one period later after each deduction). A renewal before those days moves to their first; past
  them it is not tried (the renewal order fails, and the subscription lapses when its period ends).

**The deduction** is the renewal order's ``payment_pending`` due work (lifecycle.due), one outside call per
run with the order claimed, as a payment code's: sent once (the payment is marked sent before the call), then
queried every ``QUERY_INTERVAL`` until ``ANSWER_WINDOW`` has passed, then closed. Its out_trade_no is the
renewal order's number; the period's key (``<subscription_no>P<n>``) rides along as the trade's own data.
Paid (the answer, the payment notification, or the query) → lifecycle.paid, and the period is provisioned in
the zero-price package as a QR payment is; refused → ``failed``/``payment_declined`` and the retries of
lifecycle.renewals; refused because the contract is gone → the user ended it: the subscription is cancelled
on the channel ``provider``. A cancel that comes before the deduction is sent stops it; one after, does not.
"""

from __future__ import annotations

import enum
import logging
from datetime import date, datetime, time, timedelta

from django.db import transaction
from django.utils import timezone

from adapters.providers import get_provider
from adapters.providers.types import (
    DeductionNoticeRequest,
    DeductionRequest,
    DeductionResult,
    DeductionState,
    ProviderRefused,
    ProviderUnavailable,
    Trade,
    TradeState,
)
from billing.models import ContractStatus, Payment, PaymentStatus, ProviderContract, WorkItemKind
from billing.services.payments import OPEN_STATUSES, PROVIDER_FOR_METHOD
from billing.services.work import work_item_open
from ipvas import outbox
from ipvas.actors import Actor
from lifecycle import contracts, paid, renewals, subscriptions, tasks
from lifecycle.claims import claim, lock_claimed, lock_if_due, look_again, retry_later
from lifecycle.transitions import lock_order, record_event, schedule_due, transit
from orders.constants import DEDUCTION_METHODS, FailureCode, OrderStatus, SubscriptionStatus
from orders.models import Order, Subscription

logger = logging.getLogger(__name__)

ACTOR = Actor.task("deduction")
WECHATPAY, ALIPAY = "wechatpay", "alipay"
# WeChat Pay's rules of the pre-deduction notice (预扣费通知API, docs/decisions.md).
OPEN_FROM, OPEN_UNTIL = time(7, 0), time(22, 0)
WINDOW_FIRST_DAY, WINDOW_LAST_DAY = 3, 9
# Alipay's period rule: a deduction from this many days before the agreed day.
ALIPAY_DAYS_BEFORE = 3
# After the deduction is sent: look every QUERY_INTERVAL; after ANSWER_WINDOW, close the trade and give up.
QUERY_INTERVAL = timedelta(seconds=30)
ANSWER_WINDOW = timedelta(minutes=30)
# A close of an unanswered deduction that the provider does not confirm is tried again (with the claims'
# backoff) for ever; after this many tries a person is asked too.
CLOSE_ATTEMPTS_BEFORE_A_PERSON = 8
# A deduction still on its way after that (WeChat Pay's have no close): asked every hour, a person told each day.
STUCK_LOOK_AGAIN = timedelta(hours=1)
STUCK_TELL_AGAIN_EVERY = 24
# The provider's refusal of a notice because it has no such contract (the user ended it).
CONTRACT_GONE_CODES = {"CONTRACT_NOT_EXIST", "CONTRACTNOTEXIST", "CONTRACT_ERROR", "CONTRACT_TERMINATED"}
# A notice that cannot be sent now is tried again with backoff, then a person is asked.
NOTICE_ATTEMPTS = 8
# While a renewal waits for a new notice, it asks for one at most this often.
NOTICE_ASKED_WAIT = timedelta(hours=6)
# How long a run sending the pre-deduction notice holds it (far more than a provider call's timeout): another run
# meanwhile leaves it to that one; a run that died mid-call holds it no longer than this.
NOTICE_CLAIM = timedelta(minutes=2)
WATCH = timedelta(minutes=30)


class Step(enum.StrEnum):
    CHARGE = "charge"
    QUERY = "query"
    CLOSE = "close"


def is_deduction(order: Order) -> bool:
    return (
        bool(order.subscription_id) and order.renewal_period is not None and order.payment_method in DEDUCTION_METHODS
    )


# --- when a deduction is allowed ---------------------------------------------------------------


def _local(day: date, moment: time) -> datetime:
    return timezone.make_aware(datetime.combine(day, moment))


def in_open_hours(now: datetime) -> bool:
    return OPEN_FROM <= timezone.localtime(now).time() < OPEN_UNTIL


def next_open(now: datetime) -> datetime:
    """The next moment within WeChat Pay's 07:00–22:00 (now, if it is one)."""
    local = timezone.localtime(now)
    if in_open_hours(now):
        return now
    day = local.date() if local.time() < OPEN_FROM else local.date() + timedelta(days=1)
    return _local(day, OPEN_FROM)


def wechat_window(noticed_at: datetime) -> tuple[datetime, datetime]:
    """The days a pre-deduction notice sent at ``noticed_at`` allows: the 3rd to the 9th, 07:00–22:00."""
    day = timezone.localtime(noticed_at).date()
    return (
        _local(day + timedelta(days=WINDOW_FIRST_DAY - 1), OPEN_FROM),
        _local(day + timedelta(days=WINDOW_LAST_DAY - 1), OPEN_UNTIL),
    )


def alipay_window(plan_at: datetime) -> tuple[datetime, datetime]:
    """The days Alipay allows the deduction of the period agreed for ``plan_at`` (a local midnight)."""
    return plan_at - timedelta(days=ALIPAY_DAYS_BEFORE), plan_at + timedelta(days=1)


def allowed_now(contract: ProviderContract, now: datetime) -> tuple[bool, datetime | None]:
    """(whether the provider's rules allow the deduction now, the first moment they will when that is later)."""
    if contract.provider == ALIPAY:
        if contract.plan_at is None:
            return False, None
        start, end = alipay_window(contract.plan_at)
        if now < start:
            return False, start
        return now < end, None
    if contract.deduct_from is None or contract.deduct_until is None or now > contract.deduct_until:
        return False, None  # no notice opens a window: a new one first
    if now < contract.deduct_from:
        return False, contract.deduct_from
    opens = next_open(now)
    if opens > now:
        return False, opens if opens <= contract.deduct_until else None
    return True, None


def ahead_of_the_paid_period(subscription: Subscription) -> str:
    """Why the subscription's contract cannot deduct its next period in time after a deduction went back ('' when
    it can): a period refunded, or a renewal deducted and not provisioned. Alipay's agreed day moves one period
    on with each deduction and never back (``alipay.user.agreement.executionplan.modify`` only postpones it),
    so it is left a period ahead of the paid one: the deduction would be refused until then, and the customer
    left without the product for a period, then charged. WeChat Pay has no agreed day: a new notice opens days
    for it."""
    contract = contracts.signed_contract(subscription)
    if contract is None or contract.provider != ALIPAY or contract.plan_at is None:
        return ""
    opens, _closes = alipay_window(contract.plan_at)
    if opens <= subscription.current_period_end:
        return ""
    return (
        f"a deduction went back and Alipay's agreed deduction day does not move back: it allows the next "
        f"deduction from {timezone.localtime(opens).date().isoformat()}, after the paid period ends"
    )


def renewal_window_check(subscription: Subscription, now: datetime) -> datetime | None:
    """The renewal of a subscription that deducts is due (subscription locked): None when it may go now;
    else when to look again. A renewal before the allowed days moves to their first moment (the subscription's
    ``next_renewal_at``, as a late reminder moves it); without a valid WeChat Pay notice a new one is asked."""
    contract = contracts.signed_contract(subscription)
    if contract is None:
        return None  # the deduction then fails (no contract): the retries and the lapse follow
    allowed, later = allowed_now(contract, now)
    if allowed:
        return None
    if later is not None and later >= subscription.current_period_end and contract.provider == WECHATPAY:
        # Tries go on until the paid period ends (§8), not after it: a try whose hours open after the end fails
        # without a call (WeChat Pay's rules refuse it now), and the subscription lapses. (Alipay's days are
        # the agreed day's, which the contract fixes: its renewal follows them.)
        return None
    if later is not None:
        subscription.next_renewal_at = later
        subscription.renewal_moved = True
        subscription.save(update_fields=["next_renewal_at", "renewal_moved", "updated_at"])
        subscriptions.record(
            subscription,
            "renewal_moved",
            actor=ACTOR,
            reason=f"{contract.provider} allows the deduction from {timezone.localtime(later).isoformat()}",
            now=now,
        )
        return later
    if contract.provider == WECHATPAY and now < subscription.current_period_end:
        # No notice opens days for it (none sent, or its days passed): a new one, then the renewal follows it.
        # One request at a time: the notice task retries by itself for hours before a person is asked. Once
        # the paid period has ended without one (WeChat Pay refusing or down all along), the renewal goes
        # and fails without a call, as Alipay's below, and the subscription lapses (docs/interfaces.md §8).
        asked = subscription.events.filter(action="deduction_notice_asked", at__gt=now - NOTICE_ASKED_WAIT)
        if not asked.exists():
            outbox.enqueue(tasks.announce_deduction, kwargs={"subscription_id": subscription.pk})
            subscriptions.record(subscription, "deduction_notice_asked", actor=ACTOR, now=now)
        return now + WATCH
    return None  # Alipay's days (or WeChat Pay's paid period) have passed: the renewal fails without a call


# --- WeChat Pay's pre-deduction notice, with the reminder ---------------------------------------


def reminder_went_out(subscription: Subscription) -> None:
    """The reminder SMS of the coming renewal is out (subscription locked): WeChat Pay's notice goes too."""
    if subscription.payment_method in DEDUCTION_METHODS:
        outbox.enqueue(tasks.announce_deduction, kwargs={"subscription_id": subscription.pk})


def deduction_announce(*, subscription_id: int, attempt: int = 0) -> str:
    """Send WeChat Pay's pre-deduction notice for the coming renewal, once per period; then the renewal falls
    in the days it opens. Only 07:00–22:00: outside them it waits. Safe to run twice."""
    subscription = Subscription.objects.filter(pk=subscription_id).first()
    contract = contracts.signed_contract(subscription) if subscription is not None else None
    if subscription is None or contract is None or subscription.status != SubscriptionStatus.ACTIVE:
        return "nothing_to_announce"
    now = timezone.now()
    if contract.provider != WECHATPAY:
        return "not_needed"
    if contract.deduct_until is not None and now <= contract.deduct_until:
        return "announced_already"
    if not in_open_hours(now):
        with transaction.atomic():
            outbox.enqueue(
                tasks.announce_deduction,
                kwargs={"subscription_id": subscription_id, "attempt": attempt},
                due_at=next_open(now),
            )
        return "waiting_for_07:00"
    claimed = _claim_notice(contract.pk, now)
    if isinstance(claimed, str):
        return claimed
    try:
        get_provider(contract.provider).announce_deduction(
            DeductionNoticeRequest(contract_id=contract.provider_contract_id, amount_fen=subscription.renewal_price_fen)
        )
    except ProviderRefused as exc:
        _release_notice(contract.pk, claimed)
        if exc.code in CONTRACT_GONE_CODES:
            # The user ended it in the app and the notification never reached us: as if it had.
            with transaction.atomic():
                subscriptions.lock_subscription(subscription_id)
                contracts.contract_gone(contract, actor=ACTOR, why=f"WeChat Pay has no such contract any more: {exc}")
            return "contract_gone"
        return _announce_again_or_ask(subscription, contract, attempt, str(exc))
    except ProviderUnavailable as exc:
        _release_notice(contract.pk, claimed)
        return _announce_again_or_ask(subscription, contract, attempt, str(exc))
    starts, ends = wechat_window(now)
    with transaction.atomic():
        subscription = subscriptions.lock_subscription(subscription_id)
        contract = ProviderContract.objects.select_for_update().get(pk=contract.pk)
        contract.notice_sent_at, contract.deduct_from, contract.deduct_until = now, starts, ends
        contract.notice_claimed_until = None
        contract.save(
            update_fields=["notice_sent_at", "deduct_from", "deduct_until", "notice_claimed_until", "updated_at"]
        )
        data = {"from": starts.isoformat(), "until": ends.isoformat(), "amount_fen": subscription.renewal_price_fen}
        subscriptions.record(subscription, "deduction_announced", actor=ACTOR, data=data, now=now)
        if subscription.status == SubscriptionStatus.ACTIVE and subscription.next_renewal_at is not None:
            if subscription.next_renewal_at < starts:
                subscription.next_renewal_at = starts
                subscription.renewal_moved = True
                if subscription.reminder_sent_at is not None:
                    subscription.due_at = starts
                subscription.save()
                subscriptions.record(
                    subscription,
                    "renewal_moved",
                    actor=ACTOR,
                    reason="WeChat Pay allows the deduction from the 3rd day after its notice",
                    now=now,
                )
    return "announced"


def _claim_notice(contract_id: int, now: datetime) -> datetime | str:
    """This run sends the notice: until when it holds it; or why it does not (another run sent it, or is sending
    it now). Two runs at once (a redelivered task, the renewal's own ask) would each send one: the customer
    was told twice of one charge."""
    with transaction.atomic():
        contract = ProviderContract.objects.select_for_update().get(pk=contract_id)
        if contract.deduct_until is not None and now <= contract.deduct_until:
            return "announced_already"
        if contract.notice_claimed_until is not None and now < contract.notice_claimed_until:
            return "announcing_elsewhere"
        contract.notice_claimed_until = now + NOTICE_CLAIM
        contract.save(update_fields=["notice_claimed_until", "updated_at"])
        return contract.notice_claimed_until


def _release_notice(contract_id: int, claimed: datetime) -> None:
    """The notice was not sent: another run may send it at once (not if the claim has passed to another)."""
    ProviderContract.objects.filter(pk=contract_id, notice_claimed_until=claimed).update(notice_claimed_until=None)


def _announce_again_or_ask(subscription: Subscription, contract: ProviderContract, attempt: int, why: str) -> str:
    if attempt + 1 >= NOTICE_ATTEMPTS:
        work_item_open(
            order=contract.order,
            kind=WorkItemKind.PROVIDER_DISAGREES,
            detail=f"WeChat Pay's pre-deduction notice for {subscription.subscription_no} was not sent: {why}",
        )
        return "gave_up"
    with transaction.atomic():
        outbox.enqueue(
            tasks.announce_deduction,
            kwargs={"subscription_id": subscription.pk, "attempt": attempt + 1},
            due_at=timezone.now() + timedelta(seconds=min(2**attempt * 30, 3600)),
        )
    return "retry"


# --- the deduction: the renewal order's payment ---------------------------------------------------


def deduction_start(order: Order, subscription: Subscription, *, actor: Actor) -> None:
    """The renewal order passed its pre-check (order and subscription locked): its payment is written as an
    intent and the order is due at once; its due work sends the deduction (``deduction_due``)."""
    now = timezone.now()
    method = subscription.payment_method
    Payment.objects.create(
        order=order,
        method=method,
        provider=PROVIDER_FOR_METHOD[method],
        out_trade_no=order.order_no,
        amount_fen=order.amount_fen,
        status=PaymentStatus.CREATING,
        expires_at=now + ANSWER_WINDOW,
    )
    transit(
        order,
        order.start_payment,
        payment_method=method,
        deadline_at=now,
        now=now,
        actor=actor,
        reason=f"renewal of {subscription}, deducted under its {PROVIDER_FOR_METHOD[method]} contract",
        data={"method": method, "period": order.renewal_period},
    )


def _open_payment(order: Order) -> Payment | None:
    return (
        Payment.objects.filter(order=order, method=order.payment_method, status__in=OPEN_STATUSES)
        .order_by("-created_at", "-pk")
        .first()
    )


def deduction_due(order_id: int, due_at: datetime | None) -> str:
    """The renewal order's due work while its deduction is at the provider: send, query, or close it."""
    with transaction.atomic():
        order = lock_if_due(order_id, due_at, OrderStatus.PAYMENT_PENDING)
        if order is None:
            return "not_due"
        payment = _open_payment(order)
        if payment is None:
            transit(order, order.fail, code=FailureCode.PAYMENT_TIMEOUT, actor=ACTOR, reason="no deduction to send")
            return "failed"
        request = None
        contract = None
        if payment.status == PaymentStatus.CREATING:
            subscription = subscriptions.lock_subscription(order.subscription_id)
            if subscription.status != SubscriptionStatus.ACTIVE:
                # Cancelled before the deduction was sent: it is never sent.
                payment.status = PaymentStatus.CLOSED
                payment.save(update_fields=["status", "updated_at"])
                transit(order, order.cancel_renewal, actor=ACTOR, reason=f"the subscription is {subscription.status}")
                return "cancelled"
            contract = contracts.signed_contract(subscription)
            refusal = _not_allowed(contract, timezone.now())
            if refusal:
                payment.status = PaymentStatus.FAILED
                payment.failure_reason = refusal[:255]
                payment.save(update_fields=["status", "failure_reason", "updated_at"])
                transit(
                    order, order.fail, code=FailureCode.PAYMENT_DECLINED, detail=refusal, actor=ACTOR, reason=refusal
                )
                return "declined"
            assert contract is not None
            # Sent from now on: a run that dies in the call is followed by queries, never a second deduction.
            # The answer window starts now, not when the intent was written (a late run must still query).
            payment.status = PaymentStatus.PENDING
            payment.expires_at = timezone.now() + ANSWER_WINDOW
            payment.save(update_fields=["status", "expires_at", "updated_at"])
            request = DeductionRequest(
                out_trade_no=payment.out_trade_no,
                contract_id=contract.provider_contract_id,
                amount_fen=payment.amount_fen,
                description=order.product.name,
                period_key=renewals.renewal_key(subscription, order.renewal_period or subscription.periods + 1),
            )
            step = Step.CHARGE
        else:
            step = Step.QUERY if timezone.now() < (payment.expires_at or timezone.now()) else Step.CLOSE
        claimed = claim(order)
    if step == Step.CHARGE:
        assert request is not None and contract is not None
        return _charge(order_id, claimed, payment, contract, request)
    if step == Step.QUERY:
        return _query(order_id, claimed, payment)
    return _close(order_id, claimed, payment)


def _not_allowed(contract: ProviderContract | None, now: datetime) -> str:
    """Why the deduction must not be sent now ('' when it may)."""
    if contract is None or not contract.provider_contract_id:
        return "no signed deduction contract"
    allowed, _later = allowed_now(contract, now)
    if not allowed:
        return f"outside the days {contract.provider}'s rules allow the deduction"
    return ""


def _charge(
    order_id: int, claimed: datetime, payment: Payment, contract: ProviderContract, request: DeductionRequest
) -> str:
    try:
        result = get_provider(payment.provider).deduct(request)
    except ProviderUnavailable as exc:
        return _wait(order_id, claimed, payment, why=f"no answer to the deduction: {exc}", first=True)
    if result.state == DeductionState.PAID:
        return _paid(payment, result.transaction_id, result.amount_fen, result.paid_at)
    if result.state == DeductionState.DECLINED:
        return _declined(order_id, claimed, payment, detail=f"{result.code} {result.message}".strip())
    if result.state == DeductionState.CONTRACT_GONE:
        return _declined(order_id, claimed, payment, detail=f"{result.code} {result.message}".strip(), gone=contract)
    why = "accepted, the result comes later" if result.state == DeductionState.ACCEPTED else "outcome unknown"
    return _wait(order_id, claimed, payment, why=f"{why} {result.code}".strip(), first=True, sent=result)


def _query(order_id: int, claimed: datetime, payment: Payment) -> str:
    try:
        trade = get_provider(payment.provider).query_deduction(payment.out_trade_no)
    except ProviderUnavailable as exc:
        return _wait(order_id, claimed, payment, why=f"query: {exc}")
    if trade.state == TradeState.PAID:
        return _paid(payment, trade.transaction_id, trade.amount_fen, trade.paid_at)
    if trade.state in (TradeState.FAILED, TradeState.CLOSED):
        return _declined(order_id, claimed, payment, detail=_as_the_provider_says(trade))
    return _wait(order_id, claimed, payment, why=f"still {trade.state}")


def _as_the_provider_says(trade: Trade) -> str:
    """Why the provider says a deduction failed: its description, else its own state's name (Alipay's
    trade_status, WeChat Pay's trade_state), else ours."""
    raw = trade.raw
    return str(raw.get("trade_state_desc") or raw.get("trade_status") or raw.get("trade_state") or trade.state)


def _close(order_id: int, claimed: datetime, payment: Payment) -> str:
    """No answer within the window: close the trade (money taken at the last second is kept), then give up.

    Only a close the provider confirmed ends the order: a deduction has no expiry of its own at the provider,
    and an order given up while its trade may still be paid would let the next renewal deduct the period a
    second time. Unconfirmed, the close is tried again with backoff, and a person is asked after a few tries.
    """
    provider = get_provider(payment.provider)
    try:
        # Its final answer first: paid, or declined with the provider's reason, not "no answer" (WeChat Pay has
        # no close for its deductions: there its query is all there is).
        trade = provider.query_deduction(payment.out_trade_no)
        if trade.state == TradeState.FAILED:
            return _declined(order_id, claimed, payment, detail=_as_the_provider_says(trade))
        if trade.state != TradeState.PAID and provider.close_deduction(payment.out_trade_no).already_paid:
            trade = provider.query_deduction(payment.out_trade_no)  # paid a moment before the close
    except ProviderUnavailable as exc:
        return _close_again(order_id, claimed, why=f"{payment.provider} did not confirm the close: {exc}")
    if trade.state == TradeState.PAID:
        return _paid(payment, trade.transaction_id, trade.amount_fen, trade.paid_at)
    why = f"no answer from {payment.provider} in {int(ANSWER_WINDOW.total_seconds() // 60)} minutes"
    with transaction.atomic():
        order = lock_claimed(order_id, claimed, OrderStatus.PAYMENT_PENDING)
        if order is None:
            return "superseded"  # a notification moved it on meanwhile: its answer stands
        Payment.objects.filter(pk=payment.pk, status__in=OPEN_STATUSES).update(status=PaymentStatus.CLOSED)
        # Money that still arrives for it is refunded as any late payment is (lifecycle.paid).
        transit(order, order.fail, code=FailureCode.PAYMENT_TIMEOUT, detail=why, actor=ACTOR, reason=why)
        return "timed_out"


def _close_again(order_id: int, claimed: datetime, *, why: str) -> str:
    """The deduction is still on its way: asked again with backoff; after a few tries a person is told, and
    then it is asked every hour (no event each time), the person told again each day while it lasts."""
    with transaction.atomic():
        order = lock_claimed(order_id, claimed, OrderStatus.PAYMENT_PENDING)
        if order is None:
            return "superseded"
        if order.attempts < CLOSE_ATTEMPTS_BEFORE_A_PERSON:
            retry_later(order, actor=ACTOR, why=why)
        else:
            look_again(order, after=STUCK_LOOK_AGAIN)
        past = order.attempts - CLOSE_ATTEMPTS_BEFORE_A_PERSON
        if past >= 0 and past % STUCK_TELL_AGAIN_EVERY == 0:
            work_item_open(
                order=order,
                kind=WorkItemKind.PROVIDER_DISAGREES,
                detail=f"the deduction {order.order_no} may still be paid at the provider: {why}"[:255],
            )
        return "close_unconfirmed"


def _paid(payment: Payment, transaction_id: str, amount_fen: int, paid_at: datetime | None) -> str:
    return paid.payment_succeeded(
        provider=payment.provider,
        out_trade_no=payment.out_trade_no,
        transaction_id=transaction_id,
        amount_fen=amount_fen or payment.amount_fen,
        paid_at=paid_at,
        actor=ACTOR,
    )


def _declined(
    order_id: int,
    claimed: datetime | None,
    payment: Payment,
    *,
    detail: str,
    gone: ProviderContract | None = None,
    actor: Actor = ACTOR,
    reason: str = "",
) -> str:
    with transaction.atomic():
        order = lock_claimed(order_id, claimed, OrderStatus.PAYMENT_PENDING) if claimed else lock_order(order_id)
        Payment.objects.filter(pk=payment.pk, status__in=OPEN_STATUSES).update(
            status=PaymentStatus.FAILED, failure_reason=detail[:255]
        )
        if order is None or order.status != OrderStatus.PAYMENT_PENDING:
            return "superseded"
        if gone is not None:
            subscriptions.lock_subscription(order.subscription_id)
            contracts.contract_gone(gone, actor=ACTOR, why=f"{gone.provider} has no such contract any more: {detail}")
        transit(
            order,
            order.fail,
            code=FailureCode.PAYMENT_DECLINED,
            detail=detail,
            actor=actor,
            reason=reason or f"{payment.provider} declined the deduction: {detail}",
        )
        return "contract_gone" if gone is not None else "declined"


def deduction_on_its_way(order: Order) -> bool:
    """A renewal's deduction sent and not yet answered: what a person may end as failed by hand."""
    return is_deduction(order) and order.status == OrderStatus.PAYMENT_PENDING


def deduction_failed_by_hand(order: Order, *, note: str, actor: Actor) -> None:
    """A person saw in the provider's merchant platform that a deduction on its way past its answer window
    did not go through (order locked, PAYMENT_PENDING): the renewal fails declined, as the provider's own
    answer would have made it, and is tried again on the renewal's schedule. Money that still arrives for it
    is refunded as any late payment (lifecycle.paid), so a mistaken word costs nobody twice."""
    payment = Payment.objects.filter(order=order, status__in=OPEN_STATUSES).order_by("-pk").first()
    if not deduction_on_its_way(order) or payment is None:
        raise ValueError(f"{order.order_no} has no deduction on its way")
    detail = f"failed at {payment.provider} (seen by hand): {note}"
    _declined(order.pk, None, payment, detail=detail, actor=actor, reason=detail)


def _wait(
    order_id: int,
    claimed: datetime,
    payment: Payment,
    *,
    why: str,
    first: bool = False,
    sent: DeductionResult | None = None,
) -> str:
    with transaction.atomic():
        order = lock_claimed(order_id, claimed, OrderStatus.PAYMENT_PENDING)
        if order is None:
            return "superseded"  # a notification moved it on meanwhile
        now = timezone.now()
        order.deadline_at = max(min(now + QUERY_INTERVAL, payment.expires_at or now), now)
        order.save(update_fields=["deadline_at", "updated_at"])
        if first:
            record_event(order, "deduction_sent", actor=ACTOR, from_status=order.status, reason=why)
        schedule_due(order)
        return "waiting"


def deduction_declined_by_notification(payment: Payment, *, detail: str, contract_gone: bool = False) -> str:
    """The provider's payment notification says the deduction failed (WeChat Pay PAYERROR, PAY_FAIL); with
    ``contract_gone`` (CONTRACT_NOT_EXIST) the user ended the contract, as when the deduction call says so."""
    if payment.status not in OPEN_STATUSES:
        return "settled already"
    gone = None
    if contract_gone:
        subscription = Order.objects.select_related("subscription").get(pk=payment.order_id).subscription
        gone = contracts.signed_contract(subscription) if subscription is not None else None
    return _declined(payment.order_id, None, payment, detail=detail, gone=gone)


# --- after a period is paid ----------------------------------------------------------------------


def deduction_paid(order: Order) -> None:
    """A renewal's deduction is recorded paid (order locked): its period is spent at the provider, whether the
    renewal completes or its money goes back (not provisioned)."""
    period_deducted(subscriptions.lock_subscription(order.subscription_id))


def period_deducted(subscription: Subscription) -> None:
    """A deduction was taken (subscription locked): WeChat Pay's notice is spent (the next period needs its own),
    Alipay's agreed day moves one period on, as theirs does."""
    contract = (
        ProviderContract.objects.select_for_update()
        .filter(subscription=subscription, status=ContractStatus.SIGNED)
        .first()
    )
    if contract is None:
        return
    if contract.provider == WECHATPAY:
        contract.notice_sent_at = contract.deduct_from = contract.deduct_until = None
    elif contract.plan_at is not None:
        contract.plan_at = contracts.next_agreed(contract.plan_at, contract.period_months)
    contract.save()
