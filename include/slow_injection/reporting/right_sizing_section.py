"""The report's "Right-sizing" section: for each service, green's pods' requests against the capacity
Fargate provisioned (and billed), with the observed usage where the spec names usage queries, and what
would be cheaper or safer (rules and figures: kubernetes/right_sizing.py).

Collected when the run ends; nothing here raises: a platform or a metrics backend that cannot answer
becomes the service's `error` / the usage's `error`, and the section says so.

Shape (report.json, under "right_sizing"):
  {"prices": str, "headroom": float, "note": str | None,
   "services": [{"service", "workload", "error", "usage": {"cpu_p95", "memory_p95", "samples", "errors"} | None,
                 "groups": [right_sizing.assess groups]}]}
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from typing import Any

from include.slow_injection.kubernetes.right_sizing import (
    HEADROOM,
    PRICE_NOTE,
    Usage,
    assess,
    cpu_text,
    memory_text,
    p95,
)
from include.slow_injection.ports import RangeSource

NO_SERVICES = "no service to right-size"


def right_sizing_config(wave: Any) -> dict[str, Any]:
    """What the report task is given (JSON-safe): both platforms, each service's workload, usage queries."""
    usage = wave.report.usage
    return {
        "platform": {env: getattr(wave.environments, env).platform.model_dump() for env in ("blue", "green")},
        "services": [{"name": s.name, "workload": s.workload.model_dump()} for s in wave.services],
        "usage": usage.model_dump() if usage else None,
        "source": wave.report.source.model_dump() if usage and wave.report.source else None,
        "step": wave.report.step,
    }


def collect_right_sizing(
    config: dict[str, Any] | None, start: float, end: float, build: Callable[..., Any] | None = None
) -> dict[str, Any]:
    """Each service's pods, usage and advice. Never raises."""
    out: dict[str, Any] = {"prices": PRICE_NOTE, "headroom": HEADROOM, "note": None, "services": []}
    if not config or not config.get("services"):
        out["note"] = NO_SERVICES
        return out
    if build is None:
        from include.slow_injection import registry

        build = registry.build
    platform, platform_error = None, None
    try:
        refs = config["platform"]
        platform = build("platform", refs["green"], blue_ref=refs["blue"])
    except Exception as err:
        platform_error = f"platform driver: {type(err).__name__}: {err}"[:300]
    source, source_error = _source(config, build)
    for service in config["services"]:
        workload = service["workload"]
        namespace = workload.get("green_namespace") or workload["namespace"]
        entry: dict[str, Any] = {
            "service": service["name"],
            "error": platform_error,
            "groups": [],
            "usage": None,
            "workload": f"{workload['kind']} {namespace}/{workload['name']}",
        }
        pods: list[dict[str, Any]] = []
        if platform is not None:
            try:
                pods = list(platform.capacity(workload))
            except Exception as err:
                entry["error"] = f"the platform could not list green's pods: {type(err).__name__}: {err}"[:300]
        if config.get("usage"):
            entry["usage"] = _usage(config, service["name"], source, source_error, start, end)
        usage = entry["usage"] or {}
        try:
            entry["groups"] = assess(pods, Usage(usage.get("cpu_p95"), usage.get("memory_p95")))
        except Exception as err:
            entry["error"] = f"could not assess green's pods: {type(err).__name__}: {err}"[:300]
        if not pods and entry["error"] is None:
            entry["error"] = "no green pod found (green not deployed in this run, or scaled to zero)"
        out["services"].append(entry)
    return out


def _source(config: dict[str, Any], build: Callable[..., Any]) -> tuple[Any, str | None]:
    if not config.get("usage"):
        return None, None
    try:
        source = build("metric_source", config["source"])
    except Exception as err:
        return None, f"metric source: {type(err).__name__}: {err}"[:300]
    if not isinstance(source, RangeSource):
        return None, f"metric source {config['source'].get('type')!r} has no range queries"
    return source, None


def _usage(
    config: dict[str, Any], service: str, source: Any, source_error: str | None, start: float, end: float
) -> dict[str, Any]:
    """p95 of each usage query over the run, for one service."""
    from include.slow_injection.queries import render_query
    from include.slow_injection.reporting.series import choose_step

    out: dict[str, Any] = {"cpu_p95": None, "memory_p95": None, "samples": {}, "errors": {}}
    step = choose_step(start, end, float(config.get("step") or 10.0))
    for resource in ("cpu", "memory"):
        query = (config.get("usage") or {}).get(resource)
        if not query:
            continue
        if source is None:
            out["errors"][resource] = source_error
            continue
        if end <= start:
            out["errors"][resource] = "the run has no time span to measure"
            continue
        try:
            series = source.query_range(render_query(query, service, "green"), start, end, step)
            values = [float(v) for v in series.values]
            error = series.error
        except Exception as err:
            values, error = [], f"{type(err).__name__}: {err}"
        value = None if error else p95(values)
        out["samples"][resource] = len(values)
        out[f"{resource}_p95"] = value
        if value is None:
            out["errors"][resource] = str(error or "the source returned no samples")[:300]
    return out


