"""Records written in plain English, said in the reader's language.

The system writes why it did something as English records with codes and numbers in them (an order event's
reason, an SSO refusal); the pages show them through a table of (whole-record pattern, translated template).
``Phrases.say`` finds the record's pattern and fills the template with the pattern's named groups, each
shown through ``shown[name]`` when the table gives one; a record the table does not know stays as written.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any


class Phrases:
    def __init__(self, table: Iterable[tuple[str, Any]], *, shown: dict[str, Callable[[str], str]] | None = None):
        self._table = [(re.compile(pattern + r"\Z", re.DOTALL), said) for pattern, said in table]
        self._shown = shown or {}

    def say(self, text: str) -> str | None:
        """``text`` in the page's language, or None when no pattern of the table is the whole of it."""
        for pattern, said in self._table:
            match = pattern.match(text)
            if match:
                values = {
                    name: self._shown[name](value) if name in self._shown else value
                    for name, value in match.groupdict().items()
                }
                return str(said) % values
        return None
