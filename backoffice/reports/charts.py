"""Server-side SVG charts: line, vertical bars and horizontal bars, as markup strings.

No JavaScript and no outside library: the dashboard works offline and in the
strictest Content-Security-Policy. Values stay integers (fen or counts) until
they are labelled, and money is labelled with ``fen_to_yuan``; coordinates
are the only floats. Every chart has a ``<title>`` and ``<desc>`` (read by
screen readers through ``aria-labelledby``) and every point or bar its own
``<title>``, which browsers show as a tooltip.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _

from ipvas.money import fen_to_yuan

PALETTE = ("#417690", "#e0922f", "#5b8c5a", "#b5485d", "#79aec8", "#8e6fb5")
FONT_SIZE = 11
LABEL_WIDTH = 170  # pixels for the category labels of a horizontal bar chart


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[int]


@dataclass(frozen=True)
class Scale:
    """A value axis from ``low`` to ``high`` (multiples of ``step``) drawn between two pixel positions."""

    low: int
    high: int
    step: int
    start_px: float
    end_px: float

    def px(self, value: int) -> float:
        return self.start_px + (value - self.low) * (self.end_px - self.start_px) / (self.high - self.low)

    @property
    def ticks(self) -> list[int]:
        return list(range(self.low, self.high + 1, self.step))


def nice_step(span: int, *, target_ticks: int = 5) -> int:
    """The smallest 1, 2 or 5 times a power of ten that covers ``span`` in ``target_ticks`` steps."""
    power = 1
    while True:
        for factor in (1, 2, 5):
            step = factor * power
            if step * target_ticks >= span:
                return step
        power *= 10


def make_scale(values: Sequence[int], start_px: float, end_px: float, *, money: bool) -> Scale:
    low = min(0, *values) if values else 0
    high = max(0, *values) if values else 0
    if high == low:
        high = low + (100 if money else 5)
    step = nice_step(high - low)
    low = (low // step) * step
    high = -(-high // step) * step
    return Scale(low=low, high=high, step=step, start_px=start_px, end_px=end_px)


def format_value(value: int, *, money: bool) -> str:
    return fen_to_yuan(value) if money else str(value)


def format_tick(value: int, scale: Scale, *, money: bool) -> str:
    if not money:
        return str(value)
    text = fen_to_yuan(value)
    # Whole-yuan steps read better without the ".00" on every tick.
    return text.removesuffix(".00") if scale.step % 100 == 0 else text


def _is_wide(char: str) -> bool:
    return ord(char) >= 0x2E80  # CJK and full-width forms take about a full em


def text_width(text: str) -> float:
    """A sans-serif estimate, in pixels at FONT_SIZE: enough to keep labels from overlapping."""
    return sum(FONT_SIZE if _is_wide(c) else FONT_SIZE * 0.6 for c in text)


def shorten(label: str, width: float = LABEL_WIDTH - 12) -> str:
    """The label cut to fit ``width`` pixels, with an ellipsis when it was cut."""
    if text_width(label) <= width:
        return label
    while label and text_width(label + "…") > width:
        label = label[:-1]
    return label.rstrip() + "…"


def _f(x: float) -> str:
    return f"{x:.1f}"


def _text(x: float, y: float, content: str, *, anchor: str = "middle", css: str = "", title: str = "") -> str:
    tooltip = f"<title>{escape(title)}</title>" if title else ""
    cls = f' class="{css}"' if css else ""
    return (
        f'<text x="{_f(x)}" y="{_f(y)}" text-anchor="{anchor}"{cls} font-size="{FONT_SIZE}" fill="currentColor">'
        f"{tooltip}{escape(content)}</text>"
    )


def _open(chart_id: str, kind: str, title: str, desc: str, width: int, height: int) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart chart-{kind}" id="{escape(chart_id)}" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-labelledby="{escape(chart_id)}-title {escape(chart_id)}-desc" font-family="sans-serif">',
        f'<title id="{escape(chart_id)}-title">{escape(title)}</title>',
        f'<desc id="{escape(chart_id)}-desc">{escape(desc)}</desc>',
    ]


def _unit(money: bool, unit: str | None = None) -> str:
    """What the values count: ``unit`` when given, else yuan or orders."""
    if unit:
        return unit
    return _("yuan") if money else _("orders")


def _describe(
    title: str, labels: Sequence[str], series: Sequence[Series], *, money: bool, unit: str | None = None
) -> str:
    """The chart in words: its unit and, for a short chart, every value."""
    parts = [f"{title} ({_unit(money, unit)})."]
    if len(labels) * len(series) <= 24:
        for s in series:
            values = ", ".join(
                f"{label}: {format_value(v, money=money)}" for label, v in zip(labels, s.values, strict=True)
            )
            parts.append(f"{s.name}: {values}.")
    return " ".join(parts)


def _legend(series: Sequence[Series], x: float, y: float) -> list[str]:
    out = ['<g class="legend">']
    for i, s in enumerate(series):
        color = PALETTE[i % len(PALETTE)]
        out.append(f'<rect x="{_f(x)}" y="{_f(y - 9)}" width="10" height="10" fill="{color}"/>')
        out.append(_text(x + 14, y, s.name, anchor="start"))
        x += 30 + text_width(s.name)
    out.append("</g>")
    return out


def _unit_and_legend(series: Sequence[Series], left: float, top: float, unit: str) -> list[str]:
    """The unit above the value axis, right-aligned to it, and the legend beside it; a unit wider
    than the axis labels starts at the left edge and pushes the legend right."""
    width = text_width(unit)
    if width <= left - 10:
        return [_text(left - 6, top - 14, unit, anchor="end", css="unit"), *_legend(series, left, 16)]
    return [_text(4, top - 14, unit, anchor="start", css="unit"), *_legend(series, 4 + width + 14, 16)]


def _value_axis(scale: Scale, x0: float, x1: float, *, money: bool) -> list[str]:
    """Horizontal grid lines with the tick labels on the left (for charts whose values go up)."""
    out = ['<g class="axis axis-value">']
    for tick in scale.ticks:
        y = scale.px(tick)
        css = "zero" if tick == 0 else "grid"
        out.append(f'<line class="{css}" x1="{_f(x0)}" x2="{_f(x1)}" y1="{_f(y)}" y2="{_f(y)}" stroke="#ccc"/>')
        out.append(_text(x0 - 6, y + 4, format_tick(tick, scale, money=money), anchor="end"))
    out.append("</g>")
    return out


def _category_axis(labels: Sequence[str], centres: Sequence[float], y: float, max_labels: int) -> list[str]:
    every = max(1, -(-len(labels) // max_labels))
    out = ['<g class="axis axis-category">']
    for i, (label, x) in enumerate(zip(labels, centres, strict=True)):
        if i % every == 0:
            out.append(_text(x, y, label))
    out.append("</g>")
    return out


def line_chart(
    *,
    chart_id: str,
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    money: bool = True,
    width: int = 580,
    height: int = 280,
    tick_labels: Sequence[str] | None = None,
    unit: str | None = None,
) -> SafeString:
    """One line per series over ``labels`` (days), with a marker and tooltip at every point."""
    left, right, top, bottom = 64, 16, 34, 30
    scale = make_scale([v for s in series for v in s.values], height - bottom, top, money=money)
    n = len(labels)
    span = width - left - right
    xs = [left + span / 2] if n == 1 else [left + i * span / (n - 1) for i in range(n)]
    out = _open(chart_id, "line", title, _describe(title, labels, series, money=money, unit=unit), width, height)
    out += _unit_and_legend(series, left, top, _unit(money, unit))
    out += _value_axis(scale, left, width - right, money=money)
    out += _category_axis(tick_labels or labels, xs, height - bottom + 16, max_labels=10)
    for i, s in enumerate(series):
        color = PALETTE[i % len(PALETTE)]
        points = " ".join(f"{_f(x)},{_f(scale.px(v))}" for x, v in zip(xs, s.values, strict=True))
        out.append(f'<g class="series series-{i}">')
        out.append(f'<polyline points="{points}" fill="none" stroke="{color}" stroke-width="2"/>')
        for label, x, v in zip(labels, xs, s.values, strict=True):
            tip = f"{label} · {s.name}: {format_value(v, money=money)}"
            out.append(
                f'<circle cx="{_f(x)}" cy="{_f(scale.px(v))}" r="3" fill="{color}">'
                f"<title>{escape(tip)}</title></circle>"
            )
        out.append("</g>")
    out.append("</svg>")
    return mark_safe("".join(out))  # noqa: S308 - every text above went through escape()


def bar_chart(
    *,
    chart_id: str,
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    money: bool = False,
    width: int = 580,
    height: int = 280,
    tick_labels: Sequence[str] | None = None,
    unit: str | None = None,
) -> SafeString:
    """Vertical bars, the series side by side within each label's slot."""
    left, right, top, bottom = 64, 16, 34, 30
    scale = make_scale([v for s in series for v in s.values], height - bottom, top, money=money)
    n = max(len(labels), 1)
    slot = (width - left - right) / n
    bar = slot * 0.8 / max(len(series), 1)
    centres = [left + (i + 0.5) * slot for i in range(len(labels))]
    out = _open(chart_id, "bar", title, _describe(title, labels, series, money=money, unit=unit), width, height)
    out += _unit_and_legend(series, left, top, _unit(money, unit))
    out += _value_axis(scale, left, width - right, money=money)
    out += _category_axis(tick_labels or labels, centres, height - bottom + 16, max_labels=10)
    zero = scale.px(0)
    for i, s in enumerate(series):
        color = PALETTE[i % len(PALETTE)]
        out.append(f'<g class="series series-{i}">')
        for j, (label, v) in enumerate(zip(labels, s.values, strict=True)):
            x = left + j * slot + slot * 0.1 + i * bar
            y = min(scale.px(v), zero)
            h = abs(scale.px(v) - zero)
            tip = f"{label} · {s.name}: {format_value(v, money=money)}"
            out.append(
                f'<rect x="{_f(x)}" y="{_f(y)}" width="{_f(bar)}" height="{_f(h)}" fill="{color}">'
                f"<title>{escape(tip)}</title></rect>"
            )
        out.append("</g>")
    out.append("</svg>")
    return mark_safe("".join(out))  # noqa: S308 - every text above went through escape()


