"""The lifecycle's Celery tasks: thin, they take ids and call one service. Safe to run twice.

The services enqueue these tasks by reference (``outbox.enqueue(tasks.process_refund, ...)``)
and the table of lifecycle.due names the due tasks, so each task imports its service when it
runs: the two halves can refer to each other without an import cycle.
"""

from __future__ import annotations

from datetime import datetime

from ipvas.tasks import ipvas_task
from orders.constants import OrderStatus


def _when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _process_due(order_id: int, due_at: str | None, status: str | None = None) -> str:
    """Run what is due for the order: the handler of ``status`` when the task is that status's own (it
    re-reads the order under its lock and does nothing if the order moved on), else of the status read."""
    from lifecycle.due import STEPS, order_process_due

    if status is not None:
        return STEPS[status].handler(order_id, _when(due_at))
    return order_process_due(order_id=order_id, due_at=_when(due_at))


# --- the due tasks: an order's deadline_at came (lifecycle.due.STEPS says which runs when) --------


@ipvas_task(name="lifecycle.tasks.precheck_order")
def precheck_order(order_id: int, due_at: str | None = None) -> str:
    return _process_due(order_id, due_at, OrderStatus.PRECHECKING)


@ipvas_task(name="lifecycle.tasks.precheck_renewal")
def precheck_renewal(order_id: int, due_at: str | None = None) -> str:
    """A renewal order's pre-check: the same step, on a queue of background work (nobody waits at a screen
    for it, and the renewal sweep makes them by the hundred): lifecycle.due.Step.unattended."""
    return _process_due(order_id, due_at, OrderStatus.PRECHECKING)


@ipvas_task(name="lifecycle.tasks.order_deadline")
def order_deadline(order_id: int, due_at: str | None = None) -> str:
    return _process_due(order_id, due_at)


@ipvas_task(name="lifecycle.tasks.provision_order")
def provision_order(order_id: int, due_at: str | None = None) -> str:
    return _process_due(order_id, due_at, OrderStatus.PROVISIONING)


@ipvas_task(name="lifecycle.tasks.sweep_deadlines")
def sweep_deadlines() -> int:
    from lifecycle.due import deadlines_sweep

    return deadlines_sweep()


# --- what follows a decision ------------------------------------------------------------------


@ipvas_task(name="lifecycle.tasks.send_sms_confirmation")
def send_sms_confirmation(confirmation_id: int, attempt: int = 0) -> str:
    from lifecycle.confirmations import sms_send_confirmation

    return sms_send_confirmation(confirmation_id=confirmation_id, attempt=attempt)


@ipvas_task(name="lifecycle.tasks.process_refund")
def process_refund(refund_id: int) -> str:
    from lifecycle.refunds import refund_process

    return refund_process(refund_id=refund_id)


@ipvas_task(name="lifecycle.tasks.close_provider_order")
def close_provider_order(payment_id: int, attempt: int = 0) -> str:
    from lifecycle.followups import provider_order_close

    return provider_order_close(payment_id=payment_id, attempt=attempt)


@ipvas_task(name="lifecycle.tasks.reverse_payment_code")
def reverse_payment_code(payment_id: int, attempt: int = 0) -> str:
    from lifecycle.payment_code import payment_code_reverse

    return payment_code_reverse(payment_id=payment_id, attempt=attempt)


@ipvas_task(name="lifecycle.tasks.reverse_phone_bill")
def reverse_phone_bill(order_id: int, attempt: int = 0) -> str:
    from lifecycle.followups import phone_bill_reverse

    return phone_bill_reverse(order_id=order_id, attempt=attempt)


@ipvas_task(name="lifecycle.tasks.reverse_crm_activity")
def reverse_crm_activity(order_id: int, attempt: int = 0) -> str:
    from lifecycle.followups import crm_reverse

    return crm_reverse(order_id=order_id, attempt=attempt)


@ipvas_task(name="lifecycle.tasks.reschedule_on_smp")
def reschedule_on_smp(order_id: int, attempt: int = 0) -> str:
    from lifecycle.followups import smp_reschedule

    return smp_reschedule(order_id=order_id, attempt=attempt)


@ipvas_task(name="lifecycle.tasks.revoke_on_smp")
def revoke_on_smp(order_id: int, attempt: int = 0) -> str:
    from lifecycle.followups import smp_revoke

    return smp_revoke(order_id=order_id, attempt=attempt)


# --- subscriptions (lifecycle.renewals) --------------------------------------------------------


@ipvas_task(name="lifecycle.tasks.sweep_subscriptions")
def sweep_subscriptions() -> int:
    from lifecycle.renewals import subscriptions_sweep

    return subscriptions_sweep()


@ipvas_task(name="lifecycle.tasks.subscription_due")
def subscription_due(subscription_id: int) -> str:
    from lifecycle.renewals import subscription_process_due

    return subscription_process_due(subscription_id=subscription_id)


@ipvas_task(name="lifecycle.tasks.send_notice")
def send_notice(notice_id: int, attempt: int = 0) -> str:
    from lifecycle.notices import notice_send

    return notice_send(notice_id=notice_id, attempt=attempt)


@ipvas_task(name="lifecycle.tasks.announce_deduction")
def announce_deduction(subscription_id: int, attempt: int = 0) -> str:
    from lifecycle.deductions import deduction_announce

    return deduction_announce(subscription_id=subscription_id, attempt=attempt)


# --- follow-ups whose chain was lost (lifecycle.stalled) -------------------------------------------


@ipvas_task(name="lifecycle.tasks.sweep_stalled")
def sweep_stalled() -> int:
    from lifecycle.stalled import stalled_sweep

    return stalled_sweep()


# --- deduction contracts (lifecycle.contracts) ----------------------------------------------------


@ipvas_task(name="lifecycle.tasks.sweep_contracts")
def sweep_contracts() -> int:
    from lifecycle.contracts import contracts_sweep

    return contracts_sweep()


@ipvas_task(name="lifecycle.tasks.contract_due")
def contract_due(contract_id: int) -> str:
    from lifecycle.contracts import contract_process_due

    return contract_process_due(contract_id=contract_id)


@ipvas_task(name="lifecycle.tasks.unsign_contract")
def unsign_contract(contract_id: int, attempt: int = 0) -> str:
    from lifecycle.contracts import contract_unsign

    return contract_unsign(contract_id=contract_id, attempt=attempt)


@ipvas_task(name="lifecycle.tasks.end_subscription_on_smp")
def end_subscription_on_smp(subscription_id: int, attempt: int = 0) -> str:
    from lifecycle.followups import smp_subscription_end

    return smp_subscription_end(subscription_id=subscription_id, attempt=attempt)
