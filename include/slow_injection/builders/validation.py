"""Validation: bring each exposed service up on green (no user traffic yet) and check it."""

from __future__ import annotations

from include.slow_injection.builders.stages import (
    Action,
    Stage,
    monitoring_gates,
    ordered,
    platform_gate,
    router_gate,
    service_gates,
)
from include.slow_injection.spec.models import Wave

PHASE = "validation"


def stages(wave: Wave) -> list[Stage]:
    out = []
    for svc in ordered(wave, "exposed"):
        w = svc.workload
        action = Action("deploy_green", "deploy_green",
                        f"copy {w.kind} {w.namespace}/{w.name} to green at blue's size", svc.name)
        health = [g for g in service_gates(svc) if g.kind == "health"]  # metric gates need user traffic
        rollout = platform_gate(wave, svc, "rollout", svc.rollout_timeout)
        ready = router_gate(svc)  # before the first traffic step sends users to green
        out.append(Stage(PHASE, (svc.name,), svc.name, [action], [rollout, ready, *health]))
    gates = monitoring_gates(wave.validation)
    if gates:
        out.append(Stage(PHASE, ("checks",), "validation checks", [], gates))
    return out
