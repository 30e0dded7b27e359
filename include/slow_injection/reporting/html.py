"""report.html: one self-contained page per wave run (inline CSS and SVG, no JavaScript, nothing
fetched). render_html takes report.json's data and returns the page, rendered from
templates/report.html by Jinja2 with autoescaping: every text from the run (reasons, queries, names)
is escaped by the template. Each gate kind's own section is its template (kinds/, `report_html`), rendered
here with the same autoescaping. Only markup our own code writes goes in unescaped (Markup): those
rendered sections, the SVG plots (plots.py escapes every text it puts in them) and right_sizing.py's."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from include.slow_injection import kinds
from include.slow_injection.reporting.plots import BLUE, GREEN, PALETTE, Line, line_plot, offset_label, value_label
from include.slow_injection.reporting.timeline import build_timeline, not_run

TEMPLATES = Path(__file__).with_name("templates")


def render_html(data: dict[str, Any]) -> str:
    """The page for one run from report.json's data (older data without series/timeline works too)."""
    from include.slow_injection.reporting.right_sizing_section import html_section as right_sizing_section

    series = data.get("series") or {}
    start = _number(series.get("start")) or _number(data.get("started_at"))
    end = _number(series.get("end")) or _number(data.get("generated_at"))
    actions, raw_gates = data.get("actions") or {}, data.get("gates") or {}
    gates = {t: (v if isinstance(v, dict) else None) for t, v in raw_gates.items()}
    timeline = data.get("timeline")
    return (
        _environment()
        .get_template("report.html")
        .render(
            title=f"Wave {data.get('wave')} — run {data.get('run_id')}",
            outcome=str(data.get("outcome", "unknown")),
            dry_run=bool(data.get("dry_run")),
            start=start,
            end=end,
            plots=_plots(series, start, end) if series and start is not None and end is not None else None,
            timeline=build_timeline(actions, raw_gates) if timeline is None else timeline,
            not_run=not_run(actions, raw_gates),
            gates=gates,
            kind_sections=kind_sections(gates),
            right_sizing=Markup(right_sizing_section(data.get("right_sizing"))),  # escaped there
            decisions=data.get("decisions") or [],
        )
    )


def kind_sections(gates: dict[str, Any]) -> list[Markup]:
    """Each gate kind's own section (its report_html template, kinds/), for the kinds this run has."""
    sections = []
    for kind in kinds.GATES.values():
        verdicts = [v for v in gates.values() if v and v.get("kind") == kind.name]
        if verdicts and kind.report_html:
            template = _environment().from_string(kind.report_html)
            sections.append(Markup(template.render(verdicts=verdicts, **kind.report_context())))
    return sections


@cache
def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(number=_number, when=_when, offset=offset_label, value=value_label, fmt=_fmt, badge_class=_cls)
    env.globals.update(gate_values=_gate_values)
    return env


# --- what the template cannot say simply ----------------------------------------------------------------


class Plot(NamedTuple):
    title: str
    svg: Markup
    notes: list[str]
    query: str = ""
    step: float | None = None


class Plots(NamedTuple):
    traffic: Plot
    metrics: list[Plot]
    from_parity: bool  # the metrics are the parity check's (the spec has no report.plots)
    note: str  # shown when there are no metric plots


def _plots(series: dict[str, Any], start: float, end: float) -> Plots:
    """The traffic plot and one blue-vs-green plot per metric (traffic changes marked on them)."""
    traffic = series.get("traffic") or {}
    marks = traffic_marks(traffic)
    metrics = [_metric_plot(plot, (start, end), marks) for plot in series.get("metrics") or []]
    return Plots(
        _traffic_plot(traffic, (start, end), series.get("traffic_error")),
        metrics,
        series.get("origin") == "validation.parity" and bool(metrics),
        str(series.get("note") or "No metric plots."),
    )


