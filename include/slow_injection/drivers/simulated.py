"""Simulated drivers: a whole blue/green world kept in one JSON file.

For the demo and for tests of the engine only, never for production. Every task process sees the
same world (tasks run in separate processes), writes are serialised with a file lock, and each
change is appended to `history` so tests can check what happened and in which order.

World layout (all keys optional):
  routers:   {service: {blue: 100, green: 0}}
  metrics:   {query: number | null | {value, when_green_at_least, router, otherwise} | series}
             series (for range queries; an instant query reads its last sample):
               {samples: [number | null, ...]}   (null: a gap, dropped)
               {distribution: {kind: lognormal | normal, median (lognormal) | mean (normal), sigma,
                               n (default: the range's (end - start) / step), seed (default: from the query)}}
             value/otherwise may be a series too; a plain number is a constant series.
  health:    {target: true | false}
  workloads: {blue|green: {"Kind/namespace/name": {replicas, suspended}}}
  jobs_active: {"CronJob/ns/name": true}   (a blue job is running: no handover moment)
  job_results: {"CronJob/ns/name": "succeeded" | "failed" | "pending"}   (green's first run; default succeeded)
  data_sync: {lag: seconds, diverged: bool}   (blue/green data; default in sync)
  config:    {"Kind/ns/name": {blue: {path: value}, green: {path: value}}}   (drift gate; default none)
  leases:    {"Kind/namespace/name": {wave, run_id, dag_id, service, acquired_at, version}}   (a run's
             lease on blue's workload; each call reads and writes it under the world's lock)
  capacity:  {"Kind/green-namespace/name": [pod facts]}   (green's pods for right-sizing, as
             kubernetes/right_sizing.pod_facts returns them; default none)
  faults:    {router_down, metrics_down, platform_down, data_sync_down, deploy_green: bool}
             (deploy_green fails only that call)
  notifications: [{event, subject}]
  history:   [{at, what, ...}]
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import random
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from include.slow_injection.ports import (
    Change,
    Held,
    HeldBy,
    JobStillActive,
    LeaseAnswer,
    LeaseHolder,
    Measurement,
    Probe,
    Readiness,
    Series,
    Weights,
)

DEFAULT_DIR = "/tmp/slow-injection-sim"


class BackendDown(ConnectionError):
    pass


class SimulatedWorld:
    def __init__(self, name: str) -> None:
        base = Path(os.environ.get("SLOW_INJECTION_SIM_DIR", DEFAULT_DIR))
        base.mkdir(parents=True, exist_ok=True)
        self.path = base / f"{name}.json"

    @contextmanager
    def _locked(self) -> Iterator[dict[str, Any]]:
        lock_path = self.path.with_suffix(".lock")
        with open(lock_path, "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                state = json.loads(self.path.read_text()) if self.path.exists() else {}
                before = json.dumps(state, sort_keys=True)
                yield state
                if json.dumps(state, sort_keys=True) != before:
                    tmp = self.path.with_suffix(".tmp")
                    tmp.write_text(json.dumps(state, indent=1, sort_keys=True))
                    tmp.replace(self.path)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def read(self) -> dict[str, Any]:
        with self._locked() as state:
            return json.loads(json.dumps(state))

    def update(self, change: Callable[[dict[str, Any]], Any]) -> Any:
        with self._locked() as state:
            return change(state)

    def reset(self, state: dict[str, Any]) -> None:
        def replace(s: dict[str, Any]) -> None:
            s.clear()
            s.update(json.loads(json.dumps(state)))

        self.update(replace)

    def check(self, fault: str) -> None:
        if self.read().get("faults", {}).get(fault):
            raise BackendDown(f"simulated {fault.replace('_', ' ')}")


def _record(state: dict[str, Any], what: str, **details: Any) -> None:
    state.setdefault("history", []).append({"at": time.time(), "what": what, **details})


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    world: str = Field(default="default", pattern=r"^[A-Za-z0-9_-]+$")


class SimulatedRouter:
    port = "router"

    class Settings(_Settings):
        pass

    def __init__(self, world: SimulatedWorld, service: str) -> None:
        self.world, self.service = world, service

    @classmethod
    def from_spec(cls, settings: Settings, connection_id: str | None, *, service: str, **_: Any) -> SimulatedRouter:
        return cls(SimulatedWorld(settings.world), service)

    def describe(self) -> str:
        return f"simulated/{self.service}"

    def get_weights(self) -> Weights:
        self.world.check("router_down")
        w = self.world.read().get("routers", {}).get(self.service, {"blue": 100, "green": 0})
        return Weights(blue=int(w["blue"]), green=int(w["green"]))

    def set_weights(self, weights: Weights) -> None:
        self.world.check("router_down")

        def apply(state: dict[str, Any]) -> None:
            state.setdefault("routers", {})[self.service] = {"blue": weights.blue, "green": weights.green}
            _record(state, "set_weights", service=self.service, blue=weights.blue, green=weights.green)

        self.world.update(apply)

    def attach_green(self, apply: bool) -> list[Change]:
        self.world.check("router_down")
        return []

    def green_ready(self) -> Readiness:
        self.world.check("router_down")
        return Readiness("ready", f"simulated/{self.service}: green targets healthy")


class SimulatedMetricSource:
    port = "metric_source"

    class Settings(_Settings):
        pass

    def __init__(self, world: SimulatedWorld) -> None:
        self.world = world

    @classmethod
    def from_spec(cls, settings: Settings, connection_id: str | None, **_: Any) -> SimulatedMetricSource:
        return cls(SimulatedWorld(settings.world))

    def describe(self) -> str:
        return "simulated metrics"

    def query(self, query: str) -> Measurement:
        state = self.world.read()
        if state.get("faults", {}).get("metrics_down"):
            return Measurement(None, "simulated metrics backend down")
        if query not in state.get("metrics", {}):
            return Measurement(None, None)
        rule = _current_rule(state, state["metrics"][query])
        if _is_series(rule):
            try:
                samples = _series_samples(rule, query, SERIES_DEFAULT_N)
            except (TypeError, ValueError, KeyError) as err:
                return Measurement(None, f"simulated metric {query!r} malformed: {err}")
            return Measurement(samples[-1] if samples else None)  # the latest sample
        return Measurement(None if rule is None else float(rule))

    def query_range(self, query: str, start: float, end: float, step: float) -> Series:
        if step <= 0 or end < start:
            return Series((), f"bad range: start {start}, end {end}, step {step}")
        state = self.world.read()
        if state.get("faults", {}).get("metrics_down"):
            return Series((), "simulated metrics backend down")
        rule = _current_rule(state, state.get("metrics", {}).get(query))
        steps = int((end - start) // step)
        try:
            if _is_series(rule):
                return Series(tuple(_series_samples(rule, query, steps)))
            return Series(() if rule is None else (float(rule),) * steps)
        except (TypeError, ValueError, KeyError) as err:
            return Series((), f"simulated metric {query!r} malformed: {err}")


SERIES_FORMS = ("samples", "distribution")
SERIES_DEFAULT_N = 30  # an instant query on a distribution without n


def _is_series(rule: Any) -> bool:
    return isinstance(rule, dict) and any(form in rule for form in SERIES_FORMS)


def _current_rule(state: dict[str, Any], rule: Any) -> Any:
    """A router-dependent rule resolved against the router's green weight now; others as they are."""
    if isinstance(rule, dict) and not _is_series(rule):
        weights = state.get("routers", {}).get(rule.get("router", ""), {"green": 0})
        hit = weights["green"] >= rule.get("when_green_at_least", 0)
        rule = rule.get("value") if hit else rule.get("otherwise")
    return rule


