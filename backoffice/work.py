"""The work queue as staff read it (issue #12, item 7): what each item is about, and what can be done with it.

A cash order's money goes back through one kind of item, ``cash_payback``, whether the product could not be
activated or staff refunded the order in admin (lifecycle.manual writes "refund by …" as its detail). Its
label speaks of the first case; the second is named for what it is here. The form offers only the actions
that the item's kind and its order allow (lifecycle.manual refuses the others anyway).
"""

from __future__ import annotations

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from backoffice.history import outcome_text
from billing.models import WorkItem, WorkItemKind
from lifecycle.deductions import deduction_on_its_way
from orders.constants import PHONE_BILL_METHODS, OrderStatus

ACTIONS: dict[str, Promise] = {
    "cash_paid_back": _("The store paid the cash back (then the CRM activity is reversed)"),
    "retry_refund": _("Retry the refund"),
    "paid_back_by_hand": _(
        "The customer was paid back by other means (the provider refused for good): record it; the product stops"
    ),
    "retry_provisioning": _("Try the activation on the SMP again"),
    "refunded_at_smp_by_hand": _(
        "The phone-bill charge was refunded in the SMP's console by hand: record it; the product stops"
    ),
    "deduction_failed_by_hand": _(
        "The provider's merchant platform shows the deduction failed: end this renewal try as declined "
        "(tried again on the renewal's schedule; money that still arrives goes back)"
    ),
    "resolve": _("Mark resolved (nothing more to do, for the reason in the note)"),
}

# Items whose order may still be waiting for the SMP's subscription (a refund that failed leaves the order in
# provisioning: once the SMP sells again, activating it settles the item too).
RETRY_PROVISIONING_KINDS = {
    WorkItemKind.REFUND_FAILED,
    WorkItemKind.PROVISIONING_UNCERTAIN,
    WorkItemKind.CRM_UNCERTAIN,
}


def actions_for(item: WorkItem) -> list[tuple[str, str]]:
    """The actions that fit ``item``: its kind's own, then marking it resolved."""
    codes = []
    if item.kind == WorkItemKind.CASH_PAYBACK:
        codes.append("cash_paid_back")
    if item.kind == WorkItemKind.REFUND_FAILED:
        codes += ["retry_refund", "paid_back_by_hand"]
    if item.kind in RETRY_PROVISIONING_KINDS and item.order.status == OrderStatus.PROVISIONING:
        codes.append("retry_provisioning")
    if (
        item.kind == WorkItemKind.PROVIDER_DISAGREES
        and item.order.payment_method in PHONE_BILL_METHODS
        and item.order.status == OrderStatus.COMPLETED
    ):
        codes.append("refunded_at_smp_by_hand")
    if item.kind == WorkItemKind.PROVIDER_DISAGREES and deduction_on_its_way(item.order):
        codes.append("deduction_failed_by_hand")
    codes.append("resolve")
    return [(code, str(ACTIONS[code])) for code in codes]


def resolution_text(resolution: str) -> str:
    """A work item's resolution, ``<action>: <note>`` (lifecycle.manual), with the action in words."""
    action, sep, note = resolution.partition(": ")
    return f"{outcome_text(action)}: {note}" if sep else resolution
