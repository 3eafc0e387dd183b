"""Logging: the order number on every line about an order, JSON in production, no secrets.

``bind(order_no=...)`` puts a value on every log line for the rest of the
current request or task (a ContextVar, so threads and tasks do not mix);
the request middleware and Celery's task_prerun start each with a clean
context. ``RedactingFilter`` masks mobile numbers, payment codes and key
material in messages before any handler sees them.
"""

from __future__ import annotations

import contextvars
import logging
import re
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse

_context: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("ipvas_log_context", default={})  # noqa: B039

# A mainland mobile number, also as +86…, 86… or 0086… (a partner's answer, a gateway's sender, %2B86 in a URL).
MOBILE = re.compile(r"(?<!\d)((?:\+?86|0086)[- ]?)?(1[3-9]\d)(\d{4})(\d{4})(?!\d)")
# A payment code (付款码, docs/interfaces.md §10: WeChat Pay's 18 digits from 10-15, Alipay's 16-24 from 25-30):
# a one-time bearer credential of the customer's; shown as admin shows it, its first and last four digits. Not the
# digits after a decimal point: Celery's "succeeded in 0.2512345678901234s" is a duration.
PAYMENT_CODE = re.compile(r"(?<![\d.])(1[0-5]\d{16}|(?:2[5-9]|30)\d{14,22})(?!\d)")
SECRETS = re.compile(r"(?i)(api-key\s+|bearer\s+|ticket=|secret[\"'=:\s]+|password[\"'=:\s]+)([A-Za-z0-9._~+/=-]{6,})")


def bind(**values: Any) -> None:
    _context.set({**_context.get(), **{k: v for k, v in values.items() if v not in (None, "")}})


def clear() -> None:
    _context.set({})


def redact(text: str) -> str:
    text = MOBILE.sub(lambda m: f"{m.group(1) or ''}{m.group(2)}****{m.group(4)}", text)
    text = PAYMENT_CODE.sub(lambda m: f"{m.group(1)[:4]}{'*' * (len(m.group(1)) - 8)}{m.group(1)[-4:]}", text)
    return SECRETS.sub(lambda m: f"{m.group(1)}[redacted]", text)


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in _context.get().items():
            setattr(record, key, value)
        return True


# Attributes every LogRecord has; anything else on a record is an "extra".
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class RedactingFilter(logging.Filter):
    """Masks mobile numbers and key material in everything a record carries to a handler:
    the message, the extras (JSON logs print them), tracebacks, and the request
    Django attaches (its repr holds the query string: an SSO ticket, a phone)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string must not kill logging
            message = str(record.msg)
        cleaned = redact(message)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        request = getattr(record, "request", None)
        if request is not None and not isinstance(request, str):
            record.request = f"{getattr(request, 'method', '')} {getattr(request, 'path', '')}"
        for key, value in list(vars(record).items()):
            if key not in _STANDARD and isinstance(value, str):
                setattr(record, key, redact(value))
        if record.exc_info:
            formatter = logging.Formatter()
            record.exc_text = redact(formatter.formatException(record.exc_info))
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


class LogContextMiddleware:
    """Each request starts with a clean log context, tagged with its method and path."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        clear()
        bind(method=request.method, path=request.path)
        return self.get_response(request)


# Beat's periodic rounds that usually find nothing: the outbox relay and the sweeps, every few seconds each.
QUIET_PERIODIC_TASKS = frozenset(
    {
        "ipvas.tasks.relay_outbox",
        "lifecycle.tasks.sweep_deadlines",
        "lifecycle.tasks.sweep_subscriptions",
        "lifecycle.tasks.sweep_contracts",
        "lifecycle.tasks.sweep_stalled",
    }
)
NOTHING_DONE = frozenset({"0", "None", "[]", "{}"})


class QuietPeriodicTasksFilter(logging.Filter):
    """Celery's own INFO lines about the periodic no-op tasks, only when they did something.

    Beat's "Sending due task", the worker's "Task … received" and "Task … succeeded in …s: 0" of
    ``QUIET_PERIODIC_TASKS`` were most of the log at INFO while telling nothing: they are dropped, and
    "succeeded" stays when the task returned a count other than 0 (it relayed or moved something; the
    task logs what itself too). Warnings and errors of these tasks always pass.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO or not record.name.startswith("celery."):
            return True
        data = getattr(record, "data", None)  # the worker's lines carry their context (celery.app.trace)
        if isinstance(data, dict) and data.get("name") in QUIET_PERIODIC_TASKS:
            if "return_value" in data:
                return str(data["return_value"]).strip("'\"") not in NOTHING_DONE
            return False  # "received": whether it will do anything is not known yet
        if record.name == "celery.beat":
            message = record.getMessage()
            return not (
                message.startswith("Scheduler: Sending due task")
                and any(message.endswith(f"({name})") for name in QUIET_PERIODIC_TASKS)
            )
        return True


# Requests Django refuses for what the client sent, which it logs as errors with their traceback.
CLIENT_REFUSALS = frozenset(
    f"django.security.{name}" for name in ("RequestDataTooBig", "TooManyFieldsSent", "TooManyFilesSent")
)


class ClientRefusalsFilter(logging.Filter):
    """A body too large (413) or too many fields (400) is the client's mistake, answered: a warning of one line.

    Django logs each as an ERROR with a traceback of its own code, which pages whoever watches for errors.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name in CLIENT_REFUSALS and record.levelno > logging.WARNING:
            record.levelno, record.levelname = logging.WARNING, logging.getLevelName(logging.WARNING)
            record.exc_info, record.exc_text = None, None
        return True
