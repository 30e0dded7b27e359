"""Preparation: classify services (in the plan), set green up where the spec asks (an EKS Fargate
profile), check every workload can run on green."""

from __future__ import annotations

from include.slow_injection.builders.stages import Action, FargateProfileCheck, Gate, Stage
from include.slow_injection.spec.models import Wave

PHASE = "preparation"


def stages(wave: Wave) -> list[Stage]:
    names = ", ".join(s.name for s in wave.services)
    setup, gates = [], []
    profile = wave.environments.green.fargate_profile
    if profile is not None:
        where = f"Fargate profile {profile.name} on EKS cluster {profile.cluster}"
        setup = [Action("ensure_fargate_profile", "ensure_fargate_profile",
                        f"create {where} unless it exists (exists and differs → error)")]
        check = FargateProfileCheck(timeout=profile.timeout, cluster=profile.cluster, profile=profile.name,
                                    aws_connection=profile.aws_connection, region=profile.region)
        gates = [Gate("wait_fargate_profile", "fargate_profile", check, None, 0.0)]
    preflight = Action("preflight", "preflight", f"preflight on green: {names}")
    return [Stage(PHASE, (), "preflight", [*setup, preflight], gates)]
