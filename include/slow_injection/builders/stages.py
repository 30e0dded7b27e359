"""What a phase is made of: stages of actions, then gates, then a decision."""

from __future__ import annotations

from dataclasses import dataclass, field

from include.slow_injection.durations import format_duration
from include.slow_injection.gates.evaluation import measurement_count
from pydantic import BaseModel, ConfigDict

from include.slow_injection.spec.models import (
    Approval,
    DataSync,
    E2eTest,
    HealthCheck,
    MetricGate,
    Monitoring,
    Parity,
    Service,
    StressTest,
    Wave,
)


class WaitCheck(BaseModel):
    """A gate that waits for a condition (made by the builders, not written in specs): the fields
    GateRun and the sensor read for every readiness wait."""

    model_config = ConfigDict(frozen=True)
    name: str
    check: str
    env: str = "green"
    interval: float = 5.0
    timeout: float


class PlatformCheck(WaitCheck):
    """A gate on the platform itself (rollout, handover moment, first run), made by the builders."""

    check: str  # rollout | handover_moment | first_run | jobs | pods | config_drift
    margin: float = 0.0
    limits: dict = {}  # jobs: runs, min_success_rate, max_duration, max_pod_restarts; pods: window, max_restarts
    workload: dict
    platform: dict


class RouterCheck(WaitCheck):
    """Green ready behind a service's router (e.g. enough healthy targets) before traffic moves."""

    name: str = "green_targets"
    check: str = "green_ready"
    router: dict


class DataSyncCheck(WaitCheck):
    """Blue's and green's data agree (every data-sync driver ready), within `timeout`."""

    name: str = "data_in_sync"
    check: str = "data_sync"
    interval: float
    checks: list[dict]

    @classmethod
    def of(cls, data_sync: DataSync) -> DataSyncCheck:
        return cls(interval=data_sync.interval, timeout=data_sync.timeout,
                   checks=[c.model_dump() for c in data_sync.checks])


class FargateProfileCheck(WaitCheck):
    """Green's Fargate profile ACTIVE (read with the provider's EksHook), within `timeout`."""

    name: str = "fargate_profile_active"
    check: str = "fargate_profile"
    interval: float = 15.0
    cluster: str
    profile: str
    aws_connection: str
    region: str | None = None


@dataclass(frozen=True)
class Action:
    task_id: str
    kind: str  # preflight | ensure_fargate_profile | deploy_green | attach_green | activate_green | set_traffic
    summary: str
    service: str | None = None
    weight: int | None = None


@dataclass(frozen=True)
class Gate:
    task_id: str
    kind: str  # metric | health | platform | router | data_sync | fargate_profile | stress | parity | approval | e2e_test
    spec: (MetricGate | HealthCheck | PlatformCheck | RouterCheck | DataSyncCheck | FargateProfileCheck | StressTest
           | Parity | Approval | E2eTest)
    service: str | None
    window: float

    @property
    def summary(self) -> str:
        if isinstance(self.spec, MetricGate):
            g = self.spec
            count = measurement_count(self.window, g.interval)
            return (f"gate {g.name}: {g.env} value {g.comparator.replace('_', ' ')} {g.threshold:g}, "
                    f"measured {count}× every {format_duration(g.interval)} over {format_duration(self.window)}; "
                    f"fails at {g.failure_limit} breach(es); no data → {g.on_no_data}")
        if isinstance(self.spec, PlatformCheck):
            p = self.spec
            what = {"rollout": "green's copy rolled out",
                    "handover_moment": f"no job running and the next run ≥ {format_duration(p.margin)} away",
                    "first_run": "green's first scheduled run succeeded",
                    "config_drift": "green's live configuration equals blue's but for the copy's transforms "
                                    "and the spec's declared drift",
                    "jobs": f"{p.limits.get('runs')} green run(s) within limits {_limits(p.limits)}",
                    "pods": f"no more than {p.limits.get('max_restarts')} pod restart(s) on {p.env} over "
                            f"{format_duration(p.limits.get('window', 0))}"}[p.check]
            return f"wait: {what} (within {format_duration(p.timeout)})"
        if isinstance(self.spec, StressTest):
            s = self.spec
            limits = [f"failures ≤ {s.max_failure_ratio:.1%}"]
            limits += [f"{q} ≤ {format_duration(v)}" for q, v in (("p95", s.max_p95), ("p99", s.max_p99)) if v]
            rate = f", capped at {s.rate_limit:g} req/s" if s.rate_limit else ""
            return (f"stress {s.name}: {s.users} users on green for {format_duration(s.duration)}{rate}; "
                    f"{', '.join(limits)}")
        if isinstance(self.spec, Parity):
            p = self.spec
            return (f"parity with blue (over the stress tests' load, else the last {format_duration(p.window)}): "
                    f"{', '.join(m.name for m in p.metrics)}; "
                    f"score ≥ {p.pass_score:g} passes, ≥ {p.marginal_score:g} asks a human, else roll back")
        if isinstance(self.spec, Approval):
            return (f"user acceptance: a human promotes, holds or rolls back in the UI "
                    f"(no answer in {format_duration(self.spec.timeout)} → {self.spec.on_timeout})")
        if isinstance(self.spec, E2eTest):
            t = self.spec
            argv = " ".join([*t.command, *t.args]) or "(the image's entrypoint)"
            return (f"e2e test {t.name}: pod {t.image} {argv} in {t.namespace} via {t.connection}; "
                    f"exit 0 within {format_duration(t.timeout)} passes, else roll back")
        if isinstance(self.spec, FargateProfileCheck):
            return (f"wait: Fargate profile {self.spec.profile} on EKS cluster {self.spec.cluster} ACTIVE "
                    f"(within {format_duration(self.spec.timeout)})")
        if isinstance(self.spec, DataSyncCheck):
            kinds = ", ".join(c["type"] for c in self.spec.checks)
            return f"wait: blue's and green's data in sync ({kinds}) within {format_duration(self.spec.timeout)}"
        if isinstance(self.spec, RouterCheck):
            return (f"wait: green ready behind the {self.spec.router['type']} router before any traffic "
                    f"(within {format_duration(self.spec.timeout)})")
        h = self.spec
        return (f"health {h.name}: {h.consecutive_successes} consecutive ok on {h.env} "
                f"within {format_duration(h.timeout)}")


