"""The household's purchase PIN (docs/interfaces.md §9): set, clear, and check before a purchase on the TV.

A PIN is 4 digits, stored hashed by Django's password hashers. The fifth wrong
entry since the last right one locks purchases of that TV account for 15
minutes; that answer, and every one until the lock ends, is ``PurchasePinLocked``
(with the seconds left). Every set, clear, wrong entry and lock writes a
``PurchasePinEvent``. Hashing is slow on purpose, so it never runs inside a
transaction (SQLite's write lock, PostgreSQL's row lock): the hash is read,
checked, and the outcome recorded under the row's lock afterwards.

Who asks for the PIN: the EPG API when an order is created, and the TV pages
before any payment. Renewals and clerk orders never do.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth.hashers import check_password, make_password
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ipvas.actors import Actor
from ipvas.errors import ApplicationError, InvalidInput, RateLimited
from ipvas.rows import the_row
from orders.models import Order, PinEventAction, PurchasePin, PurchasePinEvent
from orders.validation import TV_ACCOUNT_RE

PIN_RE = re.compile(r"^[0-9]{4}\Z")
MAX_WRONG_ENTRIES = 5
LOCK_DURATION = timedelta(minutes=15)


class PurchasePinRequired(ApplicationError):
    code = "purchase_pin_required"
    status = 403
    default_message = _("This account has a purchase PIN: enter it to buy.")


class PurchasePinWrong(ApplicationError):
    code = "purchase_pin_wrong"
    status = 403
    default_message = _("The purchase PIN is wrong.")


class PurchasePinLocked(RateLimited):
    """A lock is a limit on guesses: answered with ``Retry-After``, as every ``RateLimited`` is, but 403."""

    code = "purchase_pin_locked"
    status = 403
    default_message = _("Too many wrong PIN entries: purchases are locked for 15 minutes.")


@dataclass(frozen=True)
class PinState:
    """What the pages show about an account's PIN."""

    is_set: bool
    set_at: datetime | None = None
    locked_until: datetime | None = None
    wrong_entries: int = 0


def pin_state(*, tv_account: str, now: datetime | None = None) -> PinState:
    row = PurchasePin.objects.filter(tv_account=tv_account).first()
    if row is None:
        return PinState(is_set=False)
    now = now or timezone.now()
    return PinState(
        is_set=True,
        set_at=row.set_at,
        locked_until=row.locked_until if row.is_locked(now) else None,
        wrong_entries=row.failed_attempts,
    )


def pin_required(*, tv_account: str) -> bool:
    return PurchasePin.objects.filter(tv_account=tv_account).exists()


def _event(tv_account: str, action: str, *, actor: Actor, now: datetime, reason: str = "", **data: object) -> None:
    PurchasePinEvent.objects.create(
        tv_account=tv_account,
        at=now,
        action=action,
        actor_kind=actor.kind,
        actor_id=actor.id[:150],
        reason=reason[:255],
        data=data,
    )


def _valid_account(tv_account: str) -> None:
    if not TV_ACCOUNT_RE.match(tv_account or ""):
        raise InvalidInput(fields={"tv_account": [_("A TV account is 1-64 letters, digits, '_', '.', '-' or '@'.")]})


def pin_set(*, tv_account: str, pin: str, actor: Actor, reason: str = "") -> PurchasePin:
    """Set (or change) the account's PIN; a new PIN lifts any lock and forgets earlier wrong entries."""
    _valid_account(tv_account)
    if not isinstance(pin, str) or not PIN_RE.match(pin):
        raise InvalidInput(fields={"pin": [_("A purchase PIN is 4 digits.")]})
    pin_hash = make_password(pin)  # slow: before the transaction
    now = timezone.now()
    with transaction.atomic():
        row = PurchasePin.objects.select_for_update().filter(tv_account=tv_account).first()
        action = PinEventAction.CHANGED if row is not None else PinEventAction.SET
        if row is None:
            row = PurchasePin(tv_account=tv_account)
        row.pin_hash = pin_hash
        row.failed_attempts = 0
        row.locked_until = None
        row.set_at = now
        row.set_by_kind = actor.kind
        row.set_by_id = actor.id[:150]
        row.save()
        _event(tv_account, action, actor=actor, now=now, reason=reason)
    return row


