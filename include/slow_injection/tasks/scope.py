"""The run's scope at task time: what plan_wave decided, asked by every forward task. Each task is
given plan_wave's task id (`plan_task_id`) by the builder that made both."""

from __future__ import annotations

from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from include.slow_injection import run_scope as scopes
from include.slow_injection.gates.verdict import Verdict
from include.slow_injection.run_scope import Scope, stage_verdict
from include.slow_injection.tasks.deliver import deliver


def run_scope(context: Any, plan_task_id: str | None) -> Scope | None:
    """plan_wave's Scope (None when a task runs outside a wave run, e.g. in a unit test)."""
    if plan_task_id is None:
        return None
    if "_slow_injection_scope" not in context:
        data = context["ti"].xcom_pull(task_ids=plan_task_id, key="scope")
        context["_slow_injection_scope"] = Scope.from_dict(data) if data else None
    return context["_slow_injection_scope"]


def forward_check(
    context: Any, plan_task_id: str | None, stage: dict[str, Any] | None, role: str, action_ids: list[str] | None = None
) -> dict[str, str] | None:
    """Whether a forward task's stage runs (None), is behind us / out of scope, or must hold."""
    if not stage:
        return None
    scope = run_scope(context, plan_task_id)
    if scope is None:
        return None
    held = []
    if role == "gate" and action_ids:
        for task_id in action_ids:
            result = context["ti"].xcom_pull(task_ids=task_id)
            if isinstance(result, dict) and (result.get("scope") or {}).get("status") == "hold":
                held.append(result["scope"]["reason"])
    return stage_verdict(scope, stage, role, scopes.now_utc(), held)


def verifying(context: Any, plan_task_id: str | None) -> bool:
    scope = run_scope(context, plan_task_id)
    return bool(scope and scope.verify)


def refuse_drift(context: Any, plan_task_id: str | None, what: str, changes: list[Any]) -> None:
    """A completed wave's nightly run changes nothing: what it would change is drift, reported."""
    if changes and verifying(context, plan_task_id):
        listed = "; ".join(str(c) for c in changes)
        raise AirflowFailException(
            f"drift: {what} is no longer as the completed wave left it: {listed} "
            "(nothing was changed; the wave holds for a human)"
        )


def gate_out_of_scope(op: Any, context: Any, gate: str, kind: str) -> dict[str, Any] | None:
    """A gate outside the run's scope pushes a `skipped` or `hold` verdict (saying why) instead of measuring."""
    verdict = forward_check(
        context,
        getattr(op, "plan_task_id", None),
        getattr(op, "stage", None),
        "gate",
        getattr(op, "stage_actions", None),
    )
    if verdict is None:
        return None
    return deliver(op, context, Verdict(gate=gate, kind=kind, **verdict, measurements=[]), judged=False)
