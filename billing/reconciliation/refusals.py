"""Why a statement file is refused: message codes with their facts, rendered in the reader's language.

As ``details`` does for an item's outcome: a parser or the importer raises
``StatementError(line_no, code, **facts)`` with plain JSON facts (a column's
name, the text found there, quoted as Python quotes it, a day in ISO); the
upload page, the command and a run's notes render it when they show it,
through gettext, so that the same refusal reads in Chinese or English,
whichever language imported the file. A run keeps the refusal of a fetched
file as ``[line_no, code, facts]`` (``ReconciliationRun.refusals``).

The providers' own column names, markers and values (交易状态, #交易合计,
SUCCESS…) stay as the provider writes them: facts, or literal in a message.
A fact is shown by its name: ``what`` is a source's code shown as the kind
of file it should be, ``statement_source`` one shown as its label; a list
is shown joined.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.utils import translation
from django.utils.functional import Promise
from django.utils.translation import gettext, pgettext
from django.utils.translation import gettext_lazy as _

from billing.models.reconciliation import StatementSource

Record = list[Any]  # [line_no or None, code, {name: value}]

MESSAGES: dict[str, Promise] = {
    # --- any format
    "empty": _("the file is empty: not %(what)s"),
    "long_line": _("a line longer than %(limit)s bytes: this is not %(what)s"),
    "not_text": _("not %(encoding)s text: is this %(what)s?"),
    "no_columns": _("%(what)s without the column(s) %(columns)s"),
    "field_count": _("%(found)s fields where the header has %(expected)s"),
    "not_csv": _("not a CSV row: %(error)s"),
    "not_yuan": _("%(column)s %(value)s is not an amount in yuan"),
    "bad_key": _("%(column)s %(value)s is empty or longer than %(limit)s characters"),
    "not_time": _("%(column)s %(value)s is not a time like 2026-11-25 12:00:00"),
    "other_day": _("%(column)s %(time)s is not on %(day)s: a statement of another day?"),
    "not_number": _("%(column)s %(value)s is not a number"),
    # --- WeChat Pay's trade bill
    "wechat_first_line": _("not %(what)s: the first line should start with %(expected)s, not %(found)s"),
    "wechat_backtick": _("a detail row of a WeChat Pay trade bill starts with a backtick (`)"),
    "wechat_no_summary": _("the file ends without its summary (%(summary)s,…): cut short?"),
    "wechat_summary_no_values": _("the summary header is not followed by its values"),
    "wechat_summary_count": _("the summary counts %(stated)s rows, the file has %(rows)s: cut short or edited?"),
    "wechat_summary_values": _("%(found)s summary values where its header has %(expected)s"),
    "wechat_summary_total": _("the summary's %(total)s is %(stated)s, the rows' %(column)s add up to %(sum)s: edited?"),
    "wechat_after_summary": _("text after the summary"),
    "wechat_other_merchant": _("商户号 %(value)s is not ours (%(ours)s): another merchant's bill"),
    "wechat_refund_columns": _("a refund row, and the header has no %(columns)s"),
    "wechat_reversal_columns": _("a reversed trade's row, and the header has no 申请退款金额 or 退款金额"),
    "wechat_status": _("交易状态 %(value)s is none of SUCCESS, REFUND, REVOKED"),
    # --- Alipay's business detail
    "alipay_first_line": _("not %(what)s: the first line should be %(expected)s, not %(found)s"),
    "alipay_row_before_list": _("expected the %(marker)s marker line, found a row"),
    "alipay_other_account": _("the statement of Alipay account %(account)s, not ours (%(ours)s…)"),
    "alipay_other_day": _("the statement starts on %(starts)s, not on %(day)s"),
    "alipay_no_list": _("no %(marker)s marker: not %(what)s"),
    "alipay_no_period": _("no 起始日期 line before the detail list: the statement's day is unknown"),
    "alipay_no_header": _("the detail list has no header"),
    "alipay_comment_in_list": _("a comment line inside the detail list"),
    "alipay_no_list_end": _("the file ends inside the detail list (no %(marker)s marker): cut short?"),
    "alipay_total_count": _("%(total)s counts %(stated)s rows, the list has %(rows)s: edited?"),
    "alipay_total_no_amounts": _("%(total)s without its 商家实收 and 商家优惠 totals"),
    "alipay_total_sum": _("%(total)s says %(column)s %(stated)s, the rows add up to %(sum)s: edited?"),
    "alipay_row_after_list": _("a row after the end of the detail list"),
    "alipay_no_total": _("no %(total)s line after the detail list: cut short?"),
    "alipay_business": _("业务类型 %(value)s is neither 交易 nor 退款"),
    # --- the SMP's provisioning list
    "smp_first_layout": _(
        "%(what)s in the first layout, without unsubscriptions: the list must start with %(expected)s "
        "(docs/protocols.md)"
    ),
    "smp_header": _("not %(what)s: the first line should be %(expected)s"),
    "smp_event": _("event %(value)s is not one of %(allowed)s"),
    "smp_order_no": _("order_no %(value)s is not 1-32 letters and digits"),
    "smp_charge": _("charge %(value)s is not one of %(allowed)s"),
    "smp_amount": _("amount_fen %(value)s is not a whole number of fen"),
    "smp_at": _("at %(value)s is not an ISO 8601 time"),
    "smp_at_no_zone": _("at %(value)s has no time zone"),
    "smp_other_day": _("at %(time)s is not on %(day)s: a list of another day?"),
    # --- the importer
    "unknown_source": _("unknown statement source %(value)s"),
    "imported_file": _(
        "this file was imported already, as the %(statement_source)s of %(day)s "
        "(statement %(statement_id)s, %(file_name)s)"
    ),
    "imported_file_unnamed": _(
        "this file was imported already, as the %(statement_source)s of %(day)s (statement %(statement_id)s, no name)"
    ),
    "imported_day": _(
        "the %(statement_source)s of %(day)s is imported already (statement %(statement_id)s); replace it?"
    ),
    "imported_meanwhile": _("the %(statement_source)s of %(day)s was imported at the same time by someone else"),
}

# What a file should have been, by its source's code.
WHAT: dict[str, Promise] = {
    StatementSource.WECHATPAY: _("a WeChat Pay trade bill"),
    StatementSource.ALIPAY: _("an Alipay business-detail statement (…_业务明细.csv)"),
    StatementSource.SMP: _("an SMP provisioning list"),
}


def _shown(name: str, value: Any) -> str:
    if name == "what":
        return str(WHAT.get(value, value))
    if name == "statement_source":
        return str(StatementSource(value).label) if value in StatementSource.values else str(value)
    if isinstance(value, list):
        return pgettext("list separator", ", ").join(str(item) for item in value)
    return str(value)


def why(code: str, facts: dict[str, Any]) -> str:
    """The refusal's reason, without its line, in the active language."""
    message = MESSAGES.get(code)
    if message is None:
        return " ".join([code, *(f"{name}={value}" for name, value in facts.items())])
    try:
        return str(message) % {name: _shown(name, value) for name, value in facts.items()}
    except (KeyError, TypeError, ValueError):
        return f"{code}: {facts}"


