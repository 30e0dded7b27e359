"""Post-release evaluation: what the run did, every gate's verdict with its values, how it ended."""

from __future__ import annotations

import html
import json
import os
import time
from pathlib import Path
from typing import Any

from airflow.sdk import BaseOperator

from include.slow_injection import kinds
from include.slow_injection.gates.verdict import BreakerMove, Verdict, pull
from include.slow_injection.reporting.right_sizing_section import collect_right_sizing
from include.slow_injection.reporting.right_sizing_section import markdown_lines as right_sizing_lines
from include.slow_injection.reporting.series import NO_PLOTS, collect_series
from include.slow_injection.reporting.timeline import build_timeline, describe_action


def reports_base() -> str:
    default = Path(os.environ.get("AIRFLOW_HOME", Path.home() / "airflow")) / "slow-injection-reports"
    return os.environ.get("SLOW_INJECTION_REPORTS_URL", f"file://{default}")


def outcome_of(
    decisions: list[dict[str, Any]],
    completed: bool,
    plan: dict[str, Any] | None = None,
    left_by_hand: list[str] | None = None,
) -> str:
    if left_by_hand:
        return "rollback INCOMPLETE: traffic NOT back on blue, finish by hand (see below)"
    if plan and plan.get("state") in ("refused", "skipped", "verified"):
        return {
            "refused": "refused (nothing changed)",
            "skipped": "skipped (outside the window)",
            "verified": "verified: the world is as the completed wave left it",
        }[plan["state"]]
    outcomes = {d["outcome"] for d in decisions}
    if "rollback" in outcomes:
        return "rolled back"
    if "hold" in outcomes:
        return "held"
    return "completed" if completed else "incomplete"


def render_markdown(data: dict[str, Any]) -> str:
    lines = [
        f"# Wave {data['wave']} — run {data['run_id']}",
        "",
        f"**Outcome: {data['outcome']}**{' (dry-run)' if data['dry_run'] else ''}",
        "",
        "The full report, with plots of the run, the timeline and every figure: `report.html` "
        "(beside this file); the data: `report.json`.",
        "",
    ]
    if data.get("left_by_hand"):
        lines += ["## Left to do by hand", ""] + [f"- {step}" for step in data["left_by_hand"]] + [""]
    moved = [v["breaker"] for v in data["gates"].values() if v and isinstance(v.get("breaker"), dict)]
    if moved:  # before the rollback's own steps: the gates moved these users to blue themselves
        lines += ["## Circuit breaker", ""] + [f"- {BreakerMove.model_validate(m).line()}" for m in moved] + [""]
    plan = data.get("plan") or {}
    said = (
        plan.get("problems") or [plan["reason"]] if plan.get("state") in ("refused", "skipped") else plan.get("scope")
    )
    if said:
        lines += ["## This run", ""] + [f"- {line}" for line in said] + [""]
    lines += series_summary(data.get("series"))
    lines += ["## Actions", "", "| task | what changed |", "|---|---|"]
    for task_id, result in data["actions"].items():
        lines.append(f"| {task_id} | {describe_action(result)} |")
    lines += ["", "## Gates", "", "| gate task | verdict | reason | values |", "|---|---|---|---|"]
    for task_id, verdict in data["gates"].items():
        if verdict is None:
            lines.append(f"| {task_id} | not run | | |")
        else:
            lines.append(
                f"| {task_id} | {verdict['status']} | {verdict.get('reason', '')} | "
                f"{Verdict.model_validate(verdict).summary().split('measured: ')[-1]} |"
            )
    lines += kind_lines(data["gates"])
    lines += right_sizing_lines(data.get("right_sizing"))
    lines += ["", "## Decisions", ""]
    for d in data["decisions"]:
        lines.append(f"- {d['stage']}: **{d['outcome']}**" + (f" — {'; '.join(d['reasons'])}" if d["reasons"] else ""))
    return "\n".join(lines) + "\n"


def kind_lines(gates: dict[str, Any]) -> list[str]:
    """Each gate kind's own figures (kinds/: stress statistics, parity per metric, who accepted, the e2e
    test's pod and log), kind by kind."""
    lines: list[str] = []
    for kind in kinds.GATES.values():
        for verdict in gates.values():
            if verdict and verdict.get("kind") == kind.name:
                lines += kind.report_lines(verdict)
    return lines


def series_summary(series: dict[str, Any] | None) -> list[str]:
    """What the HTML report plots, in a few lines: traffic steps per service, samples per metric."""
    if not series:
        return []
    lines = ["## Plotted in report.html", ""]
    for service, side in sorted((series.get("traffic") or {}).items()):
        weights = [f"{p[1]:g}" for p in side.get("points") or []]
        shown = " → ".join(w for i, w in enumerate(weights) if i == 0 or w != weights[i - 1])
        lines.append(f"- traffic on green, {service}: " + (f"{shown} %" if shown else f"no data ({side.get('error')})"))
    for plot in series.get("metrics") or []:
        sides = []
        for env in ("blue", "green"):
            side = plot.get(env) or {}
            values = [p[1] for p in side.get("points") or []]
            sides.append(
                f"{env} {len(values)} samples, {min(values):.4g}…{max(values):.4g}"
                if values
                else f"{env} no data ({side.get('error') or 'no samples'})"
            )
        lines.append(f"- {plot.get('title') or plot.get('name')}: {'; '.join(sides)}")
    if not series.get("metrics"):
        lines.append(f"- {series.get('note') or 'no metric plots'}")
    return lines + [""]