def _series_samples(rule: dict[str, Any], query: str, n: int) -> list[float]:
    """The samples of a series rule, oldest first. A distribution is drawn from its own RNG, seeded
    by `seed` or else by the query text: the same world gives the same series every time, and
    blue's and green's queries differ."""
    if "samples" in rule:
        values = (float(v) for v in rule["samples"] if v is not None)
        return [v for v in values if not math.isnan(v)]
    spec = rule["distribution"]
    kind, sigma, count = spec.get("kind", "lognormal"), float(spec.get("sigma", 0.0)), int(spec.get("n", n))
    rng = random.Random(spec.get("seed", zlib.crc32(query.encode())))
    if kind == "lognormal":
        median = float(spec["median"])
        return [median * math.exp(sigma * rng.gauss(0.0, 1.0)) for _ in range(count)]
    if kind == "normal":
        mean = float(spec["mean"])
        return [rng.gauss(mean, sigma) for _ in range(count)]
    raise ValueError(f"distribution kind {kind!r}: lognormal or normal")


class SimulatedHealthCheck:
    port = "health_check"

    class Settings(_Settings):
        target: str = Field(min_length=1)

    def __init__(self, world: SimulatedWorld, target: str) -> None:
        self.world, self.target = world, target

    @classmethod
    def from_spec(cls, settings: Settings, connection_id: str | None, **_: Any) -> SimulatedHealthCheck:
        return cls(SimulatedWorld(settings.world), settings.target)

    def describe(self) -> str:
        return f"simulated health {self.target}"

    def probe(self) -> Probe:
        healthy = self.world.read().get("health", {}).get(self.target, True)
        return Probe(bool(healthy), "healthy" if healthy else "unhealthy")


