"""The books of a Stack (tests/reliability/stack.py), checked in a process of its own environment, kept for
the stack's life (tests.support.answering):

    python -m tests.reliability.stack_check

Each question is ``{"order_nos": [...], "settle": bool}``; with ``settle`` the store first pays back the cash of
every cash sale the work queue asks it to (as a person would). The answer: the orders' statuses, what is still
under way, orders of the same TV accounts that are not in the list (a retry that placed an order twice), and
tests.reliability.support.check_money's problems.
"""

from __future__ import annotations

from typing import Any


def books(order_nos: list[str], *, settle: bool) -> dict[str, Any]:
    from billing.models import Refund, RefundStatus, WorkItem, WorkItemKind
    from ipvas.actors import Actor, ActorKind
    from ipvas.models import OutboxMessage
    from lifecycle.manual import work_item_resolve
    from orders.models import Order
    from tests.reliability.support import TERMINAL, check_money

    ids = list(Order.objects.filter(order_no__in=order_nos).values_list("pk", flat=True))
    # A retry that made a second order (its first answer lost) leaves an order of the same account not in the list.
    accounts = set(Order.objects.filter(pk__in=ids).exclude(tv_account="").values_list("tv_account", flat=True))
    others = Order.objects.filter(tv_account__in=accounts).exclude(pk__in=ids).count()
    paid_back = 0
    if settle:
        store = Actor(ActorKind.CLERK, "store-manager")
        for item in WorkItem.objects.filter(order_id__in=ids, kind=WorkItemKind.CASH_PAYBACK, resolved_at__isnull=True):
            work_item_resolve(item_id=item.pk, note="cash paid back at the till", actor=store, cash_paid_back=True)
            paid_back += 1
    report = check_money(ids)
    not_completed = {
        order.order_no: [
            f"{e.at:%H:%M:%S} {e.action} {e.from_status}>{e.to_status} {e.reason}"[:160]
            for e in order.events.order_by("at", "pk")
        ]
        for order in Order.objects.filter(pk__in=ids).exclude(status="completed")
    }
    return {
        "orders": report.orders,
        "statuses": dict(report.statuses),
        "unsettled": Order.objects.filter(pk__in=ids).exclude(status__in=TERMINAL).count(),
        "refunds_under_way": Refund.objects.filter(
            order_id__in=ids, status__in=[RefundStatus.REQUESTED, RefundStatus.PROCESSING]
        ).count(),
        "outbox_waiting": OutboxMessage.objects.filter(relayed_at__isnull=True).count(),
        "cash_paid_back": paid_back,
        "problems": report.problems,
        "smp_left_subscribed": report.smp_left_subscribed,
        "missing": len(order_nos) - report.orders,
        "other_orders_of_their_accounts": others,
        "events_of_orders_not_completed": not_completed,
    }


def main() -> None:
    import django

    django.setup()
    from tests.support.answering import serve

    serve(lambda question: books(question["order_nos"], settle=question["settle"]))


if __name__ == "__main__":
    main()
