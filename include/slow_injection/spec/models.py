"""Typed wave spec: what a platform engineer writes in include/waves/<wave>.yaml.

Every model forbids unknown keys and coerces nothing (strict), so a typo or a quoted number is an
error with a path, never a silent default.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    model_validator,
)

from include.slow_injection.durations import MAX_SECONDS, parse_duration

NAME_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$"
_NAME_RE = re.compile(NAME_PATTERN)
_CONN_RE = re.compile(r"^[A-Za-z0-9_.-]{1,250}$")
_TIME_RE = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")

EVENTS = (
    "wave_started",
    "phase_completed",
    "gate_failed",
    "rollback_started",
    "rollback_finished",
    "rollback_failed",  # retries ran out with traffic not back on blue: what is left to do by hand
    "wave_held",
    "wave_completed",
)


def _name(value: str) -> str:
    if not _NAME_RE.match(value):
        raise ValueError(
            f"must be lowercase letters, digits and '-', starting and ending with a letter or digit, "
            f"at most 40 characters, got {value!r}"
        )
    return value


def _connection_id(value: str) -> str:
    if not _CONN_RE.match(value):
        raise ValueError(f"must be an Airflow connection id (letters, digits, '_', '-', '.'), got {value!r}")
    return value


def _clock_time(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        raise ValueError('must be a quoted time like "02:00" (unquoted, YAML reads 02:00 as a number)')
    if isinstance(value, str) and not _TIME_RE.match(value):
        raise ValueError(f'must be a time "HH:MM" (24-hour), got {value!r}')
    return value


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


def _duration(value: Any) -> float:
    try:
        return parse_duration(value)
    except ValueError as err:
        raise ValueError(f"{err}, got {value!r}") from None


_DURATION_SCHEMA = {
    "oneOf": [
        {"type": "number", "minimum": 0, "maximum": MAX_SECONDS, "description": "seconds"},
        {"type": "string", "pattern": r"^(\d+(\.\d+)?(ms|s|m|h))+$", "examples": ["30s", "5m", "1h30m"]},
    ]
}

Name = Annotated[str, AfterValidator(_name), WithJsonSchema({"type": "string", "pattern": NAME_PATTERN})]
ConnectionId = Annotated[str, AfterValidator(_connection_id)]
Duration = Annotated[float, BeforeValidator(_duration), WithJsonSchema(_DURATION_SCHEMA)]
ClockTime = Annotated[
    str, BeforeValidator(_clock_time), WithJsonSchema({"type": "string", "pattern": _TIME_RE.pattern})
]
Threshold = Annotated[float, Field(ge=0), AfterValidator(_finite)]
Env = Literal["blue", "green"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class DriverRef(BaseModel):
    """`type` picks a driver from the registry; `connection` names an Airflow Connection; every
    other key is a driver setting, checked against that driver's own settings model."""

    model_config = ConfigDict(extra="allow", strict=True, frozen=True)

    type: Annotated[str, Field(min_length=1, description="driver name in the registry, e.g. haproxy")]
    connection: ConnectionId | None = Field(
        default=None, description="Airflow connection id holding the driver's address and credentials"
    )

    @property
    def settings(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


_DRIFT_PATH_RE = re.compile(
    r"^(containers|initContainers|configMaps|secrets|services)\[[^\[\]]+\](\.[^.\[\]]+|\[[^\[\]]+\])*$"
)
DRIFT_PATH_EXAMPLES = [
    "containers[app].env.LOG_LEVEL",
    "containers[app].image",
    "secrets[app-secrets].API_KEY",
    "services[web].ports[http].targetPort",
]


def _drift_path(value: str) -> str:
    if not _DRIFT_PATH_RE.match(value):
        raise ValueError(
            f"must be a drift path like {' or '.join(DRIFT_PATH_EXAMPLES[:2])} (starting with "
            f"containers, initContainers, configMaps, secrets or services[NAME]), got {value!r}"
        )
    return value


DriftPath = Annotated[
    str,
    AfterValidator(_drift_path),
    WithJsonSchema({"type": "string", "pattern": _DRIFT_PATH_RE.pattern, "examples": DRIFT_PATH_EXAMPLES}),
]


class DriftRules(Strict):
    """Differences between blue's and green's live objects that the spec declares (the drift gate
    fails on any other). The Fargate transforms of the copy are never drift and need no entry."""

    ignore: list[DriftPath] = Field(
        default_factory=list,
        description="paths not compared, each with everything under it, e.g. containers[app].env.LOG_LEVEL "
        "or containers[app].env (every env var of container app)",
    )
    expect: dict[DriftPath, str | int] = Field(
        default_factory=dict,
        description="path → the value green must have whatever blue has, e.g. {containers[app].image: "
        "registry.example/web:2}; a Secret key is given by hash only: sha256:<at least 12 hex digits>",
    )

    @model_validator(mode="after")
    def _consistent(self) -> DriftRules:
        both = sorted(set(self.ignore) & set(self.expect))
        if both:
            raise ValueError(f"ignore: {', '.join(both)} is also in expect; a path is either ignored or expected")
        for path, value in self.expect.items():
            if path.startswith("secrets[") and not re.fullmatch(r"sha256:[0-9a-f]{12,64}", str(value)):
                raise ValueError(
                    f"expect: {path}: a Secret value is compared by hash only; write "
                    "sha256:<at least 12 lowercase hex digits>, never the value itself"
                )
        return self


class Workload(Strict):
    kind: Literal["Deployment", "CronJob"]
    name: Annotated[str, Field(min_length=1, max_length=253)]
    namespace: Annotated[str, Field(min_length=1, max_length=63)]
    green_namespace: Annotated[str, Field(min_length=1, max_length=63)] | None = Field(
        default=None, description="namespace in green when it differs from blue's"
    )
    copy_config_maps: bool = Field(
        default=False, description="also copy the ConfigMaps the pod template names (env, envFrom, volumes)"
    )
    copy_services: list[Annotated[str, Field(min_length=1, max_length=63)]] = Field(
        default_factory=list, description="Services (by name, in blue's namespace) to copy beside the workload"
    )
    drift: DriftRules | None = Field(
        default=None,
        description="declared differences between blue's and green's live objects; the drift "
        "gate before any traffic (or handover) fails on every other difference",
    )


class HealthCheckSpec(Strict):
    name: Name
    check: DriverRef = Field(description="health-check driver, e.g. {type: http, url: ...}")
    env: Env = "green"
    consecutive_successes: Annotated[int, Field(ge=1, le=1000)] = 3
    interval: Duration = 5.0
    timeout: Duration = Field(default=300.0, description="deadline for reaching consecutive_successes")

    @model_validator(mode="after")
    def _interval_fits(self) -> HealthCheckSpec:
        if self.interval <= 0:
            raise ValueError("interval: must be a duration > 0")
        if self.timeout < self.interval:
            raise ValueError("timeout: must be at least one interval")
        return self


class MetricGate(Strict):
    name: Name
    source: DriverRef = Field(description="metric-source driver, e.g. {type: prometheus, connection: prom}")
    query: Annotated[str, Field(min_length=1, description="query; ${service} and ${env} are substituted")]
    env: Env = Field(default="green", description="which environment the query measures")
    comparator: Literal["less_than", "at_most", "greater_than", "at_least"] = Field(
        description="the value passes when it is <comparator> threshold"
    )
    threshold: Threshold
    interval: Duration = 10.0
    bake: Duration = Field(default=60.0, description="measurement window; at a traffic step, the step's bake")
    failure_limit: Annotated[int, Field(ge=1, le=1000)] = Field(default=1, description="breaches that fail the gate")
    on_no_data: Literal["fail", "hold"] = Field(
        default="fail",
        description="no data or a query error never passes: 'fail' counts it as a breach, "
        "'hold' waits for data up to hold_timeout, then holds the wave",
    )
    hold_timeout: Duration = 600.0

    @model_validator(mode="after")
    def _interval_positive(self) -> MetricGate:
        if self.interval <= 0:
            raise ValueError("interval: must be a duration > 0")
        return self


class TrafficStep(Strict):
    weight: Annotated[int, Field(ge=1, le=100, description="percent of user traffic on green")]
    bake: Duration = Field(default=60.0, description="time at this weight while the service's gates measure")


class Handover(Strict):
    """How a scheduled job changes sides (exactly once: never in both, no scheduled time skipped)."""

    margin: Duration = Field(default=30.0, description="hand over only when the next run is at least this far")
    wait_timeout: Duration = Field(default=900.0, description="how long to wait for such a moment")
    first_run_timeout: Duration = Field(default=3600.0, description="green's first run must succeed within this")


class Service(Strict):
    name: Name
    exposure: Literal["exposed", "scheduled"] = Field(
        description="exposed = user-facing (traffic shifts gradually); scheduled = jobs (handover)"
    )
    description: str = ""
    depends_on: list[Name] = Field(default_factory=list, description="services that migrate before this one")
    workload: Workload
    router: DriverRef | None = Field(default=None, description="traffic router; required for exposed services")
    health_checks: list[HealthCheckSpec] = Field(default_factory=list)
    gates: list[MetricGate] = Field(default_factory=list)
    traffic_steps: list[TrafficStep] | None = Field(default=None, description="defaults to the wave's traffic_steps")
    handover: Handover = Field(default_factory=Handover)
    rollout_timeout: Duration = Field(default=600.0, description="green's copy must be rolled out within this")

    @model_validator(mode="after")
    def _exposure_rules(self) -> Service:
        if self.exposure == "exposed" and self.router is None:
            raise ValueError("router: is required for an exposed service (user traffic must be routed)")
        if self.exposure == "scheduled":
            if self.router is not None:
                raise ValueError("router: a scheduled service takes no user traffic; remove the router")
            if self.traffic_steps is not None:
                raise ValueError("traffic_steps: a scheduled service moves by job handover, not traffic steps")
        if self.workload.kind == "CronJob" and self.exposure != "scheduled":
            raise ValueError("exposure: a CronJob workload must be 'scheduled'")
        _check_unique([g.name for g in self.gates] + [h.name for h in self.health_checks], "gates/health_checks")
        if self.traffic_steps is not None:
            _check_steps(self.traffic_steps, "traffic_steps")
        return self


class FargateSelector(Strict):
    namespace: Annotated[str, Field(min_length=1, max_length=63)]
    labels: dict[str, str] = Field(default_factory=dict, max_length=5)


class FargateProfileSetup(Strict):
    """A Fargate profile the preparation phase creates beside blue's node groups. EKS profiles are
    immutable: one that exists and matches is left alone, one that differs is an error."""

    cluster: Annotated[str, Field(min_length=1, max_length=100)]
    name: Annotated[str, Field(pattern=r"^[0-9A-Za-z][A-Za-z0-9_-]{0,99}$")]
    pod_execution_role_arn: Annotated[str, Field(pattern=r"^arn:aws[a-z-]*:iam::\d{12}:role/\S+$")]
    subnets: Annotated[list[Annotated[str, Field(pattern=r"^subnet-[0-9a-f]+$")]], Field(min_length=1)] = Field(
        description="private subnets for the pods (Fargate takes no public subnets)"
    )
    selectors: Annotated[list[FargateSelector], Field(min_length=1, max_length=5)]
    tags: dict[str, str] = Field(default_factory=dict)
    aws_connection: ConnectionId = Field(description="Airflow AWS connection for the EKS API")
    region: str | None = None
    timeout: Duration = Field(default=1200.0, description="the profile must be ACTIVE within this")
    busy_timeout: Duration = Field(
        default=900.0,
        description="how long creating it keeps trying while EKS is busy with another profile of the cluster "
        "(one create or delete at a time, minutes each)",
    )


class Environment(Strict):
    name: Annotated[str, Field(min_length=1, max_length=63, description="e.g. eks-ec2, eks-fargate")]
    platform: DriverRef = Field(description="platform driver and its connection for this environment")
    fargate_profile: FargateProfileSetup | None = Field(
        default=None, description="green only: an EKS Fargate profile to create in the preparation phase"
    )


class Environments(Strict):
    blue: Environment
    green: Environment


class MaintenanceWindow(Strict):
    """When a wave may change anything. At the window's end the wave holds at its last validated
    step (no rollback); the next run resumes from there."""

    start: ClockTime
    end: ClockTime = Field(description="end ≤ start: the window runs past midnight")
    outside: Literal["wait", "skip"] = Field(
        default="wait", description="a run starting outside the window waits for it (deferred) or skips"
    )

    @model_validator(mode="after")
    def _not_empty(self) -> MaintenanceWindow:
        if self.start == self.end:
            raise ValueError("end: must differ from start (a window of no time never opens)")
        return self


class Schedule(Strict):
    cron: Annotated[str, Field(min_length=1)] | None = Field(default=None, description="e.g. '0 2 * * *' (nightly)")
    after: list[Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]] = Field(
        default_factory=list, description="or: run when these waves (ids) have all completed (their Assets)"
    )
    timezone: str = "UTC"
    window: MaintenanceWindow | None = None

    @model_validator(mode="after")
    def _valid(self) -> Schedule:
        from croniter import croniter

        if (self.cron is None) == (not self.after):
            raise ValueError("cron: give exactly one of `cron` (a time schedule) or `after` (earlier waves)")
        if self.cron is not None and (len(self.cron.split()) != 5 or not croniter.is_valid(self.cron)):
            raise ValueError(f"cron: must be a 5-field cron expression like '0 2 * * *', got {self.cron!r}")
        _check_unique(self.after, "after")
        try:
            from zoneinfo import ZoneInfo

            ZoneInfo(self.timezone)
        except Exception:
            raise ValueError(
                f"timezone: must be an IANA time zone like 'UTC' or 'Europe/Paris', got {self.timezone!r}"
            ) from None
        return self


