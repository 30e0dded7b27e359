"""What a run did, in order: each action's change and each gate's verdict, with the time it happened
(actions say when through `at`; gates through started_at/finished_at; an approval through responded_at)."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from include.slow_injection.gates.verdict import BreakerMove


def describe_action(result: dict[str, Any] | None) -> str:
    """One action's result as one line: what changed, or why nothing did."""
    if result is None:
        return "not run or failed"
    if not isinstance(result, dict):
        return str(result)[:200]
    if isinstance(result.get("scope"), dict):  # a step outside the run's scope
        return f"{result['scope'].get('status', 'skipped')}: {result['scope'].get('reason', 'outside this run')}"
    if "changes" in result:
        return (
            "; ".join(
                f"{c['target']}: {c['before']} → {c['after']}" + ("" if c["applied"] else " (planned)")
                for c in result["changes"]
            )
            or "no change"
        )
    if isinstance(result.get("services"), dict):  # traffic back to blue, service by service
        return "; ".join(f"{service}: {describe_action(r)}" for service, r in result["services"].items()) or "no change"
    if "before" in result and not result.get("changed") and "would_set" not in result:
        return f"no change (already {result['before']})"
    if "before" in result:
        return f"{result['before']} → {result.get('would_set', result.get('after'))}" + (
            " (planned)" if result.get("dry_run") else ""
        )
    return "ok"


def traffic_results(result: Any) -> list[dict[str, Any]]:
    """The router results inside one action's result: a traffic step's own, or the rollback's per
    service. Results of other actions (platform steps, preflight) hold none."""
    if not isinstance(result, dict):
        return []
    if isinstance(result.get("services"), dict):
        return [{"service": s, **r} for s, r in result["services"].items() if isinstance(r, dict)]
    if result.get("service") and isinstance(result.get("before"), str) and isinstance(result.get("after"), str):
        return [result]
    return []


def epoch(value: Any) -> float | None:
    """Seconds since the epoch from a number or an ISO 8601 text; None when there is no usable time."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value) if math.isfinite(value) and value > 0 else None
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed.timestamp() if parsed.tzinfo else None
    return None


def gate_time(verdict: dict[str, Any]) -> float | None:
    window = verdict.get("window")
    if not isinstance(window, dict):
        window = {}
    for value in (
        verdict.get("finished_at"),
        verdict.get("responded_at"),
        window.get("end"),
        verdict.get("started_at"),
    ):
        if (at := epoch(value)) is not None:
            return at
    return None


def build_timeline(actions: dict[str, Any], gates: dict[str, Any]) -> list[dict[str, Any]]:
    """Entries {at, task, kind, text} for every action that ran and every gate with a verdict: timed
    ones by time, then those without a time in task order. Tasks that did not run are left out
    (the report lists them apart)."""
    entries: list[dict[str, Any]] = []
    for task_id, result in actions.items():
        if not isinstance(result, dict):  # did not run (None), or not a result this report knows
            continue
        per_service = traffic_results(result) if isinstance(result.get("services"), dict) else []
        if per_service:
            for r in per_service:
                entries.append(
                    {
                        "at": epoch(r.get("at")),
                        "task": task_id,
                        "kind": "action",
                        "text": f"{r['service']}: {describe_action(r)}",
                    }
                )
        else:
            entries.append(
                {"at": epoch(result.get("at")), "task": task_id, "kind": "action", "text": describe_action(result)}
            )
    for task_id, verdict in gates.items():
        if not isinstance(verdict, dict) or not verdict:
            continue
        text = f"gate {verdict.get('gate', task_id)} {verdict.get('status')}: {verdict.get('reason', '')}"
        entries.append({"at": gate_time(verdict), "task": task_id, "kind": "gate", "text": text})
        if isinstance(moved := verdict.get("breaker"), dict):  # the gate moved its service to blue itself
            line = BreakerMove.model_validate(moved).line()
            entries.append({"at": epoch(moved.get("at")), "task": task_id, "kind": "action", "text": line})
    timed = sorted((e for e in entries if e["at"] is not None), key=lambda e: e["at"])
    return timed + [e for e in entries if e["at"] is None]


def not_run(actions: dict[str, Any], gates: dict[str, Any]) -> list[str]:
    return [t for t, r in actions.items() if r is None] + [t for t, v in gates.items() if not v]
