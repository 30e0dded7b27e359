"""Stress test: load on green's URL only (locust in a subprocess), judged on failures and p95/p99.
Written in specs (`validation.stress`); run by StressGate (tasks/gate_tasks.py)."""

from __future__ import annotations

from typing import Any

from include.slow_injection.durations import format_duration
from include.slow_injection.gates.verdict import Verdict
from include.slow_injection.kinds.base import GateKind, Task, TaskContext
from include.slow_injection.plan import Gate
from include.slow_injection.spec.models import StressTest

COLUMNS = (
    ("requests", "requests"),
    ("requests/s", "requests_per_s"),
    ("failures", "failures"),
    ("failure ratio", "failure_ratio"),
    ("p50 ms", "p50_ms"),
    ("p95 ms", "p95_ms"),
    ("p99 ms", "p99_ms"),
    ("elapsed s", "elapsed_s"),
)

REPORT_HTML = """\
{% from "macros.html" import badge %}
<h2>Stress tests</h2>
{% for verdict in verdicts %}
{% set s = verdict.get("stats") or {} %}
<h3>{{ verdict.get("gate") }} {{ badge(verdict.get("status")) }}</h3>
{% if not s %}
<p class="note">{{ verdict.get("reason", "no figures") }}</p>
{% else %}
<table><tr>{% for label, _ in columns %}<th>{{ label }}</th>{% endfor %}</tr>
<tr>{% for _, key in columns %}<td class="num">{{ s.get(key)|fmt }}</td>{% endfor %}</tr></table>
{% if verdict.get("target") %}
<p class="note">target <code>{{ verdict["target"] }}</code>; {{ (verdict.get("series") or [])|length }} per-second points in report.json</p>
{% endif %}
{% set errors = (s.get("errors") or [])|select("mapping")|list %}
{% if errors %}
<ul>{% for e in errors[:5] %}<li>{{ e.get("error") }} ×{{ e.get("count") }}</li>{% endfor %}</ul>
{% endif %}
{% endif %}
{% endfor %}
"""


class StressKind(GateKind):
    name = "stress"
    spec_model = StressTest
    loads_green = True
    report_html = REPORT_HTML

    def plan_line(self, gate: Gate) -> str:
        s = gate.spec
        assert isinstance(s, StressTest)
        limits = [f"failures ≤ {s.max_failure_ratio:.1%}"]
        limits += [f"{q} ≤ {format_duration(v)}" for q, v in (("p95", s.max_p95), ("p99", s.max_p99)) if v]
        rate = f", capped at {s.rate_limit:g} req/s" if s.rate_limit else ""
        return f"stress {s.name}: {s.users} users on green for {format_duration(s.duration)}{rate}; {', '.join(limits)}"

    def task(self, gate: Gate, context: TaskContext) -> Task:
        return Task(
            "include.slow_injection.tasks.gate_tasks:StressGate", {"test": gate.spec.model_dump(), **context.args}
        )

    def report_context(self) -> dict[str, Any]:
        return {"columns": COLUMNS}

    def report_lines(self, verdict: dict[str, Any]) -> list[str]:
        if not verdict.get("stats"):
            return []
        s = verdict["stats"]
        return [
            "",
            f"### Stress test {verdict['gate']} ({verdict['status']})",
            "",
            f"{s.get('requests')} requests at {s.get('requests_per_s') or 0:.1f}/s, failures "
            f"{(s.get('failure_ratio') or 0):.2%}; p50 {s.get('p50_ms')} ms, p95 {s.get('p95_ms')} ms, "
            f"p99 {s.get('p99_ms')} ms; {len(verdict.get('series') or [])} per-second points in "
            "report.json",
        ]

    def evidence_line(self, verdict: Verdict) -> str:
        s = verdict.evidence("stats") or {}
        return (
            f"{s.get('requests') or 0} requests, failures {s.get('failure_ratio') or 0:.2%}, "
            f"p95 {s.get('p95_ms', '-')} ms, p99 {s.get('p99_ms', '-')} ms"
        )


KIND = StressKind()
