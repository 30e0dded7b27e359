"""Health check: probes until `consecutive_successes` in a row, failing at its timeout (HealthStreak).
Written in specs (`health_checks:`); run by the GateSensor through a health-check driver."""

from __future__ import annotations

from typing import Any

from include.slow_injection import registry
from include.slow_injection.durations import format_duration
from include.slow_injection.gates.evaluation import Evaluator, HealthStreak
from include.slow_injection.kinds.base import MeasuredGate
from include.slow_injection.plan import Gate
from include.slow_injection.ports import Probe
from include.slow_injection.spec.models import HealthCheckSpec


class HealthKind(MeasuredGate):
    name = "health"
    spec_model = HealthCheckSpec

    def plan_line(self, gate: Gate) -> str:
        h = gate.spec
        assert isinstance(h, HealthCheckSpec)
        return (
            f"health {h.name}: {h.consecutive_successes} consecutive ok on {h.env} within {format_duration(h.timeout)}"
        )

    def evaluator(self, gate: dict[str, Any], window: float) -> Evaluator:
        return HealthStreak(consecutive=int(gate["consecutive_successes"]), deadline=float(gate["timeout"]))

    def connect(self, gate: dict[str, Any], service: str | None) -> Any:
        return registry.build("health_check", gate["check"], service=service)

    def read(self, check: Any, gate: dict[str, Any], service: str | None, started_at: float) -> Probe:
        return check.probe()

    def inconclusive(self, detail: str) -> Probe:
        return Probe(False, detail)

    def evidence(self, gate: dict[str, Any], evaluator: Any, service: str | None, window: float) -> dict[str, Any]:
        return {"check": gate["check"]["type"], "consecutive": gate["consecutive_successes"]}


KIND = HealthKind()
