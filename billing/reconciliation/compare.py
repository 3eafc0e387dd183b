"""Comparing one day: our ledger against each provider's statement, and our orders against the SMP's list.

Both sides are streamed from the database in key order (``.iterator()``,
byte order of the key on every database) and merge-joined: memory holds one
key's rows at a time, whatever the size of the day. Items are written in
batches with ``bulk_create``. The caller holds the transaction.

* Provider (WeChat Pay, Alipay), per kind: our ``LedgerEntry`` rows of the day
  (payments by out_trade_no, refunds by out_refund_no) against the statement's
  rows. Both → ``matched`` or ``amount_differs``; ours only →
  ``missing_at_provider``; theirs only → ``missing_here``.
* SMP: the orders with a ledger entry on the day (money in, by method) against
  the SMP's subscriptions of the day, by order number. A subscription with no
  money here for its charge (WeChat Pay/Alipay for ``prepaid``, cash for
  ``marketing_account``, an SMP charge for ``phone_bill``) →
  ``provisioned_not_paid``; a charge that differs → ``amount_differs``; an
  order first paid that day, still holding money, not refunded, that the SMP
  did not subscribe that day → ``paid_not_provisioned``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import datetime
from itertools import groupby
from operator import itemgetter

from django.db import connection
from django.db.models import Case, Count, Expression, F, Q, QuerySet, Sum, When
from django.db.models.functions import Coalesce, Collate, Substr
from django.utils import timezone

from adapters.smp import SmpCharge
from billing.models import LedgerEntry, LedgerKind, Payment, ReconciliationItem, ReconciliationRun, Refund
from billing.models.payments import Provider
from billing.models.reconciliation import Outcome, Statement, StatementLine, StatementLineKind, StatementSource
from billing.reconciliation.bulk import insert_rows
from ipvas.money import fen_to_yuan
from orders.constants import OrderStatus
from orders.models import Order

CHUNK = 2000
BATCH = 2000
PAYMENT = StatementLineKind.PAYMENT.value
REFUND = StatementLineKind.REFUND.value
SUBSCRIPTION = StatementLineKind.SUBSCRIPTION.value


ITEM_FIELDS = (
    "run",
    "outcome",
    "source",
    "kind",
    "order_no",
    "reference",
    "our_amount_fen",
    "their_amount_fen",
    "statement_line_no",
    "detail",
)


class ItemWriter:
    """Buffers items and writes them ``BATCH`` at a time (bulk.insert_rows); counts them per outcome."""

    def __init__(self, run: ReconciliationRun) -> None:
        self.run = run
        self.buffer: list[tuple] = []
        self.counts: Counter[str] = Counter()

    def add(
        self,
        *,
        outcome: str,
        source: str,
        kind: str,
        order_no: str = "",
        reference: str = "",
        our_amount_fen: int | None = None,
        their_amount_fen: int | None = None,
        statement_line_no: int | None = None,
        detail: str = "",
    ) -> None:
        outcome = str(outcome)  # the value, whether a plain str or an Outcome member
        self.buffer.append(
            (
                self.run.pk,
                outcome,
                str(source),
                str(kind),
                order_no[:64],
                reference[:64],
                our_amount_fen,
                their_amount_fen,
                statement_line_no,
                detail[:255],
            )
        )
        self.counts[outcome] += 1
        if len(self.buffer) >= BATCH:
            self.flush()

    def flush(self) -> None:
        if self.buffer:
            insert_rows(ReconciliationItem, ITEM_FIELDS, self.buffer)
            self.buffer = []


def ordered(expression: Expression | str) -> Expression:
    """Sort by the key's bytes (= code points, as Python compares str): PostgreSQL's default collation does not."""
    expression = F(expression) if isinstance(expression, str) else expression
    return Collate(expression, "C") if connection.vendor == "postgresql" else expression


def _groups(rows: Iterable[tuple], what: str) -> Iterator[tuple[str, list[tuple]]]:
    previous: str | None = None
    for key, group in groupby(rows, key=itemgetter(0)):
        if previous is not None and key <= previous:
            raise RuntimeError(f"{what} is not in key order ({previous!r} then {key!r}): the merge would be wrong")
        previous = key
        yield key, list(group)


def merge_join(ours: Iterable[tuple], theirs: Iterable[tuple]) -> Iterator[tuple[str, list[tuple], list[tuple]]]:
    """Walk two streams sorted by their first field together: (key, our rows, their rows), either may be []."""
    mine, listed = _groups(ours, "our side"), _groups(theirs, "the statement")
    a, b = next(mine, None), next(listed, None)
    while a is not None or b is not None:
        if b is None or (a is not None and a[0] < b[0]):
            yield a[0], a[1], []  # type: ignore[index]
            a = next(mine, None)
        elif a is None or b[0] < a[0]:
            yield b[0], [], b[1]
            b = next(listed, None)
        else:
            yield a[0], a[1], b[1]
            a, b = next(mine, None), next(listed, None)


def _yuan(fen: int | None) -> str:
    return "-" if fen is None else fen_to_yuan(fen)


def _listed(rows: list[tuple], label: str) -> str:
    return f"; listed {len(rows)} times in {label}" if len(rows) > 1 else ""


# --- WeChat Pay and Alipay -------------------------------------------------------------


def _ledger_rows(provider: str, kind: str, start: datetime, end: datetime) -> Iterator[tuple]:
    """(key, amount, order_no, provider_ref) of our ledger's ``kind`` entries at ``provider`` on the day."""
    entries = LedgerEntry.objects.filter(provider=provider, created_at__gte=start, created_at__lt=end)
    if kind == PAYMENT:
        entries = entries.filter(kind=LedgerKind.PAYMENT)
        key: Expression = Coalesce(F("payment__out_trade_no"), F("provider_ref"))
    else:
        # The refund's idempotency key is "<provider>:refund:<out_refund_no>" (docs/architecture.md).
        prefix = f"{provider}:refund:"
        entries = entries.filter(kind=LedgerKind.REFUND)
        key = Case(
            When(idempotency_key__startswith=prefix, then=Substr("idempotency_key", len(prefix) + 1)),
            default=F("provider_ref"),
        )
    rows = (
        entries.annotate(key=key)
        .order_by(ordered("key"), "pk")
        .values_list("key", "amount_fen", "order__order_no", "provider_ref")
    )
    return rows.iterator(chunk_size=CHUNK)


