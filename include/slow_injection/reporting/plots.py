"""Line plots as inline SVG, written by hand: axes, ticks, a legend, one polyline per line (stepwise
for traffic weights). No JavaScript, no external files. Every text and attribute value that is not a
number formatted here is escaped (labels, titles, reasons, colours), so html.py may put the SVG into
the page as trusted markup."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from html import escape

BLUE, GREEN = "#1f6fd1", "#1e9e4a"
PALETTE = (GREEN, "#8e44ad", "#d35400", "#16a085", "#c0392b", "#2c3e50", "#b7950b")

WIDTH, HEIGHT = 720, 250
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 12, 62  # margins around the plot area
TIME_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)


@dataclass
class Line:
    label: str
    colour: str
    points: list[tuple[float, float]] = field(default_factory=list)
    missing: str | None = None  # why there are no points (shown as "no data (…)")
    stepwise: bool = False


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round values (1, 2, 2.5, 5 × 10^k apart) covering [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return [0.0, 1.0]
    if hi <= lo:
        hi = lo + (abs(lo) or 1.0)
    raw = (hi - lo) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw * (1 - 1e-9))
    first, last = math.floor(lo / step + 1e-9) * step, math.ceil(hi / step - 1e-9) * step
    return [round(first + i * step, 12) for i in range(int(round((last - first) / step)) + 1)]


def time_ticks(span: float, most: int = 8) -> list[float]:
    """Offsets from the start (seconds) at a round spacing, at most `most` + 1 of them."""
    step = next((s for s in TIME_STEPS if span / s <= most), math.ceil(span / most / 86400) * 86400)
    return [i * step for i in range(int(span // step) + 1)]


def offset_label(seconds: float) -> str:
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m" + (f"{s % 60:02d}s" if s % 60 else "")
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


def value_label(value: float) -> str:
    return "0" if value == 0 else f"{value:.3g}"


def line_plot(
    lines: list[Line],
    x_range: tuple[float, float],
    *,
    y_label: str = "",
    title: str = "",
    y_range: tuple[float, float] | None = None,
    marks: list[tuple[float, str]] | None = None,
) -> str:
    """An SVG line plot of `lines` over x_range (epoch seconds, labelled as time since its start);
    `marks` are moments drawn as dashed vertical lines with a short label (e.g. traffic steps)."""
    x0, x1 = x_range
    if not x1 > x0:
        x1 = x0 + 1.0
    drawn = [ln for ln in lines if ln.points]
    values = [v for ln in drawn for _, v in ln.points]
    if y_range is not None:
        y_ticks = nice_ticks(*y_range)
    elif values:
        y_ticks = nice_ticks(min(0.0, min(values)), max(values) if max(values) > min(0.0, min(values)) else 1.0)
    else:
        y_ticks = [0.0, 1.0]
    y0, y1 = y_ticks[0], y_ticks[-1]
    pw, ph = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def sx(t: float) -> float:
        return LEFT + (min(max(t, x0), x1) - x0) / (x1 - x0) * pw

    def sy(v: float) -> float:
        return TOP + ph - (min(max(v, y0), y1) - y0) / (y1 - y0) * ph

    legend = _legend(lines, TOP + ph + 50)
    height = max(HEIGHT, int(legend[-1][1]) + 10) if legend else HEIGHT
    out = [
        f'<svg class="plot" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" '
        f'width="{WIDTH}" height="{height}" role="img" aria-label="{escape(title or y_label)}">',
        f"<title>{escape(title or y_label)}</title>",
        f'<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="#fff" stroke="#999"/>',
    ]
    for v in y_ticks:
        y = sy(v)
        out.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + pw}" y2="{y:.1f}" stroke="#e5e5e5"/>')
        out.append(
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" class="tick">{escape(value_label(v))}</text>'
        )
    for off in time_ticks(x1 - x0):
        x = sx(x0 + off)
        out.append(f'<line x1="{x:.1f}" y1="{TOP + ph}" x2="{x:.1f}" y2="{TOP + ph + 4}" stroke="#666"/>')
        out.append(
            f'<text x="{x:.1f}" y="{TOP + ph + 16}" text-anchor="middle" class="tick">'
            f"{escape(offset_label(off))}</text>"
        )
    out.append(
        f'<text x="{LEFT + pw / 2:.1f}" y="{TOP + ph + 31}" text-anchor="middle" class="axis">'
        "time since the run started</text>"
    )
    if y_label:
        out.append(
            f'<text transform="translate(14 {TOP + ph / 2:.1f}) rotate(-90)" text-anchor="middle" '
            f'class="axis">{escape(y_label)}</text>'
        )
    for i, (t, label) in enumerate(m for m in marks or [] if x0 <= m[0] <= x1):
        out.append(
            f'<line class="mark" x1="{sx(t):.1f}" y1="{TOP}" x2="{sx(t):.1f}" y2="{TOP + ph}" '
            'stroke="#999" stroke-dasharray="3 3"/>'
        )
        out.append(
            f'<text x="{sx(t) + 3:.1f}" y="{TOP + 10 + 11 * (i % 3)}" class="mark">{escape(_short(label, 24))}</text>'
        )  # staggered: close steps stay readable
    for ln in drawn:
        points = sorted(ln.points)
        coords: list[tuple[float, float]] = []
        for t, v in points:
            if ln.stepwise and coords:
                coords.append((sx(t), coords[-1][1]))
            coords.append((sx(t), sy(v)))
        text = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
        out.append(
            f'<polyline data-line="{escape(ln.label)}" fill="none" stroke="{escape(ln.colour)}" '
            f'stroke-width="2" points="{text}"/>'
        )
        if len(points) <= 2:
            out += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{escape(ln.colour)}"/>' for x, y in coords]
    if not drawn:
        reasons = "; ".join(dict.fromkeys(ln.missing or "no samples" for ln in lines)) or "nothing to plot"
        out.append(
            f'<text x="{LEFT + pw / 2:.1f}" y="{TOP + ph / 2:.1f}" text-anchor="middle" class="nodata">'
            f"no data ({escape(_short(reasons, 90))})</text>"
        )
    for (ln, label), (x, y) in zip(_labels(lines), legend, strict=False):
        out.append(f'<rect x="{x:.0f}" y="{y - 5:.0f}" width="14" height="4" fill="{escape(ln.colour)}"/>')
        out.append(f'<text x="{x + 18:.0f}" y="{y:.0f}" class="legend">{escape(label)}</text>')
    out.append("</svg>")
    return "\n".join(out)


def _labels(lines: list[Line]) -> list[tuple[Line, str]]:
    return [
        (ln, _short(ln.label if ln.points else f"{ln.label}: no data ({ln.missing or 'no samples'})", 100))
        for ln in lines
    ]


def _legend(lines: list[Line], first_row: float) -> list[tuple[float, float]]:
    """Where each legend entry goes: left to right, a new row when the next would not fit."""
    spots, x, y = [], float(LEFT), first_row
    for _, label in _labels(lines):
        width = 30 + 6.2 * len(label)
        if x > LEFT and x + width > WIDTH - RIGHT:
            x, y = float(LEFT), y + 16
        spots.append((x, y))
        x += width
    return spots


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
