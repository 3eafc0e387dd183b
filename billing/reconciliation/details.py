"""What explains an item's outcome: message codes with their facts, rendered in the reader's language.

The comparison stores ``[[code, {name: value}], ...]`` (plain JSON values:
keys, ISO days, integer fen, codes of choices); admin, the CSV export and the
work queue render it when they show it, through gettext, so that the same
item reads in Chinese or English. A fact is shown by its name: ``source``,
``what``, ``charge``, ``status``, ``method`` and ``why`` are choice codes
shown by their label; names ending in ``_fen`` are amounts shown in yuan;
``refusal`` is why a fetched file was refused (billing.reconciliation.refusals).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from adapters.smp import SmpCharge
from billing.models import LedgerKind
from billing.models.reconciliation import StatementLineKind, StatementSource
from billing.reconciliation import refusals
from ipvas.money import fen_to_yuan
from orders.constants import OrderStatus, PaymentMethod

Explanation = list[list[Any]]

MESSAGES: dict[str, Promise] = {
    # --- WeChat Pay and Alipay
    "not_listed": _("Not in the %(source)s of %(day)s."),
    "listed_other_day": _("Listed in the %(source)s of %(other_day)s (line %(line)s), across midnight."),
    "booked_other_day": _("In our ledger on %(other_day)s, across midnight."),
    "booked_far_day": _("In our ledger on %(other_day)s, not on this day."),
    "amounts": _("%(ours_fen)s here, %(theirs_fen)s there."),
    "transaction_differs": _("Transaction id %(theirs)s there, %(ours)s here."),
    "listed_again": _("Listed again in the %(source)s (line %(line)s); the first listing is line %(first_line)s."),
    "booked_again": _("Recorded again in our ledger (%(reference)s), listed once by the provider."),
    "booked_other_day_too": _(
        "Recorded in our ledger on %(other_day)s too, where line %(line)s of that day's statement pairs it: "
        "booked twice."
    ),
    "listed_other_day_too": _(
        "Listed in the %(source)s of %(other_day)s too (line %(line)s), with our ledger's row of that day: "
        "listed twice."
    ),
    "unknown": _("No %(what)s %(key)s here."),
    "unknown_refund_of_order": _(
        "Refund %(key)s is not known here; it refunds payment %(out_trade_no)s of order %(order)s."
    ),
    "unknown_payment_of_order": _("Payment %(key)s is not known here; it is the trade number of order %(order)s."),
    "entitlement_active": _(
        "The order's entitlement is still active (until %(ends)s, SMP subscription %(subscription)s)."
    ),
    "no_ledger_entry": _("Our %(what)s is %(status)s, with no ledger entry."),
    "paid_then_reversed": _("Paid just before our reverse, listed giving it back; our ledger never held it."),
    "given_back_by_reverse": _("Given back by our reverse after the customer paid; our ledger never held it."),
    # --- the SMP: subscriptions
    "no_order": _("No order %(order)s here."),
    "subscribed_unpaid": _("Subscribed (%(charge)s) for an order that is %(status)s, with no %(way)s in our ledger."),
    "smp_charged": _("The SMP charged %(theirs_fen)s (%(charge)s); %(expected_fen)s expected."),
    "provisioned_on": _(
        "Provisioned on account %(their_account)s, product %(their_product)s; "
        "the order is for account %(our_account)s, product %(our_product)s."
    ),
    "second_subscription": _(
        "Subscription %(subscription)s is a second subscription of the order "
        "(the first: %(first)s, line %(first_line)s)."
    ),
    "subscribed_before": _(
        "Subscription %(subscription)s: the order was subscribed on %(other_day)s already (%(first)s)."
    ),
    "not_subscribed": _("%(net_fen)s held (%(method)s), order %(status)s; not in the SMP's list of %(day)s."),
    "entitlement_names": _("Our entitlement names SMP subscription %(subscription)s."),
    "subscribed_other_day": _("Subscribed at the SMP on %(other_day)s (line %(line)s), across midnight."),
    "paid_other_day": _("Paid on %(other_day)s."),
    # --- the SMP: unsubscriptions and reversals
    "still_subscribed": _("Money returned here (%(why)s); the SMP has not ended subscription %(subscription)s."),
    "unsubscribed_other_day": _("Ended at the SMP on %(other_day)s (line %(line)s)."),
    "ended_while_entitled": _(
        "The SMP ended subscription %(subscription)s at %(at)s; our entitlement runs to %(ends)s."
    ),
    "reversed_differs": _("The SMP gave back %(theirs_fen)s; our ledger has %(ours_fen)s reversed."),
    "returned_other_day": _("Money returned here on %(other_day)s."),
    # --- a source not compared (a discrepancy of its own)
    "refused": _("The fetched file was refused: %(refusal)s"),
    # A detail written before messages had codes, kept as it was.
    "text": "%(text)s",
}

_CHOICES: dict[str, Any] = {
    "source": StatementSource,
    "what": StatementLineKind,
    "charge": SmpCharge,
    "status": OrderStatus,
    "method": PaymentMethod,
}
_WAYS = {
    "qr": _("WeChat Pay or Alipay payment"),
    "cash": _("cash payment"),
    "phone_bill": _("phone-bill charge"),
}


def note(code: str, **facts: Any) -> list[Any]:
    """One entry of an explanation; ``code`` must be one of MESSAGES."""
    assert code in MESSAGES, code
    return [code, facts]


def _label(choices: Any, value: Any) -> str:
    try:
        return str(choices(value).label)
    except ValueError:
        return str(value)


def _shown(name: str, value: Any) -> str:
    if value is None or value == "":
        return "-"
    if name.endswith("_fen"):
        return fen_to_yuan(int(value))
    if name in _CHOICES:
        return _label(_CHOICES[name], value)
    if name == "way":
        return str(_WAYS.get(value, value))
    if name == "why":
        return ", ".join(_label(LedgerKind, kind) for kind in value)
    if name == "refusal":
        return refusals.render(*value)
    return str(value)


def render_one(code: str, facts: dict[str, Any]) -> str:
    message = MESSAGES.get(code)
    if message is None:
        return " ".join(f"{name}={value}" for name, value in facts.items()) or code
    try:
        return str(message) % {name: _shown(name, value) for name, value in facts.items()}
    except (KeyError, TypeError, ValueError):
        return f"{code}: {facts}"


def render(explanation: Iterable[Any] | None) -> str:
    """The explanation as one text in the active language ("" for none)."""
    if not explanation:
        return ""
    return " ".join(render_one(code, facts) for code, facts in explanation)
