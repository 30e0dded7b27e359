"""The measuring loop of a gate, shared by the deferrable trigger and the in-process sensor path: one
reading every interval through the gate's kind, judged by the kind's evaluator. The sensor and the
trigger look the kind up (kinds.measured) and hand it in: the engine never imports the kinds."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from include.slow_injection.gates.evaluation import Evaluator, Judgement
from include.slow_injection.gates.verdict import Verdict

Call = Callable[[Callable[[], Any]], Awaitable[Any]]


class Meter(Protocol):
    """What the loop needs of a gate's kind (kinds.base.MeasuredGate)."""

    @property
    def name(self) -> str: ...  # a class attribute of the kind

    def evaluator(self, gate: dict[str, Any], window: float) -> Evaluator: ...
    def connect(self, gate: dict[str, Any], service: str | None) -> Any: ...
    def read(self, drivers: Any, gate: dict[str, Any], service: str | None, started_at: float) -> Any: ...
    def inconclusive(self, detail: str) -> Any: ...
    def evidence(self, gate: dict[str, Any], evaluator: Any, service: str | None, window: float) -> dict[str, Any]: ...
    def first_delay(self, gate: dict[str, Any], window: float) -> float: ...
    def ready_at(self, gate: dict[str, Any], started_at: float) -> float: ...


class GateRun:
    """One gate's evaluator and readings, built from its kind and JSON-safe arguments (what a trigger
    serialises)."""

    def __init__(
        self, measured: Meter, gate: dict[str, Any], service: str | None, window: float, started_at: float
    ) -> None:
        self.measured, self.kind = measured, measured.name
        self.gate, self.service, self.window, self.started_at = gate, service, window, started_at
        self.interval = float(gate["interval"])
        self.evaluator = self.measured.evaluator(gate, window)
        self._drivers: Any = None

    def _measure(self) -> Any:
        try:
            if self._drivers is None:
                self._drivers = self.measured.connect(self.gate, self.service)
            return self.measured.read(self._drivers, self.gate, self.service, self.started_at)
        except Exception as err:  # a broken backend is inconclusive, never a pass
            return self.measured.inconclusive(f"{type(err).__name__}: {err}"[:300])

    def first_delay(self, now: float) -> float:
        """The kind's first delay, or longer while its source cannot have data from after the start yet."""
        return max(
            self.measured.first_delay(self.gate, self.window), self.measured.ready_at(self.gate, self.started_at) - now
        )

    def record(self, reading: Any, now: float) -> Judgement | None:
        return self.evaluator.add(reading, now - self.started_at)

    def result(self, judgement: Judgement, finished_at: float, dry_run: bool = False) -> Verdict:
        evidence = self.measured.evidence(self.gate, self.evaluator, self.service, self.window)
        return Verdict(
            gate=self.gate["name"],
            kind=self.kind,
            service=self.service,
            env=self.gate["env"],
            started_at=self.started_at,
            finished_at=finished_at,
            dry_run=dry_run,
            **judgement.kept(),
            **evidence,
        )

    async def run(
        self,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        call: Call | None = None,
        stop_at: float | None = None,
    ) -> Verdict | None:
        """Measure until a verdict (or None once the next reading would fall after `stop_at`).
        `call` runs the blocking driver call off the event loop."""
        call = call or (lambda fn: asyncio.to_thread(fn))
        delay = self.first_delay(clock())
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
        one = GateRun(
            self.measured,
            {**self.gate, "failure_limit": 1, "hold_timeout": 0, "timeout": 0, "consecutive_successes": 1},
            self.service,
            0.0,
            self.started_at,
        )
        one._drivers = self._drivers
        judgement = one.record(reading, max(clock(), self.started_at))
        assert judgement is not None
        return one.result(judgement, clock(), dry_run=True)
