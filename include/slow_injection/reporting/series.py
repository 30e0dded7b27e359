"""What the report plots, collected when the run ends.

- Traffic: each exposed service's green weight, stepwise, from the traffic steps' results (`at`,
  `before`, `after`); a result without `at` cannot be placed and is only counted.
- Metrics: blue and green from one range query each over the run, from the spec's `report.plots`,
  else from `validation.parity`'s metrics, else nothing (and the report says so). A backend error
  becomes the side's `error` (the plot then shows "no data (<error>)"); nothing here raises.

Shapes (JSON, kept in report.json under "series"):
  side    = {"points": [[t, value], ...], "error": str | None, "note": str | None}
  traffic = {service: side}                      (value = % of user traffic on green)
  metric  = {"name", "title", "unit", "query", "step", "blue": side, "green": side}
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from include.slow_injection.ports import RangeSource
from include.slow_injection.reporting.timeline import epoch, traffic_results

MAX_POINTS = 300  # per side of a plot; a long run gets a wider step
NO_PLOTS = (
    "no metric plots: the wave has no report.plots and no validation.parity section "
    "(add `report: {source, plots}` to the spec to plot blue against green)"
)

_GREEN = re.compile(r"\bgreen (\d+)\b")


def plot_config(wave: Any) -> dict[str, Any]:
    """The metric plots a wave's report draws, as JSON-safe data (what the report task is given)."""
    if wave.report.plots:
        return {
            "origin": "report",
            "source": wave.report.source.model_dump(),
            "step": wave.report.step,
            "plots": [
                {"name": p.name, "title": p.title or p.name, "query": p.query, "unit": p.unit}
                for p in wave.report.plots
            ],
        }
    parity = wave.validation.parity
    if parity is not None:
        return {
            "origin": "validation.parity",
            "source": parity.source.model_dump(),
            "step": parity.step,
            "plots": [{"name": m.name, "title": m.name, "query": m.query, "unit": ""} for m in parity.metrics],
        }
    return {"origin": None, "source": None, "step": None, "plots": [], "note": NO_PLOTS}


# --- traffic -----------------------------------------------------------------------------------------


def green_share(text: Any) -> int | None:
    match = _GREEN.search(text) if isinstance(text, str) else None
    return int(match.group(1)) if match else None


def traffic_series(actions: dict[str, Any], start: float, end: float) -> dict[str, dict[str, Any]]:
    """Each service's green weight over [start, end]: its weight before its first recorded change,
    then each change at its time, held to `end`. Only results with a time are placed."""
    changes: dict[str, list[tuple[float, int | None, int | None]]] = {}
    untimed: dict[str, int] = {}
    dry = False
    for result in actions.values():
        for r in traffic_results(result):
            service = str(r["service"])
            dry = dry or bool(r.get("dry_run"))
            at = epoch(r.get("at"))
            if at is None:
                untimed[service] = untimed.get(service, 0) + 1
                changes.setdefault(service, [])
                continue
            green = r.get("green")  # what the router read back (newer results); else parsed from "after"
            after = green if isinstance(green, int) and not isinstance(green, bool) else green_share(r.get("after"))
            changes.setdefault(service, []).append((at, green_share(r.get("before")), after))
    out: dict[str, dict[str, Any]] = {}
    for service, found in changes.items():
        found.sort(key=lambda c: c[0])
        notes = []
        if untimed.get(service):
            notes.append(f"{untimed[service]} traffic result(s) without a time are not plotted")
        if dry:
            notes.append("dry-run: no weight moved")
        points: list[list[float]] = []
        for at, before, after in found:
            if not points and before is not None:
                points.append([min(start, at), float(before)])
            if after is not None:
                points.append([at, float(after)])
        if points:
            points.append([max(end, points[-1][0]), points[-1][1]])
        out[service] = {
            "points": points,
            "error": None if points else "no traffic change recorded with its time",
            "note": "; ".join(notes) or None,
        }
    return out


