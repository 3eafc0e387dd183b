"""Tasks of the order records: forgetting an account's cached entitlements a moment after a change."""

from __future__ import annotations

from ipvas.tasks import ipvas_task
from orders.selectors import forget_entitlements as forget


@ipvas_task(name="orders.tasks.forget_entitlements", max_retries=0)
def forget_entitlements(tv_account: str) -> None:
    forget(tv_account)