def hbar_chart(
    *,
    chart_id: str,
    title: str,
    labels: Sequence[str],
    values: Sequence[int],
    money: bool = True,
    width: int = 600,
    row_height: int = 26,
    unit: str | None = None,
    label_width: int = LABEL_WIDTH,
) -> SafeString:
    """One horizontal bar per category, its value written beside it: for channels, products, stores."""
    left, right, top, bottom = label_width, 72, 12, 26
    height = top + max(len(labels), 1) * row_height + bottom
    scale = make_scale(list(values), left, width - right, money=money)
    series = [Series(title, values)]
    out = _open(chart_id, "hbar", title, _describe(title, labels, series, money=money, unit=unit), width, height)
    out.append('<g class="axis axis-value">')
    for tick in scale.ticks:
        x = scale.px(tick)
        css = "zero" if tick == 0 else "grid"
        out.append(f'<line class="{css}" x1="{_f(x)}" x2="{_f(x)}" y1="{top}" y2="{height - bottom}" stroke="#ccc"/>')
    # Only the two ends of the value axis are labelled: a narrow chart has no room for more.
    out.append(_text(scale.px(scale.low), height - bottom + 16, format_tick(scale.low, scale, money=money)))
    out.append(_text(scale.px(scale.high), height - bottom + 16, format_tick(scale.high, scale, money=money)))
    out.append("</g>")
    zero = scale.px(0)
    out.append('<g class="series series-0">')
    for i, (label, v) in enumerate(zip(labels, values, strict=True)):
        y = top + i * row_height
        x0, x1 = sorted((zero, scale.px(v)))
        shown = format_value(v, money=money)
        out.append(_text(left - 8, y + row_height / 2 + 4, shorten(label, left - 12), anchor="end", title=label))
        out.append(
            f'<rect x="{_f(x0)}" y="{_f(y + 4)}" width="{_f(x1 - x0)}" height="{_f(row_height - 8)}" '
            f'fill="{PALETTE[0]}"><title>{escape(f"{label}: {shown}")}</title></rect>'
        )
        out.append(_text(x1 + 4, y + row_height / 2 + 4, shown, anchor="start", css="value"))
    out.append("</g>")
    out.append("</svg>")
    return mark_safe("".join(out))  # noqa: S308 - every text above went through escape()
