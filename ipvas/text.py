"""Text a database can hold, whatever arrives from outside."""

from __future__ import annotations


def storable(text: str) -> bool:
    """No NUL (PostgreSQL refuses it in text) and no lone surrogate (no encoding writes it)."""
    if "\x00" in text:
        return False
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True
