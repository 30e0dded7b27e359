"""Release: all traffic on green under intensive monitoring before blue is retired."""

from __future__ import annotations

from include.slow_injection.phases.common import monitoring_gates
from include.slow_injection.plan import Stage
from include.slow_injection.spec.models import Wave

PHASE = "release_monitoring"


def stages(wave: Wave) -> list[Stage]:
    gates = monitoring_gates(wave.release_monitoring)
    return [Stage(PHASE, (), "release monitoring", [], gates)] if gates else []
