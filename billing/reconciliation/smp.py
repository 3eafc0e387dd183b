"""The SMP: our orders of the day against the SMP's list of the subscriptions it made and ended that day.

Subscriptions (``subscribed`` lines), by order number, line by line. The
first line of an order is compared with the order: no money here for its
charge (WeChat Pay/Alipay for ``prepaid``, cash for ``marketing_account``,
an SMP charge for ``phone_bill``) → ``provisioned_not_paid``; the SMP
charged another amount (anything for a zero-price package) →
``amount_differs``; another account or product than the order's →
``provisioned_differs``. Every further line of the order, the same day or
after a line of an earlier day, is a ``duplicate`` naming its subscription
id. An order first paid that day, still holding money, that the SMP did not
subscribe that day (nor the day before or after) → ``paid_not_provisioned``.

Unsubscriptions (``unsubscribed`` lines, with the phone-bill money the SMP
gave back). Our side is every order whose money went back that day (a
refund, a phone-bill reversal, cash paid back by the store) and which may
hold nothing at the SMP any more: its entitlement revoked, or nothing left
paid. The SMP must have ended its subscription, that day or another:
otherwise ``revoked_not_unsubscribed`` (an order the SMP never had is left
alone). A line of the SMP is compared with the order: an entitlement still
running here → ``unsubscribed_not_revoked``; a reversal other than our
ledger's → ``amount_differs``. The end of a continuous subscription's last
period is an unsubscription whose order's entitlement has run out: it
matches.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any

from django.db.models import Count, Max, Min, Q, QuerySet, Sum
from django.utils import timezone

from adapters.smp import SmpCharge
from billing.models import LedgerEntry, LedgerKind, StatementLine
from billing.models.payments import Provider
from billing.models.reconciliation import Outcome, Statement, StatementLineKind, StatementSource
from billing.reconciliation import compare
from billing.reconciliation.compare import Batched, ItemWriter, local_day, merge_join, neighbours, ordered
from billing.reconciliation.details import note
from orders.constants import OrderStatus
from orders.models import Order

SMP = StatementSource.SMP.value
SUBSCRIPTION = StatementLineKind.SUBSCRIPTION.value
UNSUBSCRIPTION = StatementLineKind.UNSUBSCRIPTION.value
MONEY_BACK = (LedgerKind.REFUND, LedgerKind.REVERSAL, LedgerKind.CASH_PAYBACK, LedgerKind.HAND_PAYBACK)
# How much earlier than our entitlement's end the SMP may end a subscription (clocks differ by a little).
END_GRACE = timedelta(minutes=5)

# A line of the SMP: (order_no, amount, charge, subscription id, line, tv_account, product code, at).
Line = tuple[str, int, str, str, int, str, str, datetime]


def _lines(statement: Statement | None, kind: str) -> Iterator[Line]:
    if statement is None:
        return iter(())
    rows = (
        StatementLine.objects.filter(statement=statement, kind=kind)
        .order_by(ordered("match_key"), "line_no")
        .values_list(
            "match_key",
            "amount_fen",
            "charge",
            "transaction_id",
            "line_no",
            "tv_account",
            "product_code",
            "occurred_at",
        )
    )
    return rows.iterator(chunk_size=compare.CHUNK)


def _orders_with_money(orders: QuerySet[Order], start: datetime, end: datetime) -> QuerySet:
    """One dict per order: what it is, money in by way, net, payments before and on the day."""
    payment = Q(ledger__kind=LedgerKind.PAYMENT)
    return orders.values(
        "order_no", "status", "payment_method", "tv_account", "product__smp_product_code",
        "entitlement__smp_subscription_id",
    ).annotate(
        qr_paid=Sum(
            "ledger__amount_fen", filter=payment & Q(ledger__provider__in=[Provider.WECHATPAY, Provider.ALIPAY])
        ),
        cash_paid=Sum("ledger__amount_fen", filter=payment & Q(ledger__provider=Provider.CRM)),
        smp_charged=Sum("ledger__amount_fen", filter=payment & Q(ledger__provider=Provider.SMP)),
        net=Sum("ledger__amount_fen"),
        # Counts rather than the first payment's time: no datetime to convert per order.
        paid_before=Count("ledger", filter=payment & Q(ledger__created_at__lt=start)),
        paid_on_day=Count("ledger", filter=payment & Q(ledger__created_at__gte=start, ledger__created_at__lt=end)),
    )  # fmt: skip


def _orders_with_returns(orders: QuerySet[Order], start: datetime, end: datetime) -> QuerySet:
    """One dict per order: its entitlement, net, what the SMP reversed, what went back on the day and when."""
    back = Q(ledger__kind__in=MONEY_BACK)
    on_day = Q(ledger__created_at__gte=start, ledger__created_at__lt=end)
    return orders.values(
        "order_no", "status", "tv_account", "entitlement__smp_subscription_id", "entitlement__revoked_at",
        "entitlement__ends_at",
    ).annotate(
        net=Sum("ledger__amount_fen"),
        reversed=Sum("ledger__amount_fen", filter=Q(ledger__kind=LedgerKind.REVERSAL)),
        refunded_on_day=Count("ledger", filter=on_day & Q(ledger__kind=LedgerKind.REFUND)),
        reversed_on_day=Count("ledger", filter=on_day & Q(ledger__kind=LedgerKind.REVERSAL)),
        paid_back_on_day=Count("ledger", filter=on_day & Q(ledger__kind=LedgerKind.CASH_PAYBACK)),
        by_hand_on_day=Count("ledger", filter=on_day & Q(ledger__kind=LedgerKind.HAND_PAYBACK)),
        returned_at=Max("ledger__created_at", filter=back),
    )  # fmt: skip


def _keyed(rows: QuerySet) -> Iterator[tuple[str, dict]]:
    return ((row["order_no"], row) for row in rows.order_by(ordered("order_no")).iterator(chunk_size=compare.CHUNK))


def _must_be_ended(order: dict) -> bool:
    """May the SMP still hold a subscription of this order? Not once its entitlement is revoked or its money is back."""
    return order["entitlement__revoked_at"] is not None or (order["net"] or 0) <= 0


class SmpComparison:
    def __init__(
        self, writer: ItemWriter, *, statement: Statement | None, day: date, start: datetime, end: datetime
    ) -> None:
        self.writer, self.statement = writer, statement
        self.day, self.start, self.end = day, start, end
        self.neighbours = neighbours(SMP, day)

    def run(self) -> None:
        self.subscriptions()
        self.unsubscriptions()

    def _add(self, **fields: Any) -> None:
        self.writer.add(source=SMP, **fields)

    # --- subscriptions ------------------------------------------------------------------

    def subscriptions(self) -> None:
        day_orders = LedgerEntry.objects.filter(created_at__gte=self.start, created_at__lt=self.end).values("order_id")
        ours = _keyed(_orders_with_money(Order.objects.filter(pk__in=day_orders), self.start, self.end))
        unknown = Batched(self._subscribed_elsewhere)
        unlisted = Batched(self._not_subscribed)
        for key, mine, listed in merge_join(ours, _lines(self.statement, SUBSCRIPTION)):
            if listed and mine:
                self._subscribed(key, mine[0][1], listed)
            elif listed:
                unknown.add((key, listed))  # no money moved here that day: what the order holds is looked up
            elif self._should_be_listed(mine[0][1]):
                unlisted.add((key, mine[0][1]))
        unknown.flush()
        unlisted.flush()

    def _subscribed(self, key: str, order: dict | None, listed: list[Line], *, paid_day: date | None = None) -> None:
        first, extras = listed[0], listed[1:]
        common = {"kind": SUBSCRIPTION, "order_no": key, "reference": first[3], "statement_line_no": first[4]}
        for extra in extras:
            self._add(
                outcome=Outcome.DUPLICATE, kind=SUBSCRIPTION, order_no=key, reference=extra[3],
                their_amount_fen=extra[1], statement_line_no=extra[4],
                explanation=[note("second_subscription", subscription=extra[3], first=first[3], first_line=first[4])],
            )  # fmt: skip
        if order is None:
            notes = [note("no_order", order=key)]
            self._add(outcome=Outcome.PROVISIONED_NOT_PAID, their_amount_fen=first[1], explanation=notes, **common)
            return
        charge = first[2]
        if charge == SmpCharge.PHONE_BILL:
            ours, way = order["smp_charged"] or 0, "phone_bill"
        elif charge == SmpCharge.MARKETING_ACCOUNT:
            ours, way = order["cash_paid"] or 0, "cash"
        else:
            ours, way = order["qr_paid"] or 0, "qr"
        paired = [note("paid_other_day", other_day=paid_day.isoformat())] if paid_day else []
        money_right = True
        if not ours:
            money_right = False
            notes = [note("subscribed_unpaid", charge=charge, status=order["status"], way=way)]
            self._add(outcome=Outcome.PROVISIONED_NOT_PAID, their_amount_fen=first[1], explanation=notes, **common)
        else:
            # What the SMP should have charged: our phone-bill charge or cash, nothing for a zero-price package.
            expected = 0 if charge == SmpCharge.PREPAID else ours
            if expected != first[1]:
                money_right = False
                notes = [note("smp_charged", theirs_fen=first[1], charge=charge, expected_fen=expected), *paired]
                self._add(
                    outcome=Outcome.AMOUNT_DIFFERS, our_amount_fen=ours, their_amount_fen=first[1],
                    explanation=notes, paired_day=paid_day, **common,
                )  # fmt: skip
        ordered_as = (order["tv_account"], order["product__smp_product_code"])
        if (first[5], first[6]) != ordered_as:
            notes = [
                note("provisioned_on", their_account=first[5], their_product=first[6], our_account=ordered_as[0],
                     our_product=ordered_as[1]),
            ]  # fmt: skip
            self._add(
                outcome=Outcome.PROVISIONED_DIFFERS, our_amount_fen=ours or None, their_amount_fen=first[1],
                explanation=notes, paired_day=paid_day if money_right else None, **common,
            )  # fmt: skip
        elif money_right:
            self._add(
                outcome=Outcome.MATCHED, our_amount_fen=ours, their_amount_fen=first[1], explanation=paired,
                paired_day=paid_day, **common,
            )  # fmt: skip

    def _subscribed_elsewhere(self, rows: list[tuple[str, list[Line]]]) -> None:
        """Subscriptions of the day whose order moved no money that day: paid another day, subscribed before?"""
        keys = [key for key, _ in rows]
        orders = Order.objects.filter(order_no__in=keys)
        found = {row["order_no"]: row for row in _orders_with_money(orders, self.start, self.end)}
        first_paid = dict(
            LedgerEntry.objects.filter(order__order_no__in=keys, kind=LedgerKind.PAYMENT)
            .values("order__order_no")
            .annotate(at=Min("created_at"))
            .values_list("order__order_no", "at")
        )
        earlier: dict[str, tuple[str, date]] = {}
        lines = (
            StatementLine.objects.filter(
                statement__source=SMP, statement__day__lt=self.day, kind=SUBSCRIPTION, out_trade_no__in=keys
            )
            .order_by("statement__day", "line_no")
            .values_list("out_trade_no", "transaction_id", "statement__day")
        )
        for key, subscription, day in lines:
            earlier.setdefault(key, (subscription, day))
        for key, listed in rows:
            if key in earlier:
                first, other_day = earlier[key]
                for line in listed:
                    self._add(
                        outcome=Outcome.DUPLICATE, kind=SUBSCRIPTION, order_no=key, reference=line[3],
                        their_amount_fen=line[1], statement_line_no=line[4],
                        explanation=[note("subscribed_before", subscription=line[3], other_day=other_day.isoformat(),
                                          first=first)],
                    )  # fmt: skip
                continue
            paid_at = first_paid.get(key)
            paid_day = local_day(paid_at) if paid_at else None
            self._subscribed(key, found.get(key), listed, paid_day=paid_day if paid_day != self.day else None)

    def _should_be_listed(self, order: dict) -> bool:
        """First paid on the day, still holding money, not refunded: the day's list should subscribe it."""
        net = order["net"] or 0
        return bool(
            order["paid_on_day"] and not order["paid_before"] and net > 0 and order["status"] != OrderStatus.REFUNDED
        )

    def _not_subscribed(self, rows: list[tuple[str, dict]]) -> None:
        elsewhere = self._listed_nearby(SUBSCRIPTION, [key for key, _ in rows])
        for key, order in rows:
            net = order["net"] or 0
            if key in elsewhere:
                # Subscribed across midnight: the line's own day compares it.
                subscription, line_no, other_day = elsewhere[key]
                self._add(
                    outcome=Outcome.MATCHED, kind=SUBSCRIPTION, order_no=key, reference=subscription,
                    our_amount_fen=net,
                    explanation=[note("subscribed_other_day", other_day=other_day.isoformat(), line=line_no)],
                    paired_day=other_day,
                )  # fmt: skip
                continue
            notes = [
                note("not_subscribed", net_fen=net, method=order["payment_method"], status=order["status"],
                     day=self.day.isoformat()),
            ]  # fmt: skip
            if order["entitlement__smp_subscription_id"]:
                notes.append(note("entitlement_names", subscription=order["entitlement__smp_subscription_id"]))
            self._add(
                outcome=Outcome.PAID_NOT_PROVISIONED, kind=SUBSCRIPTION, order_no=key, reference=key,
                our_amount_fen=net, explanation=notes,
            )  # fmt: skip

    def _listed_nearby(self, kind: str, keys: list[str]) -> dict[str, tuple[str, int, date]]:
        """{order_no: (subscription id, line, day)} of the SMP's lines of the day before and after."""
        if not self.neighbours:
            return {}
        found: dict[str, tuple[str, int, date]] = {}
        lines = (
            StatementLine.objects.filter(statement_id__in=self.neighbours, kind=kind, match_key__in=keys)
            .order_by("line_no")
            .values_list("match_key", "transaction_id", "line_no", "statement_id")
        )
        for key, subscription, line_no, statement_id in lines:
            found.setdefault(key, (subscription, line_no, self.neighbours[statement_id]))
        return found

    # --- unsubscriptions and reversals ---------------------------------------------------------

    def unsubscriptions(self) -> None:
        ours = _keyed(_orders_with_returns(Order.objects.filter(pk__in=self._taken_back()), self.start, self.end))
        unknown = Batched(self._unsubscribed_elsewhere)
        unended = Batched(self._not_unsubscribed)
        for key, mine, listed in merge_join(ours, _lines(self.statement, UNSUBSCRIPTION)):
            if listed and mine:
                self._unsubscribed(key, mine[0][1], listed)
            elif listed:
                unknown.add((key, listed))
            elif _must_be_ended(mine[0][1]):
                unended.add((key, mine[0][1]))
        unknown.flush()
        unended.flush()

    def _taken_back(self) -> QuerySet:
        """The ids of the orders that the SMP should end on the day: those whose money went back that day.

        A continuous subscription ended on the day (its ``smp_unsubscribed_at``) adds the order it
        unsubscribed here, and ``_must_be_ended`` answers yes for it: the comparison stays as it is.
        """
        return LedgerEntry.objects.filter(
            created_at__gte=self.start, created_at__lt=self.end, kind__in=MONEY_BACK
        ).values("order_id")

    def _unsubscribed(
        self, key: str, order: dict | None, listed: list[Line], *, paired_day: date | None = None
    ) -> None:
        first = listed[0]
        common = {"kind": UNSUBSCRIPTION, "order_no": key, "reference": first[3], "statement_line_no": first[4]}
        for extra in listed[1:]:
            self._add(
                outcome=Outcome.DUPLICATE, kind=UNSUBSCRIPTION, order_no=key, reference=extra[3],
                their_amount_fen=extra[1], statement_line_no=extra[4],
                explanation=[note("listed_again", source=SMP, line=extra[4], first_line=first[4])],
            )  # fmt: skip
        if order is None:
            notes = [note("no_order", order=key)]
            self._add(outcome=Outcome.MISSING_HERE, their_amount_fen=first[1], explanation=notes, **common)
            return
        reversed_here = order["reversed"] or 0
        ends_at = order["entitlement__ends_at"]
        if order["entitlement__revoked_at"] is None and ends_at is not None and ends_at > first[7] + END_GRACE:
            notes = [
                note("ended_while_entitled", subscription=first[3],
                     at=timezone.localtime(first[7]).strftime("%Y-%m-%d %H:%M"),
                     ends=timezone.localtime(ends_at).strftime("%Y-%m-%d %H:%M")),
            ]  # fmt: skip
            if first[1] != reversed_here:
                notes.append(note("reversed_differs", theirs_fen=-first[1], ours_fen=-reversed_here))
            self._add(
                outcome=Outcome.UNSUBSCRIBED_NOT_REVOKED, our_amount_fen=reversed_here, their_amount_fen=first[1],
                explanation=notes, **common,
            )  # fmt: skip
            return
        paired = [note("returned_other_day", other_day=paired_day.isoformat())] if paired_day else []
        if first[1] != reversed_here:
            notes = [note("reversed_differs", theirs_fen=-first[1], ours_fen=-reversed_here), *paired]
            self._add(
                outcome=Outcome.AMOUNT_DIFFERS, our_amount_fen=reversed_here, their_amount_fen=first[1],
                explanation=notes, paired_day=paired_day, **common,
            )  # fmt: skip
            return
        self._add(
            outcome=Outcome.MATCHED, our_amount_fen=reversed_here, their_amount_fen=first[1], explanation=paired,
            paired_day=paired_day, **common,
        )  # fmt: skip

    def _unsubscribed_elsewhere(self, rows: list[tuple[str, list[Line]]]) -> None:
        """Unsubscriptions of the day whose order's money did not go back that day: when did it, if ever?"""
        orders = Order.objects.filter(order_no__in=[key for key, _ in rows])
        found = {row["order_no"]: row for row in _orders_with_returns(orders, self.start, self.end)}
        for key, listed in rows:
            order = found.get(key)
            returned = local_day(order["returned_at"]) if order and order["returned_at"] else None
            self._unsubscribed(key, order, listed, paired_day=returned if returned != self.day else None)

    def _not_unsubscribed(self, rows: list[tuple[str, dict]]) -> None:
        """Orders taken back here that day that the SMP did not end that day: ended another day, or never had?"""
        keys = [key for key, _ in rows]
        ended: dict[str, tuple[str, int, date]] = {}
        subscribed: dict[str, str] = {}
        lines = (
            StatementLine.objects.filter(
                statement__source=SMP, kind__in=[SUBSCRIPTION, UNSUBSCRIPTION], out_trade_no__in=keys
            )
            .exclude(statement=self.statement)
            .order_by("statement__day", "line_no")
            .values_list("out_trade_no", "kind", "transaction_id", "line_no", "statement__day")
        )
        for key, kind, subscription, line_no, day in lines:
            if kind == UNSUBSCRIPTION:
                ended.setdefault(key, (subscription, line_no, day))
            else:
                subscribed.setdefault(key, subscription)
        if self.statement is not None:
            subscribed.update(
                StatementLine.objects.filter(
                    statement=self.statement, kind=SUBSCRIPTION, match_key__in=keys
                ).values_list("match_key", "transaction_id")
            )
        for key, order in rows:
            if key in ended:
                # Ended at the SMP on another day: that day's line is compared there.
                subscription, line_no, other_day = ended[key]
                self._add(
                    outcome=Outcome.MATCHED, kind=UNSUBSCRIPTION, order_no=key, reference=subscription,
                    our_amount_fen=order["reversed"] or 0,
                    explanation=[note("unsubscribed_other_day", other_day=other_day.isoformat(), line=line_no)],
                    paired_day=other_day,
                )  # fmt: skip
                continue
            subscription = subscribed.get(key) or order["entitlement__smp_subscription_id"]
            if not subscription:
                continue  # the SMP never had it, as far as its lists and our entitlement say: nothing to end
            why = [
                kind
                for kind, count in (
                    (LedgerKind.REFUND, order["refunded_on_day"]),
                    (LedgerKind.REVERSAL, order["reversed_on_day"]),
                    (LedgerKind.CASH_PAYBACK, order["paid_back_on_day"]),
                    (LedgerKind.HAND_PAYBACK, order["by_hand_on_day"]),
                )
                if count
            ]
            self._add(
                outcome=Outcome.REVOKED_NOT_UNSUBSCRIBED, kind=UNSUBSCRIPTION, order_no=key, reference=subscription,
                our_amount_fen=order["reversed"] or 0,
                explanation=[note("still_subscribed", why=[str(kind) for kind in why], subscription=subscription)],
            )  # fmt: skip


def compare_smp(writer: ItemWriter, *, statement: Statement | None, day: date, start: datetime, end: datetime) -> None:
    """Our orders of the day against the SMP's list of the day (None: the SMP has no list for the day)."""
    SmpComparison(writer, statement=statement, day=day, start=start, end=end).run()
