"""The system's own notes, in the reader's language (issue #12, item 6).

The lifecycle writes why it did something (``OrderEvent.reason``, ``SubscriptionEvent.reason``, a work item's
detail) as plain English records, with codes and numbers in them: ``QR code shown (wechatpay 2026…)``. They
stay as written in the records (logs and tests read them); admin shows them through this table, which knows
each note's shape and says it in the language of the page, with labels for the codes inside. What staff
typed (a refund's reason, a note) and what an outside system answered (an error after a colon) are shown as
they are. tests/backoffice/test_reasons.py checks the notes the lifecycle writes against this table.
"""

from __future__ import annotations

from collections.abc import Callable

from django.utils import formats, timezone
from django.utils.dateparse import parse_datetime
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext

from billing.models import Provider
from ipvas.actors import ActorKind
from ipvas.phrases import Phrases
from orders.constants import FailureCode, OrderStatus, SubscriptionStatus


def _label(choices: type, value: str) -> str:
    return str(choices(value).label) if value in choices.values else value


# The providers as the lifecycle's notes name them in words ("ended in WeChat Pay").
PROVIDER_NAMES = {"WeChat Pay": Provider.WECHATPAY, "Alipay": Provider.ALIPAY}


def _provider(value: str) -> str:
    return _label(Provider, PROVIDER_NAMES.get(value, value))


def _when(value: str) -> str:
    moment = parse_datetime(value)
    if moment is None:
        return value
    return formats.date_format(timezone.localtime(moment) if timezone.is_aware(moment) else moment, "Y-m-d H:i")


def _status(value: str) -> str:
    if value in OrderStatus.values:
        return str(OrderStatus(value).label)
    return _label(SubscriptionStatus, value)


def _code(value: str) -> str:
    return _label(FailureCode, value)


def _source(value: str) -> str:
    from billing.models.reconciliation import StatementSource

    return _label(StatementSource, value)


def _rest(value: str) -> str:
    """What an outside system answered: a failure code of §1 in words, anything else as it came."""
    return _label(FailureCode, value.strip())


def _actor(value: str) -> str:
    kind, sep, who = value.partition(":")
    if sep and kind in ActorKind.values:
        return f"{ActorKind(kind).label} {who}"
    return value


# What a group of a note's pattern is shown as: a code becomes its label.
SHOWN: dict[str, Callable[[str], str]] = {
    "provider": _provider,
    "status": _status,
    "code": _code,
    "actor": _actor,
    "source": _source,
    "rest": _rest,
    "when": _when,
    "by": lambda value: run_by_text(value),
}

