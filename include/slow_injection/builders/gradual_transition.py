"""Gradual transition: each exposed service steps its user traffic to green, gated at every step."""

from __future__ import annotations

from include.slow_injection.builders.stages import Action, Stage, ordered, service_gates
from include.slow_injection.spec.models import Wave

PHASE = "gradual_transition"


def stages(wave: Wave) -> list[Stage]:
    out = []
    for svc in ordered(wave, "exposed"):
        steps = wave.steps_for(svc)
        for n, step in enumerate(steps, start=1):
            action = Action("set_traffic", "set_traffic", f"route {step.weight} % of {svc.name} to green",
                            svc.name, step.weight)
            gates = [g for g in service_gates(svc, window=step.bake) if g.kind == "metric"]
            out.append(Stage(PHASE, (svc.name, f"step{n}_{step.weight}pct"), f"{svc.name} at {step.weight} %",
                             [action], gates))
    return out
