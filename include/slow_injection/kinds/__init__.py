"""The registry of gate and action kinds: a kind's name (the plan's Gate.kind / Action.kind, a verdict's
`kind`, the GateSensor's `kind`) → its module. Adding a kind is one module (see kinds/base.py) plus
one line here; the DAG builder, the sensor, the measuring loop and the report find it by name."""

from __future__ import annotations

from include.slow_injection.kinds import (
    approval,
    attach_green,
    cut_over_writes,
    data_migration,
    data_sync,
    deploy_green,
    e2e_test,
    ensure_fargate_profile,
    fargate_profile,
    hand_over,
    health,
    metric,
    parity,
    platform,
    preflight,
    remove_replication,
    retire_blue,
    router,
    set_traffic,
    start_replication,
    stress,
)
from include.slow_injection.kinds.base import ActionKind, GateKind, MeasuredGate, PlatformAction

# In the order their report sections appear.
GATES: dict[str, GateKind] = {
    k.name: k
    for k in (
        metric.KIND,
        health.KIND,
        platform.KIND,
        router.KIND,
        data_sync.KIND,
        data_migration.KIND,
        fargate_profile.KIND,
        stress.KIND,
        parity.KIND,
        approval.KIND,
        e2e_test.KIND,
    )
}
ACTIONS: dict[str, ActionKind] = {
    k.name: k
    for k in (
        preflight.KIND,
        start_replication.KIND,
        ensure_fargate_profile.KIND,
        deploy_green.KIND,
        attach_green.KIND,
        hand_over.KIND,
        cut_over_writes.KIND,
        set_traffic.KIND,
        retire_blue.KIND,
        remove_replication.KIND,
    )
}


class UnknownKind(LookupError):
    pass


def gate(name: str) -> GateKind:
    if name not in GATES:
        raise UnknownKind(f"unknown gate kind {name!r}; kinds: {', '.join(GATES)}")
    return GATES[name]


def measured(name: str) -> MeasuredGate:
    """A kind the GateSensor measures."""
    kind = gate(name)
    if not isinstance(kind, MeasuredGate):
        raise UnknownKind(f"gate kind {name!r} is not measured by the gate sensor (its own task runs it)")
    return kind


def action(name: str) -> ActionKind:
    if name not in ACTIONS:
        raise UnknownKind(f"unknown action kind {name!r}; kinds: {', '.join(ACTIONS)}")
    return ACTIONS[name]


def platform_action(name: str) -> PlatformAction:
    """An action PlatformStep runs through the platform port."""
    kind = action(name)
    if not isinstance(kind, PlatformAction):
        raise UnknownKind(f"action kind {name!r} is not a platform action")
    return kind
