"""Validation: bring each exposed service up on green (no user traffic yet) and check it: health,
stress, data migrated (copied, within the lag bound) and in sync, then parity with blue (over the stress window), then a human's acceptance."""

from __future__ import annotations

from include.slow_injection.kinds import (
    approval,
    attach_green,
    data_migration,
    data_sync,
    deploy_green,
    parity,
    platform,
    router,
    stress,
)
from include.slow_injection.phases.common import health_gates, monitoring_gates, ordered
from include.slow_injection.plan import Action, Gate, Stage
from include.slow_injection.spec.models import Wave

PHASE = "validation"


def stages(wave: Wave) -> list[Stage]:
    out = []
    for svc in ordered(wave, "exposed"):
        copy = Action("deploy_green", deploy_green.KIND.name, svc.name)
        attach = Action("attach_green", attach_green.KIND.name, svc.name)
        rollout = platform.wait(wave, svc, "rollout", svc.rollout_timeout)
        drift = platform.wait(wave, svc, "config_drift", svc.rollout_timeout, task_id="config_drift")
        ready = router.wait(svc)  # before the first traffic step sends users to green
        # metric gates need user traffic: they run at the traffic steps
        out.append(Stage(PHASE, (svc.name,), svc.name, [copy, attach], [rollout, drift, ready, *health_gates(svc)]))
    v = wave.validation
    gates = monitoring_gates(v) + [Gate(f"stress_{s.name}", stress.KIND.name, s, None, s.duration) for s in v.stress]
    gates += [data_migration.wait(m) for m in wave.data_migration]  # copied, streaming within the lag bound
    if v.data_sync is not None:
        gates.append(data_sync.wait(v.data_sync))
    if gates:
        out.append(Stage(PHASE, ("checks",), "validation checks", [], gates))
    if v.parity is not None:  # after the checks: its window covers the stress test's load on green
        out.append(
            Stage(
                PHASE,
                ("parity",),
                "parity with blue",
                [],
                [Gate("parity", parity.KIND.name, v.parity, None, v.parity.window)],
            )
        )
    if v.approval is not None:
        out.append(
            Stage(
                PHASE,
                ("approval",),
                "user acceptance",
                [],
                [Gate("uat_approval", approval.KIND.name, v.approval, None, 0.0)],
            )
        )
    return out
