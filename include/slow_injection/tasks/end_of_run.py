"""How a run ends (completed, rolled back or held) and the wave's completion event."""

from __future__ import annotations

from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from include.slow_injection.gates.verdict import breaker_moves, pull
from include.slow_injection.tasks.decision import collect_decisions
from include.slow_injection.tasks.notify import notify
from include.slow_injection.tasks.operators import WaveStep, is_dry_run


class EndWave(WaveStep):
    """How a run ends. `completed` succeeds; `rolled_back` and `held` fail on purpose, so the run
    is red while the rollback tasks stay green."""

    def __init__(
        self, *, outcome: str, decision_ids: list[str], gate_ids: list[str] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.outcome, self.decision_ids, self.gate_ids = outcome, decision_ids, gate_ids or []

    def execute(self, context: Any) -> dict[str, Any]:
        ti = context["ti"]
        decisions = collect_decisions(ti, self.decision_ids)
        stopped = [d for d in decisions if d["outcome"] != "continue"]
        lines = [f"- {d['stage']}: {'; '.join(d['reasons']) or d['outcome']}" for d in stopped]
        if self.outcome == "rolled_back" and not stopped:  # a fast rollback can finish before the decision
            for task_id in self.gate_ids:
                verdict = pull(ti, task_id)
                if verdict and verdict.status == "fail":
                    lines.append(f"- {task_id}: {verdict.reason}")
        if self.outcome == "rolled_back":
            lines += [f"- {line}" for line in breaker_moves(ti, self.gate_ids)]
        why = "\n".join(lines)
        from include.slow_injection.tasks import wave_state

        if self.outcome == "completed":
            scope = self.scope(context)
            if scope is not None and scope.verify:
                self.log.info("wave %s: the world is as the completed wave left it; nothing changed", self.wave_id)
                return {"outcome": "verified"}
            whole = scope is None or scope.whole_wave
            if not is_dry_run(context) and whole:
                wave_state.mark_completed(self.wave_id, context["run_id"])
            moved = (
                "all traffic on green" if scope is None or whole else f"services {', '.join(scope.services)} on green"
            )
            notify(self.notifications, "wave_completed", f"wave {self.wave_id} completed: {moved}")
            return {"outcome": "completed", "whole_wave": whole, "dry_run": is_dry_run(context)}
        if self.outcome == "held":
            notify(self.notifications, "wave_held", f"wave {self.wave_id} is holding", why)
            raise AirflowFailException(
                f"wave {self.wave_id} is HOLDING where it stopped (no rollback):\n{why}\n"
                "Fix the cause, then clear the failed gate with its downstream tasks to measure again."
            )
        if not is_dry_run(context):
            wave_state.clear(self.wave_id)
        raise AirflowFailException(f"wave {self.wave_id} was ROLLED BACK to blue:\n{why or '- a step failed'}")


class PublishCompletion(WaveStep):
    """The wave's Asset event (what `schedule.after` in later waves waits for): only when this run
    really completed the whole wave (EndWave `completed_task_id` says so) — a dry-run, a subset or a
    verification publishes nothing."""

    def __init__(self, *, completed_task_id: str, **kwargs: Any) -> None:
        kwargs.setdefault("notifications", [])
        super().__init__(**kwargs)
        self.completed_task_id = completed_task_id

    def execute(self, context: Any) -> dict[str, Any]:
        import time

        from airflow.sdk.exceptions import AirflowSkipException

        from include.slow_injection.assets import wave_asset

        ended = context["ti"].xcom_pull(task_ids=self.completed_task_id) or {}
        if ended.get("outcome") != "completed" or ended.get("dry_run") or not ended.get("whole_wave"):
            raise AirflowSkipException(
                f"no completion to publish ({ended.get('outcome', 'not completed')}, "
                f"dry-run {bool(ended.get('dry_run'))}, whole wave {bool(ended.get('whole_wave'))})"
            )
        context["outlet_events"][wave_asset(self.wave_id)].extra = {
            "wave": self.wave_id,
            "outcome": "completed",
            "run_id": context["run_id"],
            "at": time.time(),
        }
        return {"published": wave_asset(self.wave_id).uri}
