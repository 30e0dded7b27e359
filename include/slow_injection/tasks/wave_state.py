"""A wave's lasting state between runs (an Airflow Variable): whether it completed. A completed
wave's later runs only verify the world; a rollback clears the mark."""

from __future__ import annotations

import time
from typing import Any


def _key(wave_id: str) -> str:
    return f"slow_injection_completed__{wave_id}"


def completed(wave_id: str) -> dict[str, Any] | None:
    from airflow.sdk import Variable

    return Variable.get(_key(wave_id), default=None, deserialize_json=True)


def mark_completed(wave_id: str, run_id: str) -> None:
    from airflow.sdk import Variable

    Variable.set(_key(wave_id), {"run_id": run_id, "at": time.time()}, serialize_json=True,
                 description=f"wave {wave_id} completed: later runs verify the world and change nothing")


def clear(wave_id: str) -> None:
    from airflow.sdk import Variable

    if completed(wave_id) is not None:
        Variable.delete(_key(wave_id))


def lease_key(workload: dict[str, Any]) -> str:
    return f"slow_injection_lease__{workload['kind']}.{workload['namespace']}.{workload['name']}"


def acquire_leases(wave_id: str, run_id: str, workloads: dict[str, dict[str, Any]]) -> list[str]:
    """Two waves never act on one workload at once: each run that changes anything leases its
    services' workloads (released by the run's report, which runs on every outcome). Returns the
    conflicts, naming the holder; takes nothing when there is one."""
    from airflow.sdk import Variable

    conflicts = []
    for service, workload in workloads.items():
        holder = Variable.get(lease_key(workload), default=None, deserialize_json=True)
        if holder and holder.get("wave") != wave_id:
            conflicts.append(f"services: {service} ({workload['kind']} {workload['namespace']}/{workload['name']}) "
                             f"is being migrated by wave {holder.get('wave')} (run {holder.get('run_id')}); two waves "
                             f"never act on one service at once (if that run is gone, delete Variable "
                             f"{lease_key(workload)})")
    if conflicts:
        return conflicts
    for service, workload in workloads.items():
        Variable.set(lease_key(workload), {"wave": wave_id, "run_id": run_id, "service": service, "at": time.time()},
                     serialize_json=True, description=f"held by a run of wave {wave_id} until its report")
    return []


def release_leases(run_id: str, workloads: list[dict[str, Any]]) -> None:
    from airflow.sdk import Variable

    for workload in workloads:
        holder = Variable.get(lease_key(workload), default=None, deserialize_json=True)
        if holder and holder.get("run_id") == run_id:
            Variable.delete(lease_key(workload))
