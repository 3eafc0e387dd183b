"""CRM single sign-on: an RS256 JWT ticket, verified, used once, then a session (docs/interfaces.md §5)."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone

from channels_crm.models import Clerk, SsoLogin, SsoTicketUse, Store
from ipvas.credentials import accepted_public_key_pems, load_public_key
from ipvas.purge import purge_in_batches

logger = logging.getLogger(__name__)
REQUIRED_CLAIMS = ["iss", "aud", "sub", "name", "store_code", "virtual_staff_id", "iat", "exp", "jti"]
LEEWAY_SECONDS = 5
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")


class TicketRefused(Exception):
    """Why a ticket does not log anyone in; the message is shown (403).

    ``staff_id`` is the clerk a ticket signed by the CRM names (expired, used already, of an account a ticket may
    not sign in…); None when the ticket is not the CRM's, or names no usable staff id: anyone can write one."""

    def __init__(self, reason: str, *, staff_id: str | None = None) -> None:
        super().__init__(reason)
        self.staff_id = staff_id


@dataclass(frozen=True)
class Ticket:
    staff_id: str
    name: str
    store_code: str
    virtual_staff_id: str
    jti: str
    expires_at: datetime


def crm_public_keys() -> list[RSAPublicKey]:
    """CRM_SSO_PUBLIC_KEY, then CRM_SSO_PUBLIC_KEY_PREVIOUS while the CRM switches keys (when configured)."""
    return [
        load_public_key(pem)
        for pem in accepted_public_key_pems("CRM_SSO_PUBLIC_KEY", sandbox_private_file="crm_sso_private_key.pem")
    ]


def _decode_with(token: str, key: RSAPublicKey) -> dict[str, Any]:
    return jwt.decode(
        token,
        key,
        algorithms=["RS256"],
        audience=settings.CRM_SSO_AUDIENCE,
        issuer=settings.CRM_SSO_ISSUER,
        leeway=LEEWAY_SECONDS,
        options={"require": REQUIRED_CLAIMS},
    )


def _decode(token: str) -> dict[str, Any]:
    """The ticket's claims, verified with the CRM's key, or with its other key while it switches. The CRM's
    tickets name no key (no ``kid``, docs/interfaces.md §5), so a signature that is not the first key's is tried
    with the other; anything else wrong with a ticket (its algorithm, its claims) is so under either key, and
    refused at once."""
    current, *others = crm_public_keys()
    try:
        return _decode_with(token, current)
    except jwt.InvalidSignatureError:
        for other in others:
            try:
                claims = _decode_with(token, other)
            except jwt.InvalidSignatureError:
                continue
            # Until these stop, the CRM has not switched (or has switched back): CRM_SSO_PUBLIC_KEY_PREVIOUS stays.
            logger.info("SSO ticket signed with CRM_SSO_PUBLIC_KEY_PREVIOUS")
            return claims
        raise


def _text(claims: dict[str, object], name: str, max_length: int) -> str:
    value = claims.get(name)
    if not isinstance(value, str) or not value.strip() or len(value) > max_length:
        raise TicketRefused(f"claim {name} must be a non-empty string of at most {max_length} characters")
    value = value.strip()
    if CONTROL_CHARACTERS.search(value):
        # A NUL cannot be stored in PostgreSQL text (an error, not a refusal); no CRM sends control characters.
        raise TicketRefused(f"claim {name} holds control characters")
    return value


def _staff_id(claims: dict[str, object]) -> str | None:
    value = claims.get("sub")
    if not isinstance(value, str) or not value.strip() or len(value) > 64 or CONTROL_CHARACTERS.search(value):
        return None
    return value.strip()


def _signed_staff_id(token: str) -> str | None:
    """The ``sub`` of a ticket whose signature was verified and whose claims were then refused. PyJWT checks the
    signature before any claim (``decode_complete``): its claim errors are raised of signed tickets only."""
    try:
        return _staff_id(jwt.decode(token, options={"verify_signature": False}))
    except jwt.PyJWTError:
        return None


