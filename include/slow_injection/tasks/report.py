"""Post-release evaluation: what the run did, every gate's verdict with its values, how it ended."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from airflow.sdk import BaseOperator

from include.slow_injection.tasks.flow import summarise_verdict


def reports_base() -> str:
    default = Path(os.environ.get("AIRFLOW_HOME", Path.home() / "airflow")) / "slow-injection-reports"
    return os.environ.get("SLOW_INJECTION_REPORTS_URL", f"file://{default}")


def outcome_of(decisions: list[dict[str, Any]], completed: bool) -> str:
    outcomes = {d["outcome"] for d in decisions}
    if "rollback" in outcomes:
        return "rolled back"
    if "hold" in outcomes:
        return "held"
    return "completed" if completed else "incomplete"


def render_markdown(data: dict[str, Any]) -> str:
    lines = [f"# Wave {data['wave']} — run {data['run_id']}", "",
             f"**Outcome: {data['outcome']}**{' (dry-run)' if data['dry_run'] else ''}", ""]
    lines += ["## Actions", "", "| task | what changed |", "|---|---|"]
    for task_id, result in data["actions"].items():
        if result is None:
            lines.append(f"| {task_id} | not run or failed |")
            continue
        if "changes" in result:
            text = "; ".join(f"{c['target']}: {c['before']} → {c['after']}" + ("" if c["applied"] else " (planned)")
                             for c in result["changes"]) or "no change"
        elif "before" in result and not result.get("changed") and "would_set" not in result:
            text = f"no change (already {result['before']})"
        elif "before" in result:
            text = f"{result['before']} → {result.get('would_set', result['after'])}" + (
                " (planned)" if result.get("dry_run") else "")
        else:
            text = "ok"
        lines.append(f"| {task_id} | {text} |")
    lines += ["", "## Gates", "", "| gate task | verdict | reason | values |", "|---|---|---|---|"]
    for task_id, verdict in data["gates"].items():
        if verdict is None:
            lines.append(f"| {task_id} | not run | | |")
        else:
            lines.append(f"| {task_id} | {verdict['status']} | {verdict.get('reason', '')} | "
                         f"{summarise_verdict(verdict).split('measured: ')[-1]} |")
    lines += validation_evidence(data["gates"])
    lines += ["", "## Decisions", ""]
    for d in data["decisions"]:
        lines.append(f"- {d['stage']}: **{d['outcome']}**" + (f" — {'; '.join(d['reasons'])}" if d["reasons"] else ""))
    return "\n".join(lines) + "\n"


def validation_evidence(gates: dict[str, Any]) -> list[str]:
    """The validation phase's figures: stress statistics, parity per metric, who accepted."""
    lines: list[str] = []
    for verdict in (v for v in gates.values() if v):
        kind = verdict.get("kind")
        if kind == "stress" and verdict.get("stats"):
            s = verdict["stats"]
            lines += ["", f"### Stress test {verdict['gate']} ({verdict['status']})", "",
                      f"{s.get('requests')} requests at {s.get('requests_per_s') or 0:.1f}/s, failures "
                      f"{(s.get('failure_ratio') or 0):.2%}; p50 {s.get('p50_ms')} ms, p95 {s.get('p95_ms')} ms, "
                      f"p99 {s.get('p99_ms')} ms; {len(verdict.get('series') or [])} per-second points in "
                      "report.json"]
        elif kind == "parity" and verdict.get("metrics"):
            lines += ["", f"### Parity with blue: score {verdict.get('score')} ({verdict.get('decision')})", "",
                      "| metric | class | blue median | green median | shift | relative | p |",
                      "|---|---|---|---|---|---|---|"]
            for m in verdict["metrics"]:
                lines.append(f"| {m['name']} | {m['classification']} | {_num(m.get('blue_median'))} | "
                             f"{_num(m.get('green_median'))} | {_num(m.get('shift'))} | "
                             f"{_num(m.get('relative_effect'))} | {_num(m.get('p_value'))} |")
        elif kind == "approval" and not verdict.get("dry_run"):
            who = (verdict.get("responded_by") or {}).get("name") or "nobody (timeout)"
            lines += ["", f"### User acceptance: {verdict.get('chosen')} by {who}"
                      + (f" at {verdict['responded_at']}" if verdict.get("responded_at") else "")]
    return lines


def _num(value: Any) -> str:
    return "-" if value is None else f"{value:.4g}"


class EvaluationReport(BaseOperator):
    """Teardown of every run: writes report.md and report.json whatever the outcome."""

    ui_color = "#eeeeee"

    def __init__(self, *, wave_id: str, action_ids: list[str], gate_ids: list[str], decision_ids: list[str],
                 outcome_ids: dict[str, str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.wave_id, self.action_ids, self.gate_ids = wave_id, action_ids, gate_ids
        self.decision_ids, self.outcome_ids = decision_ids, outcome_ids

    def execute(self, context: Any) -> dict[str, Any]:
        from airflow.sdk import ObjectStoragePath

        ti = context["ti"]
        decisions = [d for t in self.decision_ids if (d := ti.xcom_pull(task_ids=t, key="decision"))]
        completed = ti.xcom_pull(task_ids=self.outcome_ids["completed"]) is not None
        data = {
            "wave": self.wave_id, "run_id": context["run_id"], "dry_run": bool(context["params"].get("dry_run")),
            "outcome": outcome_of(decisions, completed),
            "actions": {t: ti.xcom_pull(task_ids=t) for t in self.action_ids},
            "gates": {t: ti.xcom_pull(task_ids=t, key="verdict") for t in self.gate_ids},
            "decisions": decisions,
        }
        folder = ObjectStoragePath(reports_base()) / f"wave_{self.wave_id}" / context["run_id"].replace(":", "_")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "report.json").write_text(json.dumps(data, indent=1, default=str))
        markdown = render_markdown(data)
        (folder / "report.md").write_text(markdown)
        self.log.info("report written to %s\n%s", folder, markdown)
        return {"outcome": data["outcome"], "location": str(folder)}
