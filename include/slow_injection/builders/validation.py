"""Validation: bring each exposed service up on green (no user traffic yet) and check it: health,
stress, data in sync, then parity with blue (over the stress window), then a human's acceptance."""

from __future__ import annotations

from include.slow_injection.builders.stages import (
    Action,
    DataSyncCheck,
    Gate,
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
        attach = Action("attach_green", "attach_green", f"attach green to {svc.name}'s router at weight 0", svc.name)
        health = [g for g in service_gates(svc) if g.kind == "health"]  # metric gates need user traffic
        rollout = platform_gate(wave, svc, "rollout", svc.rollout_timeout)
        drift = platform_gate(wave, svc, "config_drift", svc.rollout_timeout, task_id="config_drift")
        ready = router_gate(svc)  # before the first traffic step sends users to green
        out.append(Stage(PHASE, (svc.name,), svc.name, [action, attach], [rollout, drift, ready, *health]))
    v = wave.validation
    gates = monitoring_gates(v) + [Gate(f"stress_{s.name}", "stress", s, None, s.duration) for s in v.stress]
    if v.data_sync is not None:
        gates.append(Gate("data_in_sync", "data_sync", DataSyncCheck.of(v.data_sync), None, 0.0))
    if gates:
        out.append(Stage(PHASE, ("checks",), "validation checks", [], gates))
    if v.parity is not None:  # after the checks: its window covers the stress test's load on green
        out.append(Stage(PHASE, ("parity",), "parity with blue", [], [Gate("parity", "parity", v.parity, None,
                                                                            v.parity.window)]))
    if v.approval is not None:
        out.append(Stage(PHASE, ("approval",), "user acceptance", [], [Gate("uat_approval", "approval", v.approval,
                                                                            None, 0.0)]))
    return out
