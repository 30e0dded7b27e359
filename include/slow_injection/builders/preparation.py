"""Preparation: classify services (in the plan), check every workload can run on green."""

from __future__ import annotations

from include.slow_injection.builders.stages import Action, Stage
from include.slow_injection.spec.models import Wave

PHASE = "preparation"


def stages(wave: Wave) -> list[Stage]:
    names = ", ".join(s.name for s in wave.services)
    return [Stage(PHASE, (), "preflight", [Action("preflight", "preflight", f"preflight on green: {names}")])]
