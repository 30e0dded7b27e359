"""Validation gates that are tasks rather than waits: the stress test, the parity analysis with blue,
and the human acceptance (HITL). Each pushes a verdict (key `verdict`) the stage decision and the
report read, like the sensors do, and fails unless it passes."""

from __future__ import annotations

import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.providers.standard.operators.hitl import HITLOperator
from airflow.sdk import BaseOperator

from include.slow_injection import kinds
from include.slow_injection.gates.verdict import Verdict, pull
from include.slow_injection.kinds import approval as approval_kind
from include.slow_injection.kinds import parity as parity_kind
from include.slow_injection.kinds import stress as stress_kind
from include.slow_injection.tasks.deliver import deliver
from include.slow_injection.tasks.operators import is_dry_run
from include.slow_injection.tasks.scope import gate_out_of_scope, run_scope

if TYPE_CHECKING:
    from airflow.sdk.execution_time.hitl import HITLUser


class StressGate(BaseOperator):
    """Load at green's URL only (locust in a subprocess), judged on failures and p95/p99."""

    ui_color = "#fbe3d3"

    def __init__(
        self,
        *,
        test: dict[str, Any],
        stage: dict[str, Any] | None = None,
        stage_actions: list[str] | None = None,
        plan_task_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("retries", 0)  # a failed stress test is a verdict, not a glitch to retry
        super().__init__(**kwargs)
        self.test, self.stage, self.stage_actions = test, stage, stage_actions
        self.plan_task_id = plan_task_id  # plan_wave: the run's scope

    def target_url(self) -> str:
        if self.test.get("url"):
            return self.test["url"]
        from include.slow_injection.drivers.connections import base_url, get_connection

        return base_url(get_connection(self.test["connection"])) + self.test.get("path", "/")

    def execute(self, context: Any) -> dict[str, Any]:
        from include.slow_injection.measurement.load_test import judge_stress, run_stress

        if (out := gate_out_of_scope(self, context, self.test["name"], stress_kind.KIND.name)) is not None:
            return out
        url = self.target_url()
        if is_dry_run(context):
            verdict = Verdict(
                gate=self.test["name"],
                kind=stress_kind.KIND.name,
                service=None,
                env="green",
                status="pass",
                dry_run=True,
                measurements=[],
                reason=f"[dry-run] would load {url} with {self.test['users']} users for {self.test['duration']:g}s",
            )
            return deliver(self, context, verdict, judged=False)
        started = time.time()
        with tempfile.TemporaryDirectory(prefix="stress-") as workdir:
            result = run_stress(self.test, url, Path(workdir))
        verdict = judge_stress(self.test, result).model_copy(
            update={"started_at": started, "finished_at": time.time(), "target": url}
        )
        return deliver(self, context, verdict)


class ParityGate(BaseOperator):
    """Green against blue over the same window, metric by metric (Mann-Whitney U, Hodges-Lehmann)."""

    ui_color = "#e3ecfb"

    def __init__(
        self,
        *,
        parity: dict[str, Any],
        human_decides: bool,
        stress_ids: list[str] | None = None,
        stage: dict[str, Any] | None = None,
        stage_actions: list[str] | None = None,
        plan_task_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("retries", 0)
        super().__init__(**kwargs)
        self.parity, self.human_decides, self.stress_ids = parity, human_decides, stress_ids or []
        self.stage, self.stage_actions, self.plan_task_id = stage, stage_actions, plan_task_id

    def window(self, context: Any) -> tuple[float, float]:
        """The stress tests' load window when there was one (green had traffic then), else the last
        `window` seconds (e.g. green already serving a share of users)."""
        runs = [
            (s, v.finished_at or s) for t in self.stress_ids if (v := pull(context["ti"], t)) and (s := v.started_at)
        ]
        if runs:
            step = float(self.parity["step"])
            return min(start for start, _ in runs), max(end for _, end in runs) + step
        end = time.time()
        return end - float(self.parity["window"]), end

    def execute(self, context: Any) -> dict[str, Any]:
        from include.slow_injection.measurement.parity_analysis import analyse_parity

        if (out := gate_out_of_scope(self, context, "parity", parity_kind.KIND.name)) is not None:
            return out
        start, end = self.window(context)
        verdict = analyse_parity(self.parity, start=start, end=end, human_decides=self.human_decides)
        dry_run = is_dry_run(context)
        return deliver(self, context, verdict.model_copy(update={"dry_run": dry_run}), judged=not dry_run)


class UatApproval(HITLOperator):
    """User acceptance in the Airflow UI: Promote, Hold or Roll back, with the evidence so far in its
    body; no answer within the timeout takes the spec's safe default."""

    PROMOTE, HOLD, ROLLBACK = "Promote", "Hold", "Roll back"
    STATUS = {PROMOTE: "pass", HOLD: "hold", ROLLBACK: "fail"}

    def __init__(
        self,
        *,
        approval: dict[str, Any],
        wave_id: str,
        evidence_ids: list[str],
        stage: dict[str, Any] | None = None,
        stage_actions: list[str] | None = None,
        plan_task_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        default = self.ROLLBACK if approval["on_timeout"] == "rollback" else self.HOLD
        users: list[HITLUser] = [{"id": u, "name": u} for u in approval.get("assignees") or []]
        super().__init__(
            subject=f"Wave {wave_id}: promote green to user traffic?",
            options=[self.PROMOTE, self.HOLD, self.ROLLBACK],
            defaults=[default],
            response_timeout=timedelta(seconds=float(approval["timeout"])),
            assigned_users=users or None,
            **kwargs,
        )
        self.approval, self.wave_id, self.evidence_ids = approval, wave_id, evidence_ids
        self.stage, self.stage_actions, self.plan_task_id = stage, stage_actions, plan_task_id

    def execute(self, context: Any) -> Any:
        if (out := gate_out_of_scope(self, context, "uat_approval", approval_kind.KIND.name)) is not None:
            return out
        scope = run_scope(context, self.plan_task_id)
        if scope is not None and scope.approval_timeout:  # the trigger form's approval_timeout
            self.response_timeout = timedelta(seconds=scope.approval_timeout)
        if is_dry_run(context):
            verdict = Verdict(
                gate="uat_approval",
                kind=approval_kind.KIND.name,
                service=None,
                env="green",
                status="pass",
                dry_run=True,
                measurements=[],
                reason="[dry-run] nobody is asked",
            )
            return deliver(self, context, verdict, judged=False)
        self.body = evidence_body(self.approval, self.collect_evidence(context))
        return super().execute(context)

    def collect_evidence(self, context: Any) -> dict[str, Verdict | None]:
        return {task_id: pull(context["ti"], task_id) for task_id in self.evidence_ids}

    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        answer = super().execute_complete(context, event)
        chosen = answer.get("chosen_options") or [self.ROLLBACK]
        who = answer.get("responded_by_user") or {}
        by = who.get("name") or who.get("id")
        timed_out = bool(event.get("timedout")) or not by
        option = chosen[0]
        waited = self.response_timeout.total_seconds() if self.response_timeout else float(self.approval["timeout"])
        reason = (
            f"no answer within {waited:g}s: {option} (the spec's default)" if timed_out else f"{option} chosen by {by}"
        )
        verdict = Verdict(
            gate="uat_approval",
            kind=approval_kind.KIND.name,
            service=None,
            env="green",
            status=self.STATUS.get(option, "fail"),
            reason=reason,
            measurements=[],
            chosen=option,
            responded_by=who or None,
            responded_at=str(answer.get("responded_at") or ""),
            timed_out=timed_out,
        )
        return deliver(self, context, verdict)


def evidence_body(approval: dict[str, Any], evidence: dict[str, Verdict | None]) -> str:
    """Markdown the approver reads: instructions, then every verdict so far with its figures."""
    lines = [
        approval.get("instructions") or "Test green, then choose.",
        "",
        "| check | verdict | evidence |",
        "|---|---|---|",
    ]
    for task_id, verdict in evidence.items():
        if not verdict:
            lines.append(f"| {task_id} | not run | |")
            continue
        lines.append(f"| {verdict.gate} | {verdict.status} | {kinds.gate(verdict.kind).evidence_line(verdict)} |")
    return "\n".join(lines)