# --- metrics -----------------------------------------------------------------------------------------


def choose_step(start: float, end: float, finest: float) -> float:
    """`finest`, or wider so that [start, end] holds at most MAX_POINTS samples (then a round value:
    whole seconds, or 1, 2 or 5 tenths, hundredths … below a second)."""
    wanted = (end - start) / MAX_POINTS
    if wanted <= float(finest):
        return float(finest)
    if wanted >= 1:
        return float(math.ceil(wanted))
    magnitude = 10 ** math.floor(math.log10(wanted))
    return next(round(m * magnitude, 12) for m in (1, 2, 5, 10) if m * magnitude >= wanted)


def sample_times(count: int, start: float, end: float, step: float) -> tuple[list[float], str | None]:
    """Times for `count` samples of a range query. The port's Series carries values only, NaN
    dropped: with (about) every sample there, they sit `step` apart from `start`; with gaps they
    are spread over the range and the note says the times are approximate."""
    if count == 0:
        return [], None
    expected = int((end - start) // step) + 1
    if expected - 1 <= count <= expected:
        return [start + i * step for i in range(count)], None
    if count == 1:
        return [end], f"1 of about {expected} samples; time approximate"
    spacing = (end - start) / (count - 1)
    return (
        [start + i * spacing for i in range(count)],
        f"{count} of about {expected} samples (the source drops gaps): times approximate",
    )


def _side(source: Any, query: str, start: float, end: float, step: float) -> dict[str, Any]:
    try:
        series = source.query_range(query, start, end, step)
        values = [float(v) for v in series.values]
        error = series.error
    except Exception as err:
        return {"points": [], "error": f"{type(err).__name__}: {err}"[:300], "note": None}
    if error:
        return {"points": [], "error": str(error)[:300], "note": None}
    times, note = sample_times(len(values), start, end, step)
    points = [[t, v] for t, v in zip(times, values, strict=False) if math.isfinite(v)]
    return {"points": points, "error": None if points else "the source returned no samples", "note": note}


def collect_metric_series(
    config: dict[str, Any], start: float, end: float, build: Callable[..., Any] | None = None
) -> list[dict[str, Any]]:
    """Blue and green of every configured plot over [start, end]. Never raises."""
    from include.slow_injection.queries import render_query

    plots = config.get("plots") or []
    if not plots:
        return []
    step = choose_step(start, end, float(config.get("step") or 10.0))
    source, problem = None, None
    if end <= start:
        problem = "the run has no time span to plot"
    else:
        try:
            if build is None:
                from include.slow_injection import registry

                build = registry.build
            source = build("metric_source", config["source"])
            if not isinstance(source, RangeSource):
                problem = f"metric source {config['source'].get('type')!r} has no range queries"
        except Exception as err:
            problem = f"metric source: {type(err).__name__}: {err}"[:300]
    out = []
    for plot in plots:
        entry = {
            "name": plot["name"],
            "title": plot.get("title") or plot["name"],
            "unit": plot.get("unit", ""),
            "query": plot["query"],
            "step": step,
        }
        for env in ("blue", "green"):
            query = render_query(plot["query"], None, env)
            entry[env] = (
                {"points": [], "error": problem, "note": None} if problem else _side(source, query, start, end, step)
            )
        out.append(entry)
    return out


def collect_series(
    actions: dict[str, Any], config: dict[str, Any], start: float, end: float, build: Callable[..., Any] | None = None
) -> dict[str, Any]:
    """Everything the report plots: {"start", "end", "origin", "note", "traffic", "metrics"}."""
    out: dict[str, Any] = {"start": start, "end": end, "origin": config.get("origin"), "note": config.get("note")}
    try:
        out["traffic"] = traffic_series(actions, start, end)
    except Exception as err:
        out["traffic"], out["traffic_error"] = {}, f"{type(err).__name__}: {err}"[:300]
    out["metrics"] = collect_metric_series(config, start, end, build)
    return out
