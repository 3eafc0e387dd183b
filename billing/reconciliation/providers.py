"""WeChat Pay and Alipay: our ledger of the day against the provider's statement of the day.

Per kind: our ``LedgerEntry`` rows of the day at the provider (payments by
out_trade_no, refunds by out_refund_no) against the statement's lines, a
key's rows paired line by line (by transaction id first). A pair →
``matched`` or ``amount_differs``; a line or ledger row left over beside a
pair → ``duplicate``; ours alone → ``missing_at_provider``, unless the
statement of the day before or after lists it (paired across midnight: the
amounts are compared here); theirs alone → ``missing_here``, unless our
ledger has it on the day before or after (paired, the same way). Paired
across midnight with what the other day pairs already, it is a
``duplicate``: booked, or listed, on both days. A line unknown here is
traced to its order by its out_trade_no, and a refund we never recorded says
whether the order's entitlement is still active.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta

from django.db.models import Case, Expression, F, QuerySet, When
from django.db.models.functions import Coalesce, Substr
from django.utils import timezone

from billing.models import LedgerEntry, LedgerKind, Payment, PaymentStatus, Refund, StatementLine
from billing.models.reconciliation import Outcome, Statement, StatementLineKind
from billing.reconciliation import compare
from billing.reconciliation.compare import Batched, ItemWriter, adjacent, local_day, merge_join, neighbours, ordered
from billing.reconciliation.details import note
from orders.models import Entitlement, Order

PAYMENT = StatementLineKind.PAYMENT.value
REFUND = StatementLineKind.REFUND.value
REVERSAL = StatementLineKind.REVERSAL.value

# A row of each side: ours (key, amount, order_no, provider_ref),
# theirs (key, amount, transaction id, line, out_trade_no).
Ours = tuple[str, int, str, str]
ONE_DAY = timedelta(days=1)
Theirs = tuple[str, int, str, int, str]


def _ledger_rows(provider: str, kind: str, start: datetime, end: datetime):  # type: ignore[no-untyped-def]
    if kind == REVERSAL:
        # A reverse after the customer paid is the provider's own refund: our ledger never held that money.
        return iter(())
    rows = (
        _ledger(provider, kind)
        .filter(created_at__gte=start, created_at__lt=end)
        .order_by(ordered("key"), "pk")
        .values_list("key", "amount_fen", "order__order_no", "provider_ref")
    )
    return rows.iterator(chunk_size=compare.CHUNK)


def _ledger(provider: str, kind: str) -> QuerySet[LedgerEntry]:
    """Our ledger entries of ``kind`` at ``provider``, each with the ``key`` its statement line has."""
    entries = LedgerEntry.objects.filter(provider=provider)
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
    return entries.annotate(key=key)


def _statement_rows(statement: Statement | None, kind: str):  # type: ignore[no-untyped-def]
    if statement is None:
        return iter(())
    rows = (
        StatementLine.objects.filter(statement=statement, kind=kind)
        .order_by(ordered("match_key"), "line_no")
        .values_list("match_key", "amount_fen", "transaction_id", "line_no", "out_trade_no")
    )
    return rows.iterator(chunk_size=compare.CHUNK)


def _pairs(mine: list[Ours], listed: list[Theirs]) -> list[tuple[Ours | None, Theirs | None]]:
    """A key's ledger rows and statement lines, paired one to one: by transaction id first, then in order."""
    left = list(listed)
    pairs: list[tuple[Ours | None, Theirs | None]] = []
    unpaired = []
    for row in mine:
        same = next((line for line in left if line[2] and line[2] == row[3]), None)
        if same is None:
            unpaired.append(row)
        else:
            left.remove(same)
            pairs.append((row, same))
    for row in unpaired:
        pairs.append((row, left.pop(0) if left else None))
    pairs.extend((None, line) for line in left)
    return pairs


