"""The SMP (业管平台): pre-check, subscribe, authorize, unsubscribe, the daily provisioning list.

``get_smp()`` is the implementation ``SMP_ADAPTER`` names: ``adapters.smp.http.HttpSmpClient``
in production, the sandbox's simulator in the embedded set-up.
"""

from __future__ import annotations

from adapters.resolve import Adapter
from adapters.smp.types import (
    AuthorizeResult,
    PrecheckRequest,
    PrecheckResult,
    SmpAdapter,
    SmpCharge,
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
    "SmpCharge",
    "SmpUnavailable",
    "SubscribeRequest",
    "SubscribeResult",
    "UnsubscribeResult",
    "get_smp",
]

get_smp: Adapter[SmpAdapter] = Adapter("SMP_ADAPTER")
