"""report.html: one self-contained page per wave run (inline CSS and SVG, no JavaScript, nothing
fetched). render_html takes report.json's data and returns the page; every text from the run
(reasons, queries, names) is escaped."""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape
from typing import Any

from include.slow_injection.reporting.e2e_test import html_section as e2e_test_section
from include.slow_injection.reporting.plots import BLUE, GREEN, PALETTE, Line, line_plot, offset_label, value_label
from include.slow_injection.reporting.timeline import build_timeline, not_run

PARITY_COLUMNS = ("blue_median", "green_median", "shift", "relative_effect", "p_value", "blue_count", "green_count")

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:60rem;color:#222;
 padding:0 1rem;line-height:1.4}
h1{font-size:1.5rem;margin-bottom:.3rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd}
h3{font-size:1rem;margin:1.2rem 0 .3rem}
table{border-collapse:collapse;width:100%;font-size:.88rem;margin:.5rem 0}
th,td{border:1px solid #ddd;padding:.25rem .45rem;text-align:left;vertical-align:top}
th{background:#f5f5f5}td.num{text-align:right;font-variant-numeric:tabular-nums}
.badge{display:inline-block;padding:.1rem .55rem;border-radius:.8rem;font-weight:600;font-size:.9rem}
.completed,.pass,.continue{background:#dff3e4;color:#14612c}
.rolled-back,.fail,.rollback{background:#fde2e1;color:#8a1c17}
.held,.hold{background:#fdf1d6;color:#7a5200}.incomplete,.unknown{background:#eee;color:#444}
.dry{background:#e8f1fb;color:#1d4f91}.meta{color:#555;font-size:.9rem}.note{color:#666;font-size:.85rem;margin:.2rem 0}
svg.plot{max-width:100%;height:auto;font-size:11px}svg .tick{fill:#444}svg .axis{fill:#333}
svg .legend{fill:#222}svg text.mark{fill:#777;font-size:10px}svg .nodata{fill:#8a1c17;font-size:13px}
code{font-size:.82rem;background:#f5f5f5;padding:0 .2rem;word-break:break-all}
details summary{cursor:pointer;color:#1d4f91}
"""


def render_html(data: dict[str, Any]) -> str:
    """The page for one run from report.json's data (older data without series/timeline works too)."""
    series = data.get("series") or {}
    start = _number(series.get("start")) or _number(data.get("started_at"))
    end = _number(series.get("end")) or _number(data.get("generated_at"))
    title = f"Wave {data.get('wave')} — run {data.get('run_id')}"
    gates = {t: (v if isinstance(v, dict) else None) for t, v in (data.get("gates") or {}).items()}
    body = [
        f"<h1>{escape(title)}</h1>",
        _header(data, start, end),
        _plots(series, start, end),
        _timeline(data, start),
        _gates(gates),
        _stress(gates),
        _parity(gates),
        _approval(gates),
        e2e_test_section(gates),
        _right_sizing(data),
        _decisions(data.get("decisions") or []),
        '<p class="meta">The same data, machine-readable: <code>report.json</code>; a summary: '
        "<code>report.md</code>.</p>",
    ]
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
            + "\n".join(body) + "\n</body>\n</html>\n")


# --- sections ------------------------------------------------------------------------------------------

def _header(data: dict[str, Any], start: float | None, end: float | None) -> str:
    outcome = str(data.get("outcome", "unknown"))
    parts = [f"<p>{_badge(outcome)}"]
    if data.get("dry_run"):
        parts.append(' <span class="badge dry">dry-run: nothing was changed</span>')
    parts.append("</p>")
    if start is not None:
        span = f"started {_when(start)}"
        if end is not None:
            span += f", reported {_when(end)} ({offset_label(end - start)} later)"
        parts.append(f'<p class="meta">{escape(span)}</p>')
    return "".join(parts)


def _plots(series: dict[str, Any], start: float | None, end: float | None) -> str:
    out = ["<h2>Over the run</h2>"]
    if not series or start is None or end is None:
        return out[0] + '<p class="note">No plots: this report holds no series.</p>'
    traffic = series.get("traffic") or {}
    out.append("<h3>User traffic on green</h3>")
    if traffic:
        lines = [Line(service, PALETTE[i % len(PALETTE)], _points(s), s.get("error"), stepwise=True)
                 for i, (service, s) in enumerate(sorted(traffic.items()))]
        out.append(line_plot(lines, (start, end), y_label="% of user traffic on green", title="traffic on green",
                             y_range=(0, 100)))
        out += [f'<p class="note">{escape(s)}: {escape(str(t["note"]))}</p>' for s, t in sorted(traffic.items())
                if t.get("note")]
    else:
        why = series.get("traffic_error") or "no traffic step ran in this run"
        out.append(line_plot([Line("green", GREEN, [], why)], (start, end), y_label="% on green",
                             title="traffic on green", y_range=(0, 100)))
    metrics = series.get("metrics") or []
    marks = traffic_marks(traffic)
    if series.get("origin") == "validation.parity" and metrics:
        out.append('<p class="note">Metric plots: the parity check\'s metrics (the spec has no report.plots).</p>')
    for plot in metrics:
        unit = str(plot.get("unit") or "")
        out.append(f"<h3>{escape(str(plot.get('title') or plot.get('name')))}</h3>")
        lines = [Line(env, colour, _points(plot.get(env) or {}), (plot.get(env) or {}).get("error"))
                 for env, colour in (("blue", BLUE), ("green", GREEN))]
        out.append(line_plot(lines, (start, end), y_label=unit or str(plot.get("name", "")),
                             title=str(plot.get("title") or plot.get("name")), marks=marks))
        notes = [escape(f"{env}: {(plot.get(env) or {}).get('note')}") for env in ("blue", "green")
                 if (plot.get(env) or {}).get("note")]
        step = _number(plot.get("step"))
        notes.append(f"query <code>{escape(str(plot.get('query', '')))}</code> with ${{env}} = blue, green"
                     + (f"; one sample every {value_label(step)}s" if step else ""))
        out += [f'<p class="note">{n}</p>' for n in notes]  # escaped above
    if not metrics:
        out.append(f'<p class="note">{escape(str(series.get("note") or "No metric plots."))}</p>')
    return "\n".join(out)


def _timeline(data: dict[str, Any], start: float | None) -> str:
    actions, gates = data.get("actions") or {}, data.get("gates") or {}
    entries = data.get("timeline")
    if entries is None:
        entries = build_timeline(actions, gates)
    rows = []
    for e in entries:
        at = _number(e.get("at"))
        when = "—" if at is None else _when(at, time_only=True) + (
            f" (+{offset_label(at - start)})" if start is not None and at >= start else "")
        rows.append(f'<tr class="{escape(str(e.get("kind", "")))}"><td>{escape(when)}</td>'
                    f"<td><code>{escape(str(e.get('task')))}</code></td><td>{escape(str(e.get('text')))}</td></tr>")
    out = ["<h2>Timeline</h2>"]
    if rows:
        out.append("<table><tr><th>time (UTC)</th><th>task</th><th>what happened</th></tr>"
                   + "".join(rows) + "</table>")
    else:
        out.append('<p class="note">No action or gate of this run left a result.</p>')
    skipped = not_run(actions, gates)
    if skipped:
        out.append(f'<p class="note">Not run, skipped or failed without a result: '
                   f'{", ".join(f"<code>{escape(t)}</code>" for t in skipped)}</p>')
    return "\n".join(out)


def _gates(gates: dict[str, Any]) -> str:
    rows = []
    for task_id, verdict in gates.items():
        if not verdict:
            rows.append(f"<tr><td><code>{escape(task_id)}</code></td><td></td><td>not run</td><td></td><td></td></tr>")
            continue
        status = str(verdict.get("status"))
        dry = " (dry-run: shown, not judged)" if verdict.get("dry_run") else ""
        rows.append(f"<tr><td><code>{escape(task_id)}</code></td><td>{escape(str(verdict.get('gate', '')))}</td>"
                    f"<td>{_badge(status)}{escape(dry)}</td>"
                    f"<td>{escape(str(verdict.get('reason', '')))}</td><td>{_gate_values(verdict)}</td></tr>")
    if not rows:
        return '<h2>Gates</h2><p class="note">This wave has no gates.</p>'
    return ("<h2>Gates</h2><table><tr><th>task</th><th>gate</th><th>verdict</th><th>reason</th><th>values</th></tr>"
            + "".join(rows) + "</table>")


def _gate_values(verdict: dict[str, Any]) -> str:
    shown = [_measurement(m) for m in verdict.get("measurements") or [] if isinstance(m, dict)]
    head = []
    if verdict.get("condition"):
        head.append(f"pass when {verdict['condition']}")
    if verdict.get("query"):
        head.append(f"query {verdict['query']}")
    text = escape("; ".join(head))
    if not shown:
        return text or "-"
    last = ", ".join(v for _, v in shown[-10:])
    summary = f"{len(shown)} value(s): {last}" if len(shown) <= 10 else f"{len(shown)} values, last 10: {last}"
    every = "".join(f"<li>{escape(t)}: {escape(v)}</li>" for t, v in shown)
    return (f"{text}{'<br>' if text else ''}<details><summary>{escape(summary)}</summary><ul>{every}</ul></details>")


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


def _stress(gates: dict[str, Any]) -> str:
    out = []
    for verdict in (v for v in gates.values() if v and v.get("kind") == "stress"):
        s = verdict.get("stats") or {}
        out.append(f"<h3>{escape(str(verdict.get('gate')))} {_badge(verdict.get('status'))}</h3>")
        if not s:
            out.append(f'<p class="note">{escape(str(verdict.get("reason", "no figures")))}</p>')
            continue
        cells = [("requests", s.get("requests")), ("requests/s", s.get("requests_per_s")),
                 ("failures", s.get("failures")), ("failure ratio", s.get("failure_ratio")),
                 ("p50 ms", s.get("p50_ms")), ("p95 ms", s.get("p95_ms")), ("p99 ms", s.get("p99_ms")),
                 ("elapsed s", s.get("elapsed_s"))]
        out.append("<table><tr>" + "".join(f"<th>{escape(k)}</th>" for k, _ in cells) + "</tr><tr>"
                   + "".join(f'<td class="num">{escape(_fmt(v))}</td>' for _, v in cells) + "</tr></table>")
        if verdict.get("target"):
            out.append(f'<p class="note">target <code>{escape(str(verdict["target"]))}</code>; '
                       f'{len(verdict.get("series") or [])} per-second points in report.json</p>')
        errors = [e for e in s.get("errors") or [] if isinstance(e, dict)][:5]
        if errors:
            out.append("<ul>" + "".join(f"<li>{escape(str(e.get('error')))} ×{escape(str(e.get('count')))}</li>"
                                        for e in errors) + "</ul>")
    return ("<h2>Stress tests</h2>" + "\n".join(out)) if out else ""


def _parity(gates: dict[str, Any]) -> str:
    out = []
    for verdict in (v for v in gates.values() if v and v.get("kind") == "parity"):
        badge = _badge(verdict.get("status"), verdict.get("decision"))
        out.append(f"<p>Score <b>{escape(_fmt(verdict.get('score')))}</b> {badge} — "
                   f"{escape(str(verdict.get('reason', '')))}</p>")
        window = verdict.get("window") if isinstance(verdict.get("window"), dict) else {}
        if _number(window.get("start")) and _number(window.get("end")):
            shown = (f"window {_when(window['start'], True)} → {_when(window['end'], True)}, "
                     f"one sample every {_fmt(window.get('step'))}s")
            out.append(f'<p class="note">{escape(shown)}</p>')
        rows = "".join(
            f"<tr><td>{escape(str(m.get('name')))}</td><td>{escape(str(m.get('classification')))}</td>"
            + "".join(f'<td class="num">{escape(_fmt(m.get(k)))}</td>' for k in PARITY_COLUMNS)
            + f"<td>{escape(str(m.get('reason', '')))}</td></tr>"
            for m in verdict.get("metrics") or [] if isinstance(m, dict))
        if rows:
            out.append("<table><tr><th>metric</th><th>class</th><th>blue median</th><th>green median</th>"
                       "<th>shift</th><th>relative</th><th>p</th><th>n blue</th><th>n green</th><th>why</th></tr>"
                       + rows + "</table>")
    return ("<h2>Parity with blue</h2>" + "\n".join(out)) if out else ""


def _approval(gates: dict[str, Any]) -> str:
    out = []
    for verdict in (v for v in gates.values() if v and v.get("kind") == "approval"):
        if verdict.get("dry_run"):
            out.append('<p>Nobody was asked (dry-run).</p>')
            continue
        who = verdict.get("responded_by") or {}
        name = (who.get("name") or who.get("id")) if isinstance(who, dict) else None
        text = f"{verdict.get('chosen')} by {name}" if name else f"{verdict.get('chosen')}: nobody answered"
        if verdict.get("responded_at"):
            text += f" at {verdict['responded_at']}"
        if verdict.get("timed_out"):
            text += " (timed out: the spec's default)"
        out.append(f"<p>{escape(text)}</p>")
    return ("<h2>User acceptance</h2>" + "\n".join(out)) if out else ""


def _right_sizing(data: dict[str, Any]) -> str:
    from include.slow_injection.reporting.right_sizing import html_section

    return html_section(data.get("right_sizing"))


def _decisions(decisions: list[dict[str, Any]]) -> str:
    if not decisions:
        return '<h2>Decisions</h2><p class="note">No stage decision was taken.</p>'
    items = []
    for d in decisions:
        reasons = "; ".join(str(r) for r in d.get("reasons") or [])
        items.append(f"<li>{escape(str(d.get('stage')))}: "
                     f"{_badge(d.get('outcome'))}"
                     + (f" — {escape(reasons)}" if reasons else "") + "</li>")
    return "<h2>Decisions</h2><ul>" + "".join(items) + "</ul>"


# --- small helpers -----------------------------------------------------------------------------------

def traffic_marks(traffic: dict[str, Any]) -> list[tuple[float, str]]:
    """Each traffic change (time, "web 25%") to mark on the metric plots."""
    marks = []
    several = len(traffic) > 1
    for service, side in sorted(traffic.items()):
        points = _points(side)
        for (_, before), (t, after) in zip(points, points[1:]):
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


def _badge(status: Any, text: Any = None) -> str:
    return f'<span class="badge {_cls(str(status))}">{escape(str(status if text is None else text))}</span>'


def _cls(status: str) -> str:
    """A CSS class from a status (only known ones; anything else is 'unknown')."""
    known = {"completed", "pass", "continue", "rolled back", "fail", "rollback", "held", "hold", "incomplete"}
    return status.replace(" ", "-") if status in known else "unknown"
