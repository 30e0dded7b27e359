"""Gradual migration: scheduled jobs first, one at a time, each handed over then validated."""

from __future__ import annotations

from include.slow_injection.builders.stages import Action, Stage, ordered, service_gates
from include.slow_injection.spec.models import Wave

PHASE = "migrate_scheduled_jobs"


def stages(wave: Wave) -> list[Stage]:
    out = []
    for svc in ordered(wave, "scheduled"):
        w = svc.workload
        actions = [
            Action("deploy_green", "deploy_green", f"copy {w.kind} {w.namespace}/{w.name} to green", svc.name),
            Action("hand_over", "activate_green", f"hand {svc.name}'s schedule over to green (blue suspended)",
                   svc.name),
        ]
        out.append(Stage(PHASE, (svc.name,), svc.name, actions, service_gates(svc)))
    return out
