"""Gradual migration: scheduled jobs first, one at a time, each handed over then validated."""

from __future__ import annotations

from include.slow_injection.builders.stages import Action, Stage, ordered, platform_gate, service_gates
from include.slow_injection.spec.models import Wave

PHASE = "migrate_scheduled_jobs"


def stages(wave: Wave) -> list[Stage]:
    out = []
    for svc in ordered(wave, "scheduled"):
        w, h = svc.workload, svc.handover
        copy = Action("deploy_green", "deploy_green", f"copy {w.kind} {w.namespace}/{w.name} to green (suspended)",
                      svc.name)
        moment = platform_gate(wave, svc, "handover_moment", h.wait_timeout, h.margin)
        drift = platform_gate(wave, svc, "config_drift", svc.rollout_timeout, task_id="config_drift")
        out.append(Stage(PHASE, (svc.name, "copy"), f"{svc.name}: copy", [copy], [moment, drift]))
        hand_over = Action("hand_over", "activate_green",
                           f"hand {svc.name}'s schedule over to green (blue suspended first)", svc.name)
        first_run = platform_gate(wave, svc, "first_run", h.first_run_timeout)
        out.append(Stage(PHASE, (svc.name, "handover"), f"{svc.name}: handover", [hand_over],
                         [first_run, *service_gates(svc)]))
    return out
