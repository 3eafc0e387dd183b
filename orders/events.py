"""What each action of an order's or a subscription's history is called (issue #12, item 6).

``OrderEvent.action`` holds the transition's name (``precheck_passed``…) or the name of a note the
lifecycle writes (``retry``, ``refund_requested``…); ``SubscriptionEvent.action`` the same for a
subscription. They stay codes in the records (what tests and queries read); admin shows these labels.
tests/backoffice/test_event_labels.py finds every action the code writes and checks it has one here.
"""

from __future__ import annotations

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

ORDER_ACTIONS: dict[str, Promise] = {
    # Notes, no change of status.
    "create": _("Placed"),
    "retry": _("Outside system did not answer: will try again"),
    "payment_code_waiting": _("Customer is confirming the payment code in the app"),
    "refund_requested": _("Refund requested"),
    "auto_renew_not_started": _("Automatic renewal not started"),
    "auto_renew_waiting": _("Automatic renewal waits for the deduction contract"),
    "auto_renew_cancelled": _("Automatic renewal cancelled before it started"),
    "contract_signed": _("Deduction contract signed"),
    "deduction_sent": _("Deduction under the contract sent"),
    "work_resolved": _("Work item resolved"),
    "work_cash_paid_back": _("Store paid the cash back"),
    "work_paid_back_by_hand": _("Paid back by hand, outside the provider"),
    "work_refunded_at_smp_by_hand": _("Refunded in the SMP's console by hand"),
    "work_deduction_failed_by_hand": _("Deduction seen failed at the provider, by hand"),
    "work_retried_refund": _("Refund retried from the work queue"),
    "work_retried_provisioning": _("Activation retried from the work queue"),
    # The transitions of the order (orders.models.Order).
    "precheck_passed": _("Pre-check passed"),
    "reject": _("Rejected at pre-check"),
    "renewal_refused": _("Renewal refused at pre-check"),
    "start_payment": _("Payment started"),
    "switch_payment": _("Payment method switched"),
    "payment_confirmed": _("Paid or confirmed"),
    "fail": _("Failed"),
    "expire": _("Expired"),
    "cancel": _("Cancelled"),
    "cancel_renewal": _("Renewal stopped (subscription cancelled)"),
    "complete": _("Activated"),
    "refunded": _("Money returned"),
}

SUBSCRIPTION_ACTIONS: dict[str, Promise] = {
    "start": _("Started"),
    "reminder_queued": _("Reminder SMS queued"),
    "phone_changed": _("Bound mobile number changed at the SMP"),
    "reminder_sent": _("Reminder SMS sent"),
    "renewal_started": _("Renewal started"),
    "renewed": _("Renewed"),
    "renewal_failed": _("Renewal failed"),
    "period_refunded": _("A paid period was refunded"),
    "periods_moved": _("Its periods moved earlier: another period of the account was refunded"),
    "cancel": _("Renewal cancelled"),
    "deduction_notice_asked": _("Pre-deduction notice requested"),
    "deduction_announced": _("Deduction announced to the provider"),
    "renewal_moved": _("Renewal moved later"),
    "contract_ended": _("Deduction contract ended"),
    "lapse": _("Lapsed: renewal could not be charged"),
    "end": _("Ended"),
}


def order_action_label(action: str) -> str:
    return str(ORDER_ACTIONS[action]) if action in ORDER_ACTIONS else action


def subscription_action_label(action: str) -> str:
    return str(SUBSCRIPTION_ACTIONS[action]) if action in SUBSCRIPTION_ACTIONS else action
