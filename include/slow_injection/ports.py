"""Small interfaces to the real systems a wave touches. Drivers implement them; DAG code never
knows which driver is behind a port."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class Weights:
    """Share of user traffic, in percent, on each environment."""

    blue: int
    green: int

    @classmethod
    def green_at(cls, percent: int) -> Weights:
        if not 0 <= percent <= 100:
            raise ValueError(f"green weight must be 0..100, got {percent}")
        return cls(blue=100 - percent, green=percent)

    def __str__(self) -> str:
        return f"blue {self.blue}, green {self.green}"


@dataclass(frozen=True)
class Measurement:
    """One metric reading. value None means no data; error says why the reading is inconclusive."""

    value: float | None
    error: str | None = None

    @property
    def conclusive(self) -> bool:
        return self.value is not None and self.error is None and self.value == self.value  # NaN is not

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Series:
    """Samples of one metric over a window (range query). Empty values = no data; error = why the
    series is unusable (backend down, query error, several series where one is needed)."""

    values: tuple[float, ...]
    error: str | None = None

    @property
    def usable(self) -> bool:
        return self.error is None and len(self.values) > 0


@dataclass(frozen=True)
class Probe:
    """One health probe: ok or not, with a short detail (status code, error)."""

    ok: bool
    detail: str = ""


@dataclass(frozen=True)
class Readiness:
    """A platform condition a gate waits for: ready, still waiting, or failed for good."""

    state: str  # ready | waiting | failed
    detail: str = ""


@dataclass(frozen=True)
class Change:
    """One convergent change to the world; applied False means it was only planned (dry-run)."""

    target: str
    before: str
    after: str
    applied: bool

    def __str__(self) -> str:
        verb = "" if self.applied else "would change "
        return f"{verb}{self.target}: {self.before} → {self.after}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class LeaseHolder:
    """Who holds a workload's lease: a run of a wave (run ids repeat across waves on one cron, so both
    name it), its DAG (to ask Airflow whether that run still lives) and when it took the lease."""

    wave: str
    run_id: str
    acquired_at: float
    dag_id: str = ""
    service: str = ""

    def same_run(self, other: LeaseHolder) -> bool:
        return (self.wave, self.run_id) == (other.wave, other.run_id)

    def __str__(self) -> str:
        return f"wave {self.wave} (run {self.run_id})"


@dataclass(frozen=True)
class Held:
    """The lease is this holder's (just taken, or already its own). `where` names the lease for humans
    (e.g. the Kubernetes Lease object); `version` is what a conditional write of it must match."""

    holder: LeaseHolder
    where: str
    version: str = ""


@dataclass(frozen=True)
class HeldBy:
    """Another holder has the lease: nothing was written. Pass it to `take_over_lease` to replace exactly
    this holder (a write conditional on `version`, so two takeovers cannot both win)."""

    holder: LeaseHolder
    where: str
    version: str = ""


LeaseAnswer = Held | HeldBy


class JobStillActive(RuntimeError):
    """A scheduled job cannot change sides yet: a Job of the side it leaves is still running."""


class ReadbackMismatch(RuntimeError):
    """A router read back a split this project did not set: someone else edited the route, or the data
    plane (e.g. the ALB a controller owns) does not serve what the route says yet. Reported, never taken
    as the wave's own split. `found` is what was read (None when it could not be read as a split),
    `expected` what this project last set (None when it never set one)."""

    def __init__(self, message: str, found: Weights | None = None, expected: Weights | None = None) -> None:
        super().__init__(message)
        self.found, self.expected = found, expected


class ProfileConflict(ValueError):
    """The Fargate profile there cannot be the spec's (it differs, or it is failed or going away)."""


