"""Finding English that a Chinese page should not show (issue #12, item 6).

A page is read as its reader reads it: the text of every element (a ``<title>``, options of a ``<select>``
included) and what the browser shows or says of an element (``placeholder``, ``title``, ``aria-label``,
``alt``, a button's ``value``), never scripts, styles or the raw data of a few fields named by the caller.

A word is English when it is made of letters only and is not all capitals: "Show", "cash_payback", "epg".
Codes and numbers pass (anything with a digit: order numbers, ``tv1001``, ``V0001``), so do capitals
(``SMP``, ``CRM``, ``EPG``, ``IPTV``, ``VIP-MONTH``, ``CSV``), addresses (with a ``/``), and the words of
``ALLOWED``: brand names and the few that are the same in both languages.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

ALLOWED = frozenset(
    {
        # Brand and product names, written in Latin letters in Chinese text too.
        "WeChat", "Pay", "Alipay", "IPVAS", "Api-Key", "Api", "Key", "Django", "WebAuthn",
        # Keys on the keyboard, named in Django's own Chinese help texts.
        "Control", "Command", "Mac",
        # Units and fixed forms.
        "px",
    }
)  # fmt: skip
SHOWN_ATTRIBUTES = ("placeholder", "title", "aria-label", "alt")
# A run of letters, digits and the marks codes are written with; one with no letter is no word.
WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9_'’.$@+/:-]*")
SKIPPED_ELEMENTS = {"script", "style", "template"}


class _Reader(HTMLParser):
    def __init__(self, skip_classes: frozenset[str]) -> None:
        super().__init__(convert_charrefs=True)
        self.skip_classes = skip_classes
        self.stack: list[tuple[str, bool]] = []  # (tag, skipped)
        self.texts: list[str] = []

    def _skipping(self) -> bool:
        return any(skipped for _tag, skipped in self.stack)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        classes = set((values.get("class") or "").split())
        skipped = tag in SKIPPED_ELEMENTS or bool(classes & self.skip_classes)
        if tag not in {"br", "img", "input", "meta", "link", "hr", "col", "source", "wbr"}:
            self.stack.append((tag, skipped))
        if skipped or self._skipping():
            return
        if tag == "img" and "/admin/img/" in (values.get("src") or ""):
            return  # Django's icons: their alt texts ("True", "Search") are Django's, fixed in its templates
        for name in SHOWN_ATTRIBUTES:
            if values.get(name):
                self.texts.append(values[name] or "")
        if tag == "input" and (values.get("type") or "") in ("submit", "button") and values.get("value"):
            self.texts.append(values["value"] or "")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if self.stack and self.stack[-1][0] == tag:
            self.stack.pop()

    def handle_endtag(self, tag: str) -> None:
        for index in range(len(self.stack) - 1, -1, -1):
            if self.stack[index][0] == tag:
                del self.stack[index:]
                return

    def handle_data(self, data: str) -> None:
        if data.strip() and not self._skipping():
            self.texts.append(data)


def shown_texts(html: str, *, skip_classes: frozenset[str] = frozenset()) -> list[str]:
    reader = _Reader(skip_classes)
    reader.feed(html)
    return reader.texts


def english_words(html: str, *, allowed: frozenset[str] = frozenset(), skip_classes: frozenset[str] = frozenset()):
    """The English words the page shows, each with the text it stands in (to find it)."""
    found = []
    for text in shown_texts(html, skip_classes=skip_classes):
        for match in WORD.finditer(text):
            if match.start() and text[match.start() - 1] == ".":
                continue  # a file name's extension (…_业务明细.csv)
            if text.startswith("*", match.end()):
                continue  # the shown start of a masked secret (Django's password summary: ds******)
            word = match.group().rstrip(".:'’-")
            if not any(c.isalpha() for c in word):
                continue
            if is_code_or_name(word) or word in ALLOWED or word in allowed:
                continue
            found.append((word, " ".join(text.split())[:120]))
    return found


def is_code_or_name(word: str) -> bool:
    if any(c.isdigit() for c in word) or "/" in word:
        return True
    if "." in word.strip("."):
        return True  # a dotted name: a module, a task, a file
    if any(c.isupper() for c in word[1:]):
        return True  # CamelCase and random ids (a key's prefix): names, not words
    letters = [c for c in word if c.isalpha()]
    return all(c.isupper() for c in letters)  # SMP, IPTV, VIP-MONTH, Y, TD