@dataclass(frozen=True)
class Stage:
    phase: str
    path: tuple[str, ...]
    title: str
    actions: list[Action] = field(default_factory=list)
    gates: list[Gate] = field(default_factory=list)


def service_gates(service: Service, window: float | None = None) -> list[Gate]:
    """A service's health checks and metric gates; `window` replaces each gate's bake (traffic steps)."""
    gates = [Gate(f"health_{h.name}", "health", h, service.name, 0.0) for h in service.health_checks]
    gates += [Gate(f"gate_{g.name}", "metric", g, service.name, g.bake if window is None else window)
              for g in service.gates]
    return gates


def monitoring_gates(monitoring: Monitoring) -> list[Gate]:
    gates = [Gate(f"health_{h.name}", "health", h, None, 0.0) for h in monitoring.health_checks]
    gates += [Gate(f"gate_{g.name}", "metric", g, None, g.bake) for g in monitoring.gates]
    return gates


def ordered(wave: Wave, exposure: str) -> list[Service]:
    """Services of one exposure in dependency order; ties keep the spec's order."""
    pending = [s for s in wave.services if s.exposure == exposure]
    done = {s.name for s in wave.services if s.exposure != exposure}
    out: list[Service] = []
    while pending:
        ready = next(s for s in pending if all(d in done for d in s.depends_on))
        out.append(ready)
        done.add(ready.name)
        pending.remove(ready)
    return out


def platform_gate(wave: Wave, service: Service, check: str, timeout: float, margin: float = 0.0, *,
                  env: str = "green", limits: dict | None = None, task_id: str | None = None) -> Gate:
    refs = {e: getattr(wave.environments, e).platform.model_dump() for e in ("blue", "green")}
    spec = PlatformCheck(name=check, check=check, env=env, timeout=timeout, margin=margin, limits=limits or {},
                         workload=service.workload.model_dump(), platform=refs)
    return Gate(task_id or f"wait_{check}", "platform", spec, service.name, 0.0)


def router_gate(service: Service) -> Gate:
    assert service.router is not None
    spec = RouterCheck(timeout=service.rollout_timeout, router=service.router.model_dump())
    return Gate("wait_green_targets", "router", spec, service.name, 0.0)


def _limits(limits: dict) -> str:
    shown = {"min_success_rate": "success rate ≥ {:g}", "max_duration": "each ≤ {:g}s",
             "max_pod_restarts": "pod restarts ≤ {}"}
    return ", ".join(fmt.format(limits[k]) for k, fmt in shown.items() if limits.get(k) is not None)
