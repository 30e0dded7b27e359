"""Simulated drivers: a whole blue/green world kept in one JSON file.

For the demo and for tests of the engine only, never for production. Every task process sees the
same world (tasks run in separate processes), writes are serialised with a file lock, and each
change is appended to `history` so tests can check what happened and in which order.

World layout (all keys optional):
  routers:   {service: {blue: 100, green: 0}}
  metrics:   {query: number | null | {value, when_green_at_least, router, otherwise}}
  health:    {target: true | false}
  workloads: {blue|green: {"Kind/namespace/name": {replicas, suspended}}}
  jobs_active: {"CronJob/ns/name": true}   (a blue job is running: no handover moment)
  job_results: {"CronJob/ns/name": "succeeded" | "failed" | "pending"}   (green's first run; default succeeded)
  faults:    {router_down, metrics_down, platform_down, deploy_green: bool} (deploy_green fails only that call)
  notifications: [{event, subject}]
  history:   [{at, what, ...}]
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from include.slow_injection.ports import Change, JobStillActive, Measurement, Probe, Readiness, Weights

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
        self.update(lambda s: (s.clear(), s.update(json.loads(json.dumps(state)))))

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
        rule = state["metrics"][query]
        if isinstance(rule, dict):
            weights = state.get("routers", {}).get(rule.get("router", ""), {"green": 0})
            hit = weights["green"] >= rule.get("when_green_at_least", 0)
            rule = rule.get("value") if hit else rule.get("otherwise")
        return Measurement(None if rule is None else float(rule))


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
            raise JobStillActive(f"a Job of {other} {self._key(workload, other)} is still running; "
                                 f"{env} stays suspended until it ends")
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
        self.world.update(lambda s: s.setdefault("notifications", []).append(
            {"event": event, "subject": subject, "body": body}))


def _show(fields: dict[str, Any] | None) -> str:
    if fields is None:
        return "absent"
    return ", ".join(f"{k}={v}" for k, v in sorted(fields.items()) if k != "copied_from") or "present"
