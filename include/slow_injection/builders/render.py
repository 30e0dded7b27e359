"""Turn pure stages into Airflow tasks: actions → gates → decision, with markers into rollback/hold."""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import groupby
from datetime import timedelta
from typing import Any

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import BaseOperator, Label, TaskGroup, TriggerRule

from include.slow_injection.assets import service_asset
from include.slow_injection.builders.stages import Action, Stage
from include.slow_injection.spec.models import Wave
from include.slow_injection.tasks.flow import StageDecision
from include.slow_injection.tasks.operators import AttachGreen, PlatformStep, Preflight, SetTraffic


@dataclass
class Wiring:
    """What the factory needs to connect phases and the rollback/hold paths."""

    tail: BaseOperator | None = None  # the decision (or placeholder) the next phase starts after
    rollback_markers: list[BaseOperator] = field(default_factory=list)  # decisions and fast paths
    hold_markers: list[BaseOperator] = field(default_factory=list)
    action_ids: list[str] = field(default_factory=list)
    gate_ids: list[str] = field(default_factory=list)
    stress_ids: list[str] = field(default_factory=list)  # parity compares over the stress tests' window
    decision_ids: list[str] = field(default_factory=list)


def step_args(wave: Wave) -> dict[str, Any]:
    """Side-effecting tasks retry: a transient backend error must not end a wave."""
    return {"retries": wave.retries.count, "retry_delay": timedelta(seconds=wave.retries.delay),
            "wave_id": wave.id, "notifications": notifications(wave)}


def notifications(wave: Wave) -> list[dict[str, Any]]:
    return [{"notifier": n.notifier.model_dump(), "events": list(n.events)} for n in wave.notifications]


def platform_ref(wave: Wave) -> dict[str, Any]:
    """Both environments' platform references; the driver acts on both (copy blue → green)."""
    return {env: getattr(wave.environments, env).platform.model_dump() for env in ("blue", "green")}


def stage_meta(stage: Stage, service: str | None) -> dict[str, Any]:
    """What a task tells the run's scope about itself (tasks/scope.py)."""
    weight = next((a.weight for a in stage.actions if a.kind == "set_traffic"), None)
    return {"phase": stage.phase, "service": service, "weight": weight}


def _action_task(wave: Wave, action: Action, stage: Stage) -> BaseOperator:
    args = {**step_args(wave), "stage": stage_meta(stage, action.service)}
    if action.kind == "preflight":
        workloads = {s.name: s.workload.model_dump() for s in wave.services}
        return Preflight(task_id=action.task_id, platform=platform_ref(wave), workloads=workloads, **args)
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


def _gate_task(wave: Wave, stage_gate: Any, wiring: Wiring, stage: Stage, action_ids: list[str]) -> BaseOperator:
    scoped = {"stage": stage_meta(stage, stage_gate.service), "stage_actions": action_ids}
    if stage_gate.kind in ("stress", "parity", "approval"):
        from include.slow_injection.tasks import validation_gates as vg

        spec = stage_gate.spec.model_dump()
        if stage_gate.kind == "stress":
            return vg.StressGate(task_id=stage_gate.task_id, test=spec, **scoped)
        if stage_gate.kind == "parity":
            return vg.ParityGate(task_id=stage_gate.task_id, parity=spec, stress_ids=list(wiring.stress_ids),
                                 human_decides=wave.validation.approval is not None, **scoped)
        # The approver sees every verdict so far (stress figures, parity score, gate values).
        return vg.UatApproval(task_id=stage_gate.task_id, approval=spec, wave_id=wave.id,
                              evidence_ids=list(wiring.gate_ids), **scoped)
    if stage_gate.kind == "e2e_test":
        from include.slow_injection.tasks.e2e_test import E2eTestPod

        fargate_labels = wave.environments.green.platform.settings.get("add_labels") or {}  # green's profile picks it
        return E2eTestPod(task_id=stage_gate.task_id, test=stage_gate.spec.model_dump(), pod_labels=fargate_labels,
                          retries=wave.retries.count, retry_delay=timedelta(seconds=wave.retries.delay), **scoped)
    from slow_injection_gates.sensors import GateSensor

    return GateSensor(task_id=stage_gate.task_id, kind=stage_gate.kind, gate=stage_gate.spec.model_dump(),
                      service=stage_gate.service, window=stage_gate.window, **scoped)


