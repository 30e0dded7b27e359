"""GateTrigger: measures a gate in the triggerer, so a waiting gate holds no worker slot."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

log = logging.getLogger(__name__)


class GateTrigger(BaseTrigger):
    """Runs one gate's whole window and yields its verdict once.

    Only JSON-safe arguments; `started_at` is kept so that a restarted trigger keeps the gate's
    deadlines (it re-measures its window from scratch, so a restart can delay a pass, never fake one).
    """

    def __init__(
        self,
        kind: str,
        gate: dict[str, Any],
        service: str | None,
        window: float,
        started_at: float,
        pass_not_before: float = 0.0,
        breaker: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.kind, self.gate, self.service, self.window, self.started_at = kind, gate, service, window, started_at
        self.pass_not_before = pass_not_before
        self.breaker = breaker  # armed by the sensor: a failure moves that router to 0 % green here, at once

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "kind": self.kind,
                "gate": self.gate,
                "service": self.service,
                "window": self.window,
                "started_at": self.started_at,
                "pass_not_before": self.pass_not_before,
                "breaker": self.breaker,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from asgiref.sync import sync_to_async

        from include.slow_injection import kinds
        from include.slow_injection.gates.breaker import trip
        from include.slow_injection.gates.runner import GateRun

        gate_run = GateRun(kinds.measured(self.kind), self.gate, self.service, self.window, self.started_at)
        result = await gate_run.run(call=lambda fn: sync_to_async(fn, thread_sensitive=False)())
        if result is not None:  # the breach is seen here first: the breaker moves before the task resumes
            result = await sync_to_async(trip, thread_sensitive=False)(result, self.breaker)
            if result.breaker is not None:  # in the trigger's log too: a task failed by the race below never
                self.log.warning("%s", result.breaker.line())  # resumes to push the verdict that records it
        # Airflow 3.3 can mark a deferred task failed when its trigger fires before the scheduler has
        # processed the worker's exit from deferring (apache/airflow#72716, #71580). A pass is held
        # back until that is safely past; a failure is not (the race would fail the task anyway).
        wait = self.pass_not_before - time.time()
        if result and result.status == "pass" and wait > 0:
            await asyncio.sleep(wait)
        yield TriggerEvent(result.to_xcom() if result else None)