def _statement_rows(statement: Statement | None, kind: str) -> Iterator[tuple]:
    """(key, amount, transaction_id, line_no) of the statement's ``kind`` rows."""
    if statement is None:
        return iter(())
    rows = (
        StatementLine.objects.filter(statement=statement, kind=kind)
        .order_by(ordered("match_key"), "line_no")
        .values_list("match_key", "amount_fen", "transaction_id", "line_no")
    )
    return rows.iterator(chunk_size=CHUNK)


def compare_provider(
    writer: ItemWriter, *, provider: str, statement: Statement | None, start: datetime, end: datetime
) -> None:
    """Our ledger at ``provider`` against its statement (None: the provider has no statement for the day)."""
    label = f"the {StatementSource(provider).label} of {timezone.localtime(start).date()}"
    for kind in (PAYMENT, REFUND):
        unknown: list[tuple] = []
        for key, mine, listed in merge_join(_ledger_rows(provider, kind, start, end), _statement_rows(statement, kind)):
            ours = sum(row[1] for row in mine) if mine else None
            theirs = sum(row[1] for row in listed) if listed else None
            common = {"source": provider, "kind": kind, "reference": key, "our_amount_fen": ours}
            line_no = listed[0][3] if listed else None
            if not listed:
                detail = f"not in {label}" + _listed(mine, "our ledger")
                writer.add(outcome=Outcome.MISSING_AT_PROVIDER, order_no=mine[0][2], detail=detail, **common)
            elif not mine:
                unknown.append((key, theirs, line_no, listed))
            else:
                notes = _listed(listed, label) + _listed(mine, "our ledger")
                if kind == PAYMENT and listed[0][2] and listed[0][2] not in {row[3] for row in mine}:
                    notes += f"; transaction id {listed[0][2]} there, {mine[0][3]} here"
                outcome = Outcome.MATCHED if ours == theirs else Outcome.AMOUNT_DIFFERS
                if outcome == Outcome.AMOUNT_DIFFERS:
                    notes = f"{_yuan(ours)} here, {_yuan(theirs)} there" + notes
                writer.add(
                    outcome=outcome,
                    order_no=mine[0][2],
                    their_amount_fen=theirs,
                    statement_line_no=line_no,
                    detail=notes.removeprefix("; ")[:255],
                    **common,
                )
            if len(unknown) >= BATCH:
                _missing_here(writer, provider=provider, kind=kind, rows=unknown)
                unknown = []
        _missing_here(writer, provider=provider, kind=kind, rows=unknown)


