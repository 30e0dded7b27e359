"""The decision after each stage: continue, roll back or hold, from its actions' results and its
gates' verdicts."""

from __future__ import annotations

from typing import Any

from airflow.providers.standard.operators.branch import BaseBranchOperator

from include.slow_injection.gates.verdict import Verdict, pull
from include.slow_injection.tasks.notify import notify
from include.slow_injection.tasks.scope import verifying

CONTINUE, ROLLBACK, HOLD = "continue", "rollback", "hold"


def judge(actions: dict[str, Any], verdicts: dict[str, Verdict | None], dry_run: bool = False) -> tuple[str, list[str]]:
    """Outcome of a stage from its actions' results and its gates' verdicts (None = missing).

    A missing result means the task failed or crashed: that is a failure, never a pass. In a dry-run
    nothing moved, so a gate's single reading is shown, not judged (only when the run is a dry-run)."""
    if dry_run:
        verdicts = {t: (v.model_copy(update={"status": "pass"}) if v and v.dry_run else v) for t, v in verdicts.items()}
    reasons: list[str] = []
    held = []
    for task_id, result in actions.items():
        if result is None:
            reasons.append(f"{task_id} did not complete")
        elif isinstance(result, dict) and (result.get("scope") or {}).get("status") == "hold":
            held.append(f"{task_id} is holding: {result['scope']['reason']}")
    for task_id, verdict in verdicts.items():
        if verdict is None:
            reasons.append(f"{task_id} gave no verdict (failed or timed out)")
        elif verdict.status == "skipped":  # out of this run's scope, said why in the report
            continue
        elif verdict.status == "fail":
            reasons.append(f"gate {verdict.gate} failed: {verdict.reason}")
        elif verdict.status == "hold":
            held.append(f"gate {verdict.gate} is holding: {verdict.reason}")
    if reasons:
        return ROLLBACK, reasons + held
    if held:
        return HOLD, held
    return CONTINUE, []


class StageDecision(BaseBranchOperator):
    """After a stage: continue, roll back, or hold. Runs when its stage ran (NONE_SKIPPED), so a
    failed step or gate reaches it too."""

    ui_color = "#f3e8fd"

    def __init__(
        self,
        *,
        wave_id: str,
        stage: str,
        action_ids: list[str],
        gate_ids: list[str],
        rollback_marker: str,
        hold_marker: str,
        automatic_rollback: bool,
        completes_phase: str | None = None,
        notifications: list[dict[str, Any]] | None = None,
        plan_task_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.wave_id, self.stage, self.plan_task_id = wave_id, stage, plan_task_id
        self.action_ids, self.gate_ids = action_ids, gate_ids
        self.rollback_marker, self.hold_marker = rollback_marker, hold_marker
        self.automatic_rollback = automatic_rollback
        self.completes_phase = completes_phase
        self.notifications = notifications or []

    def choose_branch(self, context: Any) -> list[str]:
        ti = context["ti"]
        verdicts: dict[str, Verdict | None] = {}
        try:
            actions = {t: ti.xcom_pull(task_ids=t) for t in self.action_ids}
            verdicts = {t: pull(ti, t) for t in self.gate_ids}
            outcome, reasons = judge(actions, verdicts, dry_run=bool(context["params"].get("dry_run")))
        except Exception as err:
            outcome, reasons = ROLLBACK, [f"could not read the stage's results: {err}"]
        if outcome == ROLLBACK and not self.automatic_rollback:
            outcome, reasons = HOLD, reasons + ["automatic rollback is off: a human decides"]
        if outcome == ROLLBACK and verifying(context, self.plan_task_id):
            # A completed wave's blue may be retired: drift is reported, never "rolled back" into.
            outcome, reasons = HOLD, reasons + ["the wave completed earlier: drift holds for a human, no rollback"]
        ti.xcom_push(key="decision", value={"stage": self.stage, "outcome": outcome, "reasons": reasons})
        for reason in reasons:
            self.log.warning("%s: %s", self.stage, reason)
        if outcome == CONTINUE:
            self.log.info("%s: every check passed, continuing", self.stage)
            if self.completes_phase:
                notify(self.notifications, "phase_completed", f"wave {self.wave_id}: {self.completes_phase} completed")
            return sorted(self.downstream_task_ids - {self.rollback_marker, self.hold_marker})
        failed = [v for v in verdicts.values() if v and v.status != "pass"]
        if failed or reasons:
            notify(
                self.notifications,
                "gate_failed",
                f"wave {self.wave_id}: {self.stage} → {outcome}",
                "\n".join(reasons + [v.summary() for v in failed]),
            )
        return [self.rollback_marker if outcome == ROLLBACK else self.hold_marker]


def collect_decisions(ti: Any, decision_ids: list[str]) -> list[dict[str, Any]]:
    out = []
    for task_id in decision_ids:
        decision = ti.xcom_pull(task_ids=task_id, key="decision")
        if decision:
            out.append(decision)
    return out
