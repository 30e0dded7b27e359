"""The run's scope at task time: what plan_wave decided, asked by every forward task."""

from __future__ import annotations

from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from include.slow_injection import run_scope as scopes
from include.slow_injection.gates.verdict import Verdict, deliver
from include.slow_injection.run_scope import Scope, stage_verdict

PLAN_TASK = "preparation.plan_wave"


def run_scope(context: Any) -> Scope | None:
    """plan_wave's Scope (None when a task runs outside a wave run, e.g. in a unit test)."""
    if "_slow_injection_scope" not in context:
        data = context["ti"].xcom_pull(task_ids=PLAN_TASK, key="scope")
        context["_slow_injection_scope"] = Scope.from_dict(data) if data else None
    return context["_slow_injection_scope"]


def forward_check(context: Any, stage: dict[str, Any] | None, role: str,
                  action_ids: list[str] | None = None) -> dict[str, str] | None:
    """Whether a forward task's stage runs (None), is behind us / out of scope, or must hold."""
    if not stage:
        return None
    scope = run_scope(context)
    if scope is None:
        return None
    held = []
    if role == "gate" and action_ids:
        for task_id in action_ids:
            result = context["ti"].xcom_pull(task_ids=task_id)
            if isinstance(result, dict) and (result.get("scope") or {}).get("status") == "hold":
                held.append(result["scope"]["reason"])
    return stage_verdict(scope, stage, role, scopes.now_utc(), held)


def verifying(context: Any) -> bool:
    scope = run_scope(context)
    return bool(scope and scope.verify)


def refuse_drift(context: Any, what: str, changes: list[Any]) -> None:
    """A completed wave's nightly run changes nothing: what it would change is drift, reported."""
    if changes and verifying(context):
        listed = "; ".join(str(c) for c in changes)
        raise AirflowFailException(f"drift: {what} is no longer as the completed wave left it: {listed} "
                                   "(nothing was changed; the wave holds for a human)")


def gate_out_of_scope(op: Any, context: Any, gate: str, kind: str) -> dict[str, Any] | None:
    """A gate outside the run's scope pushes a `skipped` or `hold` verdict (saying why) instead of measuring."""
    verdict = forward_check(context, getattr(op, "stage", None), "gate", getattr(op, "stage_actions", None))
    if verdict is None:
        return None
    return deliver(op, context, Verdict(gate=gate, kind=kind, **verdict, measurements=[]), judged=False)
