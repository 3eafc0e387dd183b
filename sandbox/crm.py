"""The simulated CRM: the marketing activities it knows, and the cash sales it handled."""

from __future__ import annotations

import secrets

from django.db import transaction
from django.utils import timezone

from adapters.crm import ActivityRequest, ActivityResult
from sandbox.models import SimCrmActivity, SimCrmActivityCode


def handle_activity(request: ActivityRequest) -> ActivityResult:
    with transaction.atomic():
        done = SimCrmActivity.objects.select_for_update().filter(order_no=request.order_no).first()
        if done is not None:
            return ActivityResult(ok=True, activity_id=done.activity_id)
        if not SimCrmActivityCode.objects.filter(code=request.activity_code, active=True).exists():
            return ActivityResult(ok=False, reason=f"unknown marketing activity {request.activity_code}")
        if not request.virtual_staff_id:
            return ActivityResult(ok=False, reason="no virtual staff id")
        activity = SimCrmActivity.objects.create(
            order_no=request.order_no,
            activity_id="ACT" + secrets.token_hex(8).upper(),
            activity_code=request.activity_code,
            phone=request.phone,
            virtual_staff_id=request.virtual_staff_id,
            amount_fen=request.amount_fen,
        )
        return ActivityResult(ok=True, activity_id=activity.activity_id)


def reverse_activity(*, order_no: str) -> ActivityResult:
    with transaction.atomic():
        activity = SimCrmActivity.objects.select_for_update().filter(order_no=order_no).first()
        if activity is None:
            return ActivityResult(ok=True)
        if activity.reversed_at is None:
            activity.reversed_at = timezone.now()
            activity.save(update_fields=["reversed_at"])
        return ActivityResult(ok=True, activity_id=activity.activity_id)
