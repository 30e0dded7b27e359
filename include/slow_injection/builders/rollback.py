"""Rollback: any failed gate or step leads here. Blue capacity first (green's jobs stop starting runs),
then all traffic, then scheduled jobs back on blue once green's running Job ended."""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import BaseOperator, TriggerRule

from include.slow_injection.builders.render import Wiring, notifications, platform_ref
from include.slow_injection.spec.models import Wave
from include.slow_injection.tasks.flow import EndWave, HandJobsBack, RollbackTraffic, RollbackWorkloads

GROUP = "rollback"
TRAFFIC = "traffic_to_blue"  # its XCom `left_by_hand` names what a failed rollback left (the report says it)


def build(wave: Wave, wiring: Wiring) -> BaseOperator:
    """Returns the task that ends a rolled-back run (failed on purpose)."""
    args = {"retries": wave.rollback.retries, "retry_delay": timedelta(seconds=wave.rollback.retry_delay),
            "wave_id": wave.id, "notifications": notifications(wave)}
    restore = RollbackWorkloads(
        task_id="restore_blue_workloads", platform=platform_ref(wave),
        workloads={s.name: s.workload.model_dump() for s in wave.services},
        trigger_rule=TriggerRule.ONE_SUCCESS, **args,
    )
    traffic = RollbackTraffic(
        task_id=TRAFFIC,
        routers={s.name: s.router.model_dump() for s in wave.services if s.router is not None}, **args,
    )
    ended = EndWave(task_id="wave_rolled_back", outcome="rolled_back", decision_ids=wiring.decision_ids,
                    gate_ids=wiring.gate_ids, wave_id=wave.id, notifications=notifications(wave))
    wiring.rollback_markers >> restore
    data_sync = wave.validation.data_sync
    if data_sync is not None and data_sync.before_rollback:
        # Users go back to blue only once blue has green's writes: a stale blue loses data.
        from slow_injection_gates.sensors import GateSensor

        from include.slow_injection.builders.stages import DataSyncCheck

        in_sync = GateSensor(task_id="data_in_sync", kind="data_sync", gate=DataSyncCheck.of(data_sync).model_dump(),
                             service=None, window=0.0)
        restore >> in_sync >> traffic
    else:
        restore >> traffic
    jobs = {s.name: s.workload.model_dump() for s in wave.services if s.exposure == "scheduled"}
    if jobs:
        hand_back = HandJobsBack(
            task_id="jobs_to_blue", platform=platform_ref(wave), workloads=jobs,
            wait_timeout=max(s.handover.wait_timeout for s in wave.services if s.exposure == "scheduled"), **args,
        )
        traffic >> hand_back >> ended
    else:
        traffic >> ended
    return ended
