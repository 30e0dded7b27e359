"""Full transition: every exposed service confirmed at 100 % green, then end-to-end checks."""

from __future__ import annotations

from include.slow_injection.builders.stages import Action, Stage, monitoring_gates, ordered
from include.slow_injection.spec.models import Wave

PHASE = "full_transition"


def stages(wave: Wave) -> list[Stage]:
    actions = [Action(f"confirm_{s.name}", "set_traffic", f"confirm {s.name} at 100 % green", s.name, 100)
               for s in ordered(wave, "exposed")]
    gates = monitoring_gates(wave.full_transition)
    return [Stage(PHASE, (), "all on green", actions, gates)] if (actions or gates) else []
