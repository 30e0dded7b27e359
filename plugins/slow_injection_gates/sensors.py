"""GateSensor: a gate its kind measures (kinds/: metric, health, the readiness waits) as a deferrable sensor
whose verdict goes to XCom."""

from __future__ import annotations

import asyncio
import os
import time
from datetime import timedelta
from typing import Any

from airflow.sdk import BaseSensorOperator
from airflow.sdk.exceptions import AirflowFailException

from include.slow_injection import kinds
from include.slow_injection.gates.verdict import Verdict
from include.slow_injection.tasks.deliver import deliver
from slow_injection_gates.triggers import GateTrigger

# A gate first measures in the task for up to INLINE_SECONDS: short gates decide without deferring
# (faster), and only long waits move to the triggerer, where a pass is held back PASS_AFTER_DEFER
# seconds to stay clear of Airflow 3.3's stale-executor-event race (see triggers.py).
INLINE_SECONDS = float(os.environ.get("SLOW_INJECTION_GATE_INLINE_SECONDS", "20"))
PASS_AFTER_DEFER = float(os.environ.get("SLOW_INJECTION_GATE_PASS_AFTER_DEFER_SECONDS", "15"))


class GateSensor(BaseSensorOperator):
    """Measures a gate and pushes its verdict (XCom key `verdict`) with every measured value.

    Fails (red) unless the verdict is `pass`. It never retries on its own: re-measuring until a
    pass would defeat failure_limit; an operator clears it on purpose instead.
    """

    ui_color = "#e3f6e8"

    def __init__(
        self,
        *,
        kind: str,
        gate: dict[str, Any],
        service: str | None,
        window: float,
        deferrable: bool = True,
        inline_seconds: float | None = None,
        stage: dict[str, Any] | None = None,
        stage_actions: list[str] | None = None,
        plan_task_id: str | None = None,
        breaker: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self.kind, self.gate, self.service, self.window = kind, gate, service, window
        self.breaker = breaker  # {"service", "router"}: a failure moves that router to 0 % green (gates/breaker.py)
        self.stage, self.stage_actions = stage, stage_actions  # asked of the run's scope first
        self.plan_task_id = plan_task_id  # plan_wave, which holds that scope
        self.deferrable = deferrable
        self.inline_seconds = INLINE_SECONDS if inline_seconds is None else inline_seconds
        kwargs.setdefault("retries", 0)
        super().__init__(poke_interval=float(gate["interval"]), timeout=self.max_duration(), **kwargs)

    def max_duration(self) -> float:
        return (
            kinds.measured(self.kind).longest(self.gate, float(self.window)) + 10 * float(self.gate["interval"]) + 60.0
        )

    def _run(self) -> Any:
        from include.slow_injection.gates.runner import GateRun

        return GateRun(kinds.measured(self.kind), self.gate, self.service, self.window, time.time())

    def armed(self, context: Any) -> dict[str, Any] | None:
        """The breaker this run may trip: none while a completed wave is only verified (its blue may be
        retired: drift holds for a human)."""
        from include.slow_injection.tasks.scope import verifying

        return None if self.breaker is None or verifying(context, self.plan_task_id) else self.breaker

    def execute(self, context: Any) -> dict[str, Any]:
        from include.slow_injection.gates.breaker import trip
        from include.slow_injection.tasks.scope import gate_out_of_scope

        if (out := gate_out_of_scope(self, context, self.gate["name"], self.kind)) is not None:
            return out
        gate_run = self._run()
        if context["params"].get("dry_run"):
            self.log.info("[dry-run] one reading instead of a %ss window; shown, not judged", self.window)
            return self._finish(context, trip(gate_run.run_once(), self.armed(context), dry_run=True), judged=False)
        if self.deferrable:
            if self.inline_seconds > 0:
                verdict = asyncio.run(gate_run.run(stop_at=gate_run.started_at + self.inline_seconds, call=_direct))
                if verdict is not None:
                    return self._finish(context, trip(verdict, self.armed(context)))
                self.log.info("no verdict within %ss in the task: deferring to the triggerer", self.inline_seconds)
            self.defer(
                trigger=GateTrigger(
                    self.kind,
                    self.gate,
                    self.service,
                    self.window,
                    gate_run.started_at,
                    pass_not_before=time.time() + PASS_AFTER_DEFER,
                    breaker=self.armed(context),
                ),
                method_name="execute_complete",
                timeout=timedelta(seconds=self.max_duration()),
            )
        return self._finish(context, trip(asyncio.run(gate_run.run(call=_direct)), self.armed(context)))

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> dict[str, Any]:
        from include.slow_injection.gates.breaker import trip

        try:
            verdict = Verdict.read(event)
        except ValueError:
            verdict = None
        if verdict is None:
            raise AirflowFailException(f"gate {self.gate['name']}: trigger gave no verdict ({event!r})")
        # The trigger trips the breaker as it decides; here again only if it could not (convergent).
        return self._finish(context, trip(verdict, self.armed(context)))

    def _finish(self, context: Any, verdict: Verdict, judged: bool = True) -> dict[str, Any]:
        for m in verdict.measurements:
            self.log.info("t=%6.1fs %s", m.get("t", 0), {k: v for k, v in m.items() if k != "t"})
        if verdict.breaker is not None:
            self.log.warning("%s", verdict.breaker.line())
        return deliver(self, context, verdict, judged=judged)


async def _direct(fn: Any) -> Any:
    """In the task process nothing else shares the loop: call the driver directly (its connection
    lookups then stay on the task's main thread)."""
    return fn()