# --- rendering ---------------------------------------------------------------------------------------


def _usage_line(usage: dict[str, Any] | None) -> str | None:
    if not usage:
        return None
    parts = []
    for resource, show in (("cpu", cpu_text), ("memory", memory_text)):
        value, error = usage.get(f"{resource}_p95"), (usage.get("errors") or {}).get(resource)
        if value is not None:
            parts.append(f"{resource} p95 {show(value)} ({(usage.get('samples') or {}).get(resource, 0)} samples)")
        elif error:
            parts.append(f"{resource}: no data ({error})")
    return "observed usage: " + "; ".join(parts) if parts else None


def markdown_lines(section: dict[str, Any] | None) -> list[str]:
    """report.md's Right-sizing section."""
    if not section:
        return []
    lines = ["", "## Right-sizing", "", f"Costs: {section.get('prices')}.", ""]
    if section.get("note"):
        lines.append(f"- {section['note']}")
    for entry in section.get("services") or []:
        lines += [f"### {entry['service']} ({entry.get('workload')})", ""]
        usage = _usage_line(entry.get("usage"))
        if usage:
            lines.append(f"- {usage}")
        if entry.get("error"):
            lines.append(f"- {entry['error']}")
        for group in entry.get("groups") or []:
            if group.get("error"):
                lines.append(f"- {group['error']}")
                continue
            lines.append(
                f"- {len(group['pods'])} pod(s): requests {group['requests_text']}; Fargate rules "
                f"{group['expected'] or 'none fits'}; provisioned {group['provisioned'] or 'not annotated'}; "
                f"billed {group['billed'] or '-'}"
                + (f" at ${group['hourly_cost']:.4f}/h per pod" if group.get("hourly_cost") else "")
            )
            lines += [f"  - **{a['kind']}**: {a['text']}" for a in group.get("advice") or []]
        lines.append("")
    return lines


def html_section(section: dict[str, Any] | None) -> str:
    """report.html's Right-sizing section (every text escaped)."""
    if not section:
        return ""
    out = [
        "<h2>Right-sizing</h2>",
        f'<p class="note">Costs: {escape(str(section.get("prices")))}. A right-sized '
        f"request covers usage p95 × {escape(str(section.get('headroom')))}.</p>",
    ]
    if section.get("note"):
        out.append(f'<p class="note">{escape(str(section["note"]))}</p>')
    for entry in section.get("services") or []:
        out.append(f"<h3>{escape(str(entry.get('service')))} <code>{escape(str(entry.get('workload')))}</code></h3>")
        usage = _usage_line(entry.get("usage"))
        if usage:
            out.append(f"<p>{escape(usage)}</p>")
        if entry.get("error"):
            out.append(f'<p class="note">{escape(str(entry["error"]))}</p>')
        rows = []
        for group in entry.get("groups") or []:
            if group.get("error"):
                rows.append(f'<tr><td colspan="6">{escape(str(group["error"]))}</td></tr>')
                continue
            cost = f"${group['hourly_cost']:.4f}/h" if group.get("hourly_cost") else "-"
            advice = "".join(
                f'<li><span class="badge {"fail" if a["kind"] == "safer" else "pass" if a["kind"] == "cheaper" else "unknown"}">'
                f"{escape(str(a['kind']))}</span> {escape(str(a['text']))}</li>"
                for a in group.get("advice") or []
            )
            pods = ", ".join(group["pods"][:5]) + (f" … ({len(group['pods'])})" if len(group["pods"]) > 5 else "")
            rows.append(
                f"<tr><td>{escape(pods)}</td><td>{escape(str(group['requests_text']))}</td>"
                f"<td>{escape(str(group['expected'] or 'none fits'))}</td>"
                f"<td>{escape(str(group['provisioned'] or 'not annotated'))}</td>"
                f'<td class="num">{escape(cost)}</td><td><ul>{advice}</ul></td></tr>'
            )
        if rows:
            out.append(
                "<table><tr><th>pods</th><th>requests</th><th>Fargate rules</th><th>provisioned</th>"
                "<th>billed per pod</th><th>advice</th></tr>" + "".join(rows) + "</table>"
            )
    return "\n".join(out)