# (pattern of the note, as the lifecycle writes it) → what it says, with the pattern's named groups.
NOTES: list[tuple[str, Promise]] = [
    # Orders: placing, pre-check, payment.
    (r"the SMP's pre-check passed", _("The SMP's pre-check passed.")),
    (
        r"the SMP did not answer before the pre-check deadline",
        _("The SMP did not answer before the pre-check deadline."),
    ),
    (r"the account renews this product already", _("The account renews this product already.")),
    (r"already subscribed", _("Already subscribed.")),
    (r"already subscribed: (?P<rest>.+)", _("Already subscribed: %(rest)s")),
    (r"phone bill", _("Charged to the phone bill.")),
    (r"the clerk confirmed the cash received", _("The clerk confirmed that the cash was received.")),
    (r"QR code shown \((?P<provider>\w+) (?P<no>\S+)\)", _("QR code shown (%(provider)s, %(no)s).")),
    (r"switched to (?P<provider>\w+) \((?P<no>\S+)\)", _("Switched to %(provider)s (%(no)s).")),
    (r"payment code scanned \((?P<provider>\w+) (?P<no>\S+)\)", _("Payment code scanned (%(provider)s, %(no)s).")),
    (r"cancelled before payment", _("Cancelled before payment.")),
    (r"no payment method chosen in (?P<n>\d+) s", _("No payment method was chosen within %(n)s seconds.")),
    (r"confirmation SMS to (?P<phone>\S+)", _("Confirmation SMS sent to %(phone)s.")),
    (r"replied Y", _("The customer replied Y.")),
    (r"replied other than Y", _("The customer replied something other than Y.")),
    (r"declined by SMS", _("Declined by SMS reply.")),
    (r"no reply Y in time", _("No reply Y in time.")),
    (
        r"a newer confirmation to the number replaced it",
        _("A newer confirmation SMS to the same number replaced this one."),
    ),
    (r"no QR code was ever shown for this order", _("No QR code was ever shown for this order.")),
    (
        r"the payment window ended while the QR code was being switched",
        _("The payment window ended while the QR code was being switched."),
    ),
    (r"closed at (?P<provider>\w+)", _("Closed unpaid at %(provider)s.")),
    (r"closing at (?P<provider>\w+): (?P<rest>.+)", _("Closing at %(provider)s did not go through: %(rest)s")),
    (
        r"(?P<provider>\w+) did not confirm the close: (?P<rest>.+)",
        _("%(provider)s did not confirm the close: %(rest)s"),
    ),
    (r"paid at (?P<provider>\w+)", _("Paid at %(provider)s.")),
    (r"paid twice: order was (?P<status>\w+)", _("Paid twice (the order was %(status)s): the money goes back.")),
    (r"paid late: order was (?P<status>\w+)", _("Paid too late (the order was %(status)s): the money goes back.")),
    (r"CRM (?P<no>\S+)", _("The CRM took the sale (activity %(no)s).")),
    (r"CRM: (?P<rest>.+)", _("The CRM did not answer: %(rest)s")),
    (r"CRM did not answer", _("The CRM did not answer.")),
    (r"CRM did not answer: (?P<rest>.+)", _("The CRM did not answer: %(rest)s")),
    (
        r"the CRM refused the marketing activity: (?P<rest>.*)",
        _("The CRM refused the marketing activity: %(rest)s"),
    ),
    # Payment codes.
    (r"no payment code left to charge", _("No payment code was left to charge.")),
    (r"no answer to the charge: (?P<rest>.+)", _("No answer to the charge: %(rest)s")),
    (r"the customer is confirming in the app ?(?P<rest>.*)", _("The customer is confirming in the app. %(rest)s")),
    (r"outcome unknown ?(?P<rest>.*)", _("Outcome unknown. %(rest)s")),
    (r"query: (?P<rest>.+)", _("The query did not go through: %(rest)s")),
    (r"still (?P<rest>\w+)", _("Still waiting (%(rest)s).")),
    (
        r"not paid in (?P<n>\d+) s; reversed at (?P<provider>\w+)",
        _("Not paid within %(n)s seconds; reversed at %(provider)s."),
    ),
    (
        r"(?P<provider>\w+) declined the payment code: (?P<rest>.*)",
        _("%(provider)s declined the payment code: %(rest)s"),
    ),
    # Provisioning.
    (r"SMP subscription (?P<no>\S+)", _("Subscribed on the SMP (%(no)s).")),
    (
        r"the SMP did not subscribe before the provisioning deadline",
        _("The SMP did not subscribe before the activation deadline."),
    ),
    (r"the SMP refused the phone-bill charge: (?P<rest>.*)", _("The SMP refused the phone-bill charge: %(rest)s")),
    (r"the SMP refused: (?P<rest>.*)", _("The SMP refused: %(rest)s")),
    (r"not provisioned: (?P<rest>.+)", _("Not activated: %(rest)s")),
    (r"phone-bill charge reversed", _("The phone-bill charge was reversed.")),
    (r"the subscription was cancelled", _("The subscription was cancelled.")),
    (r"the subscription is (?P<status>\w+)", _("The subscription is %(status)s.")),
    # Subscriptions and renewals.
    (r"order (?P<no>[A-Za-z0-9]+)", _("Order %(no)s.")),
    (r"renewal of (?P<no>[A-Za-z0-9]+)", _("Renewal of subscription %(no)s.")),
    (
        r"renewal of (?P<no>[A-Za-z0-9]+), charged to the phone bill",
        _("Renewal of subscription %(no)s, charged to the phone bill."),
    ),
    (
        r"the renewal could not be charged before the paid period ends \((?P<code>\w+)\)",
        _("The renewal could not be charged before the paid period ended (%(code)s)."),
    ),
    (
        r"a deduction went back and Alipay's agreed deduction day does not move back: it allows the next "
        r"deduction from (?P<day>[\d-]+), after the paid period ends",
        _(
            "A deduction went back and Alipay's agreed deduction day does not move back: it allows the next "
            "deduction from %(day)s, after the paid period ends."
        ),
    ),
    (
        r"no reminder could be sent before the paid period ended",
        _("No reminder could be sent before the paid period ended."),
    ),
    (
        r"the renewal moved later: the reminder went out late",
        _("The renewal moved later: the reminder went out late."),
    ),
    (r"SMS reply TD", _("The customer replied TD.")),
    (r"cancelled on the TV", _("Cancelled on the TV.")),
    (
        r"asked by the customer at the counter of store (?P<store>\S+)",
        _("Asked for by the customer at the counter of store %(store)s."),
    ),
    # Purchase PINs.
    (r"at the counter of store (?P<store>\S+)", _("At the counter of store %(store)s.")),
    (r"(?P<n>\d+) wrong PIN entries", _("%(n)s wrong PIN entries.")),
    (r"admin", _("In admin.")),
    # Reconciliation runs' notes, one a line.
    (r"(?P<source>\w+): not imported, not fetched", _("%(source)s: not imported, and not fetched.")),
    (r"(?P<source>\w+): could not be fetched \((?P<rest>.+)\)", _("%(source)s: could not be fetched (%(rest)s).")),
    (
        r"(?P<source>\w+): the fetched file was refused \((?P<rest>.+)\)",
        _("%(source)s: the fetched file was refused (%(rest)s)."),
    ),
    (r"(?P<source>\w+): (?P<rest>.+); compared with nothing", _("%(source)s: %(rest)s; compared with nothing.")),
    (
        r"(?P<day>\d{4}-\d{2}-\d{2}) run by (?P<by>.+): not found again",
        _("Not found again by the run of %(day)s (%(by)s)."),
    ),
    # Work items.
    (r"refund by (?P<actor>[a-z_]+:[^:]*): (?P<rest>.+)", _("Refund started by %(actor)s: %(rest)s")),
    (
        r"could not close (?P<provider>\w+) order (?P<no>\S+): (?P<rest>.+)",
        _("Could not close the %(provider)s order %(no)s: %(rest)s"),
    ),
    (r"SMP reversal not confirmed: (?P<rest>.+)", _("The SMP did not confirm the reversal: %(rest)s")),
    (
        r"(?P<no>\S+): no answer from (?P<provider>\w+) after (?P<tries>\d+) tries; "
        r"asked again every (?P<minutes>\d+) minutes until it answers",
        _(
            "Refund %(no)s: %(provider)s has not answered %(tries)s tries; it is asked again every %(minutes)s "
            "minutes until it answers."
        ),
    ),
    (
        r"period (?P<n>\d+) was paid since by renewal order (?P<no>\S+), which the SMP answered with the period's "
        r"one charge: nothing of this order is to be reversed",
        _(
            "Period %(n)s was paid since by renewal order %(no)s, which the SMP answered with the period's one "
            "charge: nothing of this order is to be reversed."
        ),
    ),
    (
        r"the SMP reversed (?P<fen>\d+) fen for (?P<no>\S+), a failed try of the period that (?P<holder>\S+) was "
        r"answered with: check at the SMP whether this order's period is still paid",
        _(
            "The SMP reversed %(fen)s fen for %(no)s, a failed try of the period that %(holder)s was answered "
            "with: check at the SMP whether this order's period is still paid."
        ),
    ),
    (
        r"the SMP gave nothing back for (?P<no>\S+), charged (?P<fen>\d+) fen to the phone bill: refund it at the "
        r"SMP by hand",
        _("The SMP gave nothing back for %(no)s, charged %(fen)s fen to the phone bill: refund it at the SMP by hand."),
    ),
    (r"SMP unsubscribe failed: (?P<rest>.+)", _("Unsubscribing on the SMP failed: %(rest)s")),
    (
        r"the SMP refused to end the subscription of (?P<no>\S+), whose money went back: end it there by hand",
        _("The SMP refused to end the subscription of %(no)s, whose money went back: end it there by hand."),
    ),
    (
        r"(?P<no>\S+): still processing at (?P<provider>\w+) after (?P<days>\d+) days; asked again every hour",
        _("Refund %(no)s: still processing at %(provider)s after %(days)s days; it is asked again every hour."),
    ),
    (
        r"SMP unsubscribe at the end of subscription (?P<no>\S+) failed: (?P<rest>.+)",
        _("Unsubscribing on the SMP at the end of subscription %(no)s failed: %(rest)s"),
    ),
    (r"CRM reversal failed: (?P<rest>.+)", _("Reversing the CRM activity failed: %(rest)s")),
    (
        r"the CRM refused to reverse the activity of (?P<no>\S+): reverse it there by hand",
        _("The CRM refused to reverse the activity of %(no)s: reverse it there by hand."),
    ),
    (r"SMP period not moved: (?P<rest>.+)", _("The SMP did not move the period: %(rest)s")),
    (
        r"(?P<provider>\w+) payment code (?P<no>\S+) was reversed while it was paid",
        _("The %(provider)s payment code %(no)s was reversed while it was paid."),
    ),
    (
        r"could not reverse (?P<provider>\w+) payment code (?P<no>\S+): (?P<rest>.+)",
        _("Could not reverse the %(provider)s payment code %(no)s: %(rest)s"),
    ),
    # Deduction contracts (lifecycle.contracts, lifecycle.deductions).
    (r"(?P<provider>\w+) contract (?P<no>\S+) \((?P<ref>\S+)\)", _("%(provider)s contract %(no)s (%(ref)s).")),
    (r"no subscription started with it", _("No automatic renewal was started with it.")),
    (
        r"its order is (?P<status>\w+), not paid by this QR code",
        _("Its order is %(status)s, not paid by this QR code."),
    ),
    (r"ended in (?P<provider>.+)", _("Ended in %(provider)s.")),
    (r"the user ended the deduction contract in (?P<provider>.+)", _("The user ended the contract in %(provider)s.")),
    (
        r"the (?P<provider>\w+) deduction contract was not signed in time: the paid period stays",
        _("The %(provider)s deduction contract was not signed in time: the paid period stays."),
    ),
    (
        r"(?:never signed in time|no subscription started); order (?P<no>\S+) is (?P<status>\w+)",
        _("Not used: order %(no)s is %(status)s."),
    ),
    (
        r"could not end (?P<provider>\w+) deduction contract (?P<no>\S+): (?P<rest>.+)",
        _("Could not end the %(provider)s deduction contract %(no)s: %(rest)s"),
    ),
    (
        r"(?P<provider>\w+) allows the deduction from (?P<when>\S+)",
        _("%(provider)s allows the deduction from %(when)s."),
    ),
    (
        r"WeChat Pay allows the deduction from the 3rd day after its notice",
        _("WeChat Pay allows the deduction from the 3rd day after its notice."),
    ),
    (
        r"(?P<provider>WeChat Pay|\w+) has no such contract any more: (?P<rest>.+)",
        _("%(provider)s has no such contract any more: %(rest)s"),
    ),
    (
        r"WeChat Pay's pre-deduction notice for (?P<no>\S+) was not sent: (?P<rest>.+)",
        _("WeChat Pay's pre-deduction notice for %(no)s was not sent: %(rest)s"),
    ),
    (
        r"renewal of (?P<no>[A-Za-z0-9]+), deducted under its (?P<provider>.+) contract",
        _("Renewal of subscription %(no)s, deducted under its %(provider)s contract."),
    ),
    (r"no deduction to send", _("No deduction to send.")),
    (r"no answer to the deduction: (?P<rest>.+)", _("No answer to the deduction: %(rest)s")),
    (r"accepted, the result comes later ?(?P<rest>.*)", _("Accepted; the result comes later. %(rest)s")),
    (
        r"no answer from (?P<provider>\w+) in (?P<n>\d+) minutes",
        _("No answer from %(provider)s in %(n)s minutes."),
    ),
    (r"(?P<provider>\w+) declined the deduction: (?P<rest>.*)", _("%(provider)s declined the deduction: %(rest)s")),
    # Last: a reason that is a failure code of §1 alone (the SMP's answer), in words.
    (r"(?P<code>[a-z_]+)", "%(code)s"),
]
_PHRASES = Phrases(NOTES, shown=SHOWN)


