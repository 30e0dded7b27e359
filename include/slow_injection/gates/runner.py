"""The measuring loop of a gate, shared by the deferrable trigger and the in-process sensor path."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from string import Template
from typing import Any

from include.slow_injection import registry
from include.slow_injection.gates.evaluation import (
    HealthStreak,
    Judgement,
    MetricWindow,
    PlatformWait,
    measurement_count,
)
from include.slow_injection.gates.verdict import Verdict
from include.slow_injection.ports import Measurement, Probe, Readiness

Call = Callable[[Callable[[], Any]], Awaitable[Any]]


def _readiness(check: Callable[[], Readiness]) -> Readiness:
    try:
        return check()
    except Exception as err:  # one check's backend down: waiting (its deadline fails the gate)
        return Readiness("waiting", f"{type(err).__name__}: {err}"[:300])


def combine_readiness(readings: list[tuple[str, Readiness]]) -> Readiness:
    """All ready → ready; any failed → failed; else waiting. The detail names every part."""
    states = {r.state for _, r in readings}
    state = "failed" if "failed" in states else "ready" if states == {"ready"} else "waiting"
    return Readiness(state, "; ".join(f"{name}: {r.state} ({r.detail})" for name, r in readings)[:1000])


def render_query(query: str, service: str | None, env: str) -> str:
    return Template(query).safe_substitute(service=service or "", env=env)


class GateRun:
    """One gate's evaluator and probe, built from JSON-safe arguments (what a trigger serialises)."""

    def __init__(self, kind: str, gate: dict[str, Any], service: str | None, window: float, started_at: float) -> None:
        self.kind, self.gate, self.service, self.window, self.started_at = kind, gate, service, window, started_at
        self.interval = float(gate["interval"])
        if kind == "metric":
            self.query = render_query(gate["query"], service, gate["env"])
            self.evaluator: MetricWindow | HealthStreak = MetricWindow(
                comparator=gate["comparator"], threshold=float(gate["threshold"]),
                count=measurement_count(window, self.interval), failure_limit=int(gate["failure_limit"]),
                on_no_data=gate["on_no_data"], hold_deadline=float(gate["hold_timeout"]),
            )
        elif kind == "health":
            self.evaluator = HealthStreak(consecutive=int(gate["consecutive_successes"]), deadline=float(gate["timeout"]))
        elif kind in ("platform", "router", "data_sync", "fargate_profile"):
            self.evaluator = PlatformWait(deadline=float(gate["timeout"]))
        else:
            raise ValueError(f"unknown gate kind {kind!r}")
        self._driver: Any = None

    def _measure(self) -> Measurement | Probe | Readiness:
        try:
            if self._driver is None:
                if self.kind == "metric":
                    self._driver = registry.build("metric_source", self.gate["source"], service=self.service,
                                                  env=self.gate["env"])
                elif self.kind == "health":
                    self._driver = registry.build("health_check", self.gate["check"], service=self.service)
                elif self.kind == "router":
                    self._driver = registry.build("router", self.gate["router"], service=self.service)
                elif self.kind == "fargate_profile":
                    from include.slow_injection.tasks.fargate_setup import FargateProfileState

                    self._driver = FargateProfileState(self.gate)
                elif self.kind == "data_sync":
                    self._driver = [registry.build("data_sync", ref) for ref in self.gate["checks"]]
                else:
                    platform = self.gate["platform"]
                    self._driver = registry.build("platform", platform["green"], blue_ref=platform["blue"],
                                                  service=self.service)
            if self.kind == "metric":
                return self._driver.query(self.query)
            if self.kind == "health":
                return self._driver.probe()
            if self.kind == "router":
                return self._driver.green_ready()
            if self.kind == "fargate_profile":
                return self._driver.read()
            if self.kind == "data_sync":
                return combine_readiness([(d.describe(), _readiness(d.check)) for d in self._driver])
            return self._platform_reading()
        except Exception as err:  # a broken backend is inconclusive, never a pass
            detail = f"{type(err).__name__}: {err}"[:300]
            if self.kind == "metric":
                return Measurement(None, detail)
            return Probe(False, detail) if self.kind == "health" else Readiness("waiting", detail)

    def _platform_reading(self) -> Readiness:
        check, workload = self.gate["check"], self.gate["workload"]
        if check == "rollout":
            return self._driver.rollout(workload)
        if check == "handover_moment":
            return self._driver.handover_moment(workload, float(self.gate["margin"]))
        if check == "first_run":
            return self._driver.first_run(workload, self.gate["env"], self.started_at)
        if check == "jobs":
            return self._driver.watch_jobs(workload, self.gate["env"], self.started_at, self.gate["limits"])
        if check == "pods":
            return self._driver.watch_pods(workload, self.gate["env"], self.started_at, self.gate["limits"])
        if check == "config_drift":
            return self._driver.config_drift(workload)
        raise ValueError(f"unknown platform check {check!r}")

    def first_delay(self) -> float:
        return self.interval if (self.kind == "metric" and self.window > 0) else 0.0

    def record(self, reading: Measurement | Probe, now: float) -> Judgement | None:
        return self.evaluator.add(reading, now - self.started_at)  # type: ignore[arg-type]

    def result(self, judgement: Judgement, finished_at: float, dry_run: bool = False) -> Verdict:
        evidence: dict[str, Any]
        if self.kind == "metric":
            evidence = dict(query=self.query, condition=self.evaluator.condition, window=self.window,  # type: ignore[union-attr]
                            failure_limit=self.gate["failure_limit"], on_no_data=self.gate["on_no_data"])
        elif self.kind == "health":
            evidence = dict(check=self.gate["check"]["type"], consecutive=self.gate["consecutive_successes"])
        else:
            evidence = dict(check=self.gate["check"])
        return Verdict(gate=self.gate["name"], kind=self.kind, service=self.service, env=self.gate["env"],
                       started_at=self.started_at, finished_at=finished_at, dry_run=dry_run, **judgement.kept(),
                       **evidence)

    async def run(self, clock: Callable[[], float] = time.time,
                  sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
                  call: Call | None = None, stop_at: float | None = None) -> Verdict | None:
        """Measure until a verdict (or None once the next reading would fall after `stop_at`).
        `call` runs the blocking driver call off the event loop."""
        call = call or (lambda fn: asyncio.to_thread(fn))
        delay = self.first_delay()
        while True:
            if stop_at is not None and clock() + delay > stop_at:
                return None
            if delay:
                await sleep(delay)
            reading = await call(self._measure)
            judgement = self.record(reading, clock())
            if judgement is not None:
                return self.result(judgement, clock())
            delay = self.interval

    def run_once(self, clock: Callable[[], float] = time.time) -> Verdict:
        """Dry-run: one reading, judged as if it were the whole window."""
        reading = self._measure()
        one = GateRun(self.kind, {**self.gate, "failure_limit": 1, "hold_timeout": 0, "timeout": 0,
                                  "consecutive_successes": 1}, self.service, 0.0, self.started_at)
        one._driver = self._driver
        judgement = one.record(reading, max(clock(), self.started_at))
        assert judgement is not None
        return one.result(judgement, clock(), dry_run=True)
