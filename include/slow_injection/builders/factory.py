"""Spec in, DAG out: a TaskGroup per seed phase, a rollback group, and how a run ends."""

from __future__ import annotations

from datetime import timedelta
from types import ModuleType
from typing import TYPE_CHECKING

import pendulum
from airflow.sdk import DAG, TaskGroup, TriggerRule

from include.slow_injection.assets import wave_asset
from include.slow_injection.builders import post_release_group, rollback
from include.slow_injection.builders.params import run_params
from include.slow_injection.builders.render import Rendered, WaveBuild, render_phase
from include.slow_injection.phases import STAGE_PHASES
from include.slow_injection.phases.plan_text import plan_lines
from include.slow_injection.refs import notifications, platform_ref
from include.slow_injection.reporting.right_sizing_section import right_sizing_config
from include.slow_injection.reporting.series import plot_config
from include.slow_injection.spec.models import Wave
from include.slow_injection.tasks.end_of_run import PublishCompletion
from include.slow_injection.tasks.leases import ReleaseLeases
from include.slow_injection.tasks.plan_wave import PlanWave, RunRefused
from include.slow_injection.tasks.report import EvaluationReport

if TYPE_CHECKING:
    from airflow.sdk.definitions.asset import BaseAsset

START_DATE = pendulum.datetime(2024, 1, 1, tz="UTC")


def schedule_of(wave: Wave):
    if wave.schedule is None:
        return None
    if wave.schedule.cron is not None:
        from airflow.sdk import CronTriggerTimetable

        return CronTriggerTimetable(wave.schedule.cron, timezone=wave.schedule.timezone)
    condition: BaseAsset = wave_asset(wave.schedule.after[0])
    for earlier in wave.schedule.after[1:]:
        condition = condition & wave_asset(earlier)
    return condition


def plan_task(wave: Wave, plan: str) -> PlanWave:
    """plan_wave, and the task it branches to when it refuses the run."""
    services = {
        s.name: {
            "exposure": s.exposure,
            "router": s.router.model_dump() if s.router else None,
            "workload": s.workload.model_dump(),
            "depends_on": list(s.depends_on),
        }
        for s in wave.services
    }
    window = None
    if wave.schedule and wave.schedule.window:
        w = wave.schedule.window
        window = {"start": w.start, "end": w.end, "timezone": wave.schedule.timezone, "outside": w.outside}
    approval = wave.validation.approval
    refused = RunRefused(task_id="run_refused")
    setup = PlanWave(
        task_id="plan_wave",
        plan_text=plan,
        wave_id=wave.id,
        refused_task_id=refused.task_id,
        services=services,
        platform=platform_ref(wave),
        window=window,
        approval_timeout=approval.timeout if approval else None,
        notifications=notifications(wave),
        param_names=sorted(run_params(wave)),
    )
    setup >> refused
    return setup


def _tooltip(builder: ModuleType) -> str:
    return (builder.__doc__ or "").strip().splitlines()[0]


def build_dag(wave: Wave) -> DAG:
    plan = "\n".join(plan_lines(wave))
    doc = f"### {wave.description or wave.id}\n\nOwner: **{wave.owner}**\n\n```\n{plan}\n```\n"
    with DAG(
        dag_id=wave.dag_id,
        description=(wave.description or f"migration wave {wave.id}")[:200],
        doc_md=doc,
        schedule=schedule_of(wave),
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        tags=sorted({"slow-injection", f"owner:{wave.owner}", *wave.tags}),
        default_args={"owner": wave.owner},
        render_template_as_native_obj=False,
    ) as dag:
        first, *others = STAGE_PHASES
        with TaskGroup(first.PHASE, tooltip=_tooltip(first)):
            setup = plan_task(wave, plan)
            wave_build = WaveBuild(wave, plan_task_id=setup.task_id)
            wave_tasks = render_phase(wave_build, first.PHASE, first.stages(wave), Rendered(tail=setup))
        for builder in others:
            with TaskGroup(builder.PHASE, tooltip=_tooltip(builder)):
                wave_tasks = render_phase(wave_build, builder.PHASE, builder.stages(wave), wave_tasks)
        with TaskGroup(post_release_group.PHASE, tooltip="retire blue, announce, report, release the leases") as post:
            released = post_release_group.build(wave_build, wave_tasks)
            released.completed >> PublishCompletion(
                task_id="publish_completion",
                wave_id=wave.id,
                completed_task_id=released.completed.task_id,
                outlets=[wave_asset(wave.id)],
            )
        with TaskGroup(rollback.GROUP, tooltip="blue capacity back, then all traffic, then jobs once green is idle"):
            rolled_back = rollback.build(wave_build, wave_tasks)
        held = wave_build.end_of_run("held", list(wave_tasks.decision_ids), trigger_rule=TriggerRule.ONE_SUCCESS)
        list(wave_tasks.hold_markers) >> held
        with post:
            report = EvaluationReport(
                task_id="evaluation_report",
                wave_id=wave.id,
                plan_task_id=wave_build.plan_task_id,
                action_ids=[*wave_tasks.action_ids, *released.action_ids],
                gate_ids=list(wave_tasks.gate_ids),
                decision_ids=list(wave_tasks.decision_ids),
                outcome_ids={
                    "completed": released.completed.task_id,
                    "rolled_back": rolled_back.ended.task_id,
                    "held": held.task_id,
                    "rollback_traffic": rolled_back.traffic_task_id,
                },
                report_plots=plot_config(wave),
                right_sizing=right_sizing_config(wave),
            )
            leases = ReleaseLeases(
                task_id="release_leases",
                wave_id=wave.id,
                platform=platform_ref(wave),
                workloads={s.name: s.workload.model_dump() for s in wave.services},
                retries=wave.rollback.retries,  # a lease left behind keeps other waves off the services
                retry_delay=timedelta(seconds=wave.rollback.retry_delay),
            )
        # both end every run, whatever its outcome (in a refused run, release_leases finds nothing of its own)
        for teardown in (report, leases):
            [released.completed, rolled_back.ended, held] >> teardown
            teardown.as_teardown(setups=setup)
    # Set after the tasks: every task would otherwise deep-copy the DAG's params twice when built (half the
    # parse time of a 20-service wave); at run time Airflow merges the DAG's params into each task's anyway.
    dag.params = run_params(wave)  # type: ignore[assignment]  # attrs converts it to a ParamsDict (an untyped converter)
    return dag