def _missing_here(writer: ItemWriter, *, provider: str, kind: str, rows: list[tuple]) -> None:
    """Statement rows with nothing in our ledger that day; what we know of each, found a batch at a time."""
    if not rows:
        return
    keys = [row[0] for row in rows]
    if kind == PAYMENT:
        found = {
            key: (order_no, status)
            for key, order_no, status in Payment.objects.filter(provider=provider, out_trade_no__in=keys).values_list(
                "out_trade_no", "order__order_no", "status"
            )
        }
        booked = dict(
            LedgerEntry.objects.filter(
                provider=provider, kind=LedgerKind.PAYMENT, payment__out_trade_no__in=keys
            ).values_list("payment__out_trade_no", "created_at")
        )
    else:
        found = {
            key: (order_no, status)
            for key, order_no, status in Refund.objects.filter(provider=provider, out_refund_no__in=keys).values_list(
                "out_refund_no", "order__order_no", "status"
            )
        }
        prefix = f"{provider}:refund:"
        booked = {
            key.removeprefix(prefix): at
            for key, at in LedgerEntry.objects.filter(idempotency_key__in=[prefix + k for k in keys]).values_list(
                "idempotency_key", "created_at"
            )
        }
    what = "payment" if kind == PAYMENT else "refund"
    for key, theirs, line_no, listed in rows:
        order_no, status = found.get(key, ("", ""))
        if not order_no:
            detail = f"no {what} {key} here"
        elif key in booked:
            detail = f"in our ledger on {timezone.localtime(booked[key]).date()}, not on this day"
        else:
            detail = f"our {what} is {status}, with no ledger entry"
        writer.add(
            outcome=Outcome.MISSING_HERE,
            source=provider,
            kind=kind,
            reference=key,
            order_no=order_no,
            their_amount_fen=theirs,
            statement_line_no=line_no,
            detail=(detail + _listed(listed, "the statement"))[:255],
        )


# --- the SMP ---------------------------------------------------------------------------


def _money_by_order(orders: QuerySet[Order], start: datetime, end: datetime) -> QuerySet:
    """One dict per order: status, method, money in by way, net, payments before and on the day, entitlement."""
    payment = Q(ledger__kind=LedgerKind.PAYMENT)
    return orders.values("order_no", "status", "payment_method", "entitlement__smp_subscription_id").annotate(
        qr_paid=Sum(
            "ledger__amount_fen", filter=payment & Q(ledger__provider__in=[Provider.WECHATPAY, Provider.ALIPAY])
        ),
        cash_paid=Sum("ledger__amount_fen", filter=payment & Q(ledger__provider=Provider.CRM)),
        smp_charged=Sum("ledger__amount_fen", filter=payment & Q(ledger__provider=Provider.SMP)),
        net=Sum("ledger__amount_fen"),
        # Counts rather than the first payment's time: no datetime to convert per order.
        paid_before=Count("ledger", filter=payment & Q(ledger__created_at__lt=start)),
        paid_on_day=Count("ledger", filter=payment & Q(ledger__created_at__gte=start, ledger__created_at__lt=end)),
    )


def _our_orders(start: datetime, end: datetime) -> Iterator[tuple[str, dict]]:
    day_orders = LedgerEntry.objects.filter(created_at__gte=start, created_at__lt=end).values("order_id")
    rows = _money_by_order(Order.objects.filter(pk__in=day_orders), start, end).order_by(ordered("order_no"))
    return ((row["order_no"], row) for row in rows.iterator(chunk_size=CHUNK))


def _smp_rows(statement: Statement | None) -> Iterator[tuple]:
    """(order_no, amount, charge, subscription_id, line_no) of the SMP's list."""
    if statement is None:
        return iter(())
    rows = (
        StatementLine.objects.filter(statement=statement, kind=SUBSCRIPTION)
        .order_by(ordered("match_key"), "line_no")
        .values_list("match_key", "amount_fen", "charge", "transaction_id", "line_no")
    )
    return rows.iterator(chunk_size=CHUNK)


