"""JSON from outside, parsed with a bound on nesting (issue #11, item 6).

``json.loads`` recurses once per level: 6 KB of ``[`` exhausts Python's stack
(``RecursionError``, an HTML 500 where it escaped). Every body we parse from
outside — the EPG API (``BoundedJSONParser``, DRF's parser), the SMS gateway's
replies, the WeChat Pay notifications, the sandbox — goes through ``loads``
here, which refuses more than ``MAX_DEPTH`` levels before parsing, with a
``ValueError`` the caller already turns into its "bad JSON" answer.
"""

from __future__ import annotations

import json
import re
from typing import Any

from django.conf import settings
from rest_framework import parsers
from rest_framework.exceptions import ParseError
from rest_framework.utils import json as drf_json

MAX_DEPTH = 32  # none of our contracts nests more than 4 levels
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)
_BRACKET = re.compile(r"[\[\]{}]")


class JsonTooDeep(ValueError):
    """More levels of nesting than anyone sends us in good faith."""


def check_depth(text: str, max_depth: int = MAX_DEPTH) -> None:
    if text.count("[") + text.count("{") <= max_depth:
        return  # cannot nest deeper than it has brackets (the common case: a glance)
    depth = 0
    for bracket in _BRACKET.finditer(_STRING.sub("", text)):  # brackets inside strings do not nest
        if bracket.group() in "[{":
            depth += 1
            if depth > max_depth:
                raise JsonTooDeep(f"JSON nested deeper than {max_depth} levels")
        else:
            depth -= 1


def loads(data: str | bytes | bytearray, *, max_depth: int = MAX_DEPTH, **kwargs: Any) -> Any:
    """``json.loads`` that refuses deep nesting (and undecodable bytes) with a ValueError."""
    text = data.decode("utf-8") if isinstance(data, bytes | bytearray) else data  # UnicodeDecodeError: a ValueError
    check_depth(text, max_depth)
    try:
        return json.loads(text, **kwargs)
    except RecursionError:  # the bound above makes this unreachable; a second line of defence
        raise JsonTooDeep("JSON nested too deeply") from None


class BoundedJSONParser(parsers.JSONParser):
    """DRF's JSON parser (REST_FRAMEWORK's DEFAULT_PARSER_CLASSES) through ``loads``."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: dict[str, Any] | None = None) -> Any:
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            text = stream.read().decode(encoding)
            return loads(text, parse_constant=drf_json.strict_constant if self.strict else None)
        except LookupError:  # charset=rot13, base64...: not a text encoding
            raise ParseError(f"JSON parse error - unknown charset {encoding!r}") from None
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