class SimulatedPlatform:
    """Deployments have replicas; CronJobs have a suspended flag. Green copies start at 0 / suspended."""

    port = "platform"

    class Settings(_Settings):
        pass

    def __init__(self, world: SimulatedWorld) -> None:
        self.world = world

    @classmethod
    def from_spec(cls, settings: Settings, connection_id: str | None, **_: Any) -> SimulatedPlatform:
        return cls(SimulatedWorld(settings.world))

    @classmethod
    def pod_labels(cls, settings: Settings) -> dict[str, str]:
        return {}

    @classmethod
    def pod_connection(cls, connection_id: str | None) -> str | None:
        return None  # no pods: a test pod needs its own Kubernetes connection

    @classmethod
    def retires_blue(cls, workload: dict[str, Any]) -> bool:
        return workload["kind"] == "Deployment"  # a CronJob's blue is suspended at its handover

    def describe(self) -> str:
        return "simulated platform"

    @staticmethod
    def _key(workload: dict[str, Any], env: str) -> str:
        namespace = (workload.get("green_namespace") if env == "green" else None) or workload["namespace"]
        return f"{workload['kind']}/{namespace}/{workload['name']}"

    def _converge(self, workload: dict[str, Any], desired: dict[str, dict[str, Any]], apply: bool) -> list[Change]:
        self.world.check("platform_down")
        changes: list[Change] = []

        def run(state: dict[str, Any]) -> None:
            for env, fields in desired.items():
                key = self._key(workload, env)
                current = state.get("workloads", {}).get(env, {}).get(key)
                target = {**(current or {}), **fields}
                if current == target:
                    continue
                changes.append(Change(f"{env} {key}", _show(current), _show(target), apply))
                if apply:
                    state.setdefault("workloads", {}).setdefault(env, {})[key] = target
                    _record(state, "workload", env=env, key=key, **fields)

        self.world.update(run)
        return changes

    def _blue(self, workload: dict[str, Any]) -> dict[str, Any]:
        self.world.check("platform_down")
        blue = self.world.read().get("workloads", {}).get("blue", {}).get(self._key(workload, "blue"))
        if blue is None:
            raise LookupError(f"blue {self._key(workload, 'blue')} does not exist")
        return blue

    def preflight(self, workload: dict[str, Any]) -> list[str]:
        blue = self._blue(workload)
        return [f"{self._key(workload, 'blue')}: {p}" for p in blue.get("preflight_problems", [])]

    def deploy_green(self, workload: dict[str, Any], apply: bool) -> list[Change]:
        self.world.check("deploy_green")
        blue = self._blue(workload)
        if workload["kind"] == "CronJob":
            green = {"suspended": True, "copied_from": "blue"}
            current = self.world.read().get("workloads", {}).get("green", {}).get(self._key(workload, "green"))
            if current is not None:
                green = {"copied_from": "blue"}  # never unsuspend or re-suspend an existing copy here
        else:
            green = {"replicas": blue.get("retired_from", blue.get("replicas", 1)), "copied_from": "blue"}
        return self._converge(workload, {"green": green}, apply)

    def activate(self, workload: dict[str, Any], env: str, apply: bool) -> list[Change]:
        other = "blue" if env == "green" else "green"
        if workload["kind"] != "CronJob":
            return []
        # Suspend the other side first, so the job never runs in both; wait out its running Job.
        changes = self._converge(workload, {other: {"suspended": True}}, apply)
        if apply and self.world.read().get("jobs_active", {}).get(self._key(workload, other)):
            raise JobStillActive(
                f"a Job of {other} {self._key(workload, other)} is still running; {env} stays suspended until it ends"
            )
        return changes + self._converge(workload, {env: {"suspended": False}}, apply)

    def restore_blue(self, workload: dict[str, Any], apply: bool) -> list[Change]:
        if workload["kind"] == "CronJob":  # green starts no new run; blue resumes via activate once idle
            green_exists = self._key(workload, "green") in self.world.read().get("workloads", {}).get("green", {})
            return self._converge(workload, {"green": {"suspended": True}}, apply) if green_exists else []
        blue = self._blue(workload)
        wanted = blue.get("retired_from", blue.get("replicas", 1))
        return self._converge(workload, {"blue": {"replicas": wanted}}, apply)

    def retire_blue(self, workload: dict[str, Any], apply: bool) -> list[Change]:
        blue = self._blue(workload)
        if workload["kind"] == "CronJob" or blue.get("replicas", 0) == 0:
            return []
        return self._converge(workload, {"blue": {"replicas": 0, "retired_from": blue["replicas"]}}, apply)

    def rollout(self, workload: dict[str, Any]) -> Readiness:
        self.world.check("platform_down")
        key = self._key(workload, "green")
        green = self.world.read().get("workloads", {}).get("green", {}).get(key)
        if green is None:
            return Readiness("waiting", f"green {key} does not exist yet")
        if workload["kind"] == "Deployment" and not green.get("replicas"):
            return Readiness("waiting", f"green {key} has no replicas")
        return Readiness("ready", f"green {key} ready")

    def handover_moment(self, workload: dict[str, Any], margin: float) -> Readiness:
        key = self._key(workload, "blue")
        if self.world.read().get("jobs_active", {}).get(key):
            return Readiness("waiting", f"a Job of blue {key} is still active")
        return Readiness("ready", f"no Job of blue {key} active")

    def _job_result(self, workload: dict[str, Any], env: str, what: str) -> Readiness:
        key = self._key(workload, env)
        result = self.world.read().get("job_results", {}).get(key, "succeeded")
        state = {"succeeded": "ready", "failed": "failed"}.get(result, "waiting")
        return Readiness(state, f"{what} of {env} {key}: {result}")

    def first_run(self, workload: dict[str, Any], env: str, since: float) -> Readiness:
        return self._job_result(workload, env, "first run")

    def watch_jobs(self, workload: dict[str, Any], env: str, since: float, limits: dict[str, Any]) -> Readiness:
        self.world.check("platform_down")
        return self._job_result(workload, env, "runs")

    def watch_pods(self, workload: dict[str, Any], env: str, since: float, limits: dict[str, Any]) -> Readiness:
        self.world.check("platform_down")
        key = self._key(workload, env)
        restarts = self.world.read().get("pod_restarts", {}).get(key, 0)
        if restarts > limits.get("max_restarts", 0):
            return Readiness("failed", f"{restarts} pod restart(s) on {env} {key}")
        return Readiness("ready", f"pods of {env} {key} stable")

    # Leases: each call reads and writes the world under its file lock, so a create-if-absent or a
    # compare-and-set is atomic across task processes (what the Kubernetes driver gets from the API server).
    def _where(self, workload: dict[str, Any]) -> str:
        return f"simulated lease {self._key(workload, 'blue')} (world {self.world.path.stem}, key leases)"

    @staticmethod
    def _holder(entry: dict[str, Any]) -> LeaseHolder:
        return LeaseHolder(
            wave=entry["wave"],
            run_id=entry["run_id"],
            acquired_at=float(entry.get("acquired_at", 0.0)),
            dag_id=entry.get("dag_id", ""),
            service=entry.get("service", ""),
        )

    def _lease_call(self, workload: dict[str, Any], holder: LeaseHolder, expect: str | None) -> LeaseAnswer:
        """Write `holder` if the lease is absent, or (a takeover) still at version `expect`."""
        self.world.check("platform_down")
        key, where = self._key(workload, "blue"), self._where(workload)

        def run(state: dict[str, Any]) -> LeaseAnswer:
            leases = state.setdefault("leases", {})
            entry = leases.get(key)
            if entry is not None and (expect is None or str(entry["version"]) != expect):
                found = self._holder(entry)
                answer = Held if found.same_run(holder) else HeldBy
                return answer(found, where, str(entry["version"]))
            version = int(entry["version"]) + 1 if entry else 1
            leases[key] = {**asdict(holder), "version": version}
            return Held(holder, where, str(version))

        return self.world.update(run)

    def acquire_lease(self, workload: dict[str, Any], holder: LeaseHolder) -> LeaseAnswer:
        return self._lease_call(workload, holder, None)

    def take_over_lease(self, workload: dict[str, Any], holder: LeaseHolder, previous: HeldBy) -> LeaseAnswer:
        return self._lease_call(workload, holder, previous.version)

    def release_lease(self, workload: dict[str, Any], holder: LeaseHolder) -> bool:
        self.world.check("platform_down")
        key = self._key(workload, "blue")

        def run(state: dict[str, Any]) -> bool:
            entry = state.get("leases", {}).get(key)
            if entry is None or not self._holder(entry).same_run(holder):
                return False
            del state["leases"][key]
            return True

        return self.world.update(run)

    def lease_holder(self, workload: dict[str, Any]) -> HeldBy | None:
        self.world.check("platform_down")
        entry = self.world.read().get("leases", {}).get(self._key(workload, "blue"))
        return None if entry is None else HeldBy(self._holder(entry), self._where(workload), str(entry["version"]))

    def capacity(self, workload: dict[str, Any]) -> list[dict[str, Any]]:
        self.world.check("platform_down")
        return list(self.world.read().get("capacity", {}).get(self._key(workload, "green"), []))

    def config_drift(self, workload: dict[str, Any]) -> Readiness:
        """No drift unless the world injects some: `config: {"Kind/ns/name": {blue: {path: value},
        green: {path: value}}}` (fingerprints as kubernetes/drift.py makes them, keyed by blue's key)."""
        from include.slow_injection.kubernetes.drift import Declared, differences

        self.world.check("platform_down")
        state, key = self.world.read(), self._key(workload, "green")
        if key not in state.get("workloads", {}).get("green", {}):
            return Readiness("waiting", f"green {key} does not exist yet")
        config = state.get("config", {}).get(self._key(workload, "blue"), {})
        found = differences(config.get("blue") or {}, config.get("green") or {}, Declared.of(workload))
        if found:
            return Readiness(
                "failed", f"{len(found)} difference(s) the spec did not declare: " + "; ".join(str(d) for d in found)
            )
        return Readiness("ready", f"no undeclared difference between blue and green {key}")


