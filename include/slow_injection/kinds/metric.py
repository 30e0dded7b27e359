"""Metric gate: a query measured every interval over its bake, each value judged against a threshold
(MetricWindow). Written in specs (`gates:`); run by the GateSensor through a metric source."""

from __future__ import annotations

from typing import Any

from include.slow_injection import registry
from include.slow_injection.durations import format_duration
from include.slow_injection.gates.evaluation import Evaluator, MetricWindow, measurement_count
from include.slow_injection.kinds.base import MeasuredGate
from include.slow_injection.plan import Gate
from include.slow_injection.ports import Measurement
from include.slow_injection.queries import render_query
from include.slow_injection.spec.models import MetricGate


class MetricKind(MeasuredGate):
    name = "metric"
    spec_model = MetricGate

    def plan_line(self, gate: Gate) -> str:
        g = gate.spec
        assert isinstance(g, MetricGate)
        count = measurement_count(gate.window, g.interval)
        return (
            f"gate {g.name}: {g.env} value {g.comparator.replace('_', ' ')} {g.threshold:g}, "
            f"measured {count}× every {format_duration(g.interval)} over {format_duration(gate.window)}; "
            f"fails at {g.failure_limit} breach(es); no data → {g.on_no_data}"
        )

    def fails_fast(self, gate: Gate) -> bool:
        return gate.spec.on_no_data == "fail"  # type: ignore[attr-defined]  # "hold" may be asking to hold

    def evaluator(self, gate: dict[str, Any], window: float) -> Evaluator:
        return MetricWindow(
            comparator=gate["comparator"],
            threshold=float(gate["threshold"]),
            count=measurement_count(window, float(gate["interval"])),
            failure_limit=int(gate["failure_limit"]),
            on_no_data=gate["on_no_data"],
            hold_deadline=float(gate["hold_timeout"]),
        )

    def connect(self, gate: dict[str, Any], service: str | None) -> Any:
        return registry.build("metric_source", gate["source"], service=service, env=gate["env"])

    def read(self, source: Any, gate: dict[str, Any], service: str | None, started_at: float) -> Measurement:
        return source.query(render_query(gate["query"], service, gate["env"]))

    def inconclusive(self, detail: str) -> Measurement:
        return Measurement(None, detail)

    def evidence(self, gate: dict[str, Any], evaluator: Any, service: str | None, window: float) -> dict[str, Any]:
        return {
            "query": render_query(gate["query"], service, gate["env"]),
            "condition": evaluator.condition,
            "window": window,
            "failure_limit": gate["failure_limit"],
            "on_no_data": gate["on_no_data"],
        }

    def first_delay(self, gate: dict[str, Any], window: float) -> float:
        return float(gate["interval"]) if window > 0 else 0.0

    def longest(self, gate: dict[str, Any], window: float) -> float:
        if gate["on_no_data"] == "hold":
            return max(2 * window, float(gate["hold_timeout"]))
        # Twice the window: a trigger restarted by a triggerer failover measures its window again
        # (a 105 s outage rolled a healthy e2e wave back with one window of slack).
        return 2 * window


KIND = MetricKind()
