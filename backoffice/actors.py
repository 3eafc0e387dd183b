"""Who did something, as admin shows it: a label and a name, never an API key's hash (issue #12, item 4).

Every record of who acted (order events and origins, the ledger, refunds, work items, subscription and PIN
events, discrepancies, admin's history) keeps an actor as a kind and an id. An EPG client's id is its API key
row's primary key, ``<prefix>.sha512$$<hash of the key>``: it stays what the records and the ownership checks
hold, and admin shows the client's name in its place, wherever it appears (in an actor, or quoted in a text).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from billing.models import Provider
from epg_api.models import EpgClient
from ipvas.actors import ActorKind

# An API key row's id: the key's public prefix, a dot, then the hasher's name and the hash ("sha512$$…").
KEY_ID = re.compile(r"(?<![A-Za-z0-9])([A-Za-z0-9]{8})\.[a-z0-9_]+\$[A-Za-z0-9$./+=_-]*")


def client_names(texts: Iterable[str]) -> dict[str, str]:
    """The names of the EPG clients whose key ids appear in ``texts``, by key prefix (one query)."""
    prefixes = {match.group(1) for text in texts if text for match in KEY_ID.finditer(text)}
    if not prefixes:
        return {}
    return dict(EpgClient.objects.filter(prefix__in=prefixes).values_list("prefix", "name"))


def _client(prefix: str, names: dict[str, str]) -> str:
    name = names.get(prefix)
    return name if name else _("EPG client with key %(prefix)s…") % {"prefix": prefix}


def scrub(text: str, names: dict[str, str] | None = None) -> str:
    """``text`` with every API key id in it replaced by its EPG client's name."""
    if not text or not KEY_ID.search(text):
        return text
    names = client_names([text]) if names is None else names
    return KEY_ID.sub(lambda match: _client(match.group(1), names), text)


# What the system's own actors are called: the background tasks (Actor.task), the system's parts (Actor.system).
TASKS = {
    "precheck": gettext_lazy("pre-check"),
    "provision": gettext_lazy("activation"),
    "deadline": gettext_lazy("deadline"),
    "payment-deadline": gettext_lazy("payment deadline"),
    "payment-code": gettext_lazy("payment code"),
    "crm-activity": gettext_lazy("CRM marketing activity"),
    "refund": gettext_lazy("refund"),
    "reverse-phone-bill": gettext_lazy("phone-bill reversal"),
    "close-provider-order": gettext_lazy("closing the provider's order"),
    "renewal": gettext_lazy("renewal"),
    "deduction": gettext_lazy("deduction under contract"),
    "contracts": gettext_lazy("deduction contracts"),
}
SYSTEM_PARTS = {
    "reconciliation": gettext_lazy("reconciliation"),
    "sandbox": gettext_lazy("sandbox"),
}


def _who(kind: str, actor_id: str, names: dict[str, str] | None) -> str:
    if kind == ActorKind.TASK and actor_id in TASKS:
        return str(TASKS[actor_id])
    if kind == ActorKind.SYSTEM and actor_id in SYSTEM_PARTS:
        return str(SYSTEM_PARTS[actor_id])
    if kind == ActorKind.PROVIDER and actor_id in Provider.values:
        return str(Provider(actor_id).label)
    return scrub(actor_id, names)


def kind_label(kind: str) -> str:
    return str(ActorKind(kind).label) if kind in ActorKind.values else kind


def actor_label(kind: str, actor_id: str = "", names: dict[str, str] | None = None) -> str:
    """ "EPG client: 某某 IPTV EPG", "admin: root", "background task: sweep"…"""
    label = kind_label(kind)
    if not actor_id:
        return label
    return f"{label}: {_who(kind, actor_id, names)}"


def actor_text(text: str, names: dict[str, str] | None = None) -> str:
    """An actor written as text, ``kind:id`` (``str(Actor)``: resolved_by, closed_by, placed_by), shown."""
    if not text:
        return text
    kind, sep, actor_id = text.partition(":")
    if sep and kind in ActorKind.values:
        return actor_label(kind, actor_id, names)
    return scrub(text, names)


def scrub_data(value: Any, names: dict[str, str] | None = None) -> Any:
    """A JSON value (a subscription's consent evidence, an event's details) with every key id replaced."""
    if isinstance(value, str):
        return scrub(value, names)
    if isinstance(value, dict):
        return {key: scrub_data(item, names) for key, item in value.items()}
    if isinstance(value, list):
        return [scrub_data(item, names) for item in value]
    return value