class ProviderComparison:
    """One provider, one day: ``run`` writes the items of both kinds."""

    def __init__(
        self,
        writer: ItemWriter,
        *,
        provider: str,
        statement: Statement | None,
        day: date,
        start: datetime,
        end: datetime,
    ) -> None:
        self.writer, self.provider, self.statement = writer, provider, statement
        self.day, self.start, self.end = day, start, end
        self.neighbours = neighbours(provider, day)

    def run(self) -> None:
        for kind in (PAYMENT, REFUND, REVERSAL):
            ours_only = Batched(lambda rows, kind=kind: self._ours_only(kind, rows))
            theirs_only = Batched(lambda rows, kind=kind: self._theirs_only(kind, rows))
            for key, mine, listed in merge_join(
                _ledger_rows(self.provider, kind, self.start, self.end), _statement_rows(self.statement, kind)
            ):
                if mine and listed:
                    self._both(kind, key, mine, listed)
                elif mine:
                    ours_only.add((key, mine))
                else:
                    theirs_only.add((key, listed))
            ours_only.flush()
            theirs_only.flush()

    def _add(self, **fields) -> None:  # type: ignore[no-untyped-def]
        self.writer.add(source=self.provider, **fields)

    def _both(self, kind: str, key: str, mine: list[Ours], listed: list[Theirs]) -> None:
        first_line = next((line for row, line in _pairs(mine, listed) if row and line), listed[0])[3]
        for row, line in _pairs(mine, listed):
            if row is not None and line is not None:
                notes = []
                if kind == PAYMENT and line[2] and line[2] != row[3]:
                    notes.append(note("transaction_differs", theirs=line[2], ours=row[3]))
                outcome = Outcome.MATCHED if row[1] == line[1] else Outcome.AMOUNT_DIFFERS
                if outcome == Outcome.AMOUNT_DIFFERS:
                    notes.insert(0, note("amounts", ours_fen=row[1], theirs_fen=line[1]))
                self._add(
                    outcome=outcome, kind=kind, order_no=row[2], reference=key, our_amount_fen=row[1],
                    their_amount_fen=line[1], statement_line_no=line[3], explanation=notes,
                )  # fmt: skip
            elif line is not None:
                self._listed_again(kind, key, mine[0][2], line, first_line)
            elif row is not None:
                self._add(
                    outcome=Outcome.DUPLICATE, kind=kind, order_no=row[2], reference=key, our_amount_fen=row[1],
                    explanation=[note("booked_again", reference=row[3])],
                )  # fmt: skip

    def _listed_again(self, kind: str, key: str, order_no: str, line: Theirs, first_line: int) -> None:
        self._add(
            outcome=Outcome.DUPLICATE, kind=kind, order_no=order_no, reference=key, their_amount_fen=line[1],
            statement_line_no=line[3],
            explanation=[note("listed_again", source=self.provider, line=line[3], first_line=first_line)],
        )  # fmt: skip

    def _ours_only(self, kind: str, rows: list[tuple[str, list[Ours]]]) -> None:
        """Ledger rows of the day that the day's statement does not list: listed the day before or after?"""
        elsewhere: dict[str, tuple[int, date, int]] = {}
        if self.neighbours:
            lines = (
                StatementLine.objects.filter(
                    statement_id__in=self.neighbours, kind=kind, match_key__in=[key for key, _ in rows]
                )
                .order_by("line_no")
                .values_list("match_key", "line_no", "statement_id", "amount_fen")
            )
            for key, line_no, statement_id, amount in lines:
                elsewhere.setdefault(key, (line_no, self.neighbours[statement_id], amount))
        booked_there = self._booked_next_door(kind, list(elsewhere))
        for key, mine in rows:
            first = mine[0]
            if key in elsewhere and (key, elsewhere[key][1]) in booked_there:
                # That line is our row's of its own day: this one is booked a second time.
                line_no, other_day, _amount = elsewhere[key]
                self._add(
                    outcome=Outcome.DUPLICATE, kind=kind, order_no=first[2], reference=key, our_amount_fen=first[1],
                    explanation=[note("booked_other_day_too", other_day=other_day.isoformat(), line=line_no)],
                )  # fmt: skip
            elif key in elsewhere:
                # Paired across midnight, and compared here too: the line's own day may have been compared before
                # this row was booked (it said missing_here then, and this pair closes that).
                line_no, other_day, amount = elsewhere[key]
                outcome = Outcome.MATCHED if first[1] == amount else Outcome.AMOUNT_DIFFERS
                notes = [note("listed_other_day", source=self.provider, other_day=other_day.isoformat(), line=line_no)]
                if outcome == Outcome.AMOUNT_DIFFERS:
                    notes.insert(0, note("amounts", ours_fen=first[1], theirs_fen=amount))
                self._add(
                    outcome=outcome, kind=kind, order_no=first[2], reference=key, our_amount_fen=first[1],
                    their_amount_fen=amount, explanation=notes, paired_day=other_day,
                )  # fmt: skip
            else:
                self._add(
                    outcome=Outcome.MISSING_AT_PROVIDER, kind=kind, order_no=first[2], reference=key,
                    our_amount_fen=first[1],
                    explanation=[note("not_listed", source=self.provider, day=self.day.isoformat())],
                )  # fmt: skip
            for row in mine[1:]:
                self._add(
                    outcome=Outcome.DUPLICATE, kind=kind, order_no=row[2], reference=key, our_amount_fen=row[1],
                    explanation=[note("booked_again", reference=row[3])],
                )  # fmt: skip

    def _theirs_only(self, kind: str, rows: list[tuple[str, list[Theirs]]]) -> None:
        """Statement lines with nothing in our ledger that day: what we know of each, a batch at a time."""
        keys = [key for key, _ in rows]
        known, booked = self._known(kind, keys)
        traced = self._trace([listed[0] for key, listed in rows if key not in known and key not in booked], kind)
        reversed_there = self._reversals_listed([key for key, _ in rows]) if kind == PAYMENT else set()
        listed_there = self._listed_next_door(kind, list(booked))
        what = REFUND if kind == REFUND else PAYMENT  # a reversal is known here by its payment
        for key, listed in rows:
            line = listed[0]
            order_no, status = known.get(key, ("", ""))
            common = {"kind": kind, "reference": key, "their_amount_fen": line[1], "statement_line_no": line[3]}
            if status == PaymentStatus.REVERSED and (kind == REVERSAL or key in reversed_there):
                # Paid a moment before our reverse, which gave the money back: it never was ours to book.
                explained = "given_back_by_reverse" if kind == REVERSAL else "paid_then_reversed"
                self._add(outcome=Outcome.MATCHED, order_no=order_no, explanation=[note(explained)], **common)
            elif key in booked:
                at, amount, booked_order = booked[key]
                other_day = local_day(at)
                if (key, other_day) in listed_there:
                    # Our row's own day lists it and pairs them: the provider lists the trade a second time here.
                    notes = [note("listed_other_day_too", source=self.provider, other_day=other_day.isoformat(),
                                  line=listed_there[key, other_day])]  # fmt: skip
                    self._add(outcome=Outcome.DUPLICATE, order_no=booked_order, explanation=notes, **common)
                elif adjacent(other_day, self.day):
                    outcome = Outcome.MATCHED if amount == line[1] else Outcome.AMOUNT_DIFFERS
                    notes = [note("booked_other_day", other_day=other_day.isoformat())]
                    if outcome == Outcome.AMOUNT_DIFFERS:
                        notes.insert(0, note("amounts", ours_fen=amount, theirs_fen=line[1]))
                    self._add(
                        outcome=outcome, order_no=booked_order, our_amount_fen=amount, explanation=notes,
                        paired_day=other_day, **common,
                    )  # fmt: skip
                else:
                    notes = [note("booked_far_day", other_day=other_day.isoformat())]
                    self._add(outcome=Outcome.MISSING_HERE, order_no=booked_order, explanation=notes, **common)
            elif order_no:
                notes = [note("no_ledger_entry", what=what, status=status)]
                self._add(outcome=Outcome.MISSING_HERE, order_no=order_no, explanation=notes, **common)
            else:
                order_no, notes = traced.get(key, ("", [note("unknown", what=what, key=key)]))
                self._add(outcome=Outcome.MISSING_HERE, order_no=order_no, explanation=notes, **common)
            for extra in listed[1:]:
                self._listed_again(kind, key, order_no, extra, line[3])

    def _booked_next_door(self, kind: str, keys: list[str]) -> set[tuple[str, date]]:
        """(key, day) of our ledger rows of these keys on the day before and the day after."""
        if not keys:
            return set()
        entries = (
            _ledger(self.provider, kind)
            .filter(key__in=keys, created_at__gte=self.start - ONE_DAY, created_at__lt=self.end + ONE_DAY)
            .exclude(created_at__gte=self.start, created_at__lt=self.end)
            .values_list("key", "created_at")
        )
        return {(key, local_day(at)) for key, at in entries}

    def _listed_next_door(self, kind: str, keys: list[str]) -> dict[tuple[str, date], int]:
        """{(key, day): line} of these keys in the statements of the day before and the day after."""
        if not keys or not self.neighbours:
            return {}
        lines = StatementLine.objects.filter(statement_id__in=self.neighbours, kind=kind, match_key__in=keys)
        listed: dict[tuple[str, date], int] = {}
        for key, statement_id, line_no in lines.order_by("line_no").values_list("match_key", "statement_id", "line_no"):
            listed.setdefault((key, self.neighbours[statement_id]), line_no)
        return listed

    def _reversals_listed(self, keys: list[str]) -> set[str]:
        """The trades among ``keys`` that this day's statement, or the day's before or after, lists reversed."""
        statements = [*self.neighbours, *([self.statement.pk] if self.statement else [])]
        return set(
            StatementLine.objects.filter(statement_id__in=statements, kind=REVERSAL, match_key__in=keys).values_list(
                "match_key", flat=True
            )
        )

    def _known(self, kind: str, keys: list[str]) -> tuple[dict[str, tuple[str, str]], dict[str, tuple]]:
        """What we hold of these keys: {key: (order_no, status)} of the payment or refund, and
        {key: (ledger time, amount, order_no)} of its ledger entry on any day (none for a reversal)."""
        if kind == REVERSAL:
            payments = Payment.objects.filter(provider=self.provider, out_trade_no__in=keys)
            return {key: (order_no, status) for key, order_no, status in payments.values_list(
                "out_trade_no", "order__order_no", "status")}, {}  # fmt: skip
        if kind == PAYMENT:
            known = {
                key: (order_no, status)
                for key, order_no, status in Payment.objects.filter(
                    provider=self.provider, out_trade_no__in=keys
                ).values_list("out_trade_no", "order__order_no", "status")
            }
            entries = LedgerEntry.objects.filter(
                provider=self.provider, kind=LedgerKind.PAYMENT, payment__out_trade_no__in=keys
            ).values_list("payment__out_trade_no", "created_at", "amount_fen", "order__order_no")
            booked: dict[str, tuple] = {}
            for key, *rest in entries.order_by("created_at", "pk"):
                booked.setdefault(key, tuple(rest))
            return known, booked
        known = {
            key: (order_no, status)
            for key, order_no, status in Refund.objects.filter(
                provider=self.provider, out_refund_no__in=keys
            ).values_list("out_refund_no", "order__order_no", "status")
        }
        prefix = f"{self.provider}:refund:"
        entries = LedgerEntry.objects.filter(idempotency_key__in=[prefix + key for key in keys]).values_list(
            "idempotency_key", "created_at", "amount_fen", "order__order_no"
        )
        return known, {key.removeprefix(prefix): tuple(rest) for key, *rest in entries}

    def _trace(self, lines: list[Theirs], kind: str) -> dict[str, tuple[str, list]]:
        """Lines unknown here, traced to an order by their out_trade_no: {key: (order_no, explanation)}.

        A refund we never recorded whose order still has a live entitlement says so:
        the customer has the money back and still watches.
        """
        if not lines:
            return {}
        trade_nos = {line[4] for line in lines}
        orders = dict(
            Payment.objects.filter(provider=self.provider, out_trade_no__in=trade_nos).values_list(
                "out_trade_no", "order__order_no"
            )
        )
        # Our out_trade_no is the order number (docs/interfaces.md §2).
        orders.update(
            (order_no, order_no)
            for order_no in Order.objects.filter(order_no__in=trade_nos - orders.keys()).values_list(
                "order_no", flat=True
            )
        )
        live: dict[str, tuple] = defaultdict(tuple)
        if kind == REFUND and orders:
            entitlements = Entitlement.objects.filter(
                order__order_no__in=set(orders.values()), revoked_at__isnull=True, ends_at__gt=timezone.now()
            ).values_list("order__order_no", "ends_at", "smp_subscription_id")
            live.update((order_no, (ends_at, subscription)) for order_no, ends_at, subscription in entitlements)
        traced = {}
        for key, _amount, _txn, _line, trade_no in lines:
            order_no = orders.get(trade_no)
            if not order_no:
                continue
            if kind != REFUND:
                traced[key] = (order_no, [note("unknown_payment_of_order", key=key, order=order_no)])
                continue
            notes = [note("unknown_refund_of_order", key=key, out_trade_no=trade_no, order=order_no)]
            if live[order_no]:
                ends_at, subscription = live[order_no]
                ends = timezone.localtime(ends_at).strftime("%Y-%m-%d %H:%M")
                notes.append(note("entitlement_active", ends=ends, subscription=subscription))
            traced[key] = (order_no, notes)
        return traced


def compare_provider(
    writer: ItemWriter, *, provider: str, statement: Statement | None, day: date, start: datetime, end: datetime
) -> None:
    """Our ledger at ``provider`` against its statement (None: the provider has no statement for the day)."""
    ProviderComparison(writer, provider=provider, statement=statement, day=day, start=start, end=end).run()
