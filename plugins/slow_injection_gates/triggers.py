"""GateTrigger: measures a gate in the triggerer, so a waiting gate holds no worker slot."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

log = logging.getLogger(__name__)


class GateTrigger(BaseTrigger):
    """Runs one gate's whole window and yields its verdict once.

    Only JSON-safe arguments; `started_at` is kept so that a restarted trigger keeps the gate's
    deadlines (it re-measures its window from scratch, so a restart can delay a pass, never fake one).
    """

    def __init__(self, kind: str, gate: dict[str, Any], service: str | None, window: float, started_at: float) -> None:
        super().__init__()
        self.kind, self.gate, self.service, self.window, self.started_at = kind, gate, service, window, started_at

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {"kind": self.kind, "gate": self.gate, "service": self.service, "window": self.window,
             "started_at": self.started_at},
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from asgiref.sync import sync_to_async

        from include.slow_injection.gates.runner import GateRun

        gate_run = GateRun(self.kind, self.gate, self.service, self.window, self.started_at)
        result = await gate_run.run(call=lambda fn: sync_to_async(fn, thread_sensitive=False)())
        yield TriggerEvent(result)
