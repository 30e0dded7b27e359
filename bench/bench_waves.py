"""Generated wave specs for the benchmarks, and a simulated world in which every gate passes at once.

Scheduled (CronJob) and exposed (Deployment) services alternate; each has one metric gate and every
exposed one a health check. `instant=True` sets every wait to zero, or to the spec's smallest value
where zero is refused: gate and health-check intervals must be > 0, so they are 1 ms.
"""

from __future__ import annotations

from typing import Any

STEPS = (5, 25, 50, 100)
SMALLEST_INTERVAL = "1ms"  # MetricGate.interval and HealthCheckSpec.interval must be > 0


def _sim(world: str, **extra: Any) -> dict[str, Any]:
    return {"type": "simulated", "world": world, **extra}


def _gate(world: str, name: str, query: str, instant: bool) -> dict[str, Any]:
    gate = {"name": name, "source": _sim(world), "query": query, "comparator": "less_than", "threshold": 0.01}
    return (
        {**gate, "interval": SMALLEST_INTERVAL, "bake": "0s"} if instant else {**gate, "interval": "10s", "bake": "1m"}
    )


def bench_wave(wave_id: str, services: int, world: str = "bench", instant: bool = False) -> dict[str, Any]:
    bake = "0s" if instant else "1m"
    svc = []
    for j in range(services):
        exposed = j % 2 == 1
        entry: dict[str, Any] = {
            "name": f"svc-{j}",
            "exposure": "exposed" if exposed else "scheduled",
            "workload": {"kind": "Deployment" if exposed else "CronJob", "namespace": "ns", "name": f"w{j}"},
            "gates": [_gate(world, "errors", 'err{service="${service}"}', instant)],
        }
        if exposed:
            entry["router"] = _sim(world)
            check = {"name": "ready", "check": _sim(world, target=f"svc-{j}")}
            if instant:
                check.update(consecutive_successes=1, interval=SMALLEST_INTERVAL, timeout="60s")
            entry["health_checks"] = [check]
        else:
            entry["handover"] = {"margin": "0s"} if instant else {}
        svc.append(entry)
    wave = {
        "id": wave_id,
        "owner": "bench",
        "environments": {
            "blue": {"name": "b", "platform": _sim(world)},
            "green": {"name": "g", "platform": _sim(world)},
        },
        "traffic_steps": [{"weight": w, "bake": bake} for w in STEPS],
        "services": svc,
        "release_monitoring": {"gates": [_gate(world, "release", "err", instant)]},
    }
    if instant:
        wave["parallel_operation"] = {"blue_pods": {"window": "0s"}}
    return wave


def waiting_wave(wave_id: str, gates: int, world: str, bake: str = "30m") -> dict[str, Any]:
    """One exposed service going straight to 100 % with `gates` metric gates baking `bake`: the gates
    wait side by side (their readings pass, so they wait for the whole bake)."""
    wave = bench_wave(wave_id, 2, world, instant=True)
    web = wave["services"][1]
    wave["services"] = [web]
    web["traffic_steps"] = [{"weight": 100, "bake": bake}]
    web["gates"] = [
        {**_gate(world, f"g{i:02d}", 'err{service="${service}"}', False), "interval": "5s"} for i in range(gates)
    ]
    return wave


def healthy_world(services: int) -> dict[str, Any]:
    """Blue runs every workload; every metric reads 0 (below every threshold)."""
    workloads = {}
    for j in range(services):
        kind = "Deployment" if j % 2 == 1 else "CronJob"
        workloads[f"{kind}/ns/w{j}"] = {"replicas": 2} if kind == "Deployment" else {"suspended": False}
    metrics = {f'err{{service="svc-{j}"}}': 0 for j in range(services)}
    metrics["err"] = 0
    return {"workloads": {"blue": workloads}, "metrics": metrics}
