"""User acceptance: a human promotes, holds or rolls back in the Airflow UI (HITL), seeing every verdict
so far; no answer in time takes the spec's default. Written in specs (`validation.approval`); run by
UatApproval (tasks/gate_tasks.py)."""

from __future__ import annotations

from typing import Any

from include.slow_injection.durations import format_duration
from include.slow_injection.kinds.base import GateKind, Task, TaskContext
from include.slow_injection.plan import Gate
from include.slow_injection.spec.models import Approval

REPORT_HTML = """\
<h2>User acceptance</h2>
{% for verdict in verdicts %}
<p>{{ "Nobody was asked (dry-run)." if verdict.get("dry_run") else answer(verdict) }}</p>
{% endfor %}
"""


class ApprovalKind(GateKind):
    name = "approval"
    spec_model = Approval
    may_hold = True  # a human's Hold
    report_html = REPORT_HTML

    def plan_line(self, gate: Gate) -> str:
        a = gate.spec
        assert isinstance(a, Approval)
        return (
            f"user acceptance: a human promotes, holds or rolls back in the UI "
            f"(no answer in {format_duration(a.timeout)} → {a.on_timeout})"
        )

    def task(self, gate: Gate, context: TaskContext) -> Task:
        # The approver sees every verdict so far (stress figures, parity score, gate values).
        return Task(
            "include.slow_injection.tasks.gate_tasks:UatApproval",
            {
                "approval": gate.spec.model_dump(),
                "wave_id": context.wave.id,
                "evidence_ids": list(context.earlier_gates),
                **context.args,
            },
        )

    def report_context(self) -> dict[str, Any]:
        return {"answer": answer}

    def report_lines(self, verdict: dict[str, Any]) -> list[str]:
        if verdict.get("dry_run"):
            return []
        who = (verdict.get("responded_by") or {}).get("name") or "nobody (timeout)"
        return [
            "",
            f"### User acceptance: {verdict.get('chosen')} by {who}"
            + (f" at {verdict['responded_at']}" if verdict.get("responded_at") else ""),
        ]


def answer(verdict: dict[str, Any]) -> str:
    """Who chose what, and when."""
    who = verdict.get("responded_by") or {}
    name = (who.get("name") or who.get("id")) if isinstance(who, dict) else None
    text = f"{verdict.get('chosen')} by {name}" if name else f"{verdict.get('chosen')}: nobody answered"
    if verdict.get("responded_at"):
        text += f" at {verdict['responded_at']}"
    if verdict.get("timed_out"):
        text += " (timed out: the spec's default)"
    return text


KIND = ApprovalKind()
