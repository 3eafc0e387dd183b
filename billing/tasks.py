"""Thin Celery tasks of billing: take ids, call one service. Safe to run twice."""

from __future__ import annotations

from ipvas.tasks import ipvas_task


@ipvas_task(name="billing.tasks.reconcile_yesterday", soft_time_limit=900, time_limit=1200)
def reconcile_yesterday(day: str | None = None, attempt: int = 0) -> str:
    from billing.reconciliation.services import reconcile_scheduled

    return reconcile_scheduled(day=day, attempt=attempt)


@ipvas_task(name="billing.tasks.purge_payment_codes")
def purge_payment_codes() -> int:
    from billing.services.payment_codes import payment_codes_purge

    return payment_codes_purge()


@ipvas_task(name="billing.tasks.purge_sms_replies")
def purge_sms_replies() -> int:
    from billing.services.sms import sms_replies_purge

    return sms_replies_purge()
