"""Thin Celery tasks of billing: take ids, call one service. Safe to run twice."""

from __future__ import annotations

from billing.services import followups, refunds, sms
from ipvas.tasks import ipvas_task


@ipvas_task(name="billing.tasks.send_sms_confirmation")
def send_sms_confirmation(confirmation_id: int, attempt: int = 0) -> str:
    return sms.sms_send_confirmation(confirmation_id=confirmation_id, attempt=attempt)


@ipvas_task(name="billing.tasks.process_refund")
def process_refund(refund_id: int) -> str:
    return refunds.refund_process(refund_id=refund_id)


@ipvas_task(name="billing.tasks.close_provider_order")
def close_provider_order(payment_id: int, attempt: int = 0) -> str:
    return followups.provider_order_close(payment_id=payment_id, attempt=attempt)


@ipvas_task(name="billing.tasks.reverse_phone_bill")
def reverse_phone_bill(order_id: int, attempt: int = 0) -> str:
    return followups.phone_bill_reverse(order_id=order_id, attempt=attempt)


@ipvas_task(name="billing.tasks.reverse_crm_activity")
def reverse_crm_activity(order_id: int, attempt: int = 0) -> str:
    return followups.crm_reverse(order_id=order_id, attempt=attempt)


@ipvas_task(name="billing.tasks.revoke_on_smp")
def revoke_on_smp(order_id: int, attempt: int = 0) -> str:
    return followups.smp_revoke(order_id=order_id, attempt=attempt)


@ipvas_task(name="billing.tasks.reconcile_yesterday", soft_time_limit=900, time_limit=1200)
def reconcile_yesterday(day: str | None = None, attempt: int = 0) -> str:
    from billing.reconciliation.services import reconcile_scheduled

    return reconcile_scheduled(day=day, attempt=attempt)
