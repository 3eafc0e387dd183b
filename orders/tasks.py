"""The orders app's Celery task: thin, it takes an account and calls one service. Safe to run twice."""

from __future__ import annotations

from ipvas.tasks import ipvas_task


@ipvas_task(name="orders.tasks.forget_entitlements")
def forget_entitlements(tv_account: str, until: str, attempt: int = 0) -> str:
    from orders.services import entitlements_forget_again

    return entitlements_forget_again(tv_account=tv_account, until=until, attempt=attempt)
