"""Judging a gate's readings, modelled on Argo Rollouts' analysis but stricter: no data never passes.

A metric gate takes one measurement every `interval` until it has `count` of them (count =
bake / interval, at least 1). Each measurement passes, breaches, or is inconclusive (no data, NaN,
query error). `failure_limit` breaches fail the gate at once. With on_no_data=fail an inconclusive
measurement is a breach; with on_no_data=hold it does not count toward the window, and the gate
holds the wave when `hold_deadline` passes before the window is full. A gate passes only with a
full window, fewer breaches than the limit, and at least one passing measurement.

A health gate passes after `consecutive` successful probes in a row and fails at its deadline.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass, field
from typing import Any, Protocol

from include.slow_injection.ports import Measurement, Probe, Readiness

PASS, FAIL, HOLD = "pass", "fail", "hold"

COMPARATORS = {
    "less_than": (operator.lt, "<"),
    "at_most": (operator.le, "≤"),
    "greater_than": (operator.gt, ">"),
    "at_least": (operator.ge, "≥"),
}

MAX_KEPT = 120  # measurements kept in a verdict (XCom size stays small on long bakes)


def measurement_count(window: float, interval: float) -> int:
    return max(1, math.ceil(round(window / interval, 6))) if window > 0 else 1


@dataclass
class Judgement:
    """What an evaluator concludes from its readings (the runner makes it the gate's Verdict)."""

    status: str
    reason: str
    measurements: list[dict[str, Any]]

    def kept(self) -> dict[str, Any]:
        return {"status": self.status, "reason": self.reason, "measurements": self.measurements[-MAX_KEPT:]}


class Evaluator(Protocol):
    def add(self, reading: Any, now: float) -> Judgement | None:
        """Record one reading taken at `now` (seconds since the gate started); a judgement once there is one."""
        ...


@dataclass
class MetricWindow:
    comparator: str
    threshold: float
    count: int
    failure_limit: int = 1
    on_no_data: str = "fail"
    hold_deadline: float = math.inf
    passes: int = 0
    breaches: int = 0
    inconclusive: int = 0
    log: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.comparator not in COMPARATORS:
            raise ValueError(f"unknown comparator {self.comparator!r}")
        if self.count < 1 or self.failure_limit < 1:
            raise ValueError("count and failure_limit must be ≥ 1")

    @property
    def condition(self) -> str:
        return f"{COMPARATORS[self.comparator][1]} {self.threshold:g}"

    def _counted(self) -> int:
        counted_inconclusive = self.inconclusive if self.on_no_data == "fail" else 0
        return self.passes + self.breaches + counted_inconclusive

    def add(self, m: Measurement, now: float) -> Judgement | None:
        """Record one measurement taken at `now` (seconds since the gate started)."""
        if m.conclusive:
            assert m.value is not None  # a conclusive measurement has a value
            ok = COMPARATORS[self.comparator][0](m.value, self.threshold)
            outcome = "pass" if ok else "breach"
            if ok:
                self.passes += 1
            else:
                self.breaches += 1
        else:
            outcome = "no_data"
            self.inconclusive += 1
        self.log.append(
            {
                "t": round(now, 3),
                "value": m.value if m.conclusive else None,
                "outcome": outcome,
                **({"error": m.error} if m.error else {}),
            }
        )
        return self._judge(now)

    def _judge(self, now: float) -> Judgement | None:
        failures = self.breaches + (self.inconclusive if self.on_no_data == "fail" else 0)
        if failures >= self.failure_limit:
            detail = f"{self.breaches} breach(es) of {self.condition}"
            if self.on_no_data == "fail" and self.inconclusive:
                detail += f", {self.inconclusive} without data (counted as breaches)"
            return Judgement(FAIL, f"{detail}; limit {self.failure_limit}", self.log)
        if self._counted() >= self.count:
            if self.passes == 0:  # unreachable unless every counted reading was inconclusive
                return Judgement(FAIL, "no measurement passed", self.log)
            return Judgement(PASS, f"{self.passes} of {self._counted()} measurement(s) {self.condition}", self.log)
        if self.on_no_data == "hold" and now >= self.hold_deadline:
            return Judgement(
                HOLD,
                f"only {self._counted()} of {self.count} conclusive measurement(s) "
                f"before the hold timeout ({self.inconclusive} without data)",
                self.log,
            )
        return None

    def on_timeout(self) -> Judgement:
        return Judgement(
            HOLD if self.on_no_data == "hold" else FAIL,
            f"window not complete: {self._counted()} of {self.count} measurement(s)",
            self.log,
        )


@dataclass
class HealthStreak:
    consecutive: int
    deadline: float
    streak: int = 0
    log: list[dict[str, Any]] = field(default_factory=list)

    def add(self, probe: Probe, now: float) -> Judgement | None:
        self.streak = self.streak + 1 if probe.ok else 0
        self.log.append({"t": round(now, 3), "ok": probe.ok, "detail": probe.detail[:200]})
        if self.streak >= self.consecutive:
            return Judgement(PASS, f"{self.consecutive} consecutive successful probe(s)", self.log)
        if now >= self.deadline:
            return Judgement(
                FAIL,
                f"no {self.consecutive} consecutive successes within {self.deadline:g}s "
                f"(last: {probe.detail or 'failed'})",
                self.log,
            )
        return None


@dataclass
class PlatformWait:
    """Waits for a platform condition: passes when ready, fails at once when it failed for good,
    and fails at its deadline while still waiting."""

    deadline: float
    log: list[dict[str, Any]] = field(default_factory=list)

    def add(self, reading: Readiness, now: float) -> Judgement | None:
        self.log.append(
            {"t": round(now, 3), "ok": reading.state == "ready", "state": reading.state, "detail": reading.detail[:200]}
        )
        if reading.state == "ready":
            return Judgement(PASS, reading.detail or "ready", self.log)
        if reading.state == "failed":
            return Judgement(FAIL, reading.detail or "failed", self.log)
        if now >= self.deadline:
            return Judgement(FAIL, f"still waiting after {self.deadline:g}s: {reading.detail}", self.log)
        return None
