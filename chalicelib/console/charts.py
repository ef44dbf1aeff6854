"""Server-rendered SVG charts for the console: bars and lines, readable without JavaScript or CSS.

Our own small helper rather than a library: pygal (the obvious one) writes
inline `style` and `<script>` into its SVG, which the console's CSP refuses.
A chart here is one `<svg role="img">` named by its `<title>` and described
by its `<desc>`, with axes, tick labels and a `<title>` per bar or point (a
tooltip and what a screen reader reads), coloured by classes of the console's
stylesheet only (no `style=`), and every piece of text escaped: labels, series
names and the title may carry what a person typed. A page shows the same
numbers in a data table next to it.

Lines tell series apart by more than colour: each has its own dash pattern and
marker shape, named in a legend.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH = 640
HEIGHT = 260
LEFT, RIGHT, TOP, BOTTOM = 86, 12, 16, 40
LEGEND = 22
MAX_X_LABELS = 8
DASHES = ("", "6 4", "2 3", "10 3 2 3")
MARKERS = ("circle", "square", "triangle", "diamond")

Formatter = Callable[[int], str]


@dataclass(frozen=True)
class Series:
    """One named row of values, one per label (a day)."""

    name: str
    values: Sequence[int]


def bar_chart(chart_id: str, title: str, desc: str, labels: Sequence[str], series: Series,
              fmt: Formatter = str) -> Markup:
    """Vertical bars of one series over the labels."""
    _check(labels, [series])
    plot = _Plot(labels, [series.values], fmt, legend=False)
    parts = plot.frame()
    slot = plot.inner_width / max(len(labels), 1)
    bar = max(slot * 0.7, 1.0)
    zero = plot.y(0)
    for i, (label, value) in enumerate(zip(labels, series.values, strict=True)):
        top = plot.y(value)
        x = LEFT + i * slot + (slot - bar) / 2
        parts.append(f'<rect class="chart-bar" x="{_n(x)}" y="{_n(min(top, zero))}" width="{_n(bar)}" '
                     f'height="{_n(abs(zero - top))}"><title>{escape(label)}: {escape(fmt(value))}</title></rect>')
    return _svg(chart_id, title, desc, parts)


def line_chart(chart_id: str, title: str, desc: str, labels: Sequence[str], series: Sequence[Series],
               fmt: Formatter = str) -> Markup:
    """One line per series (at most four: each has its own dash pattern and marker), with a legend."""
    if not 1 <= len(series) <= len(DASHES):
        raise ValueError(f"a line chart shows 1 to {len(DASHES)} series")
    _check(labels, series)
    plot = _Plot(labels, [s.values for s in series], fmt, legend=True)
    parts = plot.frame()
    slot = plot.inner_width / max(len(labels), 1)
    for number, one in enumerate(series):
        points = [(LEFT + i * slot + slot / 2, plot.y(v)) for i, v in enumerate(one.values)]
        dash = f' stroke-dasharray="{DASHES[number]}"' if DASHES[number] else ""
        path = " ".join(f"{_n(x)},{_n(y)}" for x, y in points)
        parts.append(f'<g class="chart-series chart-s{number + 1}">')
        parts.append(f'<polyline class="chart-line" fill="none" points="{path}"{dash}/>')
        for (x, y), label, value in zip(points, labels, one.values, strict=True):
            parts.append(_marker(MARKERS[number], x, y,
                                 f"{escape(one.name)}, {escape(label)}: {escape(fmt(value))}"))
        parts.append("</g>")
    parts.extend(_legend(series))
    return _svg(chart_id, title, desc, parts)


def nice_ticks(low: int, high: int, count: int = 4) -> list[int]:
    """Round tick values (1, 2 or 5 times a power of ten apart) covering low..high, 0 included."""
    low, high = min(low, 0), max(high, 0)
    if low == high:
        high = low + 1
    raw = (high - low) / count
    power = 10 ** max(math.floor(math.log10(raw)), 0)
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.floor(low / step) * step
    last = math.ceil(high / step) * step
    return list(range(first, last + 1, step))


# --- helpers ----------------------------------------------------------------------------------------------------

class _Plot:
    """The frame of a chart: value to y, axes, tick and x labels."""

    def __init__(self, labels: Sequence[str], rows: Sequence[Sequence[int]], fmt: Formatter, *,
                 legend: bool) -> None:
        values = [int(v) for row in rows for v in row] or [0]
        self.ticks = nice_ticks(min(values), max(values))
        self.labels, self.fmt = labels, fmt
        self.bottom = HEIGHT - BOTTOM - (LEGEND if legend else 0)
        self.inner_width = WIDTH - LEFT - RIGHT

    def y(self, value: int) -> float:
        low, high = self.ticks[0], self.ticks[-1]
        return self.bottom - (value - low) / (high - low) * (self.bottom - TOP)

    def frame(self) -> list[str]:
        parts = ['<g class="chart-grid">']
        for tick in self.ticks:
            y = _n(self.y(tick))
            parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y}" y2="{y}"/>')
        parts.append("</g>")
        parts.append('<g class="chart-axis" aria-hidden="true">')
        parts.append(f'<line x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{_n(self.bottom)}"/>')
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{_n(self.y(0))}" y2="{_n(self.y(0))}"/>')
        for tick in self.ticks:
            parts.append(f'<text class="chart-tick" x="{LEFT - 6}" y="{_n(self.y(tick) + 4)}" '
                         f'text-anchor="end">{escape(self.fmt(tick))}</text>')
        slot = self.inner_width / max(len(self.labels), 1)
        for i in _shown(len(self.labels)):
            parts.append(f'<text class="chart-label" x="{_n(LEFT + i * slot + slot / 2)}" '
                         f'y="{_n(self.bottom + 18)}" text-anchor="middle">{escape(self.labels[i])}</text>')
        parts.append("</g>")
        return parts


def _shown(count: int) -> list[int]:
    """Which x labels fit: every k-th, and always the last (today)."""
    if count <= MAX_X_LABELS:
        return list(range(count))
    every = math.ceil(count / MAX_X_LABELS)
    picked = list(range(count - 1, -1, -every))
    return sorted(picked)


def _marker(shape: str, x: float, y: float, tip: str) -> str:
    title = f"<title>{tip}</title>"
    if shape == "circle":
        return f'<circle class="chart-dot" cx="{_n(x)}" cy="{_n(y)}" r="3.5">{title}</circle>'
    if shape == "square":
        return f'<rect class="chart-dot" x="{_n(x - 3.5)}" y="{_n(y - 3.5)}" width="7" height="7">{title}</rect>'
    corners = ((x, y - 4.5), (x + 4.5, y + 3.5), (x - 4.5, y + 3.5)) if shape == "triangle" else \
        ((x, y - 4.5), (x + 4.5, y), (x, y + 4.5), (x - 4.5, y))
    points = " ".join(f"{_n(a)},{_n(b)}" for a, b in corners)
    return f'<polygon class="chart-dot" points="{points}">{title}</polygon>'


def _legend(series: Sequence[Series]) -> list[str]:
    parts = ['<g class="chart-legend">']
    x, y = LEFT, HEIGHT - 8
    for number, one in enumerate(series):
        dash = f' stroke-dasharray="{DASHES[number]}"' if DASHES[number] else ""
        parts.append(f'<g class="chart-series chart-s{number + 1}">')
        parts.append(f'<line class="chart-line" x1="{x}" x2="{x + 24}" y1="{y - 4}" y2="{y - 4}"{dash}/>')
        parts.append(_marker(MARKERS[number], x + 12, y - 4, escape(one.name)))
        parts.append(f'<text class="chart-key" x="{x + 30}" y="{y}">{escape(one.name)}</text></g>')
        x += 40 + 8 * min(len(one.name), 40)
    parts.append("</g>")
    return parts


def _svg(chart_id: str, title: str, desc: str, parts: list[str]) -> Markup:
    ident = _ident(chart_id)
    head = (f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
            f'aria-labelledby="{ident}-title {ident}-desc" focusable="false">'
            f'<title id="{ident}-title">{escape(title)}</title><desc id="{ident}-desc">{escape(desc)}</desc>')
    return Markup(head + "".join(parts) + "</svg>")  # noqa: S704 - every text above went through escape()


def _ident(value: str) -> str:
    cleaned = re.sub(r"[^a-z0-9-]", "-", value.lower()).strip("-")
    return "chart-" + (cleaned or "x")


def _check(labels: Sequence[str], series: Sequence[Series]) -> None:
    for one in series:
        if len(one.values) != len(labels):
            raise ValueError(f"series {one.name!r} has {len(one.values)} values for {len(labels)} labels")


def _n(value: float) -> str:
    """A coordinate with at most one decimal (smaller pages, stable output)."""
    return f"{value:.1f}".removesuffix(".0")


# --- grouped bars (the promotion simulator: two rule sets side by side per category) ----------------------------

def grouped_bar_chart(chart_id: str, title: str, desc: str, labels: Sequence[str], series: Sequence[Series],
                      fmt: Formatter = str) -> Markup:
    """Bars of two to four series side by side over each label, with a legend.

    Series differ by more than colour: each bar of a series carries its own outline pattern (`chart-g1`..`chart-g4`
    with a dash of its own) and every bar's `<title>` names its series, label and value.
    """
    if not 1 <= len(series) <= len(DASHES):
        raise ValueError(f"a grouped bar chart shows 1 to {len(DASHES)} series")
    _check(labels, series)
    plot = _Plot(labels, [s.values for s in series], fmt, legend=True)
    parts = plot.frame()
    slot = plot.inner_width / max(len(labels), 1)
    group = max(slot * 0.8, 1.0)
    bar = group / len(series)
    zero = plot.y(0)
    for number, one in enumerate(series):
        dash = f' stroke-dasharray="{DASHES[number]}"' if DASHES[number] else ""
        parts.append(f'<g class="chart-series chart-g{number + 1}">')
        for i, (label, value) in enumerate(zip(labels, one.values, strict=True)):
            top = plot.y(value)
            x = LEFT + i * slot + (slot - group) / 2 + number * bar
            parts.append(f'<rect class="chart-gbar" x="{_n(x)}" y="{_n(min(top, zero))}" width="{_n(bar)}" '
                         f'height="{_n(abs(zero - top))}"{dash}><title>{escape(one.name)}, {escape(label)}: '
                         f'{escape(fmt(value))}</title></rect>')
        parts.append("</g>")
    parts.extend(_bar_legend(series))
    return _svg(chart_id, title, desc, parts)


def _bar_legend(series: Sequence[Series]) -> list[str]:
    parts = ['<g class="chart-legend">']
    x, y = LEFT, HEIGHT - 8
    for number, one in enumerate(series):
        dash = f' stroke-dasharray="{DASHES[number]}"' if DASHES[number] else ""
        parts.append(f'<g class="chart-series chart-g{number + 1}">')
        parts.append(f'<rect class="chart-gbar" x="{x}" y="{y - 10}" width="18" height="10"{dash}>'
                     f'<title>{escape(one.name)}</title></rect>')
        parts.append(f'<text class="chart-key" x="{x + 24}" y="{y}">{escape(one.name)}</text></g>')
        x += 40 + 8 * min(len(one.name), 40)
    parts.append("</g>")
    return parts


HBAR_LEFT = 210
HBAR_ROW = 28
HBAR_LABEL = 30
"""Horizontal bars: room for the labels at the left, one row per label, labels cut at 30 characters (whole in
the bar's tooltip and in the table beside the chart)."""


def hbar_chart(chart_id: str, title: str, desc: str, labels: Sequence[str], values: Sequence[int],
               fmt: Formatter = str) -> Markup:
    """Horizontal bars, one per label (answer options: long labels read left to right), the value at each bar."""
    if len(values) != len(labels):
        raise ValueError(f"{len(values)} values for {len(labels)} labels")
    height = TOP + HBAR_ROW * max(len(labels), 1) + 8
    top_value = max([int(v) for v in values] + [1])
    room = WIDTH - HBAR_LEFT - RIGHT - 56
    parts = ['<g class="chart-axis" aria-hidden="true">',
             f'<line x1="{HBAR_LEFT}" x2="{HBAR_LEFT}" y1="{TOP - 4}" y2="{height - 8}"/>']
    for i, label in enumerate(labels):
        shown = label if len(label) <= HBAR_LABEL else label[:HBAR_LABEL - 1].rstrip() + "…"
        parts.append(f'<text class="chart-label" x="{HBAR_LEFT - 8}" y="{_n(TOP + i * HBAR_ROW + 18)}" '
                     f'text-anchor="end">{escape(shown)}</text>')
    parts.append("</g>")
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        y = TOP + i * HBAR_ROW + 4
        width = max(int(value), 0) / top_value * room
        parts.append(f'<rect class="chart-bar" x="{HBAR_LEFT}" y="{_n(y)}" width="{_n(width)}" height="18">'
                     f'<title>{escape(label)}: {escape(fmt(int(value)))}</title></rect>')
        parts.append(f'<text class="chart-tick" x="{_n(HBAR_LEFT + width + 6)}" y="{_n(y + 14)}" '
                     f'aria-hidden="true">{escape(fmt(int(value)))}</text>')
    svg = str(_svg(chart_id, title, desc, parts))
    return Markup(svg.replace(f'viewBox="0 0 {WIDTH} {HEIGHT}"', f'viewBox="0 0 {WIDTH} {height}"', 1))  # noqa: S704
