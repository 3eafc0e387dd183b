from django import template

from ipvas.money import fen_to_yuan

register = template.Library()


@register.filter
def yuan(fen: int | None) -> str:
    """2500 -> '25.00'."""
    return fen_to_yuan(int(fen or 0))
