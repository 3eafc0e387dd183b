"""Comparing secrets: in constant time, and never failing on what a caller sends."""

from __future__ import annotations

import hmac


def same_secret(given: str, expected: str) -> bool:
    """True when ``given`` equals ``expected``, in time independent of where they differ.

    Compares UTF-8 bytes: ``hmac.compare_digest`` raises on non-ASCII text,
    which a forged header may well contain.
    """
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode("utf-8"))
