"""Gradual migration: scheduled jobs first, one at a time, each handed over then validated."""

from __future__ import annotations

from include.slow_injection.kinds import deploy_green, hand_over, platform
from include.slow_injection.phases.common import ordered, service_gates
from include.slow_injection.plan import Action, Stage
from include.slow_injection.spec.models import Wave

PHASE = "migrate_scheduled_jobs"


def stages(wave: Wave) -> list[Stage]:
    out = []
    for svc in ordered(wave, "scheduled"):
        h = svc.handover
        copy = Action("deploy_green", deploy_green.KIND.name, svc.name)
        moment = platform.wait(wave, svc, "handover_moment", h.wait_timeout, h.margin)
        drift = platform.wait(wave, svc, "config_drift", svc.rollout_timeout, task_id="config_drift")
        out.append(Stage(PHASE, (svc.name, "copy"), f"{svc.name}: copy", [copy], [moment, drift]))
        handing_over = Action("hand_over", hand_over.KIND.name, svc.name)
        first_run = platform.wait(wave, svc, "first_run", h.first_run_timeout)
        out.append(
            Stage(
                PHASE, (svc.name, "handover"), f"{svc.name}: handover", [handing_over], [first_run, *service_gates(svc)]
            )
        )
    return out