def verify_ticket(token: str) -> Ticket:
    if not token:
        raise TicketRefused("no ticket")
    if len(token) > 4096:
        raise TicketRefused("the ticket is longer than 4096 characters")
    try:
        claims = _decode(token)
    except jwt.ExpiredSignatureError:
        raise TicketRefused("the ticket has expired", staff_id=_signed_staff_id(token)) from None
    except jwt.InvalidAudienceError:
        raise TicketRefused("the ticket is for another audience", staff_id=_signed_staff_id(token)) from None
    except jwt.InvalidIssuerError:
        raise TicketRefused("the ticket was not issued by the CRM", staff_id=_signed_staff_id(token)) from None
    except jwt.MissingRequiredClaimError as exc:
        raise TicketRefused(f"the ticket lacks the claim {exc.claim}", staff_id=_signed_staff_id(token)) from None
    except jwt.InvalidSignatureError:
        raise TicketRefused("the ticket's signature is not the CRM's") from None
    except jwt.ImmatureSignatureError:  # iat (or nbf) later than now, beyond the leeway
        raise TicketRefused("the ticket was issued in the future", staff_id=_signed_staff_id(token)) from None
    except jwt.PyJWTError as exc:
        raise TicketRefused(f"the ticket is not valid: {exc.__class__.__name__}") from None
    try:
        return _ticket(claims)
    except TicketRefused as exc:
        raise TicketRefused(str(exc), staff_id=_staff_id(claims)) from None


def _ticket(claims: dict[str, Any]) -> Ticket:
    iat, exp = claims["iat"], claims["exp"]
    if not isinstance(iat, int | float) or not isinstance(exp, int | float):
        raise TicketRefused("iat and exp must be numbers")
    if exp - iat > settings.CRM_SSO_MAX_TICKET_SECONDS:
        raise TicketRefused(f"the ticket lives longer than {settings.CRM_SSO_MAX_TICKET_SECONDS} s")
    return Ticket(
        staff_id=_text(claims, "sub", 64),
        name=_text(claims, "name", 100),
        store_code=_text(claims, "store_code", 32),
        virtual_staff_id=_text(claims, "virtual_staff_id", 32),
        jti=_text(claims, "jti", 128),
        expires_at=datetime.fromtimestamp(exp, tz=UTC),
    )


def sso_login(*, token: str, remote_addr: str | None) -> Clerk:
    """Verify the ticket, spend its jti, and create or update the clerk. Audited either way."""
    try:
        ticket = verify_ticket(token)
        with transaction.atomic():
            try:
                with transaction.atomic():
                    SsoTicketUse.objects.create(jti=ticket.jti, expires_at=ticket.expires_at + timedelta(minutes=5))
            except IntegrityError:
                raise TicketRefused("the ticket was used already", staff_id=ticket.staff_id) from None
            clerk = _clerk_for(ticket)
            SsoLogin.objects.create(
                staff_id=ticket.staff_id,
                store_code=ticket.store_code,
                jti=ticket.jti,
                accepted=True,
                remote_addr=remote_addr,
            )
        return clerk
    except TicketRefused as exc:
        SsoLogin.objects.create(
            accepted=False, staff_id=exc.staff_id or "", reason=str(exc)[:255], remote_addr=remote_addr
        )
        logger.warning("SSO ticket refused: %s", exc)
        raise


def _clerk_for(ticket: Ticket) -> Clerk:
    store, _ = Store.objects.get_or_create(code=ticket.store_code)
    clerk = Clerk.objects.select_related("user").filter(staff_id=ticket.staff_id).first()
    if clerk is None:
        User = get_user_model()
        user, made = User.objects.get_or_create(username=f"crm-{ticket.staff_id}"[:150])
        if not made and (user.is_staff or user.is_superuser or hasattr(user, "clerk")):
            # A ticket makes or updates clerks; it never signs in as an operator's staff account.
            raise TicketRefused("the staff id belongs to an account that is not a clerk's", staff_id=ticket.staff_id)
        if made:
            user.set_unusable_password()
        user.first_name = ticket.name[:150]
        user.save()
        return Clerk.objects.create(
            user=user,
            staff_id=ticket.staff_id,
            name=ticket.name,
            store=store,
            virtual_staff_id=ticket.virtual_staff_id,
        )
    if clerk.user.is_staff or clerk.user.is_superuser or not clerk.user.is_active:
        # Whoever linked a clerk to it, a ticket never opens an operator's (or a disabled) account's session.
        raise TicketRefused(
            "the staff id's clerk is an account that a ticket may not sign in", staff_id=ticket.staff_id
        )
    # A manager of one store sent to help at another is a clerk there, a manager again back home (is_manager).
    clerk.name = ticket.name
    clerk.store = store
    clerk.virtual_staff_id = ticket.virtual_staff_id
    clerk.save(update_fields=["name", "store", "virtual_staff_id"])
    return clerk


def purge_used_tickets() -> int:
    """Forget the ids of tickets that expired ``SSO_TICKET_RETENTION_DAYS`` ago (beat, hourly):
    an expired ticket is refused by its ``exp`` whether its id is known or not."""
    cutoff = timezone.now() - timedelta(days=settings.SSO_TICKET_RETENTION_DAYS)
    return purge_in_batches(SsoTicketUse.objects.filter(expires_at__lt=cutoff))