def _traffic_plot(traffic: dict[str, Any], span: tuple[float, float], error: Any) -> Plot:
    if traffic:
        lines = [
            Line(service, PALETTE[i % len(PALETTE)], _points(s), s.get("error"), stepwise=True)
            for i, (service, s) in enumerate(sorted(traffic.items()))
        ]
        svg = line_plot(lines, span, y_label="% of user traffic on green", title="traffic on green", y_range=(0, 100))
    else:
        lines = [Line("green", GREEN, [], error or "no traffic step ran in this run")]
        svg = line_plot(lines, span, y_label="% on green", title="traffic on green", y_range=(0, 100))
    notes = [f"{service}: {s['note']}" for service, s in sorted(traffic.items()) if s.get("note")]
    return Plot("User traffic on green", _trusted(svg), notes)


def _metric_plot(plot: dict[str, Any], span: tuple[float, float], marks: list[tuple[float, str]]) -> Plot:
    title = str(plot.get("title") or plot.get("name"))
    sides = {env: plot.get(env) or {} for env in ("blue", "green")}
    lines = [
        Line(env, colour, _points(sides[env]), sides[env].get("error"))
        for env, colour in (("blue", BLUE), ("green", GREEN))
    ]
    y_label = str(plot.get("unit") or "") or str(plot.get("name", ""))
    svg = line_plot(lines, span, y_label=y_label, title=title, marks=marks)
    notes = [f"{env}: {side['note']}" for env, side in sides.items() if side.get("note")]
    return Plot(title, _trusted(svg), notes, str(plot.get("query", "")), _number(plot.get("step")))


def _trusted(svg: str) -> Markup:
    """plots.line_plot's SVG: markup it writes itself, every text in it escaped there."""
    return Markup(svg)


class Values(NamedTuple):
    head: str  # the gate's condition and query
    shown: list[tuple[str, str]]  # (when, value) per measurement
    summary: str


def _gate_values(verdict: dict[str, Any]) -> Values:
    shown = [_measurement(m) for m in verdict.get("measurements") or [] if isinstance(m, dict)]
    head = []
    if verdict.get("condition"):
        head.append(f"pass when {verdict['condition']}")
    if verdict.get("query"):
        head.append(f"query {verdict['query']}")
    last = ", ".join(v for _, v in shown[-10:])
    summary = f"{len(shown)} value(s): {last}" if len(shown) <= 10 else f"{len(shown)} values, last 10: {last}"
    return Values("; ".join(head), shown, summary)


def _measurement(m: dict[str, Any]) -> tuple[str, str]:
    at = f"t={float(m['t']):.1f}s" if isinstance(m.get("t"), (int, float)) else "-"
    if "text" in m:  # a stress criterion
        return at, str(m["text"])
    if "ok" in m:
        shown = "ok" if m["ok"] else str(m.get("state") or "failed")
        return at, shown + (f" ({m['detail']})" if m.get("detail") else "")
    value = m.get("value")
    if value is None:
        shown = f"no data ({m['error']})" if m.get("error") else "no data"
    else:
        shown = value_label(float(value)) if isinstance(value, (int, float)) else str(value)
    return at, shown + (f" [{m['outcome']}]" if m.get("outcome") and m.get("outcome") != "pass" else "")


# --- small helpers -----------------------------------------------------------------------------------


def traffic_marks(traffic: dict[str, Any]) -> list[tuple[float, str]]:
    """Each traffic change (time, "web 25%") to mark on the metric plots."""
    marks = []
    several = len(traffic) > 1
    for service, side in sorted(traffic.items()):
        points = _points(side)
        for (_, before), (t, after) in zip(points, points[1:], strict=False):
            if after != before:
                marks.append((t, (f"{service} " if several else "") + f"{after:g}%"))
    return sorted(marks)


def _points(side: dict[str, Any]) -> list[tuple[float, float]]:
    out = []
    for p in side.get("points") or []:
        try:
            out.append((float(p[0]), float(p[1])))
        except (TypeError, ValueError, IndexError):
            continue
    return out


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _when(epoch: float, time_only: bool = False) -> str:
    moment = datetime.fromtimestamp(float(epoch), UTC)
    return moment.strftime("%H:%M:%S") if time_only else moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _cls(status: Any) -> str:
    """A CSS class from a status (only known ones; anything else is 'unknown')."""
    known = {"completed", "pass", "continue", "rolled back", "fail", "rollback", "held", "hold", "incomplete"}
    return str(status).replace(" ", "-") if str(status) in known else "unknown"
