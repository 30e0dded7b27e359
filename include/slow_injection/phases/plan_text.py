"""The wave's plan as text (`slow-injection plan`, the DAG's doc, plan_wave's log): the ordered actions
and gates a run would take, each worded by its kind."""

from __future__ import annotations

from pydantic import ValidationError

from include.slow_injection import kinds, registry
from include.slow_injection.durations import format_duration
from include.slow_injection.phases import STAGE_PHASES
from include.slow_injection.phases.post_release import replication_removals, retirements
from include.slow_injection.spec.models import DriverRef, Service, Wave


def warnings(wave: Wave) -> list[str]:
    out = []
    if not wave.release_monitoring.gates and not wave.release_monitoring.health_checks:
        out.append("release_monitoring has no gates: blue is retired without watching green at 100 %")
    for svc in wave.services:
        if svc.exposure == "exposed" and not svc.gates:
            out.append(f"{svc.name}: no metric gates, so traffic steps only wait their bake time")
        if svc.exposure == "scheduled" and not (svc.gates or svc.health_checks):
            out.append(f"{svc.name}: no gates check the job after its handover")
        if svc.exposure == "exposed" and svc.router is not None:
            out += [f"{svc.name}: {line}" for line in _router_warnings(wave, svc, svc.router)]
    return out


def _router_warnings(wave: Wave, svc: Service, router: DriverRef) -> list[str]:
    """A router driver class may define `plan_warnings(settings, steps)`, steps being (weight percent,
    bake seconds) pairs; it must not touch the network (plans are drawn while DAGs are parsed)."""
    try:
        cls = registry.driver_class("router", router.type)
        if not hasattr(cls, "plan_warnings"):
            return []
        settings = cls.Settings.model_validate(router.settings)
    except (registry.UnknownDriver, ValidationError):
        return []  # the spec loader reports these, with their field paths
    return cls.plan_warnings(settings, [(step.weight, step.bake) for step in wave.steps_for(svc)])


def plan_lines(wave: Wave) -> list[str]:
    lines = [
        f"wave {wave.id} (DAG {wave.dag_id}), owner {wave.owner}",
        f"blue {wave.environments.blue.name} → green {wave.environments.green.name}",
    ]
    by_exposure: dict[str, list[str]] = {"exposed": [], "scheduled": []}
    for s in wave.services:
        by_exposure[s.exposure].append(s.name)
    lines.append(
        f"scheduled (move first): {', '.join(by_exposure['scheduled']) or '-'}; "
        f"exposed: {', '.join(by_exposure['exposed']) or '-'}"
    )
    n = 0
    for builder in STAGE_PHASES:
        stages = builder.stages(wave)
        lines.append(f"{builder.PHASE}:")
        if not stages:
            lines.append("    (nothing configured)")
        for stage in stages:
            for action in stage.actions:
                n += 1
                lines.append(f"  {n:>3}. {kinds.action(action.kind).line(action, wave)}")
            for gate in stage.gates:
                lines.append(f"       ⊢ {kinds.gate(gate.kind).plan_line(gate)}")
            lines.append(f"       → continue, or roll back{' / hold' if stage.gates else ''}")
    lines.append("post_release:")
    if wave.retire_blue_after:
        lines.append(f"       wait {format_duration(wave.retire_blue_after)} before retiring blue")
    for action in retirements(wave) + replication_removals(wave):
        n += 1
        lines.append(f"  {n:>3}. {kinds.action(action.kind).line(action, wave)}")
    lines.append("       evaluation report")
    sync = wave.validation.data_sync
    wait = ", then wait for the data in sync" if sync is not None and sync.before_rollback else ""
    if wave.data_migration:
        names = ", ".join(m.name for m in wave.data_migration)
        wait = f", then writes back on blue once the reverse replication drained ({names}){wait}"
    lines.append(
        "rollback (on any failed gate or step): blue capacity back and green's jobs stopped"
        f"{wait}, then 100 % traffic to blue, then jobs resumed on blue once green's running Job ended"
    )
    lines += [f"warning: {w}" for w in warnings(wave)]
    return lines