def pin_clear(*, tv_account: str, actor: Actor, reason: str = "") -> bool:
    """Clear the account's PIN (and with it any lock). False when it had none: nothing is written."""
    _valid_account(tv_account)
    now = timezone.now()
    with transaction.atomic():
        row = PurchasePin.objects.select_for_update().filter(tv_account=tv_account).first()
        if row is None:
            return False
        row.delete()
        _event(tv_account, PinEventAction.CLEARED, actor=actor, now=now, reason=reason)
    return True


def pin_entered(*, order_id: int) -> None:
    """The household's PIN was entered right for an order placed before it was asked (the TV pages): its
    payment may start now (lifecycle.transitions.lock_to_pay refused it until then)."""
    Order.objects.filter(pk=order_id, pin_pending=True).update(pin_pending=False)


def _locked(until: datetime, now: datetime) -> PurchasePinLocked:
    seconds = max(1, math.ceil((until - now).total_seconds()))
    error = PurchasePinLocked(retry_after=seconds)
    error.extra = {"locked_until": until.isoformat(), "retry_after": seconds}
    return error


def pin_check(*, tv_account: str, pin: str | None, actor: Actor, channel: str) -> None:
    """Nothing when the account has no PIN, or ``pin`` is right; else raises the §9 refusal.

    ``channel`` (``epg_api`` or ``tv``) is written with a wrong entry, for the audit trail.
    """
    row = the_row(PurchasePin.objects.filter(tv_account=tv_account))
    if row is None:
        return
    now = timezone.now()
    if row.is_locked(now):
        raise _locked(row.locked_until, now)
    if not pin:
        raise PurchasePinRequired()
    right = bool(PIN_RE.match(pin)) and check_password(pin, row.pin_hash)  # slow: outside the transaction
    refusal: ApplicationError | None = None
    with transaction.atomic():
        row = PurchasePin.objects.select_for_update().filter(pk=row.pk, pin_hash=row.pin_hash).first()
        if row is None:
            # Cleared (nothing is asked now) or changed while the PIN was typed (ask again, nothing counted).
            if pin_required(tv_account=tv_account):
                refusal = PurchasePinWrong()
        else:
            now = timezone.now()
            if row.is_locked(now):
                refusal = _locked(row.locked_until, now)  # a concurrent wrong entry locked it meanwhile
            elif right:
                if row.failed_attempts or row.locked_until:
                    row.failed_attempts = 0
                    row.locked_until = None
                    row.save(update_fields=["failed_attempts", "locked_until", "updated_at"])
            else:
                row.failed_attempts += 1
                _event(
                    tv_account, PinEventAction.WRONG, actor=actor, now=now, channel=channel, entry=row.failed_attempts
                )
                if row.failed_attempts >= MAX_WRONG_ENTRIES:
                    row.locked_until = now + LOCK_DURATION
                    row.failed_attempts = 0
                    _event(
                        tv_account,
                        PinEventAction.LOCKED,
                        actor=actor,
                        now=now,
                        channel=channel,
                        until=row.locked_until.isoformat(),
                        reason=f"{MAX_WRONG_ENTRIES} wrong PIN entries",
                    )
                    refusal = _locked(row.locked_until, now)
                else:
                    left = MAX_WRONG_ENTRIES - row.failed_attempts
                    refusal = PurchasePinWrong(extra={"attempts_left": left})
                row.save(update_fields=["failed_attempts", "locked_until", "updated_at"])
    # Raised after the commit: the wrong entry and the lock stay written.
    if refusal is not None:
        raise refusal
