"""Admin's history (LogEntry), in the reader's language, with what changed from what to what (issue #12, item 6).

Django keeps a change as JSON (``[{"changed": {"fields": ["Price (fen)"]}}]``) and translates it when shown;
it looked the labels up as they are written on the form ("Price (fen)"), which the catalogs do not hold, and
it does not keep the values. Admin's own changes here are written as JSON too, with more in them:

* ``{"values": {"price_fen": [2500, 2600], ...}}``: each changed field's old and new value (the product admin);
* ``{"why": "..."}``: the reason a person gave;
* ``{"note": {"what": "refund_requested", "how": "cash_payback", "why": "..."}}``: one of admin's own actions
  (``NOTES``), its outcome a code that is shown as words.

``change_text(entry)`` says it all in the current language; entries written before stay as they were written.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from django.contrib.admin.models import LogEntry
from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.utils import formats, timezone
from django.utils.dateparse import parse_datetime
from django.utils.text import get_text_list
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext

from backoffice.actors import scrub

# Admin's own actions and what their outcome codes say.
NOTES: dict[str, Any] = {
    "refund_requested": gettext_lazy("Refund started: %(how)s. Reason: %(why)s"),
    "work_item": gettext_lazy("Work item: %(how)s. Note: %(why)s"),
    "discrepancy": gettext_lazy("Discrepancy: %(how)s. Reason: %(why)s"),
    "renewal_cancelled": gettext_lazy("Automatic renewal cancelled. Reason: %(why)s"),
    # Written by epg_api.admin (which does not import this module): ``how`` is the new key's prefix.
    "new_epg_key": gettext_lazy("A new key was issued for the client: %(how)s."),
}
OUTCOMES: dict[str, Any] = {
    # A refund started in admin (lifecycle.manual.refund_by_admin answers one of these).
    "provider_refund": gettext_lazy("a refund to the customer's WeChat Pay or Alipay account"),
    "smp_reversal": gettext_lazy("a reversal of the phone-bill charge at the SMP"),
    "cash_payback": gettext_lazy("a work item for the store to pay the cash back"),
    "already_under_way": gettext_lazy("a refund of this order was under way already"),
    # Work items and discrepancies (the actions of their forms).
    "resolve": gettext_lazy("marked resolved"),
    "resolved": gettext_lazy("marked resolved"),
    "cash_paid_back": gettext_lazy("the store paid the cash back"),
    "paid_back_by_hand": gettext_lazy("paid back by hand, outside the provider"),
    "refunded_at_smp_by_hand": gettext_lazy("refunded in the SMP's console by hand"),
    "deduction_failed_by_hand": gettext_lazy("deduction seen failed at the provider, by hand"),
    "retry_refund": gettext_lazy("refund retried"),
    "retry_provisioning": gettext_lazy("activation retried"),
    "retried_refund": gettext_lazy("refund retried"),
    "retried_provisioning": gettext_lazy("activation retried"),
    "annotate": gettext_lazy("note added"),
}


def outcome_text(code: str) -> str:
    return str(OUTCOMES[code]) if code in OUTCOMES else code


def note_message(what: str, *, how: str = "", why: str = "") -> str:
    """The change message of one of admin's own actions (``NOTES``), for ``ModelAdmin.log_change``."""
    return json.dumps([{"note": {"what": what, "how": how, "why": why}}], ensure_ascii=False)


# --- a model's values, old and new ------------------------------------------------------------------


def plain(value: Any) -> Any:
    """A form's value as JSON keeps it: what ``shown`` turns back into words."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    if isinstance(value, models.Model):
        return str(value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def changed_values(form: Any, *, skip: tuple[str, ...] = ()) -> dict[str, list[Any]]:
    """{field: [old, new]} of a model form's changed fields."""
    return {
        name: [plain(form.initial.get(name)), plain(form.cleaned_data.get(name))]
        for name in form.changed_data
        if name not in skip
    }


def _field(model: type[models.Model] | None, name: str) -> models.Field | None:
    if model is None:
        return None
    try:
        return model._meta.get_field(name)  # type: ignore[return-value]
    except FieldDoesNotExist:
        return None


def field_label(model: type[models.Model] | None, name: str) -> str:
    field = _field(model, name)
    return str(field.verbose_name) if field is not None else name


def shown(model: type[models.Model] | None, name: str, value: Any) -> str:
    """A stored value in words: choices by their labels, yes and no, times in local time, lists joined."""
    if value is None or value == "" or value == []:
        return pgettext("no value", "(empty)")
    field = _field(model, name)
    choices: dict[Any, Any] = {}
    enum = getattr(field, "choices_enum", None)
    if enum is not None:
        choices = dict(enum.choices)
    elif field is not None and field.choices:
        choices = dict(field.flatchoices)
    if isinstance(value, list):
        return pgettext("list separator", ", ").join(str(choices.get(item, item)) for item in value)
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if isinstance(value, str) and isinstance(field, models.DateTimeField):
        moment = parse_datetime(value)
        if moment is not None:
            return formats.date_format(timezone.localtime(moment) if timezone.is_aware(moment) else moment, "Y-m-d H:i")
    return str(choices.get(value, value))


# --- an entry, said ---------------------------------------------------------------------------------


def _label_of(written: str) -> str:
    """A field's label as Django wrote it in a change ("Price (fen)"), in the current language."""
    said = _(written)
    if said == written and written[:1].isupper():
        lower = written[:1].lower() + written[1:]
        said = _(lower)
        if said == lower:
            return written
    return said


def change_text(entry: LogEntry) -> str:
    """What ``entry`` changed, in the current language; an API key's id in it shows as its client's name."""
    raw = entry.change_message or ""
    try:
        data = json.loads(raw) if raw.startswith("[") else None
    except json.JSONDecodeError:
        data = None
    if not isinstance(data, list):
        return scrub(entry.get_change_message())
    model = entry.content_type.model_class() if entry.content_type_id else None
    parts: list[str] = []
    values: dict[str, Any] = {}
    for sub in data:
        if not isinstance(sub, dict):
            continue
        values.update(sub.get("values") or {})
    for sub in data:
        if not isinstance(sub, dict):
            continue
        if "added" in sub:
            parts.append(_("Added."))
        elif "changed" in sub and not values:
            labels = [_label_of(str(label)) for label in sub["changed"].get("fields", [])]
            parts.append(_("Changed %(fields)s.") % {"fields": get_text_list(labels, _("and"))} if labels else "")
        elif "deleted" in sub:
            parts.append(_("Deleted."))
        elif "note" in sub and isinstance(sub["note"], dict):
            note = sub["note"]
            template = NOTES.get(str(note.get("what", "")))
            if template is not None:
                how = outcome_text(str(note.get("how", "")))
                parts.append(str(template) % {"how": how, "why": note.get("why", "")})
        elif sub.get("why"):
            parts.append(_("Reason: %(why)s") % {"why": sub["why"]})
    if values:
        changes = [
            _("%(field)s: %(old)s → %(new)s")
            % {"field": field_label(model, name), "old": shown(model, name, old), "new": shown(model, name, new)}
            for name, (old, new) in ((n, p) for n, p in values.items() if isinstance(p, list) and len(p) == 2)
        ]
        parts.insert(0, _("Changed: %(changes)s.") % {"changes": pgettext("list separator", "; ").join(changes)})
    return scrub(" ".join(part for part in parts if part))
