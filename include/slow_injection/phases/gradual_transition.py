"""Gradual transition: each exposed service steps its user traffic to green, gated at every step. A data
migration's writes move to green first, in the step its cut-over names (default: the first)."""

from __future__ import annotations

from include.slow_injection.kinds import cut_over_writes, set_traffic
from include.slow_injection.phases.common import cut_over_step, metric_gates, ordered
from include.slow_injection.plan import Action, Stage
from include.slow_injection.spec.models import Wave

PHASE = "gradual_transition"


def stages(wave: Wave) -> list[Stage]:
    out = []
    for svc in ordered(wave, "exposed"):
        for n, step in enumerate(wave.steps_for(svc), start=1):
            action = Action("set_traffic", set_traffic.KIND.name, svc.name, step.weight)
            cut_overs = [
                Action(f"cut_over_writes_{m.name}", cut_over_writes.KIND.name, subject=m.name)
                for m in wave.data_migration
                if cut_over_step(wave, m) == (svc.name, step.weight)
            ]
            out.append(
                Stage(
                    PHASE,
                    (svc.name, f"step{n}_{step.weight}pct"),
                    f"{svc.name} at {step.weight} %",
                    [*cut_overs, action],
                    metric_gates(svc, window=step.bake),
                )
            )
    return out
