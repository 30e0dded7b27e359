"""Parity with blue: green against blue over the same window, metric by metric (Mann-Whitney U,
Hodges-Lehmann), scored; a marginal score is a human's call. Written in specs (`validation.parity`);
run by ParityGate (tasks/gate_tasks.py) over the earlier stress tests' load."""

from __future__ import annotations

from typing import Any

from include.slow_injection.durations import format_duration
from include.slow_injection.gates.verdict import Verdict
from include.slow_injection.kinds.base import GateKind, Task, TaskContext
from include.slow_injection.plan import Gate
from include.slow_injection.spec.models import Parity

COLUMNS = ("blue_median", "green_median", "shift", "relative_effect", "p_value", "blue_count", "green_count")

REPORT_HTML = """\
{% from "macros.html" import badge %}
<h2>Parity with blue</h2>
{% for verdict in verdicts %}
<p>Score <b>{{ verdict.get("score")|fmt }}</b> {{ badge(verdict.get("status"), verdict.get("decision")) }} — {{ verdict.get("reason", "") }}</p>
{% set window = verdict.get("window") if verdict.get("window") is mapping else {} %}
{% if window.get("start")|number and window.get("end")|number %}
<p class="note">window {{ window["start"]|when(true) }} → {{ window["end"]|when(true) }}, one sample every {{ window.get("step")|fmt }}s</p>
{% endif %}
{% set metrics = (verdict.get("metrics") or [])|select("mapping")|list %}
{% if metrics %}
<table><tr><th>metric</th><th>class</th><th>blue median</th><th>green median</th><th>shift</th><th>relative</th><th>p</th>
<th>n blue</th><th>n green</th><th>why</th></tr>
{% for m in metrics %}
<tr><td>{{ m.get("name") }}</td><td>{{ m.get("classification") }}</td>
  {%- for key in columns %}<td class="num">{{ m.get(key)|fmt }}</td>{% endfor -%}
  <td>{{ m.get("reason", "") }}</td></tr>
{% endfor %}
</table>
{% endif %}
{% endfor %}
"""


class ParityKind(GateKind):
    name = "parity"
    spec_model = Parity
    may_hold = True  # "marginal" without a human holds
    report_html = REPORT_HTML

    def plan_line(self, gate: Gate) -> str:
        p = gate.spec
        assert isinstance(p, Parity)
        return (
            f"parity with blue (over the stress tests' load, else the last {format_duration(p.window)}): "
            f"{', '.join(m.name for m in p.metrics)}; "
            f"score ≥ {p.pass_score:g} passes, ≥ {p.marginal_score:g} asks a human, else roll back"
        )

    def task(self, gate: Gate, context: TaskContext) -> Task:
        return Task(
            "include.slow_injection.tasks.gate_tasks:ParityGate",
            {
                "parity": gate.spec.model_dump(),
                "stress_ids": list(context.earlier_load),
                "human_decides": context.wave.validation.approval is not None,
                **context.args,
            },
        )

    def report_context(self) -> dict[str, Any]:
        return {"columns": COLUMNS}

    def report_lines(self, verdict: dict[str, Any]) -> list[str]:
        if not verdict.get("metrics"):
            return []
        lines = [
            "",
            f"### Parity with blue: score {verdict.get('score')} ({verdict.get('decision')})",
            "",
            "| metric | class | blue median | green median | shift | relative | p |",
            "|---|---|---|---|---|---|---|",
        ]
        for m in verdict["metrics"]:
            lines.append(
                f"| {m['name']} | {m['classification']} | {_num(m.get('blue_median'))} | "
                f"{_num(m.get('green_median'))} | {_num(m.get('shift'))} | "
                f"{_num(m.get('relative_effect'))} | {_num(m.get('p_value'))} |"
            )
        return lines

    def evidence_line(self, verdict: Verdict) -> str:
        return f"score {verdict.evidence('score')}: " + ", ".join(
            f"{m['name']} {m['classification']}" for m in verdict.evidence("metrics", [])
        )


def _num(value: Any) -> str:
    return "-" if value is None else f"{value:.4g}"


KIND = ParityKind()
