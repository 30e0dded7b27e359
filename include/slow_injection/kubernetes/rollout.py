"""Is a Deployment rolled out? The same reading `kubectl rollout status` makes, from the object alone."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

READY, PROGRESSING, FAILED = "ready", "progressing", "failed"


@dataclass(frozen=True)
class RolloutState:
    state: str
    detail: str


def rollout_state(deployment: dict[str, Any]) -> RolloutState:
    meta, spec, status = deployment.get("metadata") or {}, deployment.get("spec") or {}, deployment.get("status") or {}
    wanted = spec.get("replicas", 1)
    generation, observed = meta.get("generation", 0), status.get("observedGeneration", 0)
    if observed < generation:  # conditions still describe an older generation (as `kubectl rollout status`)
        return RolloutState(PROGRESSING, f"controller has not seen generation {generation} yet (observed {observed})")
    for condition in status.get("conditions") or []:
        if condition.get("type") == "Progressing" and condition.get("reason") == "ProgressDeadlineExceeded":
            return RolloutState(FAILED, f"progress deadline exceeded: {condition.get('message', '')}".strip())
    updated = status.get("updatedReplicas", 0)
    total = status.get("replicas", 0)
    available = status.get("availableReplicas", 0)
    ready = status.get("readyReplicas", 0)
    if updated < wanted:
        return RolloutState(PROGRESSING, f"{updated} of {wanted} replicas updated")
    if total > updated:
        return RolloutState(PROGRESSING, f"{total - updated} old replica(s) still terminating")
    if available < updated or ready < wanted:
        return RolloutState(PROGRESSING, f"{available} of {updated} updated replicas available, {ready} ready")
    return RolloutState(READY, f"{ready}/{wanted} replicas ready at generation {generation}")
