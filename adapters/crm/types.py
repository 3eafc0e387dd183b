"""The CRM as IPVAS sees it: handling (and reversing) the marketing activity of a cash sale.

``handle_activity`` is idempotent on the order number at the CRM, so a
retried cash sale never bills the clerk's virtual staff id twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class CrmUnavailable(Exception):
    """The CRM did not answer: try again later."""


@dataclass(frozen=True)
class ActivityRequest:
    activity_code: str
    phone: str
    virtual_staff_id: str
    order_no: str
    amount_fen: int


@dataclass(frozen=True)
class ActivityResult:
    ok: bool
    activity_id: str = ""
    reason: str = ""


class CrmAdapter(Protocol):
    def handle_activity(self, request: ActivityRequest) -> ActivityResult: ...

    def reverse_activity(self, *, order_no: str) -> ActivityResult: ...