def render_stage(wave: Wave, stage: Stage, wiring: Wiring, completes_phase: str | None) -> None:
    actions = [_action_task(wave, a, stage) for a in stage.actions]
    gates = [_gate_task(wave, g, wiring, stage, [t.task_id for t in actions]) for g in stage.gates]
    for before, after in zip(actions, actions[1:]):
        before >> after
    entry: list[BaseOperator] = actions[:1] or gates
    if actions and gates:
        actions[-1] >> gates
    decide = StageDecision(
        task_id="decide", wave_id=wave.id, stage="/".join((stage.phase, *stage.path)) or stage.phase,
        action_ids=[t.task_id for t in actions], gate_ids=[t.task_id for t in gates],
        rollback_marker="", hold_marker="", automatic_rollback=wave.rollback.automatic,
        completes_phase=completes_phase, notifications=notifications(wave),
        trigger_rule=TriggerRule.NONE_SKIPPED, retries=1,
    )
    (gates or actions[-1:]) >> decide
    rollback = EmptyOperator(task_id="rollback_requested")
    hold = EmptyOperator(task_id="hold_requested")
    decide.rollback_marker, decide.hold_marker = rollback.task_id, hold.task_id
    decide >> Label("rollback") >> rollback
    decide >> Label("hold") >> hold
    may_hold = ("approval", "parity")  # a human's Hold, parity's "marginal" without a human
    fail_fast = [t for t, g in zip(gates, stage.gates)
                 if g.kind not in may_hold and (g.kind != "metric" or g.spec.on_no_data == "fail")]
    if fail_fast and wave.rollback.automatic:
        # A failed gate starts the rollback at once, without waiting for its sibling gates to
        # finish baking; the decision still runs and records why. Hold-policy gates are left out:
        # they may be asking to hold, which only the decision can tell.
        fast = EmptyOperator(task_id="gate_failed", trigger_rule=TriggerRule.ONE_FAILED)
        fail_fast >> fast
        wiring.rollback_markers.append(fast)
    if wiring.tail is not None:
        wiring.tail >> entry  # no Label: labels across groups attach to group leaves
    wiring.tail = decide
    wiring.rollback_markers.append(rollback)
    wiring.hold_markers.append(hold)
    wiring.action_ids += [t.task_id for t in actions]
    wiring.gate_ids += [t.task_id for t in gates]
    wiring.stress_ids += [t.task_id for t, g in zip(gates, stage.gates) if g.kind == "stress"]
    wiring.decision_ids.append(decide.task_id)


def render_phase(wave: Wave, phase: str, stages: list[Stage], wiring: Wiring) -> None:
    """Render a phase's stages inside the current TaskGroup, sub-grouped by stage path."""
    if not stages:
        placeholder = EmptyOperator(task_id="nothing_configured")
        if wiring.tail is not None:
            wiring.tail >> placeholder
        wiring.tail = placeholder
        return
    last = stages[-1]
    _render_nested(wave, [(list(s.path), s) for s in stages], wiring, phase, last)


def _render_nested(wave: Wave, items: list[tuple[list[str], Stage]], wiring: Wiring, phase: str,
                   last: Stage) -> None:
    """Consecutive stages that share a path prefix share a TaskGroup (e.g. a service's steps)."""
    for head, group in groupby(items, key=lambda item: item[0][0] if item[0] else None):
        members = list(group)
        if head is None:
            for _, stage in members:
                render_stage(wave, stage, wiring, phase if stage is last else None)
        else:
            with TaskGroup(head):
                _render_nested(wave, [(path[1:], stage) for path, stage in members], wiring, phase, last)
