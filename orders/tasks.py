"""Thin Celery tasks: take ids, call one service. Safe to run twice."""

from __future__ import annotations

from datetime import datetime

from ipvas.tasks import ipvas_task
from orders import services


def _when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


@ipvas_task(name="orders.tasks.precheck_order")
def precheck_order(order_id: int, due_at: str | None = None) -> str:
    return services.order_process_due(order_id=order_id, due_at=_when(due_at))


@ipvas_task(name="orders.tasks.order_deadline")
def order_deadline(order_id: int, due_at: str | None = None) -> str:
    return services.order_process_due(order_id=order_id, due_at=_when(due_at))


@ipvas_task(name="orders.tasks.provision_order")
def provision_order(order_id: int, due_at: str | None = None) -> str:
    return services.order_process_due(order_id=order_id, due_at=_when(due_at))


@ipvas_task(name="orders.tasks.sweep_deadlines")
def sweep_deadlines() -> int:
    return services.deadlines_sweep()


@ipvas_task(name="orders.tasks.forget_entitlements", max_retries=0)
def forget_entitlements(tv_account: str) -> None:
    from orders.selectors import forget_entitlements as forget

    forget(tv_account)
