"""Platform wait: a condition of the workloads themselves, read through the platform port (green's copy
rolled out, a moment to hand a job over, its first run, the moved jobs' runs, blue's pods, config drift).
Made by the planners; run by the GateSensor."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from include.slow_injection import registry
from include.slow_injection.durations import format_duration
from include.slow_injection.kinds.base import WaitCheck, WaitKind
from include.slow_injection.plan import Gate
from include.slow_injection.ports import Readiness
from include.slow_injection.refs import platform_ref
from include.slow_injection.spec.models import Service, Wave


class PlatformCheck(WaitCheck):
    """A gate on the platform itself, made by the planners."""

    check: str  # a key of READS
    margin: float = 0.0
    limits: dict = {}  # jobs: runs, min_success_rate, max_duration, max_pod_restarts; pods: window, max_restarts
    workload: dict
    platform: dict


# Each check: the platform port's method that reads it (workload, the gate, when the gate started).
READS: dict[str, Callable[[Any, dict[str, Any], dict[str, Any], float], Readiness]] = {
    "rollout": lambda p, w, g, since: p.rollout(w),
    "handover_moment": lambda p, w, g, since: p.handover_moment(w, float(g["margin"])),
    "first_run": lambda p, w, g, since: p.first_run(w, g["env"], since),
    "jobs": lambda p, w, g, since: p.watch_jobs(w, g["env"], since, g["limits"]),
    "pods": lambda p, w, g, since: p.watch_pods(w, g["env"], since, g["limits"]),
    "config_drift": lambda p, w, g, since: p.config_drift(w),
}


def wait(
    wave: Wave,
    service: Service,
    check: str,
    timeout: float,
    margin: float = 0.0,
    *,
    env: str = "green",
    limits: dict | None = None,
    task_id: str | None = None,
) -> Gate:
    """A platform wait on one service's workload."""
    spec = PlatformCheck(
        name=check,
        check=check,
        env=env,
        timeout=timeout,
        margin=margin,
        limits=limits or {},
        workload=service.workload.model_dump(),
        platform=platform_ref(wave),
    )
    return Gate(task_id or f"wait_{check}", KIND.name, spec, service.name, 0.0)


class PlatformKind(WaitKind):
    name = "platform"
    spec_model = PlatformCheck

    def plan_line(self, gate: Gate) -> str:
        p = gate.spec
        assert isinstance(p, PlatformCheck)
        what = {
            "rollout": "green's copy rolled out",
            "handover_moment": f"no job running and the next run ≥ {format_duration(p.margin)} away",
            "first_run": "green's first scheduled run succeeded",
            "config_drift": "green's live configuration equals blue's but for the copy's transforms "
            "and the spec's declared drift",
            "jobs": f"{p.limits.get('runs')} green run(s) within limits {_limits(p.limits)}",
            "pods": f"no more than {p.limits.get('max_restarts')} pod restart(s) on {p.env} over "
            f"{format_duration(p.limits.get('window', 0))}",
        }[p.check]
        return f"wait: {what} (within {format_duration(p.timeout)})"

    def connect(self, gate: dict[str, Any], service: str | None) -> Any:
        platform = gate["platform"]
        return registry.build("platform", platform["green"], blue_ref=platform["blue"], service=service)

    def read(self, platform: Any, gate: dict[str, Any], service: str | None, started_at: float) -> Readiness:
        if gate["check"] not in READS:
            raise ValueError(f"unknown platform check {gate['check']!r}")
        return READS[gate["check"]](platform, gate["workload"], gate, started_at)


def _limits(limits: dict) -> str:
    shown = {
        "min_success_rate": "success rate ≥ {:g}",
        "max_duration": "each ≤ {:g}s",
        "max_pod_restarts": "pod restarts ≤ {}",
    }
    return ", ".join(fmt.format(limits[k]) for k, fmt in shown.items() if limits.get(k) is not None)


KIND = PlatformKind()
