"""What operations staff do by hand from admin: refund an order, settle the work queue.

Every action needs a reason, locks the order, and is written to the
order's history (who, when, why); repeating it, or two staff doing it at
once, does it once.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from billing.models import (
    ADMIN_REFUND_PREFIX,
    LedgerKind,
    Payment,
    PaymentStatus,
    Provider,
    Refund,
    RefundStatus,
    WorkItem,
    WorkItemKind,
)
from billing.services.ledger import ledger_record, order_totals, payment_refundable_fen
from billing.services.refunds import ACTIVE
from billing.services.work import work_item_open
from ipvas import outbox
from ipvas.actors import Actor
from ipvas.errors import InvalidInput, InvalidState
from ipvas.money import fen_to_yuan
from lifecycle import deductions, refunds, tasks
from lifecycle.transitions import lock_order, record_event, schedule_due
from orders.constants import PHONE_BILL_METHODS, PROVIDER_METHODS, OrderStatus, PaymentMethod
from orders.models import Order, OrderEvent


def _reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput(fields={"reason": [_("Say why: the reason is kept with the order.")]})
    return reason[:255]


def refundable_fen(order: Order) -> int | None:
    """What a refund by hand may give back now: the order's net, less what is being given back already (a
    refund under way, or a payment made twice and refunded by itself), which is not refunded again; by a
    provider, at most what its payments not being refunded now still hold (refund_by_admin's plan). None
    when nothing is left but refunds under way: the order's refund is under way."""
    under_way = Refund.objects.filter(order=order, status__in=ACTIVE)
    net = order_totals(order)["net_fen"] - sum(under_way.values_list("amount_fen", flat=True))
    if order.payment_method in PROVIDER_METHODS:
        busy = set(under_way.values_list("payment_id", flat=True))
        net = min(net, sum(payment_refundable_fen(p) for p in _provider_payments(order) if p.pk not in busy))
    return None if net <= 0 and under_way.exists() else net


def _provider_payments(order: Order) -> QuerySet[Payment]:
    """The order's payments that still hold money at WeChat Pay or Alipay, oldest first."""
    return Payment.objects.filter(
        order=order, provider__in=[Provider.WECHATPAY, Provider.ALIPAY], status=PaymentStatus.PAID
    ).order_by("paid_at", "pk")


def refund_by_admin(*, order_id: int, reason: str, actor: Actor, amount_fen: int | None = None) -> str:
    """Give back the money of a completed order, the way it came. Returns what was started."""
    reason = _reason(reason)
    with transaction.atomic():
        order = lock_order(order_id)
        if order.status == OrderStatus.REFUNDED:
            raise InvalidState(_("This order has been refunded already."))
        if order.status != OrderStatus.COMPLETED:
            raise InvalidState(_("Only completed orders are refunded by hand; the others settle by themselves."))
        net = refundable_fen(order)
        if net is None:
            return "already_under_way"
        under_way = Refund.objects.filter(order=order, status__in=ACTIVE)
        amount = net if amount_fen is None else amount_fen
        if amount <= 0 or amount > net:
            raise InvalidInput(
                fields={"amount": [_("At most ¥%(most)s can be refunded.") % {"most": fen_to_yuan(max(net, 0))}]},
            )
        method = order.payment_method
        if method in PROVIDER_METHODS:
            # Taken from the payments that still hold money and are not being refunded already, oldest first
            # (a second payment of the same order may have been refunded, or be on its way back).
            busy = set(under_way.values_list("payment_id", flat=True))
            plan, left = [], amount
            for payment in _provider_payments(order):
                share = 0 if payment.pk in busy else min(left, payment_refundable_fen(payment))
                if share > 0:
                    plan.append((payment, share))
                    left -= share
            if not plan:
                return "already_under_way"
            if left:
                free = amount - left
                raise InvalidInput(
                    fields={
                        "amount": [
                            _("At most ¥%(most)s can be refunded until the refund under way is done.")
                            % {"most": fen_to_yuan(free)}
                        ]
                    }
                )
            record_event(
                order, "refund_requested", actor=actor, from_status=order.status, reason=reason,
                data={"amount_fen": amount},
            )  # fmt: skip
            for payment, share in plan:
                refunds.refund_request(order=order, payment=payment, reason=reason, actor=actor, amount_fen=share)
            return "provider_refund"
        if under_way.exists() or _asked_and_standing(order):
            return "already_under_way"
        record_event(
            order, "refund_requested", actor=actor, from_status=order.status, reason=reason, data={"amount_fen": amount}
        )
        if amount != net:
            raise InvalidInput(fields={"amount": [_("Phone-bill and cash orders are refunded in full.")]})
        if method in (PaymentMethod.PHONE_BILL, PaymentMethod.PHONE_BILL_SMS):
            outbox.enqueue(tasks.reverse_phone_bill, kwargs={"order_id": order.pk})
            return "smp_reversal"
        # Cash: the store pays it back; the product stops when it has (work_item_resolve, cash_paid_back),
        # as it stops for the other methods when their money is back.
        work_item_open(order=order, kind=WorkItemKind.CASH_PAYBACK, detail=f"{ADMIN_REFUND_PREFIX}{actor}: {reason}")
        return "cash_payback"


# The work items a refund by hand of a phone-bill or cash sale comes to: the store's payback, or the SMP's
# reversal given up (no answer) or refused (nothing given back).
REFUND_BY_HAND_ITEMS = (WorkItemKind.CASH_PAYBACK, WorkItemKind.PROVISIONING_UNCERTAIN, WorkItemKind.PROVIDER_DISAGREES)


def _asked_and_standing(order: Order) -> bool:
    """A phone-bill reversal or a cash payback asked for by hand before (the order is still completed): it
    stands until the money is back (the order is refunded) or a person closed the work item it came to (one
    opened since; an older item of the order closed meanwhile says nothing of it)."""
    asked = order.events.filter(action="refund_requested").order_by("-at").values_list("at", flat=True).first()
    if asked is None:
        return False
    closed = WorkItem.objects.filter(
        order=order, kind__in=REFUND_BY_HAND_ITEMS, created_at__gte=asked, resolved_at__isnull=False
    )
    return not closed.exists()


def _lock_item(item_id: int) -> tuple[Order, WorkItem]:
    order_id = WorkItem.objects.values_list("order_id", flat=True).get(pk=item_id)
    order = lock_order(order_id)
    item = WorkItem.objects.select_for_update().get(pk=item_id)
    if item.resolved_at is not None:
        raise InvalidState(_("This item was resolved already."))
    return order, item


def _close(item: WorkItem, order: Order, *, actor: Actor, note: str, action: str) -> None:
    item.resolved_at = timezone.now()
    item.resolved_by = str(actor)[:150]
    item.resolution = f"{action}: {note}"[:255]
    item.save(update_fields=["resolved_at", "resolved_by", "resolution"])
    record_event(order, f"work_{action}", actor=actor, from_status=order.status, reason=note, data={"kind": item.kind})


def work_item_resolve(*, item_id: int, note: str, actor: Actor, cash_paid_back: bool = False) -> None:
    """Close an item with a note; for a cash sale, ``cash_paid_back`` records the money going back."""
    note = _reason(note)
    with transaction.atomic():
        order, item = _lock_item(item_id)
        if cash_paid_back:
            if item.kind != WorkItemKind.CASH_PAYBACK:
                raise InvalidState(_("Only cash sales are paid back by the store."))
            paid = order_totals(order)["net_fen"]
            if paid > 0:
                ledger_record(
                    order=order,
                    kind=LedgerKind.CASH_PAYBACK,
                    amount_fen=-paid,
                    method=PaymentMethod.CASH,
                    provider=Provider.CRM,
                    provider_ref=order.order_no,
                    idempotency_key=f"crm:payback:{order.order_no}",
                    actor=actor,
                    note=note,
                )
            refunds.order_money_returned(order, actor=actor, reason=note)
            outbox.enqueue(tasks.reverse_crm_activity, kwargs={"order_id": order.pk})
        _close(item, order, actor=actor, note=note, action="cash_paid_back" if cash_paid_back else "resolved")


def _standing(order: Order, refunds_: list[Refund]) -> dict[int, Refund]:
    """The refunds that stand for what was decided about the order's money, by payment: the latest of each
    payment, asked since provisioning was last retried by hand (which overrules the refunds its failure asked
    for). Not since the order's last change of status: a duplicate payment's refund that failed while the
    order was provisioning still stands once the order has completed."""
    retried = (
        OrderEvent.objects.filter(order=order, action="work_retried_provisioning")
        .order_by("-at")
        .values_list("at", flat=True)
        .first()
    )
    return {refund.payment_id: refund for refund in refunds_ if retried is None or refund.created_at >= retried}


def work_item_retry_refund(*, item_id: int, note: str, actor: Actor) -> int:
    """Ask the provider again for the order's failed refunds."""
    note = _reason(note)
    with transaction.atomic():
        order, item = _lock_item(item_id)
        refunds_ = list(
            Refund.objects.select_for_update(of=("self",)).filter(order=order).select_related("payment").order_by("pk")
        )
        failed = [refund for refund in refunds_ if refund.status == RefundStatus.FAILED]
        if not failed:
            raise InvalidState(_("This order has no failed refund to retry."))
        # Only the latest refund of a payment stands for what was decided about its money: an earlier one that
        # failed was replaced (an admin refunded again; provisioning was retried and the order completed, then
        # a smaller refund was asked), and asking it again would give money back twice or against a later
        # decision. And never more than the payment still holds.
        latest = _standing(order, refunds_)
        failed = [
            refund
            for refund in latest.values()
            if refund.status == RefundStatus.FAILED and refund.amount_fen <= payment_refundable_fen(refund.payment)
        ]
        if not failed:
            raise InvalidState(_("Later refunds replaced this order's failed ones: resolve the item instead."))
        for refund in failed:
            refund.status = RefundStatus.REQUESTED
            refund.attempts = 0
            refund.last_error = ""
            refund.save(update_fields=["status", "attempts", "last_error", "updated_at"])
            outbox.enqueue(tasks.process_refund, kwargs={"refund_id": refund.pk})
        _close(item, order, actor=actor, note=note, action="retried_refund")
        return len(failed)


def work_item_paid_back_by_hand(*, item_id: int, note: str, actor: Actor) -> int:
    """The provider refused a refund for good and the customer was paid back by other means (a bank
    transfer): the ledger says so, for the latest failed refund of each payment (what was decided), and an
    order with nothing left paid ends ``refunded`` (the product stops), as if the provider had refunded it.
    Returns the fen recorded."""
    note = _reason(note)
    with transaction.atomic():
        order, item = _lock_item(item_id)
        if item.kind != WorkItemKind.REFUND_FAILED:
            raise InvalidState(_("Only a refund that failed is recorded as paid back by hand."))
        refunds_ = Refund.objects.select_for_update(of=("self",)).filter(order=order).select_related("payment")
        latest = _standing(order, list(refunds_.order_by("pk")))
        recorded = 0
        for refund in latest.values():
            amount = min(refund.amount_fen, payment_refundable_fen(refund.payment))
            if refund.status != RefundStatus.FAILED or amount <= 0:
                continue
            ledger_record(
                order=order,
                payment=refund.payment,
                kind=LedgerKind.HAND_PAYBACK,
                amount_fen=-amount,
                method=refund.payment.method,
                provider=refund.provider,
                provider_ref=refund.out_refund_no,
                idempotency_key=f"hand:payback:{refund.out_refund_no}",
                actor=actor,
                note=note,
            )
            recorded += amount
        if not recorded:
            raise InvalidState(_("This order has no failed refund to record."))
        refunds.order_money_returned(order, actor=actor, reason=note)
        _close(item, order, actor=actor, note=note, action="paid_back_by_hand")
        return recorded


def work_item_refunded_at_smp_by_hand(*, item_id: int, note: str, actor: Actor) -> int:
    """The SMP gave nothing back for a phone-bill order refunded in admin (followups: "refund it at the SMP
    by hand"), and a person has since made the refund in the SMP's own console: the ledger books the
    reversal (under the key the SMP's own reversal would have, so never twice) and the order ends
    ``refunded``, its product stopped. Returns the fen recorded."""
    note = _reason(note)
    with transaction.atomic():
        order, item = _lock_item(item_id)
        if item.kind != WorkItemKind.PROVIDER_DISAGREES or order.payment_method not in PHONE_BILL_METHODS:
            raise InvalidState(_("Only a phone-bill order the SMP disagrees about is refunded at the SMP by hand."))
        held = order_totals(order)["net_fen"]
        if order.status != OrderStatus.COMPLETED or held <= 0:
            raise InvalidState(_("This order holds no phone-bill money to record as given back."))
        ledger_record(
            order=order,
            kind=LedgerKind.REVERSAL,
            amount_fen=-held,
            method=order.payment_method,
            provider=Provider.SMP,
            provider_ref=order.order_no,
            idempotency_key=f"smp:reversal:{order.order_no}",
            actor=actor,
            note=note,
        )
        refunds.order_money_returned(order, actor=actor, reason=note)
        _close(item, order, actor=actor, note=note, action="refunded_at_smp_by_hand")
        return held


def work_item_retry_provisioning(*, item_id: int, note: str, actor: Actor) -> None:
    """Try the SMP again for an order still waiting in provisioning (a new provisioning window)."""
    note = _reason(note)
    with transaction.atomic():
        order, item = _lock_item(item_id)
        if order.status != OrderStatus.PROVISIONING:
            raise InvalidState(_("Only an order still in provisioning can be provisioned again."))
        if Refund.objects.filter(order=order, status__in=ACTIVE).exists():
            raise InvalidState(_("A refund of this order is under way."))
        now = timezone.now()
        # Refunds that failed before now no longer stop provisioning (lifecycle.provisioning).
        order.status_changed_at = now
        order.deadline_at = now
        order.attempts = 0
        order.save(update_fields=["status_changed_at", "deadline_at", "attempts", "updated_at"])
        schedule_due(order)
        _close(item, order, actor=actor, note=note, action="retried_provisioning")


def work_item_deduction_failed_by_hand(*, item_id: int, note: str, actor: Actor) -> None:
    """A renewal's deduction stays on its way at the provider (WeChat Pay's 申请扣款 has no close: lifecycle.
    deductions asks every hour and tells a person each day), and the person saw in the provider's merchant
    platform that it failed: the renewal fails declined and is tried again (deductions.deduction_failed_by_hand)."""
    note = _reason(note)
    with transaction.atomic():
        order, item = _lock_item(item_id)
        if item.kind != WorkItemKind.PROVIDER_DISAGREES or not deductions.deduction_on_its_way(order):
            raise InvalidState(_("Only a renewal's deduction still on its way is ended as failed by hand."))
        deductions.deduction_failed_by_hand(order, note=note, actor=actor)
        order.refresh_from_db()
        _close(item, order, actor=actor, note=note, action="deduction_failed_by_hand")