class Monitoring(Strict):
    """Wave-level gates for a phase (parallel operation, validation, full transition, release)."""

    gates: list[MetricGate] = Field(default_factory=list)
    health_checks: list[HealthCheckSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> Monitoring:
        _check_unique([g.name for g in self.gates] + [h.name for h in self.health_checks], "gates/health_checks")
        return self


# Kubernetes label/annotation keys ([prefix/]name) and label values, as the API server validates them.
_K8S_NAME = r"([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)"
K8S_KEY_PATTERN = rf"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?{_K8S_NAME}$"
K8S_LABEL_VALUE_PATTERN = rf"^{_K8S_NAME}?$"
K8sKey = Annotated[str, Field(max_length=317, pattern=K8S_KEY_PATTERN)]
E2E_TEST_LABEL = "slow-injection.io/e2e-test"  # names the test on its pod; set by the operator


class E2eTest(Strict):
    """The team's own test image, run once as a pod in green once all traffic is there (cncf-kubernetes
    KubernetesPodOperator); exit code 0 passes, anything else rolls the wave back."""

    name: Name = Field(default="tests", description="names the task (e2e_<name>) and the pod")
    image: Annotated[
        str, Field(min_length=1, pattern=r"^\S+$", description="the test image, e.g. registry.example/shop-e2e:1.4")
    ]
    command: list[str] = Field(default_factory=list, description="entrypoint (empty: the image's own)")
    args: list[str] = Field(default_factory=list, description="arguments to the entrypoint")
    env: dict[Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")], str] = Field(
        default_factory=dict, description="environment variables of the test container"
    )
    labels: dict[K8sKey, Annotated[str, Field(pattern=K8S_LABEL_VALUE_PATTERN)]] = Field(
        default_factory=dict,
        description="labels on the test pod, e.g. the team/cost labels an admission policy "
        "requires, or what a NetworkPolicy selects (green's add_labels and the test's own label win on a clash)",
    )
    annotations: dict[K8sKey, str] = Field(
        default_factory=dict,
        description="annotations on the test pod, e.g. sidecar.istio.io/inject: "
        '"false" (a sidecar that never exits would keep the test pod from finishing)',
    )
    namespace: Annotated[str, Field(min_length=1, max_length=63)] | None = Field(
        default=None, description="where the pod runs (default: the green namespace of the wave's services)"
    )
    connection: ConnectionId | None = Field(
        default=None, description="Kubernetes connection (default: green platform's connection)"
    )
    timeout: Duration = Field(default=600.0, description="the pod must have finished within this")
    log_tail_lines: Annotated[int, Field(ge=1, le=1000)] = Field(
        default=50, description="last log lines kept for the report (XCom key e2e_test)"
    )

    @model_validator(mode="after")
    def _bounds(self) -> E2eTest:
        if not 1 <= self.timeout <= 86400:
            raise ValueError("timeout: must be from 1s to 24h")
        if E2E_TEST_LABEL in self.labels:
            raise ValueError(f"labels.{E2E_TEST_LABEL}: set by Slow Injection (it names the test); remove it")
        return self


class FullTransition(Monitoring):
    """All traffic on green: the phase's gates and health checks, and optionally the team's e2e test."""

    e2e_test: E2eTest | None = Field(
        default=None, description="run the team's test image in green; a non-zero exit rolls the wave back"
    )


class JobWatch(Strict):
    """How each moved scheduled job must behave on green during parallel operation."""

    runs: Annotated[int, Field(ge=1, le=1000)] = Field(default=1, description="green runs to watch before passing")
    min_success_rate: Annotated[float, Field(ge=0, le=1)] = 1.0
    max_duration: Duration | None = Field(default=None, description="longest a single run may take")
    max_pod_restarts: Annotated[int, Field(ge=0)] = 0
    timeout: Duration = Field(default=7200.0, description="the runs must have finished within this")


class PodWatch(Strict):
    """Blue's user-facing pods must stay stable while jobs run on green."""

    window: Duration = 60.0
    max_restarts: Annotated[int, Field(ge=0)] = 0


class ParallelOperation(Monitoring):
    """Users on blue, moved jobs on green: watch both (skipped when the wave moves no scheduled job)."""

    jobs: JobWatch = Field(default_factory=JobWatch)
    blue_pods: PodWatch = Field(default_factory=PodWatch)


class StressTest(Strict):
    """Load driven at green only (locust, headless, in a subprocess), judged on failures and latency."""

    name: Name = "stress"
    url: str | None = Field(default=None, pattern=r"^https?://\S+$", description="green's URL to load")
    connection: ConnectionId | None = Field(default=None, description="or green's address from a connection")
    path: str = Field(default="/", pattern=r"^/\S*$", description="path on the connection's address")
    users: Annotated[int, Field(ge=1, le=1000)] = 10
    spawn_rate: Annotated[float, Field(gt=0, le=1000)] = 5.0
    duration: Duration = 60.0
    rate_limit: Annotated[float, Field(gt=0)] | None = Field(
        default=None, description="cap on requests/s, all users together"
    )
    max_failure_ratio: Annotated[float, Field(ge=0, le=1)] = 0.01
    max_p95: Duration | None = Field(default=None, description="95th percentile response time limit")
    max_p99: Duration | None = None
    min_requests: Annotated[int, Field(ge=1)] = Field(default=20, description="fewer is no data: a fail")

    @model_validator(mode="after")
    def _target(self) -> StressTest:
        if (self.url is None) == (self.connection is None):
            raise ValueError("give exactly one of `url` or `connection` (green's address)")
        if not 1 <= self.duration <= 3600:
            raise ValueError("duration: must be from 1s to 1h")
        return self


class ParityMetric(Strict):
    name: Name
    query: Annotated[str, Field(min_length=1, description="range query; ${env} (and ${service}) substituted")]
    direction: Literal["increase_is_bad", "decrease_is_bad", "either"] = "increase_is_bad"
    tolerance: Annotated[float, Field(ge=0, le=10)] = Field(
        default=0.1, description="relative shift of green vs blue (Hodges-Lehmann / blue's median) still fine"
    )
    critical: bool = Field(default=False, description="failing it forces the score to 0")
    weight: Annotated[float, Field(gt=0, le=1000)] = 1.0


class Parity(Strict):
    """Kayenta-style comparison of green with blue over the same window (Mann-Whitney U)."""

    source: DriverRef = Field(description="metric source with range queries: prometheus or cloudwatch")
    metrics: Annotated[list[ParityMetric], Field(min_length=1)]
    window: Duration = Field(
        default=300.0,
        description="both environments sampled over the same window: "
        "the stress tests' load when the wave has any, else the last `window`",
    )
    step: Duration = Field(default=10.0, description="one sample per step")
    confidence: Annotated[float, Field(ge=0.5, le=0.999)] = 0.95
    pass_score: Annotated[float, Field(ge=0, le=100)] = 95.0
    marginal_score: Annotated[float, Field(ge=0, le=100)] = 75.0
    max_no_data: Annotated[float, Field(ge=0, le=1)] = Field(
        default=0.5, description="share of metric weight with no data beyond which the score is 0"
    )
    min_samples: Annotated[int, Field(ge=3, le=100000)] = 10

    @model_validator(mode="after")
    def _scores(self) -> Parity:
        if self.marginal_score > self.pass_score:
            raise ValueError("marginal_score: must not exceed pass_score")
        if self.step <= 0 or self.window < self.step * 3:
            raise ValueError("window: must hold at least 3 steps (step > 0)")
        _check_unique([m.name for m in self.metrics], "metrics")
        return self


class Approval(Strict):
    """User acceptance: a human promotes, holds or rolls back in the Airflow UI (HITL)."""

    timeout: Duration = Field(default=14400.0, description="no answer within this → on_timeout")
    on_timeout: Literal["rollback", "hold"] = "rollback"
    assignees: list[str] = Field(default_factory=list, description="Airflow user ids who may answer (empty: anyone)")
    instructions: str = Field(default="", description="what to test before answering (markdown)")


class DataSyncSpec(Strict):
    """Blue's and green's data agree: before traffic moves, and before a rollback sends users back."""

    checks: Annotated[list[DriverRef], Field(min_length=1)] = Field(
        description="data-sync drivers, e.g. {type: postgres, ...} or {type: dms, ...}"
    )
    interval: Duration = 10.0
    timeout: Duration = Field(default=600.0, description="lagging past this fails the gate")
    before_rollback: bool = Field(default=True, description="rollback waits (up to timeout) for the data first")


class CutOverAt(Strict):
    """The traffic step before which writes move to green."""

    service: Name
    weight: Annotated[int, Field(ge=1, le=100, description="the weight of one of the service's traffic steps")]


class DataMigration(Strict):
    """One database moved blue → green with writes in flight, and back on rollback: replication starts
    in preparation, the validation gate waits for the initial copy and the lag bound, writes move to
    green before the traffic step `cut_over` names (the path is then reversed so blue keeps up), a
    rollback brings blue up to date before users go back, and the reverse path is removed after release."""

    name: Name
    replication: DriverRef = Field(
        description="data-replication driver: {type: postgres_logical, ...} or {type: dms, ...}"
    )
    max_lag: Duration = Field(default=5.0, description="the data gate waits until the lag is at most this")
    max_lag_bytes: Annotated[int, Field(ge=0)] = Field(
        default=16 * 1024 * 1024, description="and at most this much WAL behind (where the driver reads bytes)"
    )
    interval: Duration = Field(default=5.0, description="how often the data gate reads the replication")
    copy_timeout: Duration = Field(
        default=3600.0, description="the initial copy and catching up within this, or the data gate fails"
    )
    drain_timeout: Duration = Field(
        default=60.0, description="longest a cut-over or a rollback waits for the path to drain, writes fenced"
    )
    cut_over: CutOverAt | None = Field(
        default=None, description="default: before the first traffic step of the first exposed service"
    )


class Validation(Monitoring):
    """Before user traffic moves: stress green, compare it with blue, check the data, ask a human."""

    stress: list[StressTest] = Field(default_factory=list)
    parity: Parity | None = None
    data_sync: DataSyncSpec | None = None
    approval: Approval | None = None

    @model_validator(mode="after")
    def _unique_names(self) -> Validation:
        _check_unique(
            [g.name for g in self.gates] + [h.name for h in self.health_checks] + [s.name for s in self.stress],
            "gates/health_checks/stress",
        )
        return self


class ReportPlot(Strict):
    """One plot of the run report: the same query for blue and for green, over the whole run."""

    name: Name
    title: str = Field(default="", max_length=120, description="shown above the plot (default: the name)")
    query: Annotated[str, Field(min_length=1, description="range query; ${env} is substituted with blue, then green")]
    unit: str = Field(default="", max_length=20, description="unit of the values, shown on the y axis, e.g. s, ratio")

    @model_validator(mode="after")
    def _both_envs(self) -> ReportPlot:
        if "${env}" not in self.query:
            raise ValueError("query: must contain ${env}, so the plot reads blue and green from the same query")
        if "${service}" in self.query:
            raise ValueError("query: ${service} has no value in a plot of the whole wave; name the service")
        return self


class PodUsage(Strict):
    """Observed usage of each service's green pods for the report's right-sizing advice: range queries
    over the run through the report's source; the report takes the 95th percentile of the samples."""

    cpu: Annotated[str, Field(min_length=1)] | None = Field(
        default=None,
        description="CPU cores one green pod uses (e.g. the max over the service's pods); ${service} substituted",
    )
    memory: Annotated[str, Field(min_length=1)] | None = Field(
        default=None, description="memory bytes one green pod uses (e.g. the max working set); ${service} substituted"
    )

    @model_validator(mode="after")
    def _per_service(self) -> PodUsage:
        if self.cpu is None and self.memory is None:
            raise ValueError("cpu: give a cpu or a memory query (or leave usage out)")
        for field in ("cpu", "memory"):
            if getattr(self, field) is not None and "${service}" not in getattr(self, field):
                raise ValueError(f"{field}: must contain ${{service}}: usage is read for each service")
        return self


class Report(Strict):
    """Plots of the run report (report.html), blue against green from the run's start to its end.
    Without plots here, the report plots validation.parity's metrics (when the wave has a parity section)."""

    source: DriverRef | None = Field(
        default=None, description="metric source with range queries: prometheus or cloudwatch"
    )
    plots: list[ReportPlot] = Field(default_factory=list)
    usage: PodUsage | None = Field(default=None, description="green pods' CPU and memory use, for right-sizing advice")
    step: Duration = Field(
        default=10.0, description="finest spacing of the samples; long runs get a wider one (at most 300 points a plot)"
    )

    @model_validator(mode="after")
    def _complete(self) -> Report:
        if (self.plots or self.usage) and self.source is None:
            raise ValueError(
                "source: required when plots are listed or usage is given (the metric source the queries go to)"
            )
        if self.source is not None and not self.plots and self.usage is None:
            raise ValueError("plots: list at least one plot for the source (or usage queries)")
        if self.step <= 0:
            raise ValueError("step: must be a duration > 0")
        _check_unique([p.name for p in self.plots], "plots")
        return self


class Retries(Strict):
    count: Annotated[int, Field(ge=2, le=20)] = Field(
        default=3,
        description="retries of every side-effecting task (≥ 2: a transient backend error must not end a wave)",
    )
    delay: Duration = 10.0


class RollbackPolicy(Strict):
    automatic: bool = Field(default=True, description="false: a failed gate holds the wave for a human instead")
    retries: Annotated[int, Field(ge=2, le=50)] = 5
    retry_delay: Duration = 5.0


class Notification(Strict):
    notifier: DriverRef
    events: list[Literal[EVENTS]] = Field(default_factory=lambda: list(EVENTS))  # type: ignore[valid-type]


class Wave(Strict):
    """One migration wave: the services that move together from blue to green."""

    id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$", description="becomes the DAG id wave_<id>")]
    description: str = ""
    # Both become DAG tags ("owner:<owner>"), which Airflow caps at 100 characters.
    owner: Annotated[str, Field(min_length=1, max_length=94)]
    tags: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(default_factory=list)
    schedule: Schedule | None = None
    dry_run: bool = Field(default=False, description="default of the run-level dry-run switch")
    environments: Environments
    traffic_steps: list[TrafficStep] | None = Field(default=None, description="default steps for exposed services")
    services: Annotated[list[Service], Field(min_length=1)]
    parallel_operation: ParallelOperation = Field(default_factory=ParallelOperation)
    validation: Validation = Field(default_factory=Validation)
    full_transition: FullTransition = Field(default_factory=FullTransition)
    release_monitoring: Monitoring = Field(default_factory=Monitoring)
    retire_blue_after: Duration = Field(default=0.0, description="delay before blue is scaled down after release")
    report: Report = Field(default_factory=Report)
    retries: Retries = Field(default_factory=Retries)
    rollback: RollbackPolicy = Field(default_factory=RollbackPolicy)
    notifications: list[Notification] = Field(default_factory=list)
    data_migration: list[DataMigration] = Field(
        default_factory=list, description="databases whose data moves with the wave (replicated, cut over, reversed)"
    )

    @property
    def dag_id(self) -> str:
        return f"wave_{self.id}"

    def service(self, name: str) -> Service:
        return next(s for s in self.services if s.name == name)

    def steps_for(self, service: Service) -> list[TrafficStep]:
        return list(service.traffic_steps or self.traffic_steps or [])

    @model_validator(mode="after")
    def _cross_checks(self) -> Wave:
        if self.traffic_steps is not None:
            _check_steps(self.traffic_steps, "traffic_steps")
        names = [s.name for s in self.services]
        _check_unique(names, "services")
        by_name = {s.name: s for s in self.services}
        for i, svc in enumerate(self.services):
            for dep in svc.depends_on:
                if dep not in by_name:
                    raise ValueError(f"services[{i}].depends_on: unknown service {dep!r} (known: {', '.join(names)})")
                if dep == svc.name:
                    raise ValueError(f"services[{i}].depends_on: a service cannot depend on itself")
                if svc.exposure == "scheduled" and by_name[dep].exposure == "exposed":
                    raise ValueError(
                        f"services[{i}].depends_on: scheduled jobs migrate before exposed services, "
                        f"so {svc.name!r} cannot wait for exposed {dep!r}"
                    )
            if svc.exposure == "exposed" and not self.steps_for(svc):
                raise ValueError(f"services[{i}].traffic_steps: required (here or wave-level traffic_steps)")
        _check_acyclic(self.services)
        workloads = [(s.workload.kind, s.workload.namespace, s.workload.name) for s in self.services]
        for i, w in enumerate(workloads):
            if workloads.index(w) != i:
                raise ValueError(f"services[{i}].workload: {w[0]} {w[1]}/{w[2]} is already moved by another service")
        if self.schedule and self.id in self.schedule.after:
            raise ValueError("schedule.after: a wave cannot wait for itself")
        if self.environments.blue.fargate_profile is not None:
            raise ValueError("environments.blue.fargate_profile: a wave only sets up green; blue already runs")
        _check_e2e_test(self)
        _check_data_migration(self)
        if self.environments.blue.platform.type != self.environments.green.platform.type:
            from include.slow_injection import registry

            blue_type, known = self.environments.blue.platform.type, registry.known("platform")
            if blue_type not in known:  # name the field at fault, not green's that only differs from it
                raise ValueError(
                    f"environments.blue.platform.type: unknown platform type {blue_type!r}; known: {', '.join(known)}"
                )
            raise ValueError(
                f"environments.green.platform.type: must match blue's platform type "
                f"{self.environments.blue.platform.type!r}, got {self.environments.green.platform.type!r}"
            )
        return self


def green_namespaces(wave: Wave) -> list[str]:
    """The namespaces the wave's services run in on green, in spec order."""
    found = [s.workload.green_namespace or s.workload.namespace for s in wave.services]
    return list(dict.fromkeys(found))


def _check_e2e_test(wave: Wave) -> None:
    test = wave.full_transition.e2e_test
    if test is None:
        return
    field = "full_transition.e2e_test"
    green = wave.environments.green.platform
    if test.connection is None and _pod_connection(green) is None:
        raise ValueError(
            f"{field}.connection: required (green's platform is {green.type!r} with no Kubernetes "
            "connection to default to)"
        )
    if test.namespace is None and len(green_namespaces(wave)) > 1:
        raise ValueError(
            f"{field}.namespace: required: the wave's services run in several green namespaces "
            f"({', '.join(green_namespaces(wave))})"
        )
    if test.name in [g.name for g in wave.full_transition.gates] + [h.name for h in wave.full_transition.health_checks]:
        raise ValueError(f"{field}.name: {test.name!r} is already a gate or health check of full_transition")


def _check_data_migration(wave: Wave) -> None:
    _check_unique([m.name for m in wave.data_migration], "data_migration")
    for i, migration in enumerate(wave.data_migration):
        field = f"data_migration[{i}].cut_over"
        at = migration.cut_over
        if at is None:
            if not any(s.exposure == "exposed" for s in wave.services):
                raise ValueError(f"{field}: the wave has no exposed service, so no traffic step to cut writes over at")
            continue
        by_name = {s.name: s for s in wave.services}
        svc = by_name.get(at.service)
        if svc is None or svc.exposure != "exposed":
            exposed = [s.name for s in wave.services if s.exposure == "exposed"]
            raise ValueError(
                f"{field}.service: must be an exposed service ({', '.join(exposed) or 'none'}), got {at.service!r}"
            )
        weights = [step.weight for step in wave.steps_for(svc)]
        if at.weight not in weights:
            raise ValueError(f"{field}.weight: must be one of {at.service}'s traffic steps {weights}, got {at.weight}")


def _pod_connection(platform: DriverRef) -> str | None:
    """The Kubernetes connection a test pod on this platform defaults to (its driver says; None: none)."""
    from include.slow_injection import registry

    try:
        return registry.driver_class("platform", platform.type).pod_connection(platform.connection)
    except registry.UnknownDriver:
        return None


def _check_unique(names: list[str], field: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"{field}: name {name!r} is used twice")
        seen.add(name)


def _check_steps(steps: list[TrafficStep], field: str) -> None:
    if not steps:
        raise ValueError(f"{field}: must list at least one step, ending at weight 100")
    weights = [s.weight for s in steps]
    for i in range(1, len(weights)):
        if weights[i] <= weights[i - 1]:
            raise ValueError(f"{field}[{i}].weight: weights must increase step by step, got {weights}")
    if weights[-1] != 100:
        raise ValueError(f"{field}[{len(steps) - 1}].weight: the last step must be 100, got {weights[-1]}")


def _check_acyclic(services: list[Service]) -> None:
    deps = {s.name: list(s.depends_on) for s in services}
    state: dict[str, int] = {}

    def visit(name: str, trail: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            cycle = trail[trail.index(name) :] + [name]
            raise ValueError(f"services: dependency cycle {' -> '.join(cycle)}")
        state[name] = 1
        for dep in deps[name]:
            visit(dep, trail + [name])
        state[name] = 2

    for s in services:
        visit(s.name, [])
