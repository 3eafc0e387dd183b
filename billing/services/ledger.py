"""The ledger: every movement of money, written once, summed when needed."""

from __future__ import annotations

from django.db.models import Q, Sum

from billing.models import LedgerEntry, LedgerKind, Payment
from ipvas.actors import Actor
from orders.models import Order


def ledger_record(
    *,
    order: Order,
    kind: str,
    amount_fen: int,
    method: str,
    provider: str,
    provider_ref: str,
    idempotency_key: str,
    actor: Actor,
    payment: Payment | None = None,
    note: str = "",
) -> None:
    """Write one movement, once: when its ``idempotency_key`` is in the ledger already (a retry, a duplicate),
    nothing is written. One statement (INSERT … ON CONFLICT DO NOTHING), which also holds against a movement
    written at the same moment by another transaction."""
    LedgerEntry.objects.bulk_create(
        [
            LedgerEntry(
                order=order,
                payment=payment,
                kind=kind,
                amount_fen=amount_fen,
                method=method,
                provider=provider,
                provider_ref=provider_ref[:64],
                idempotency_key=idempotency_key,
                actor_kind=actor.kind,
                actor_id=actor.id[:150],
                note=note[:255],
            )
        ],
        ignore_conflicts=True,
    )


def order_totals(order: Order) -> dict[str, int]:
    """Paid, given back and net, in fen, derived from the ledger."""
    sums = LedgerEntry.objects.filter(order=order).aggregate(
        paid=Sum("amount_fen", filter=Q(kind=LedgerKind.PAYMENT)),
        back=Sum("amount_fen", filter=~Q(kind=LedgerKind.PAYMENT)),
    )
    paid = sums["paid"] or 0
    back = -(sums["back"] or 0)
    return {"paid_fen": paid, "refunded_fen": back, "net_fen": paid - back}


def payment_refundable_fen(payment: Payment) -> int:
    """What is left to give back of one payment: its ledger payment minus its refunds."""
    total = LedgerEntry.objects.filter(payment=payment).aggregate(net=Sum("amount_fen"))["net"] or 0
    return max(total, 0)
