"""Preflight: every workload exists in blue and can run on green (the platform port's preflight);
lists every problem, then fails. Placed first by the preparation planner; run by Preflight."""

from __future__ import annotations

from include.slow_injection.kinds.base import ActionKind, Task, TaskContext
from include.slow_injection.plan import Action
from include.slow_injection.refs import platform_ref, workloads
from include.slow_injection.spec.models import Wave


class PreflightKind(ActionKind):
    name = "preflight"

    def plan_line(self, action: Action, wave: Wave) -> str:
        return f"preflight on green: {', '.join(s.name for s in wave.services)}"

    def task(self, action: Action, context: TaskContext) -> Task:
        wave = context.wave
        return Task(
            "include.slow_injection.tasks.operators:Preflight",
            {"platform": platform_ref(wave), "workloads": workloads(wave.services), **context.args},
        )


KIND = PreflightKind()
