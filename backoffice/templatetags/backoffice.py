"""Template filters of the back office's templates."""

from __future__ import annotations

from typing import Any

from django import template
from django.contrib.admin.models import LogEntry
from django.urls import reverse

from backoffice.history import change_text
from backoffice.reasons import run_by_text
from epg_api.models import EpgClient

register = template.Library()


@register.filter(name="change_text")
def change_text_filter(entry: LogEntry) -> str:
    """An admin history entry in the current language, old → new (backoffice.history)."""
    return change_text(entry)


@register.filter(name="run_by")
def run_by_filter(text: str) -> str:
    """Who ran a reconciliation, in words (backoffice.reasons.run_by_text)."""
    return run_by_text(text or "")


@register.filter(name="shown_pk")
def shown_pk(obj: Any) -> Any:
    """What admin's URLs name ``obj`` by: an EPG client by its key's prefix (its id holds the key's hash)."""
    if isinstance(obj, EpgClient):
        return obj.prefix
    return getattr(obj, "pk", obj)


@register.filter(name="entry_url")
def entry_url(entry: LogEntry) -> str | None:
    """The admin page a history entry is about (``LogEntry.get_admin_url``), an EPG client's by its prefix."""
    if entry.content_type_id and entry.content_type.model_class() is EpgClient:
        prefix = entry.object_id.partition(".")[0]
        return reverse("admin:epg_api_epgclient_change", args=[prefix]) if prefix else None
    return entry.get_admin_url()
