"""Spec in, DAG out: a TaskGroup per seed phase, a rollback group, and how a run ends."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, TaskGroup, TriggerRule

from include.slow_injection.builders import post_release, rollback
from include.slow_injection.builders.phases import STAGE_PHASES
from include.slow_injection.assets import wave_asset
from include.slow_injection.builders.params import run_params
from include.slow_injection.builders.render import Wiring, notifications, platform_ref, render_phase
from include.slow_injection.plan import plan_lines
from include.slow_injection.reporting.right_sizing import right_sizing_config
from include.slow_injection.reporting.series import plot_config
from include.slow_injection.spec.models import Wave
from include.slow_injection.tasks.flow import EndWave, PublishCompletion
from include.slow_injection.tasks.plan_wave import REFUSED, PlanWave, RunRefused
from include.slow_injection.tasks.report import EvaluationReport

START_DATE = pendulum.datetime(2024, 1, 1, tz="UTC")


def schedule_of(wave: Wave):  # noqa: ANN201 - a cron string, an asset condition, or None
    if wave.schedule is None:
        return None
    if wave.schedule.cron is not None:
        from airflow.sdk import CronTriggerTimetable

        return CronTriggerTimetable(wave.schedule.cron, timezone=wave.schedule.timezone)
    condition = wave_asset(wave.schedule.after[0])
    for earlier in wave.schedule.after[1:]:
        condition = condition & wave_asset(earlier)
    return condition


def plan_task(wave: Wave, plan: str) -> PlanWave:
    services = {s.name: {"exposure": s.exposure, "router": s.router.model_dump() if s.router else None,
                         "workload": s.workload.model_dump(), "depends_on": list(s.depends_on)}
                for s in wave.services}
    window = None
    if wave.schedule and wave.schedule.window:
        w = wave.schedule.window
        window = {"start": w.start, "end": w.end, "timezone": wave.schedule.timezone, "outside": w.outside}
    approval = wave.validation.approval
    return PlanWave(task_id="plan_wave", plan_text=plan, wave_id=wave.id, services=services,
                    platform=platform_ref(wave), window=window,
                    approval_timeout=approval.timeout if approval else None, notifications=notifications(wave),
                    param_names=sorted(run_params(wave)))


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
        wiring = Wiring()
        for builder in STAGE_PHASES:
            with TaskGroup(builder.PHASE, tooltip=(builder.__doc__ or "").strip().splitlines()[0]):
                if builder.PHASE == "preparation":
                    setup = plan_task(wave, plan)
                    setup >> RunRefused(task_id=REFUSED)
                    wiring.tail = setup
                render_phase(wave, builder.PHASE, builder.stages(wave), wiring)
        with TaskGroup(post_release.PHASE, tooltip="retire blue, announce, report") as post:
            completed = post_release.build(wave, wiring)
            completed >> PublishCompletion(task_id="publish_completion", wave_id=wave.id, outlets=[wave_asset(wave.id)])
        with TaskGroup(rollback.GROUP, tooltip="blue capacity back, then all traffic, then jobs once green is idle"):
            rolled_back = rollback.build(wave, wiring)
        held = EndWave(task_id="wave_held", outcome="held", decision_ids=wiring.decision_ids, wave_id=wave.id,
                       notifications=notifications(wave), trigger_rule=TriggerRule.ONE_SUCCESS)
        wiring.hold_markers >> held
        with post:
            report = EvaluationReport(
                task_id="evaluation_report", wave_id=wave.id, action_ids=wiring.action_ids,
                gate_ids=wiring.gate_ids, decision_ids=wiring.decision_ids,
                outcome_ids={"completed": completed.task_id, "rolled_back": rolled_back.task_id,
                             "held": held.task_id, "rollback_traffic": f"{rollback.GROUP}.{rollback.TRAFFIC}"},
                report_plots=plot_config(wave), workloads=[s.workload.model_dump() for s in wave.services],
                right_sizing=right_sizing_config(wave),
            )
        [completed, rolled_back, held] >> report
        report.as_teardown(setups=setup)
    # Set after the tasks: every task would otherwise deep-copy the DAG's params twice when built (half the
    # parse time of a 20-service wave); at run time Airflow merges the DAG's params into each task's anyway.
    dag.params = run_params(wave)
    return dag
