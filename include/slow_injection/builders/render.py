"""Turn pure stages into Airflow tasks: actions → gates → decision, with markers into rollback/hold."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import groupby
from datetime import timedelta
from typing import Any

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import BaseOperator, Label, TaskGroup, TriggerRule

from include.slow_injection.assets import service_asset
from include.slow_injection.refs import notifications, platform_ref, workloads
from include.slow_injection.builders.stages import Action, Stage
from include.slow_injection.spec.models import Wave
from include.slow_injection.tasks.flow import StageDecision
from include.slow_injection.tasks.operators import AttachGreen, PlatformStep, Preflight, SetTraffic


@dataclass(frozen=True)
class WaveBuild:
    """What every task of one wave's DAG is built from: the spec, and plan_wave's task id (where each
    task reads the run's scope)."""

    wave: Wave
    plan_task_id: str

    def step_args(self) -> dict[str, Any]:
        """Side-effecting tasks retry: a transient backend error must not end a wave."""
        return {"retries": self.wave.retries.count, "retry_delay": timedelta(seconds=self.wave.retries.delay),
                "wave_id": self.wave.id, "notifications": notifications(self.wave), "plan_task_id": self.plan_task_id}


@dataclass(frozen=True)
class Rendered:
    """The wave's tasks so far, in run order: what the next stage starts after, where failures and holds
    lead, and the task ids the stages' gates, the end of the run and the report read."""

    tail: BaseOperator | None = None  # the decision (or placeholder) the next stage starts after
    rollback_markers: tuple[BaseOperator, ...] = ()  # decisions' rollback branches and fast paths
    hold_markers: tuple[BaseOperator, ...] = ()
    action_ids: tuple[str, ...] = ()
    gate_ids: tuple[str, ...] = ()
    stress_ids: tuple[str, ...] = ()  # parity compares over the stress tests' window
    decision_ids: tuple[str, ...] = ()

    def then(self, later: Rendered) -> Rendered:
        """These tasks followed by `later`'s (its tail, if any, is the new tail)."""
        return Rendered(later.tail or self.tail, self.rollback_markers + later.rollback_markers,
                        self.hold_markers + later.hold_markers, self.action_ids + later.action_ids,
                        self.gate_ids + later.gate_ids, self.stress_ids + later.stress_ids,
                        self.decision_ids + later.decision_ids)


def stage_meta(stage: Stage, service: str | None) -> dict[str, Any]:
    """What a task tells the run's scope about itself (tasks/scope.py)."""
    weight = next((a.weight for a in stage.actions if a.kind == "set_traffic"), None)
    return {"phase": stage.phase, "service": service, "weight": weight}


def _action_task(wave_build: WaveBuild, action: Action, stage: Stage) -> BaseOperator:
    wave = wave_build.wave
    args = {**wave_build.step_args(), "stage": stage_meta(stage, action.service)}
    if action.kind == "preflight":
        return Preflight(task_id=action.task_id, platform=platform_ref(wave), workloads=workloads(wave.services),
                         **args)
    if action.kind == "ensure_fargate_profile":
        from include.slow_injection.tasks.fargate_setup import EnsureFargateProfile

        assert wave.environments.green.fargate_profile is not None
        return EnsureFargateProfile(task_id=action.task_id, profile=wave.environments.green.fargate_profile.model_dump(),
                                    **args)
    svc = wave.service(action.service or "")
    if action.kind == "attach_green":
        assert svc.router is not None
        return AttachGreen(task_id=action.task_id, service=svc.name, router=svc.router.model_dump(), **args)
    if action.kind == "set_traffic":
        assert svc.router is not None and action.weight is not None
        return SetTraffic(task_id=action.task_id, service=svc.name, router=svc.router.model_dump(),
                          weight=action.weight, outlets=[service_asset(wave.id, svc.name)], **args)
    if action.kind == "activate_green":
        args["outlets"] = [service_asset(wave.id, svc.name)]
    return PlatformStep(task_id=action.task_id, action=action.kind, service=svc.name, platform=platform_ref(wave),
                        workload=svc.workload.model_dump(), **args)


def _gate_task(wave_build: WaveBuild, stage_gate: Any, so_far: Rendered, stage: Stage, action_ids: list[str]) -> BaseOperator:
    wave = wave_build.wave
    scoped = {"stage": stage_meta(stage, stage_gate.service), "stage_actions": action_ids,
              "plan_task_id": wave_build.plan_task_id}
    if stage_gate.kind in ("stress", "parity", "approval"):
        from include.slow_injection.tasks import validation_gates as vg

        spec = stage_gate.spec.model_dump()
        if stage_gate.kind == "stress":
            return vg.StressGate(task_id=stage_gate.task_id, test=spec, **scoped)
        if stage_gate.kind == "parity":
            return vg.ParityGate(task_id=stage_gate.task_id, parity=spec, stress_ids=list(so_far.stress_ids),
                                 human_decides=wave.validation.approval is not None, **scoped)
        # The approver sees every verdict so far (stress figures, parity score, gate values).
        return vg.UatApproval(task_id=stage_gate.task_id, approval=spec, wave_id=wave.id,
                              evidence_ids=list(so_far.gate_ids), **scoped)
    if stage_gate.kind == "e2e_test":
        from include.slow_injection.tasks.e2e_test import E2eTestPod

        fargate_labels = wave.environments.green.platform.settings.get("add_labels") or {}  # green's profile picks it
        return E2eTestPod(task_id=stage_gate.task_id, test=stage_gate.spec.model_dump(), pod_labels=fargate_labels,
                          retries=wave.retries.count, retry_delay=timedelta(seconds=wave.retries.delay), **scoped)
    from slow_injection_gates.sensors import GateSensor

    return GateSensor(task_id=stage_gate.task_id, kind=stage_gate.kind, gate=stage_gate.spec.model_dump(),
                      service=stage_gate.service, window=stage_gate.window, **scoped)


def render_stage(wave_build: WaveBuild, stage: Stage, so_far: Rendered, completes_phase: str | None) -> Rendered:
    """The stage's tasks after `so_far`'s tail: actions, then gates, then its decision; returns them."""
    wave = wave_build.wave
    actions = [_action_task(wave_build, a, stage) for a in stage.actions]
    gates = [_gate_task(wave_build, g, so_far, stage, [t.task_id for t in actions]) for g in stage.gates]
    for before, after in zip(actions, actions[1:]):
        before >> after
    entry: list[BaseOperator] = actions[:1] or gates
    if actions and gates:
        actions[-1] >> gates
    rollback = EmptyOperator(task_id="rollback_requested")
    hold = EmptyOperator(task_id="hold_requested")
    decide = StageDecision(
        task_id="decide", wave_id=wave.id, stage="/".join((stage.phase, *stage.path)) or stage.phase,
        action_ids=[t.task_id for t in actions], gate_ids=[t.task_id for t in gates],
        rollback_marker=rollback.task_id, hold_marker=hold.task_id, automatic_rollback=wave.rollback.automatic,
        completes_phase=completes_phase, notifications=notifications(wave), plan_task_id=wave_build.plan_task_id,
        trigger_rule=TriggerRule.NONE_SKIPPED, retries=1,
    )
    (gates or actions[-1:]) >> decide
    decide >> Label("rollback") >> rollback
    decide >> Label("hold") >> hold
    may_hold = ("approval", "parity")  # a human's Hold, parity's "marginal" without a human
    fail_fast = [t for t, g in zip(gates, stage.gates)
                 if g.kind not in may_hold and (g.kind != "metric" or g.spec.on_no_data == "fail")]
    fast: list[BaseOperator] = []
    if fail_fast and wave.rollback.automatic:
        # A failed gate starts the rollback at once, without waiting for its sibling gates to
        # finish baking; the decision still runs and records why. Hold-policy gates are left out:
        # they may be asking to hold, which only the decision can tell.
        fast = [EmptyOperator(task_id="gate_failed", trigger_rule=TriggerRule.ONE_FAILED)]
        fail_fast >> fast[0]
    if so_far.tail is not None:
        so_far.tail >> entry  # no Label: labels across groups attach to group leaves
    return Rendered(tail=decide, rollback_markers=(*fast, rollback), hold_markers=(hold,),
                    action_ids=tuple(t.task_id for t in actions), gate_ids=tuple(t.task_id for t in gates),
                    stress_ids=tuple(t.task_id for t, g in zip(gates, stage.gates) if g.kind == "stress"),
                    decision_ids=(decide.task_id,))


def render_phase(wave_build: WaveBuild, phase: str, stages: list[Stage], so_far: Rendered) -> Rendered:
    """Render a phase's stages inside the current TaskGroup, sub-grouped by stage path, after `so_far`;
    returns `so_far` followed by the phase's tasks."""
    if not stages:
        placeholder = EmptyOperator(task_id="nothing_configured")
        if so_far.tail is not None:
            so_far.tail >> placeholder
        return so_far.then(Rendered(tail=placeholder))
    last = stages[-1]
    return _render_nested(wave_build, [(list(s.path), s) for s in stages], so_far, phase, last)


def _render_nested(wave_build: WaveBuild, items: list[tuple[list[str], Stage]], so_far: Rendered, phase: str,
                   last: Stage) -> Rendered:
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