@runtime_checkable
class Router(Protocol):
    def describe(self) -> str: ...
    def get_weights(self) -> Weights: ...
    def set_weights(self, weights: Weights) -> None: ...
    def attach_green(self, apply: bool) -> list[Change]:
        """Make green a member of the route at weight 0 (an ALB only health-checks target groups a
        listener forwards to); no traffic moves. Convergent: nothing to do returns []."""
        ...

    def green_ready(self) -> Readiness:
        """Whether green can take user traffic through this router (e.g. enough healthy targets);
        a gate waits for it before the first weight goes to green."""
        ...


@runtime_checkable
class MetricSource(Protocol):
    def describe(self) -> str: ...
    def query(self, query: str) -> Measurement:
        """Never raises for backend trouble: an unreachable backend is an inconclusive Measurement."""
        ...


@runtime_checkable
class SettlingSource(Protocol):
    """What a metric source adds when its datapoints arrive late and per period (CloudWatch): a gate
    reading then judges only periods that started at or after the traffic change and have settled."""

    def query_after(self, query: str, since: float) -> Measurement:
        """Like query, from the periods that started at or after `since` (epoch s) only; inconclusive
        while none of them has settled."""
        ...

    def first_settled_at(self, since: float) -> float:
        """When (epoch s) the first period that starts at or after `since` has settled."""
        ...

    def longest_settle(self) -> float:
        """The most first_settled_at(since) - since can be."""
        ...


@runtime_checkable
class RangeSource(Protocol):
    """What a metric source adds when it keeps history (parity, report plots); alarms have none."""

    def query_range(self, query: str, start: float, end: float, step: float) -> Series:
        """Samples from `start` to `end` (epoch s), one per `step` s, NaN dropped; never raises for
        backend trouble (an error Series instead)."""
        ...


@runtime_checkable
class HealthCheck(Protocol):
    def describe(self) -> str: ...
    def probe(self) -> Probe: ...


