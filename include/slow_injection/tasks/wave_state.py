"""A wave's lasting state between runs (an Airflow Variable): whether it completed. A completed
wave's later runs only verify the world; a rollback clears the mark."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


def _key(wave_id: str) -> str:
    return f"slow_injection_completed__{wave_id}"


def completed(wave_id: str) -> dict[str, Any] | None:
    from airflow.sdk import Variable

    return Variable.get(_key(wave_id), default=None, deserialize_json=True)


def mark_completed(wave_id: str, run_id: str) -> None:
    from airflow.sdk import Variable

    Variable.set(
        _key(wave_id),
        {"run_id": run_id, "at": time.time()},
        serialize_json=True,
        description=f"wave {wave_id} completed: later runs verify the world and change nothing",
    )


def clear(wave_id: str) -> None:
    from airflow.sdk import Variable

    if completed(wave_id) is not None:
        Variable.delete(_key(wave_id))


def lease_key(workload: dict[str, Any]) -> str:
    return f"slow_injection_lease__{workload['kind']}.{workload['namespace']}.{workload['name']}"


LIVE_RUN_STATES = ("queued", "running")


def acquire_leases(
    wave_id: str,
    run_id: str,
    workloads: dict[str, dict[str, Any]],
    is_live: Callable[[str, str], bool] | None = None,
    dag_id: str | None = None,
) -> list[str]:
    """Two runs never act on one workload at once: each run that changes anything leases its
    services' workloads (released by the run's report, which runs on every outcome). Returns the
    conflicts, naming the holder; takes nothing when there is one.

    `is_live(dag_id, run_id)` says whether the holder's run may still act. A live holder always
    refuses (even a run of the same wave). A lease left by an ended run of the same wave is taken
    over (this run reads the world and converges); one left by an ended run of another wave still
    refuses: that wave may have left the service half-moved, and a human decides."""
    from airflow.sdk import Variable

    conflicts = []
    for service, workload in workloads.items():
        holder = Variable.get(lease_key(workload), default=None, deserialize_json=True)
        if not holder or (holder.get("run_id"), holder.get("wave")) == (run_id, wave_id):
            continue  # free, or this run's own lease (a cleared task running again); run ids alone
            # are not unique across waves (scheduled__<time> is the same for two waves on one cron)
        live = _holder_live(holder, is_live)
        if not live and holder.get("wave") == wave_id:
            log.warning(
                "taking over the lease on %s left by run %s of this wave, which has ended",
                service,
                holder.get("run_id"),
            )
            continue
        where = f"{service} ({workload['kind']} {workload['namespace']}/{workload['name']})"
        who = f"wave {holder.get('wave')} (run {holder.get('run_id')})"
        if live:
            conflicts.append(
                f"services: {where} is being migrated by {who}; two runs never act on one service "
                f"at once (this run may start once that one ends)"
            )
        else:
            conflicts.append(
                f"services: {where} is leased by {who}, which is no longer running but never released "
                f"it; that wave may have left the service half-moved: check it, then delete Variable "
                f"{lease_key(workload)}"
            )
    if conflicts:
        return conflicts
    for service, workload in workloads.items():
        Variable.set(
            lease_key(workload),
            {
                "wave": wave_id,
                "dag_id": dag_id or f"wave_{wave_id}",
                "run_id": run_id,
                "service": service,
                "at": time.time(),
            },
            serialize_json=True,
            description=f"held by a run of wave {wave_id} until its report",
        )
    return []


def _holder_live(holder: dict[str, Any], is_live: Callable[[str, str], bool] | None) -> bool:
    """Unknown counts as live: a lease is never taken over on a guess."""
    if is_live is None or not holder.get("run_id"):
        return True
    try:
        return bool(is_live(holder.get("dag_id") or f"wave_{holder.get('wave')}", holder["run_id"]))
    except Exception:
        log.warning("could not read the state of run %s holding a lease", holder.get("run_id"), exc_info=True)
        return True


def release_leases(run_id: str, workloads: list[dict[str, Any]], wave_id: str | None = None) -> None:
    from airflow.sdk import Variable

    for workload in workloads:
        holder = Variable.get(lease_key(workload), default=None, deserialize_json=True)
        if holder and holder.get("run_id") == run_id and wave_id in (None, holder.get("wave")):
            Variable.delete(lease_key(workload))
