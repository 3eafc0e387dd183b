"""Money is integer fen everywhere; yuan strings only at the edges, never through floats."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation


def yuan_to_fen(text: str) -> int:
    """'25.00' -> 2500. Refuses anything that is not a plain non-negative amount with at most 2 decimals."""
    if not isinstance(text, str) or not text or len(text) > 16 or not all(c.isdigit() or c == "." for c in text):
        raise ValueError(f"not an amount in yuan: {text!r}")
    try:
        fen = Decimal(text) * 100
    except InvalidOperation:
        raise ValueError(f"not an amount in yuan: {text!r}") from None
    if fen != fen.to_integral_value():
        raise ValueError(f"not an amount in yuan with at most 2 decimals: {text!r}")
    return int(fen)


def fen_to_yuan(fen: int) -> str:
    """2500 -> '25.00'."""
    sign = "-" if fen < 0 else ""
    yuan, cents = divmod(abs(fen), 100)
    return f"{sign}{yuan}.{cents:02d}"
