"""Payment notifications from the providers: every one is kept as it came, under the provider's id."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from billing.models import Payment, PaymentNotification, ProviderContract


def notification_store(
    *,
    provider: str,
    notification_id: str,
    payment: Payment,
    headers: dict[str, str],
    body: str,
    decoded: dict[str, Any],
    contract: ProviderContract | None = None,
) -> PaymentNotification:
    """Keep a verified notification; raises IntegrityError when the provider sent this one before."""
    with transaction.atomic():
        return PaymentNotification.objects.create(
            provider=provider,
            notification_id=notification_id[:128],
            out_trade_no=payment.out_trade_no,
            payment=payment,
            contract=contract,
            headers=headers,
            body=body,
            decoded=_jsonable(decoded),
            outcome="received",
        )


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)
