"""Preparation: classify services (in the plan), set green up where the spec asks (an EKS Fargate
profile), check every workload can run on green."""

from __future__ import annotations

from include.slow_injection.kinds import ensure_fargate_profile, fargate_profile, preflight
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
    return [Stage(PHASE, (), "preflight", [*setup, check], gates)]
