"""The SMP adapter: ``get_smp()`` returns the implementation chosen by ``SMP_ADAPTER``."""

from __future__ import annotations

from django.conf import settings

from orders.smp.types import (
    AuthorizeResult,
    PrecheckRequest,
    PrecheckResult,
    SmpAdapter,
    SmpUnavailable,
    SubscribeRequest,
    SubscribeResult,
    UnsubscribeResult,
)

__all__ = [
    "AuthorizeResult",
    "PrecheckRequest",
    "PrecheckResult",
    "SmpAdapter",
    "SmpUnavailable",
    "SubscribeRequest",
    "SubscribeResult",
    "UnsubscribeResult",
    "get_smp",
]


def get_smp() -> SmpAdapter:
    if settings.SMP_ADAPTER == "http":
        from orders.smp.http import HttpSmpClient

        return HttpSmpClient(
            base_url=settings.SMP_URL,
            token=settings.SMP_API_TOKEN,
            timeout=settings.SMP_TIMEOUT_SECONDS,
        )
    from orders.smp.simulator import SimulatedSmp

    return SimulatedSmp(timeout=settings.SMP_TIMEOUT_SECONDS)