class SimulatedNotifier:
    port = "notifier"

    class Settings(_Settings):
        pass

    def __init__(self, world: SimulatedWorld) -> None:
        self.world = world

    @classmethod
    def from_spec(cls, settings: Settings, connection_id: str | None, **_: Any) -> SimulatedNotifier:
        return cls(SimulatedWorld(settings.world))

    def describe(self) -> str:
        return "simulated notifier"

    def notify(self, event: str, subject: str, body: str) -> None:
        self.world.update(
            lambda s: s.setdefault("notifications", []).append({"event": event, "subject": subject, "body": body})
        )


def _show(fields: dict[str, Any] | None) -> str:
    if fields is None:
        return "absent"
    return ", ".join(f"{k}={v}" for k, v in sorted(fields.items()) if k != "copied_from") or "present"


class SimulatedDataSync:
    """Reads `data_sync: {lag: s, diverged: bool}` from the world (absent: in sync); fault
    `data_sync_down` raises, as an unreachable database would."""

    port = "data_sync"

    class Settings(_Settings):
        max_lag: float = Field(default=30.0, ge=0, description="seconds behind blue still counted as in sync")

    def __init__(self, world: SimulatedWorld, max_lag: float = 30.0) -> None:
        self.world, self.max_lag = world, max_lag

    @classmethod
    def from_spec(cls, settings: Settings, connection_id: str | None, **_: Any) -> SimulatedDataSync:
        return cls(SimulatedWorld(settings.world), settings.max_lag)

    def describe(self) -> str:
        return "simulated data sync"

    def check(self) -> Readiness:
        self.world.check("data_sync_down")
        sync = self.world.read().get("data_sync", {})
        lag = float(sync.get("lag", 0))
        if lag > self.max_lag:
            return Readiness("waiting", f"lagging: {lag:g}s behind > {self.max_lag:g}s")
        if sync.get("diverged"):
            return Readiness("failed", f"diverged (lag {lag:g}s)")
        return Readiness("ready", f"in sync (lag {lag:g}s)")
