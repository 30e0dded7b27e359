"""The `emergency_rollback` DAG: one manually triggered DAG for every wave (waves in, DAG out).

    stop_wave → restore_blue_workloads → data_to_blue → traffic_to_blue → jobs_to_blue

The trigger form asks for the wave (an enum of the valid specs' ids), the services (empty: all of
the wave's) and a reason. Which refs to act on is decided at run time from the wave's spec (the
same folder the workers parse), by `stop_wave`, which fails before anything changes when a named
service is not the wave's. The order is the wave's own rollback's: blue must have its pods before it
takes traffic back (a quick no-op while blue is not retired yet). See tasks/emergency_stop.py for the
stop flag that keeps a running wave run from moving the services' traffic again.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import DAG, Param

from include.slow_injection.assets import SERVICES_ALIAS
from include.slow_injection.spec.models import Wave
from include.slow_injection.tasks.emergency import (
    EmergencyData,
    EmergencyJobs,
    EmergencyRestore,
    EmergencyTraffic,
    StopWave,
)

DAG_ID = "emergency_rollback"
START_DATE = pendulum.datetime(2024, 1, 1, tz="UTC")
RETRIES = 10
RETRY_DELAY = timedelta(seconds=2)


def _doc(waves: list[Wave]) -> str:
    rows = "\n".join(
        f"| `{w.id}` | {w.owner} | {', '.join(f'`{s.name}` ({s.exposure})' for s in w.services)} |" for w in waves
    )
    return (
        "### Emergency rollback\n\n"
        "Returns the named services of a wave to blue, now, whatever state the wave's DAG is in: "
        "blue's capacity back, data migrations back on blue (when every service of the wave goes back), "
        "user traffic to 100 % blue, scheduled jobs back on blue. Every step "
        f"converges and retries ({RETRIES}× every {RETRY_DELAY.total_seconds():g} s).\n\n"
        "It first records an **emergency stop** for each service: a run of the wave that started "
        "before it can no longer move that service's traffic (its next traffic step fails and the run "
        "rolls itself back). To resume the migration, start a new run of the wave.\n\n"
        "| wave | owner | services |\n|---|---|---|\n" + rows + "\n"
    )


def build_dag(waves: list[Wave]) -> DAG:
    ids = sorted(w.id for w in waves)
    service_names = sorted({s.name for w in waves for s in w.services})
    by_wave = "; ".join(
        f"**{w.id}**: {', '.join(s.name for s in w.services)}" for w in sorted(waves, key=lambda w: w.id)
    )
    with (
        DAG(
            dag_id=DAG_ID,
            description="Return a wave's services to blue now, and stop the wave's running run from moving them again",
            doc_md=_doc(waves),
            schedule=None,
            start_date=START_DATE,
            catchup=False,
            # Runs of different waves must not queue behind each other. Two runs of one wave may overlap
            # harmlessly: every step converges to the same end (blue), and each service has its own stop flag.
            max_active_runs=16,
            is_paused_upon_creation=False,  # a paused emergency DAG would queue the rollback it exists for
            tags=["slow-injection", "emergency"],
            default_args={"owner": "slow-injection", "retries": RETRIES, "retry_delay": RETRY_DELAY},
            params={
                "wave": Param(
                    type="string",
                    enum=ids,
                    title="Wave",
                    values_display={w.id: f"{w.id} — {(w.description or w.owner)[:80]}" for w in waves},
                    description="The wave whose services go back to blue.",
                ),
                "services": Param(
                    [],
                    type="array",
                    items={"type": "string"},
                    uniqueItems=True,
                    title="Services",
                    examples=service_names,
                    description_md="Services to return to blue; **empty: every service of the wave**. "
                    f"By wave: {by_wave}.",
                ),
                "reason": Param(
                    type="string",
                    minLength=3,
                    title="Reason",
                    description="Why: recorded with the stop flag and sent to the wave's notifiers.",
                ),
            },
        ) as dag
    ):
        stop = StopWave(task_id="stop_wave")
        plan: dict[str, Any] = {"plan_task_id": stop.task_id}  # stop_wave returns the refs the other steps act on
        restore = EmergencyRestore(task_id="restore_blue_workloads", **plan)
        data = EmergencyData(task_id="data_to_blue", **plan)
        traffic = EmergencyTraffic(task_id="traffic_to_blue", outlets=[SERVICES_ALIAS], **plan)
        jobs = EmergencyJobs(task_id="jobs_to_blue", retry_delay=timedelta(seconds=5), outlets=[SERVICES_ALIAS], **plan)
        stop >> restore >> data >> traffic >> jobs
    return dag