def run_start(context: Any, timeline: list[dict[str, Any]], now: float) -> float:
    """When the run started: the DAG run's start, else its run_after; never after its first recorded event."""
    start = None
    dag_run = context.get("dag_run")
    for attr in ("start_date", "run_after"):
        value = getattr(dag_run, attr, None)
        if value is not None and hasattr(value, "timestamp"):
            start = float(value.timestamp())
            break
    times = [e["at"] for e in timeline if e.get("at") is not None]
    if times:
        start = min(times) if start is None else min(start, min(times))
    return now if start is None else min(start, now)


class EvaluationReport(BaseOperator):
    """Teardown of every run: writes report.json, report.md and report.html whatever the outcome.

    `report_plots` is the wave's plot configuration (reporting.series.plot_config(wave), passed by the
    factory); without it the report has no metric plots. A metrics backend that fails makes a plot
    say "no data (…)"; it never fails the report. `right_sizing` (reporting.right_sizing.right_sizing_config)
    adds each service's Fargate sizing and advice; a platform that cannot answer is said, never a failure."""

    ui_color = "#eeeeee"

    def __init__(
        self,
        *,
        wave_id: str,
        action_ids: list[str],
        gate_ids: list[str],
        decision_ids: list[str],
        outcome_ids: dict[str, str],
        plan_task_id: str | None = None,
        report_plots: dict[str, Any] | None = None,
        right_sizing: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.wave_id, self.action_ids, self.gate_ids = wave_id, action_ids, gate_ids
        self.decision_ids, self.outcome_ids, self.plan_task_id = decision_ids, outcome_ids, plan_task_id
        self.report_plots = report_plots
        self.right_sizing = right_sizing

    def execute(self, context: Any) -> dict[str, Any]:
        from airflow.sdk import ObjectStoragePath

        from include.slow_injection.reporting.html import render_html

        ti = context["ti"]
        decisions = [d for t in self.decision_ids if (d := ti.xcom_pull(task_ids=t, key="decision"))]
        ended = ti.xcom_pull(task_ids=self.outcome_ids["completed"])
        completed = ended is not None
        plan = ti.xcom_pull(task_ids=self.plan_task_id, key="plan_outcome") if self.plan_task_id else None
        if isinstance(ended, dict) and ended.get("outcome") == "verified":
            plan = {**(plan or {}), "state": "verified"}
        rollback_traffic = self.outcome_ids.get("rollback_traffic")
        left = ti.xcom_pull(task_ids=rollback_traffic, key="left_by_hand") if rollback_traffic else None
        data = {
            "wave": self.wave_id,
            "run_id": context["run_id"],
            "dry_run": bool(context["params"].get("dry_run")),
            "outcome": outcome_of(decisions, completed, plan, left),
            "plan": plan,
            "left_by_hand": left,
            "actions": {t: ti.xcom_pull(task_ids=t) for t in self.action_ids},
            "gates": {t: (v.to_xcom() if (v := pull(ti, t)) else None) for t in self.gate_ids},
            "decisions": decisions,
        }
        now = time.time()
        data["timeline"] = build_timeline(data["actions"], data["gates"])
        start = run_start(context, data["timeline"], now)
        data["started_at"], data["generated_at"] = start, now
        # the factory passes the wave's plots; nothing re-reads specs at report time
        plots = self.report_plots if self.report_plots is not None else {"plots": [], "note": NO_PLOTS}
        try:
            data["series"] = collect_series(data["actions"], plots, start, now)
        except Exception as err:
            self.log.exception("could not collect the plots' series")
            data["series"] = {
                "start": start,
                "end": now,
                "traffic": {},
                "metrics": [],
                "note": f"no plots: {type(err).__name__}: {err}"[:300],
            }
        if self.right_sizing is not None:
            data["right_sizing"] = collect_right_sizing(self.right_sizing, start, now)
        folder = ObjectStoragePath(reports_base()) / f"wave_{self.wave_id}" / context["run_id"].replace(":", "_")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "report.json").write_text(json.dumps(data, indent=1, default=str))
        markdown = render_markdown(data)
        (folder / "report.md").write_text(markdown)
        try:
            page = render_html(data)
        except Exception as err:
            # report.json and report.md are written; the page says what went wrong, and the task is red
            (folder / "report.html").write_text(
                f"<!DOCTYPE html><meta charset='utf-8'><p>report.html could not be rendered "
                f"({html.escape(type(err).__name__)}: {html.escape(str(err))}); see report.md and report.json.</p>"
            )
            raise
        (folder / "report.html").write_text(page)
        self.log.info("report written to %s (report.html, report.md, report.json)\n%s", folder, markdown)
        return {"outcome": data["outcome"], "location": str(folder)}
