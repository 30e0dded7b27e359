"""Preparation: classify services (in the plan), set green up where the spec asks (an EKS Fargate
profile), check every workload can run on green, start each data migration's replication blue → green."""

from __future__ import annotations

from include.slow_injection.kinds import ensure_fargate_profile, fargate_profile, preflight, start_replication
from include.slow_injection.plan import Action, Stage
from include.slow_injection.spec.models import Wave

PHASE = "preparation"


def stages(wave: Wave) -> list[Stage]:
    setup, gates = [], []
    profile = wave.environments.green.fargate_profile
    if profile is not None:
        setup = [Action("ensure_fargate_profile", ensure_fargate_profile.KIND.name)]
        gates = [fargate_profile.wait(profile)]
    check = Action("preflight", preflight.KIND.name)
    # Early: the initial copy runs while green is deployed and validated.
    replicate = [
        Action(f"start_replication_{m.name}", start_replication.KIND.name, subject=m.name) for m in wave.data_migration
    ]
    return [Stage(PHASE, (), "preflight", [*setup, check, *replicate], gates)]
