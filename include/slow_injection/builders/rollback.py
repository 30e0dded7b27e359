"""Rollback: any failed gate or step leads here. Blue capacity first (green's jobs stop starting runs),
then the data migrations' writes back on blue once the reverse path drained, then all traffic, then
scheduled jobs back on blue once green's running Job ended."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, NamedTuple

from airflow.sdk import BaseOperator, TriggerRule

from include.slow_injection import kinds, refs
from include.slow_injection.builders.render import Rendered, WaveBuild, build_task
from include.slow_injection.kinds import data_sync as data_sync_kind
from include.slow_injection.kinds.base import TaskContext
from include.slow_injection.tasks.data_migration import DataBackToBlue
from include.slow_injection.tasks.rollback_steps import HandJobsBack, RollbackTraffic, RollbackWorkloads

GROUP = "rollback"


class Rollback(NamedTuple):
    ended: BaseOperator  # ends a rolled-back run (failed on purpose)
    traffic_task_id: str  # its XCom `left_by_hand` names what a failed rollback left (the report says it)


def build(wave_build: WaveBuild, wave_tasks: Rendered) -> Rollback:
    """The rollback every marker of `wave_tasks` leads to."""
    wave = wave_build.wave
    args: dict[str, Any] = {
        "retries": wave.rollback.retries,
        "retry_delay": timedelta(seconds=wave.rollback.retry_delay),
        "wave_id": wave.id,
        "notifications": refs.notifications(wave),
        "plan_task_id": wave_build.plan_task_id,
    }
    restore = RollbackWorkloads(
        task_id="restore_blue_workloads",
        platform=refs.platform_ref(wave),
        workloads=refs.workloads(wave.services),
        trigger_rule=TriggerRule.ONE_SUCCESS,
        **args,
    )
    dag = restore.dag
    breakers = [t for t in wave_tasks.gate_ids if dag is not None and getattr(dag.get_task(t), "breaker", None)]
    traffic = RollbackTraffic(
        task_id="traffic_to_blue", routers=refs.routers(wave.services), breaker_gate_ids=breakers, **args
    )
    ended = wave_build.end_of_run("rolled_back", list(wave_tasks.decision_ids), gate_ids=list(wave_tasks.gate_ids))
    list(wave_tasks.rollback_markers) >> restore
    before_traffic: BaseOperator = restore
    if wave.data_migration:
        # Users go back to blue only once blue has every write green took (the reverse path drained).
        data_back = DataBackToBlue(task_id="data_to_blue", migrations=refs.data_migrations(wave), **args)
        restore >> data_back
        before_traffic = data_back
    sync = wave.validation.data_sync
    if sync is not None and sync.before_rollback:
        # Users go back to blue only once blue has green's writes: a stale blue loses data.
        gate = data_sync_kind.wait(sync)
        in_sync = build_task(wave, gate.task_id, kinds.gate(gate.kind).task(gate, TaskContext(wave, {})))
        before_traffic >> in_sync >> traffic
    else:
        before_traffic >> traffic
    jobs = refs.scheduled_jobs(wave.services)
    if jobs:
        hand_back = HandJobsBack(
            task_id="jobs_to_blue",
            platform=refs.platform_ref(wave),
            workloads=jobs,
            wait_timeout=refs.job_wait_timeout(wave.services),
            **args,
        )
        traffic >> hand_back >> ended
    else:
        traffic >> ended
    return Rollback(ended, traffic.task_id)
