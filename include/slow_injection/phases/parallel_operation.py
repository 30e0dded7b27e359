"""Parallel operation: users stay on blue while jobs run on green; watch both."""

from __future__ import annotations

from include.slow_injection.kinds import platform
from include.slow_injection.phases.common import monitoring_gates, ordered
from include.slow_injection.plan import Gate, Stage
from include.slow_injection.spec.models import Wave

PHASE = "parallel_operation"


def stages(wave: Wave) -> list[Stage]:
    gates = monitoring_gates(wave.parallel_operation) + platform_watches(wave)
    return [Stage(PHASE, (), "watch both environments", [], gates)] if gates else []


def platform_watches(wave: Wave) -> list[Gate]:
    """Moved jobs on green (runs, success rate, duration, pod restarts) and blue's user-facing pods
    (restarts) — only when the wave moved scheduled jobs, i.e. when there is a parallel operation."""
    jobs, pods = wave.parallel_operation.jobs, wave.parallel_operation.blue_pods
    scheduled = ordered(wave, "scheduled")
    if not scheduled:
        return []
    gates = [
        platform.wait(
            wave, svc, "jobs", jobs.timeout, limits=jobs.model_dump(exclude={"timeout"}), task_id=f"jobs_{svc.name}"
        )
        for svc in scheduled
    ]
    gates += [
        platform.wait(
            wave, svc, "pods", pods.window + 120.0, env="blue", limits=pods.model_dump(), task_id=f"pods_{svc.name}"
        )
        for svc in ordered(wave, "exposed")
    ]
    return gates
