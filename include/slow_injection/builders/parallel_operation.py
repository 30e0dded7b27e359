"""Parallel operation: users stay on blue while jobs run on green; watch both."""

from __future__ import annotations

from include.slow_injection.builders.stages import Stage, monitoring_gates
from include.slow_injection.spec.models import Wave

PHASE = "parallel_operation"


def stages(wave: Wave) -> list[Stage]:
    gates = monitoring_gates(wave.parallel_operation)
    return [Stage(PHASE, (), "watch both environments", [], gates)] if gates else []
