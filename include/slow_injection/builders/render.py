"""Turn the planners' stages into Airflow tasks: actions → gates → decision, with markers into rollback/hold.
Each action and gate is built from its kind's task recipe (kinds/)."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from datetime import timedelta
from itertools import groupby
from typing import Any

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import BaseOperator, Label, TaskGroup, TriggerRule

from include.slow_injection import kinds
from include.slow_injection.assets import service_asset
from include.slow_injection.kinds.base import Task, TaskContext
from include.slow_injection.plan import Action, Gate, Stage
from include.slow_injection.refs import notifications
from include.slow_injection.spec.models import Wave
from include.slow_injection.tasks.decision import StageDecision
from include.slow_injection.tasks.end_of_run import EndWave


@dataclass(frozen=True)
class WaveBuild:
    """What every task of one wave's DAG is built from: the spec, and plan_wave's task id (where each
    task reads the run's scope)."""

    wave: Wave
    plan_task_id: str

    def step_args(self) -> dict[str, Any]:
        """Side-effecting tasks retry: a transient backend error must not end a wave."""
        return {
            "retries": self.wave.retries.count,
            "retry_delay": timedelta(seconds=self.wave.retries.delay),
            "wave_id": self.wave.id,
            "notifications": notifications(self.wave),
            "plan_task_id": self.plan_task_id,
        }

    def end_of_run(self, outcome: str, decision_ids: list[str], **extra: Any) -> EndWave:
        """The task that ends a run as `outcome` (completed, rolled_back, held) and says so."""
        return EndWave(
            task_id=f"wave_{outcome}",
            outcome=outcome,
            decision_ids=decision_ids,
            wave_id=self.wave.id,
            notifications=notifications(self.wave),
            plan_task_id=self.plan_task_id,
            **extra,
        )


@dataclass(frozen=True)
class Rendered:
    """The wave's tasks so far, in run order: what the next stage starts after, where failures and holds
    lead, and the task ids the stages' gates, the end of the run and the report read."""

    tail: BaseOperator | None = None  # the decision (or placeholder) the next stage starts after
    rollback_markers: tuple[BaseOperator, ...] = ()  # decisions' rollback branches and fast paths
    hold_markers: tuple[BaseOperator, ...] = ()
    action_ids: tuple[str, ...] = ()
    gate_ids: tuple[str, ...] = ()
    load_ids: tuple[str, ...] = ()  # gates that put load on green (parity compares over their window)
    decision_ids: tuple[str, ...] = ()

    def then(self, later: Rendered) -> Rendered:
        """These tasks followed by `later`'s (its tail, if any, is the new tail)."""
        return Rendered(
            later.tail or self.tail,
            self.rollback_markers + later.rollback_markers,
            self.hold_markers + later.hold_markers,
            self.action_ids + later.action_ids,
            self.gate_ids + later.gate_ids,
            self.load_ids + later.load_ids,
            self.decision_ids + later.decision_ids,
        )


def build_task(wave: Wave, task_id: str, task: Task) -> BaseOperator:
    """The operator a kind's recipe names, imported here only (kinds never import tasks)."""
    module, _, name = task.operator.partition(":")
    args = dict(task.args)
    if task.publishes is not None:
        args["outlets"] = [service_asset(wave.id, task.publishes)]
    return getattr(importlib.import_module(module), name)(task_id=task_id, **args)


def stage_meta(stage: Stage, service: str | None) -> dict[str, Any]:
    """What a task tells the run's scope about itself (tasks/scope.py)."""
    return {"phase": stage.phase, "service": service, "weight": stage.weight}


def _action_task(wave_build: WaveBuild, action: Action, stage: Stage) -> BaseOperator:
    context = TaskContext(wave_build.wave, {**wave_build.step_args(), "stage": stage_meta(stage, action.service)})
    return build_task(wave_build.wave, action.task_id, kinds.action(action.kind).task(action, context))


def _gate_task(
    wave_build: WaveBuild, gate: Gate, so_far: Rendered, stage: Stage, action_ids: list[str]
) -> BaseOperator:
    scoped = {
        "stage": stage_meta(stage, gate.service),
        "stage_actions": action_ids,
        "plan_task_id": wave_build.plan_task_id,
    }
    context = TaskContext(wave_build.wave, scoped, earlier_gates=so_far.gate_ids, earlier_load=so_far.load_ids)
    return build_task(wave_build.wave, gate.task_id, kinds.gate(gate.kind).task(gate, context))


def render_stage(wave_build: WaveBuild, stage: Stage, so_far: Rendered, completes_phase: str | None) -> Rendered:
    """The stage's tasks after `so_far`'s tail: actions, then gates, then its decision; returns them."""
    wave = wave_build.wave
    actions = [_action_task(wave_build, a, stage) for a in stage.actions]
    gates = [_gate_task(wave_build, g, so_far, stage, [t.task_id for t in actions]) for g in stage.gates]
    for before, after in zip(actions, actions[1:], strict=False):
        before >> after
    entry: list[BaseOperator] = actions[:1] or gates
    if actions and gates:
        actions[-1] >> gates
    rollback_requested = EmptyOperator(task_id="rollback_requested")
    hold_requested = EmptyOperator(task_id="hold_requested")
    decide = StageDecision(
        task_id="decide",
        wave_id=wave.id,
        stage="/".join((stage.phase, *stage.path)) or stage.phase,
        action_ids=[t.task_id for t in actions],
        gate_ids=[t.task_id for t in gates],
        rollback_marker=rollback_requested.task_id,
        hold_marker=hold_requested.task_id,
        automatic_rollback=wave.rollback.automatic,
        completes_phase=completes_phase,
        notifications=notifications(wave),
        plan_task_id=wave_build.plan_task_id,
        trigger_rule=TriggerRule.NONE_SKIPPED,
        retries=1,
    )
    (gates or actions[-1:]) >> decide
    decide >> Label("rollback") >> rollback_requested
    decide >> Label("hold") >> hold_requested
    fail_fast = [t for t, g in zip(gates, stage.gates, strict=False) if kinds.gate(g.kind).fails_fast(g)]
    fast: list[BaseOperator] = []
    if fail_fast and wave.rollback.automatic:
        # A failed gate starts the rollback at once, without waiting for its sibling gates to
        # finish baking; the decision still runs and records why. Gates that may ask to hold are
        # left out: only the decision can tell.
        fast = [EmptyOperator(task_id="gate_failed", trigger_rule=TriggerRule.ONE_FAILED)]
        fail_fast >> fast[0]
    if so_far.tail is not None:
        so_far.tail >> entry  # no Label: labels across groups attach to group leaves
    return Rendered(
        tail=decide,
        rollback_markers=(*fast, rollback_requested),
        hold_markers=(hold_requested,),
        action_ids=tuple(t.task_id for t in actions),
        gate_ids=tuple(t.task_id for t in gates),
        load_ids=tuple(t.task_id for t, g in zip(gates, stage.gates, strict=False) if kinds.gate(g.kind).loads_green),
        decision_ids=(decide.task_id,),
    )


def render_phase(wave_build: WaveBuild, phase: str, stages: list[Stage], so_far: Rendered) -> Rendered:
    """Render a phase's stages inside the current TaskGroup, sub-grouped by stage path, after `so_far`;
    returns `so_far` followed by the phase's tasks."""
    if not stages:
        nothing_configured = EmptyOperator(task_id="nothing_configured")
        if so_far.tail is not None:
            so_far.tail >> nothing_configured
        return so_far.then(Rendered(tail=nothing_configured))
    last = stages[-1]
    return _render_nested(wave_build, [(list(s.path), s) for s in stages], so_far, phase, last)


def _render_nested(
    wave_build: WaveBuild, items: list[tuple[list[str], Stage]], so_far: Rendered, phase: str, last: Stage
) -> Rendered:
    """Consecutive stages that share a path prefix share a TaskGroup (e.g. a service's steps)."""
    for head, group in groupby(items, key=lambda item: item[0][0] if item[0] else None):
        members = list(group)
        if head is None:
            for _, stage in members:
                so_far = so_far.then(render_stage(wave_build, stage, so_far, phase if stage is last else None))
        else:
            with TaskGroup(head):
                so_far = _render_nested(wave_build, [(path[1:], stage) for path, stage in members], so_far, phase, last)
    return so_far