@runtime_checkable
class Platform(Protocol):
    """Workloads in both environments. Every method reads the world, then converges it; with
    apply=False it only returns the changes it would make."""

    @classmethod
    def pod_labels(cls, settings: Any) -> dict[str, str]:
        """Labels every pod the wave starts on green carries (e.g. what a Fargate profile selects), from
        the driver's settings alone: DAGs are built with them, without a connection."""
        ...

    @classmethod
    def pod_connection(cls, connection_id: str | None) -> str | None:
        """The Kubernetes connection a test pod on green runs through (None: this platform runs none)."""
        ...

    @classmethod
    def retires_blue(cls, workload: dict[str, Any]) -> bool:
        """Whether blue's copy still holds capacity once the service runs on green, for post-release to
        retire (a CronJob's blue is suspended at its handover instead)."""
        ...

    def describe(self) -> str: ...
    def preflight(self, workload: dict[str, Any]) -> list[str]: ...
    def deploy_green(self, workload: dict[str, Any], apply: bool) -> list[Change]: ...
    def activate(self, workload: dict[str, Any], env: str, apply: bool) -> list[Change]:
        """Run a scheduled job in `env` only: the other side is suspended first, and `env` is not
        unsuspended while a Job of the other side is still active (raises JobStillActive)."""
        ...

    def restore_blue(self, workload: dict[str, Any], apply: bool) -> list[Change]:
        """Rollback's first step: blue's capacity back; a scheduled job stops starting runs on green
        (blue resumes it once green is idle, through activate)."""
        ...

    def retire_blue(self, workload: dict[str, Any], apply: bool) -> list[Change]: ...
    def rollout(self, workload: dict[str, Any]) -> Readiness:
        """Green's copy rolled out (Deployments; CronJobs are ready once they exist)."""
        ...

    def handover_moment(self, workload: dict[str, Any], margin: float) -> Readiness:
        """A moment a scheduled job may change sides: none running, next run at least `margin` s away."""
        ...

    def first_run(self, workload: dict[str, Any], env: str, since: float) -> Readiness:
        """The job's first scheduled run in `env` after `since` (epoch s): ready once it succeeded."""
        ...

    def watch_jobs(self, workload: dict[str, Any], env: str, since: float, limits: dict[str, Any]) -> Readiness:
        """The job's runs in `env` since `since`: ready once `runs` finished within the limits
        (min_success_rate, max_duration, max_pod_restarts); failed as soon as they cannot be met."""
        ...

    def watch_pods(self, workload: dict[str, Any], env: str, since: float, limits: dict[str, Any]) -> Readiness:
        """The workload's pods in `env`: failed past `max_restarts` restarts since `since`, ready once
        `window` s passed without; no pods is never ready."""
        ...

    def config_drift(self, workload: dict[str, Any]) -> Readiness:
        """Blue's and green's live configuration compared (images, env and the ConfigMaps/Secrets it
        refers to, resources, probes, Service ports) minus the copy's transforms and the spec's
        `workload.drift`: ready = no other difference; failed lists each with both values (Secret
        values only as sha256); waiting while green's copy does not exist yet."""
        ...

    def capacity(self, workload: dict[str, Any]) -> list[dict[str, Any]]:
        """Green's pods of the workload as right-sizing facts (kubernetes/right_sizing.pod_facts: name,
        containers' requests and limits, Fargate's CapacityProvisioned annotation). Read-only."""
        ...

    # A lease per workload, kept where the workload lives: two runs never act on one workload at once.
    # Each call is atomic on the platform's own store (create-if-absent, compare-and-set), never a read
    # then a write from the task.
    def acquire_lease(self, workload: dict[str, Any], holder: LeaseHolder) -> LeaseAnswer:
        """Create the lease if absent: Held when created or already this run's (a cleared task again),
        HeldBy with the other holder otherwise. Of several concurrent calls exactly one creates it."""
        ...

    def take_over_lease(self, workload: dict[str, Any], holder: LeaseHolder, previous: HeldBy) -> LeaseAnswer:
        """Replace `previous` (its holder ended) by `holder`, only if the lease still is exactly `previous`:
        HeldBy with whoever holds it now otherwise (another takeover won, or it changed hands)."""
        ...

    def release_lease(self, workload: dict[str, Any], holder: LeaseHolder) -> bool:
        """Delete the lease if `holder`'s run holds it (wave and run id): True when deleted; another
        holder's lease, or none, is left alone (False). Safe to call any number of times."""
        ...

    def lease_holder(self, workload: dict[str, Any]) -> HeldBy | None:
        """Who holds the workload's lease now (None: free). Read-only."""
        ...


@runtime_checkable
class DataSync(Protocol):
    def describe(self) -> str: ...
    def check(self) -> Readiness:
        """ready = blue's and green's data agree; waiting = behind but catching up (lag); failed =
        diverged for good. The detail carries the evidence (lag, row counts, checksums)."""
        ...


@runtime_checkable
class Notifier(Protocol):
    def describe(self) -> str: ...
    def notify(self, event: str, subject: str, body: str) -> None: ...


@runtime_checkable
class FargateProfiles(Protocol):
    """Green's EKS Fargate profile (the spec's environments.green.fargate_profile): set up before any
    workload moves, then waited for ACTIVE."""

    def describe(self) -> str: ...
    def state(self, cluster: str, name: str) -> Readiness: ...
    def ensure(self, profile: dict[str, Any], apply: bool) -> dict[str, Any]:
        """Create it unless it exists; one that exists and differs is an error (profiles are immutable)."""
        ...


