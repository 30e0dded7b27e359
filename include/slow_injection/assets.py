"""Migration state as Airflow Assets: one per service (events carry env and weight) and one per wave
(an event when the wave completes, so later waves can be scheduled on it)."""

from __future__ import annotations

from airflow.sdk import Asset, AssetAlias

GROUP = "slow-injection"
# Tasks that learn their wave at run time (emergency rollback) publish service events through it.
SERVICES_ALIAS = AssetAlias(name="slow-injection-services", group=GROUP)


def service_asset(wave_id: str, service: str) -> Asset:
    """Where a service runs. Event extra: wave, service, env (blue | green | split), weight (green %,
    None for a scheduled job), run_id, task_id, at (epoch seconds)."""
    return Asset(name=f"wave_{wave_id}.{service}", uri=f"x-slow-injection://{wave_id}/{service}", group=GROUP)


def wave_asset(wave_id: str) -> Asset:
    """A wave's completion. Event extra: wave, outcome ("completed"), run_id, at."""
    return Asset(name=f"wave_{wave_id}", uri=f"x-slow-injection://{wave_id}", group=GROUP)


def env_of(green_weight: int | None, job_side: str | None = None) -> str:
    if job_side is not None:
        return job_side
    if green_weight == 0:
        return "blue"
    return "green" if green_weight == 100 else "split"