def note_text(text: str) -> str:
    """``text`` said in the page's language when it is one of the system's notes; otherwise as it is."""
    if not text:
        return text
    if "\n" in text:
        return "\n".join(note_text(line) for line in text.splitlines())
    said = _PHRASES.say(text)
    return text if said is None else said.strip()


def run_by_text(text: str) -> str:
    """Who ran a reconciliation or imported a statement: ``beat``, ``command``, ``admin:<user>``…"""
    if text == "beat":
        return str(_("the morning schedule"))
    if text.startswith("beat, attempt "):
        return str(_("the morning schedule, attempt %(n)s") % {"n": text.rsplit(" ", 1)[-1]})
    if text == "command":
        return str(_("the reconcile command"))
    if text == "task":
        return str(_("background task"))
    if text == "sandbox":
        return str(_("the sandbox's demo day"))
    return _actor(text)


# What handling a notification or an SMS reply came to (callbacks, lifecycle.paid, lifecycle.confirmations).
OUTCOMES = {
    "received": _("received"),
    "confirmed": _("confirmed the order"),
    "declined": _("declined the order"),
    "duplicate": _("seen before: changed nothing"),
    "refunding": _("paid late or twice: the money goes back"),
    "given back by the reverse": _("paid before its reverse, which gave the money back"),
    "too_late": _("came too late: the confirmation had ended"),
    "not_a_mobile": _("not from a mobile number"),
    "none_pending": _("no confirmation was waiting"),
    "refused": _("refused"),
    # A deduction contract's signing or end (lifecycle.contracts.contract_notification_accept).
    "contract duplicate": _("contract: seen before, changed nothing"),
    "contract stale: ended by the user already": _("contract: signed, but the user had ended it already"),
    "contract unsigning: signed after it was given up": _("contract: signed after it was given up; being ended"),
    "contract signed already": _("contract: signed already"),
    "contract signed: the subscription started": _("contract signed: the subscription started"),
    "contract unsigning: no subscription started with it": _("contract: no subscription started with it; being ended"),
    "contract signed: waiting for the payment": _("contract signed: waiting for the payment"),
    "contract unsigning: its order was not paid by it": _("contract: its order was not paid by it; being ended"),
    "contract ended already": _("contract: ended already"),
    "contract ended by the user: the subscription is cancelled": _(
        "contract ended by the user: the subscription is cancelled"
    ),
    "contract ended": _("contract ended"),
    "contract ended by the user": _("contract ended by the user"),
}


def outcome_text(text: str) -> str:
    """``confirmed`` or ``none_pending; td cancelled 1``, in words."""
    parts = []
    for part in (text or "").split("; "):
        if part.startswith("td cancelled "):
            parts.append(str(_("TD: %(n)s automatic renewal(s) cancelled") % {"n": part.rsplit(" ", 1)[-1]}))
        else:
            parts.append(str(OUTCOMES.get(part, part)))
    return str(pgettext("list separator", "; ")).join(parts)