@dataclass(frozen=True)
class ReplicationStatus:
    """Where one database's replication stands, read from both sides.

    `path` is the replication that exists: forward (blue → green, before the cut-over), reverse
    (green → blue, after it, so blue keeps up while users are on green), none, or mixed (both, or a
    half-done change a step is converging). `writable` is the side that takes the application's writes
    (blue, green, none while a cut-over is in flight, both when nothing fences either)."""

    path: str  # forward | reverse | none | mixed
    writable: str  # blue | green | none | both
    copy_done: bool  # the initial copy finished for every table (a reverse path copies nothing)
    lag_bytes: int | None  # publisher's WAL the subscriber has not confirmed; None: unknown or not measured
    lag_seconds: float | None  # how far behind in time (replay lag, CDC latency); None: unknown or idle
    streaming: bool  # a replication worker is connected and streaming now
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def readiness(self, max_lag: float, max_lag_bytes: int, path: str = "forward") -> Readiness:
        """ready = `path` copied and streaming within the lag bounds; waiting = copying, lagging or a
        worker restarting; failed = `path` does not exist (nothing will ever catch up)."""
        figures = f"lag {_lag_text(self)}; {self.detail}".rstrip("; ")
        if self.path != path:
            return Readiness("failed", f"{path} replication not set up (found: {self.path}); {self.detail}")
        if not self.copy_done:
            return Readiness("waiting", f"initial copy under way; {figures}")
        if not self.streaming:
            return Readiness("waiting", f"no replication worker streaming (restarting?); {figures}")
        if self.lag_bytes is None and self.lag_seconds is None:
            return Readiness("waiting", f"lag unknown (no reading yet); {self.detail}")
        if self.lag_bytes is not None and self.lag_bytes > max_lag_bytes:
            return Readiness("waiting", f"lagging: {_lag_text(self)} > {max_lag_bytes} bytes; {self.detail}")
        if self.lag_seconds is not None and self.lag_seconds > max_lag:
            return Readiness("waiting", f"lagging: {_lag_text(self)} > {max_lag:g}s; {self.detail}")
        return Readiness("ready", f"{path} replication streaming, {figures}")


def _lag_text(status: ReplicationStatus) -> str:
    parts = [f"{status.lag_bytes} bytes"] if status.lag_bytes is not None else []
    parts += [f"{status.lag_seconds:.2f}s"] if status.lag_seconds is not None else []
    return ", ".join(parts) or "unknown"


class ReplicationNotReady(RuntimeError):
    """A cut-over or a reset cannot go on: the path it needs is still copying, lagging or missing, or
    did not drain within its timeout. Raised before any write moves, or with writes fenced on both
    sides (nothing lost: the step is retried or a human decides)."""


class PrerequisitesMissing(ValueError):
    """Replication cannot start: the database lacks what it needs (each problem names it). Retrying
    does not help; a human fixes the database or the spec."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("replication cannot start:\n" + "\n".join(f"- {p}" for p in problems))
        self.problems = problems


@runtime_checkable
class DataReplication(Protocol):
    """Moves one database's data blue → green with writes in flight, and back on rollback. Every
    method reads both databases, then converges them; apply=False returns the changes (with the SQL or
    API calls) it would make and changes nothing. No method drops or truncates a table."""

    def describe(self) -> str: ...
    def prerequisites(self) -> list[str]:
        """What is missing before replication can start, each naming the database, table or setting
        (empty: nothing). Read-only."""
        ...

    def status(self) -> ReplicationStatus: ...
    def start(self, apply: bool) -> list[Change]:
        """Forward path blue → green: initial copy, then streaming. Green is fenced (read-only for the
        application) until the cut-over. Raises PrerequisitesMissing (nothing changed) when the
        prerequisites are not met."""
        ...

    def cut_over(self, apply: bool, timeout: float) -> list[Change]:
        """Writes move to green: blue fenced, forward path drained to zero lag, green's sequences set
        past blue's, the path reversed (green → blue), green unfenced. Refuses (ReplicationNotReady)
        before fencing anything while the copy runs or the forward path lags."""
        ...

    def reset(self, apply: bool, timeout: float) -> list[Change]:
        """Rollback: writes back to blue once the reverse path drained (green fenced, drained, blue's
        sequences set past green's), then forward replication restored for the next try."""
        ...

    def remove(self, apply: bool) -> list[Change]:
        """After release: the reverse path removed; green stays writable."""
        ...
