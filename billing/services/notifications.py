"""Payment notifications from the providers: every one is kept as it came, under the provider's id."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models.constants import OnConflict

from billing.models import Payment, PaymentNotification, ProviderContract
from ipvas.text import storable


def notification_store(
    *,
    provider: str,
    notification_id: str,
    payment: Payment,
    headers: dict[str, str],
    body: str,
    decoded: dict[str, Any],
    outcome: str,
    contract: ProviderContract | None = None,
) -> bool:
    """Keep a verified notification with what it did, inside the transaction that applied it; False when
    the provider sent this one before (it was applied then): nothing is written, and that transaction is
    marked for rollback, so that what applying it again did goes back.

    One statement, ``INSERT … ON CONFLICT DO NOTHING RETURNING id`` (issue #17: a savepoint around a plain
    INSERT, and an UPDATE for the outcome, were three more round trips in every notification). It holds
    against the same notification stored at the same moment by another transaction too: the INSERT waits
    for that one to end, and finds it there if it committed.
    """
    notification = PaymentNotification(
        provider=provider,
        notification_id=notification_id[:128],
        out_trade_no=payment.out_trade_no,
        payment=payment,
        contract=contract,
        headers=headers,
        body=body,
        decoded=_jsonable(decoded),
        outcome=outcome[:255],
    )
    meta = PaymentNotification._meta
    # What Model.save() would insert (every concrete column but the generated id), and the id back if it did.
    inserted = PaymentNotification.objects._insert(
        [notification],
        fields=[field for field in meta.local_concrete_fields if field is not meta.pk],
        returning_fields=[meta.pk],
        on_conflict=OnConflict.IGNORE,
    )
    if inserted and inserted[0]:
        return True
    transaction.set_rollback(True)
    return False


def _jsonable(value: Any) -> Any:
    """``value`` as JSON PostgreSQL's jsonb takes: a NUL or a lone surrogate in a string (which it refuses, so
    that the payment was never applied) is written as its escape; the body keeps what came, byte for byte."""
    if isinstance(value, dict):
        return {_text(str(k)): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, int | float | bool) or value is None:
        return value
    return _text(str(value))


def _text(value: str) -> str:
    if storable(value):
        return value
    return value.replace("\x00", "\\u0000").encode(errors="backslashreplace").decode()
