"""What several phases place: services in dependency order, and a service's or a section's own gates."""

from __future__ import annotations

from include.slow_injection.kinds import health, metric
from include.slow_injection.plan import Gate
from include.slow_injection.spec.models import DataMigration, Monitoring, Service, Wave


def health_gates(service: Service) -> list[Gate]:
    return [Gate(f"health_{h.name}", health.KIND.name, h, service.name, 0.0) for h in service.health_checks]


def metric_gates(service: Service, window: float | None = None) -> list[Gate]:
    """The service's metric gates; `window` replaces each gate's bake (traffic steps)."""
    return [
        Gate(f"gate_{g.name}", metric.KIND.name, g, service.name, g.bake if window is None else window)
        for g in service.gates
    ]


def service_gates(service: Service) -> list[Gate]:
    """A service's health checks, then its metric gates."""
    return health_gates(service) + metric_gates(service)


def monitoring_gates(monitoring: Monitoring) -> list[Gate]:
    gates = [Gate(f"health_{h.name}", health.KIND.name, h, None, 0.0) for h in monitoring.health_checks]
    gates += [Gate(f"gate_{g.name}", metric.KIND.name, g, None, g.bake) for g in monitoring.gates]
    return gates


def ordered(wave: Wave, exposure: str) -> list[Service]:
    """Services of one exposure in dependency order; ties keep the spec's order."""
    pending = [s for s in wave.services if s.exposure == exposure]
    done = {s.name for s in wave.services if s.exposure != exposure}
    out: list[Service] = []
    while pending:
        ready = next(s for s in pending if all(d in done for d in s.depends_on))
        out.append(ready)
        done.add(ready.name)
        pending.remove(ready)
    return out


def cut_over_step(wave: Wave, migration: DataMigration) -> tuple[str, int]:
    """(service, weight) of the traffic step a database's writes move to green before: the spec's
    `cut_over`, else the first step of the first exposed service (the spec requires one)."""
    if migration.cut_over is not None:
        return migration.cut_over.service, migration.cut_over.weight
    first = ordered(wave, "exposed")[0]
    return first.name, wave.steps_for(first)[0].weight
