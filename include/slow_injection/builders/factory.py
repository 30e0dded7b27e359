"""Spec in, DAG out: a TaskGroup per seed phase, a rollback group, and how a run ends."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, Param, TaskGroup, TriggerRule

from include.slow_injection.builders import post_release, rollback
from include.slow_injection.builders.phases import STAGE_PHASES
from include.slow_injection.builders.render import Wiring, notifications, render_phase
from include.slow_injection.plan import plan_lines
from include.slow_injection.spec.models import Wave
from include.slow_injection.tasks.flow import EndWave
from include.slow_injection.tasks.operators import PlanWave
from include.slow_injection.tasks.report import EvaluationReport

START_DATE = pendulum.datetime(2024, 1, 1, tz="UTC")


def build_dag(wave: Wave) -> DAG:
    plan = "\n".join(plan_lines(wave))
    doc = f"### {wave.description or wave.id}\n\nOwner: **{wave.owner}**\n\n```\n{plan}\n```\n"
    schedule = wave.schedule.cron if wave.schedule else None
    with DAG(
        dag_id=wave.dag_id,
        description=(wave.description or f"migration wave {wave.id}")[:200],
        doc_md=doc,
        schedule=schedule,
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        tags=sorted({"slow-injection", f"owner:{wave.owner}", *wave.tags}),
        default_args={"owner": wave.owner},
        params={
            "dry_run": Param(
                wave.dry_run, type="boolean", title="Dry run",
                description="Log every change the wave would make (router weights, workloads) and change nothing.",
            ),
        },
        render_template_as_native_obj=False,
    ) as dag:
        wiring = Wiring()
        for builder in STAGE_PHASES:
            with TaskGroup(builder.PHASE, tooltip=(builder.__doc__ or "").strip().splitlines()[0]):
                if builder.PHASE == "preparation":
                    setup = PlanWave(task_id="plan_wave", plan_text=plan, wave_id=wave.id,
                                     notifications=notifications(wave))
                    wiring.tail = setup
                render_phase(wave, builder.PHASE, builder.stages(wave), wiring)
        with TaskGroup(post_release.PHASE, tooltip="retire blue, announce, report") as post:
            completed = post_release.build(wave, wiring)
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
                             "held": held.task_id},
            )
        [completed, rolled_back, held] >> report
        report.as_teardown(setups=setup)
    return dag