def compare_smp(writer: ItemWriter, *, statement: Statement | None, start: datetime, end: datetime) -> None:
    """Our orders of the day against the SMP's provisioning list of the day."""
    label = f"the SMP's list of {timezone.localtime(start).date()}"
    unknown: list[tuple] = []
    for key, mine, listed in merge_join(_our_orders(start, end), _smp_rows(statement)):
        if listed and mine:
            _subscription(writer, key, mine[0][1], listed, label)
        elif listed:
            # Subscribed that day, no money moved here that day: what the order holds is looked up.
            unknown.append((key, listed))
            if len(unknown) >= BATCH:
                _subscriptions_of_other_days(writer, unknown, label, start, end)
                unknown = []
        else:
            _not_subscribed(writer, key, mine[0][1], label)
    _subscriptions_of_other_days(writer, unknown, label, start, end)


def _subscriptions_of_other_days(
    writer: ItemWriter, rows: list[tuple], label: str, start: datetime, end: datetime
) -> None:
    if not rows:
        return
    orders = Order.objects.filter(order_no__in=[key for key, _ in rows])
    orders = {row["order_no"]: row for row in _money_by_order(orders, start, end)}
    for key, listed in rows:
        _subscription(writer, key, orders.get(key), listed, label)


def _subscription(writer: ItemWriter, key: str, order: dict | None, listed: list[tuple], label: str) -> None:
    theirs = sum(row[1] for row in listed)
    charge = listed[0][2]
    common = {
        "source": StatementSource.SMP,
        "kind": SUBSCRIPTION,
        "order_no": key,
        "reference": listed[0][3],
        "their_amount_fen": theirs,
        "statement_line_no": listed[0][4],
    }
    notes = ""
    if len(listed) > 1:
        charges = sorted({row[2] for row in listed})
        notes = _listed(listed, label) + (f"; charges {', '.join(charges)}" if len(charges) > 1 else "")
    if order is None:
        writer.add(outcome=Outcome.PROVISIONED_NOT_PAID, detail=f"no order {key} here{notes}"[:255], **common)
        return
    if charge == SmpCharge.PHONE_BILL:
        ours, way = order["smp_charged"] or 0, "phone-bill charge"
    elif charge == SmpCharge.MARKETING_ACCOUNT:
        ours, way = order["cash_paid"] or 0, "cash payment"
    else:
        ours, way = (order["qr_paid"] or 0), "WeChat Pay or Alipay payment"
    if not ours:
        detail = f"subscribed ({charge}, order {order['status']}), with no {way} in our ledger{notes}"
        writer.add(outcome=Outcome.PROVISIONED_NOT_PAID, our_amount_fen=None, detail=detail[:255], **common)
        return
    # What the SMP should have charged: our phone-bill charge or cash, nothing for a zero-price package.
    expected = 0 if charge == SmpCharge.PREPAID else ours
    if expected != theirs:
        detail = f"the SMP charged {_yuan(theirs)} ({charge}), {_yuan(expected)} expected{notes}"
        writer.add(outcome=Outcome.AMOUNT_DIFFERS, our_amount_fen=expected, detail=detail[:255], **common)
        return
    writer.add(outcome=Outcome.MATCHED, our_amount_fen=expected, detail=notes.removeprefix("; ")[:255], **common)


def _not_subscribed(writer: ItemWriter, key: str, order: dict, label: str) -> None:
    """An order with money moved on the day and no subscription in the day's list."""
    net = order["net"] or 0
    if not order["paid_on_day"] or order["paid_before"] or net <= 0 or order["status"] == OrderStatus.REFUNDED:
        return  # first paid on another day (that day's list has it), or its money went back
    detail = f"{_yuan(net)} held ({order['payment_method']}), order {order['status']}; not in {label}"
    if order["entitlement__smp_subscription_id"]:
        detail += f"; our entitlement names SMP subscription {order['entitlement__smp_subscription_id']}"
    writer.add(
        outcome=Outcome.PAID_NOT_PROVISIONED,
        source=StatementSource.SMP,
        kind=SUBSCRIPTION,
        order_no=key,
        reference=key,
        our_amount_fen=net,
        detail=detail[:255],
    )
