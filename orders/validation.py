"""Syntax of the identifiers that come from outside (docs/interfaces.md §2)."""

from __future__ import annotations

import re

from django.core.validators import RegexValidator
from django.utils.translation import gettext_lazy as _

TV_ACCOUNT_RE = re.compile(r"^[A-Za-z0-9_.@-]{1,64}\Z")
CONTENT_ID_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}\Z")
ORDER_NO_RE = re.compile(r"^[A-Za-z0-9]{1,32}\Z")

tv_account_validator = RegexValidator(TV_ACCOUNT_RE, _("A TV account is 1-64 letters, digits, '_', '.', '-' or '@'."))
content_id_validator = RegexValidator(CONTENT_ID_RE, _("A content id is 1-64 letters, digits, '_', '.', ':' or '-'."))


def normalize_mainland_mobile(raw: str) -> str:
    """'138 0000 0001' or '+86 13800000001' -> '13800000001'; anything else is refused.

    The ``phonenumbers`` metadata knows which prefixes mainland operators
    assign to mobiles, which a regular expression would get wrong in a year.
    """
    import phonenumbers
    from django.core.exceptions import ValidationError

    message = _("Enter an 11-digit mainland China mobile number, for example 13800000001.")
    text = (raw or "").strip()
    if not text or len(text) > 20:
        raise ValidationError(message, code="invalid_mobile")
    try:
        number = phonenumbers.parse(text, "CN")
    except phonenumbers.NumberParseException:
        raise ValidationError(message, code="invalid_mobile") from None
    national = str(number.national_number)
    if (
        number.country_code != 86
        or len(national) != 11
        or not phonenumbers.is_valid_number_for_region(number, "CN")
        or phonenumbers.number_type(number)
        not in (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE)
    ):
        raise ValidationError(message, code="invalid_mobile")
    return national


def reachable_mobile(phone: str | None) -> str:
    """The number as we write every number ('13800000001') when an SMS can reach it, whatever form it comes in
    ('+86 138 0000 0001'); '' when it is none (empty, a landline, rubbish)."""
    from django.core.exceptions import ValidationError

    text = (phone or "").strip()
    try:
        return normalize_mainland_mobile(text) if text else ""
    except ValidationError:
        return ""


def bound_mobile(phone: str) -> str:
    """The account's bound mobile as we write every number, whatever form the SMP gives it in: an SMS reply
    comes from the normalised number and must find its confirmation. A value that is no mainland mobile is
    kept as given (no SMS can be sent to it)."""
    return reachable_mobile(phone) or (phone or "").strip()