def render(line_no: int | None, code: str, facts: dict[str, Any]) -> str:
    """The refusal as one text in the active language: "line 3: …", or the reason alone for the whole file."""
    reason = why(code, facts)
    return gettext("line %(line)s: %(why)s") % {"line": line_no, "why": reason} if line_no else reason


# A run's note of a fetched file that was refused (billing.reconciliation.services), as the notes keep it:
# in English, as the logs say it; shown from the run's refusals instead, in the reader's language.
REFUSED_NOTE = "{source}: the fetched file was refused ({why})"


def refused_note(source: str, record: Record) -> str:
    """The note of ``source``'s fetched file refused, in English (as the notes and the logs keep it)."""
    with translation.override("en"):
        return REFUSED_NOTE.format(source=source, why=render(*record))


def notes_text(notes: str, refusals: dict[str, Record] | None, *, other: Callable[[str], str] = str) -> str:
    """A run's notes for a person: a refused file's note rendered from its refusal in the active language,
    each other line through ``other`` (admin says them in words, backoffice.reasons.note_text)."""
    shown = []
    for line in notes.splitlines():
        source = line.partition(":")[0]
        record = (refusals or {}).get(source)
        if record is not None and line == refused_note(source, record):
            label = StatementSource(source).label if source in StatementSource.values else source
            said = gettext("%(source)s: the fetched file was refused (%(rest)s).")
            shown.append(said % {"source": label, "rest": render(*record)})
        else:
            shown.append(other(line))
    return "\n".join(shown)
