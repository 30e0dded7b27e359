"""Fargate profile setup: green's EKS Fargate profile created unless it exists (exists and differs →
an error), through the Fargate-profiles port. Placed by the preparation planner when the spec sets
`environments.green.fargate_profile`; run by EnsureFargateProfile (tasks/fargate_setup.py)."""

from __future__ import annotations

from include.slow_injection.durations import format_duration
from include.slow_injection.kinds.base import ActionKind, Task, TaskContext
from include.slow_injection.plan import Action
from include.slow_injection.spec.models import Wave


class EnsureFargateProfileKind(ActionKind):
    name = "ensure_fargate_profile"

    def plan_line(self, action: Action, wave: Wave) -> str:
        profile = wave.environments.green.fargate_profile
        assert profile is not None
        return (
            f"create Fargate profile {profile.name} on EKS cluster {profile.cluster} unless it exists "
            f"(exists and differs → error; public subnets → error; a busy cluster waited for up to "
            f"{format_duration(profile.busy_timeout)})"
        )

    def task(self, action: Action, context: TaskContext) -> Task:
        profile = context.wave.environments.green.fargate_profile
        assert profile is not None
        return Task(
            "include.slow_injection.tasks.fargate_setup:EnsureFargateProfile",
            {"profile": profile.model_dump(), **context.args},
        )


KIND = EnsureFargateProfileKind()
