"""One hierarchy for every error the service layer raises.

``ApplicationError`` subclasses are answers for the caller: what they can fix
(bad input, wrong state) or what they must wait for (an outside system is
down). Every interface (EPG API, clerk pages, admin) maps them in one place.
"""

from __future__ import annotations

from typing import Any

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _


class ApplicationError(Exception):
    code: str = "error"
    status: int = 400
    default_message: str | Promise = _("Error")

    def __init__(
        self,
        message: str | Promise | None = None,
        *,
        code: str | None = None,
        fields: dict[str, list[str]] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.message = message if message is not None else self.default_message
        if code is not None:
            self.code = code
        self.fields = fields or {}
        self.extra = extra or {}
        super().__init__(str(self.message))


class InvalidInput(ApplicationError):
    code = "invalid"
    status = 400
    default_message = _("Invalid input.")


class NotFound(ApplicationError):
    code = "not_found"
    status = 404
    default_message = _("Not found.")


class InvalidState(ApplicationError):
    """The action is not allowed in the object's current status."""

    code = "invalid_state"
    status = 409
    default_message = _("The action is not allowed in the current status.")


class IdempotencyConflict(ApplicationError):
    code = "idempotency_conflict"
    status = 409
    default_message = _("This Idempotency-Key was used with another request.")


class RateLimited(ApplicationError):
    code = "rate_limited"
    status = 429
    default_message = _("Too many requests.")

    def __init__(self, message: str | Promise | None = None, *, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ExternalServiceError(ApplicationError):
    """An outside system did not answer: nothing the caller did wrong; try again."""

    code = "service_unavailable"
    status = 503
    default_message = _("A partner system is unavailable; please try again.")


class LimitUnavailable(RateLimited):
    """A limit that fails closed could not count (the shared cache is down): refused for now, with
    ``Retry-After`` as every ``RateLimited`` is, but 503: nothing the caller did wrong (ipvas/ratelimit.py)."""

    code = "service_unavailable"
    status = 503
    default_message = _("This cannot be done at the moment; please try again shortly.")
