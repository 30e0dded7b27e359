"""Metric gate: a query measured every interval over its bake, each value judged against a threshold
(MetricWindow). Written in specs (`gates:`); run by the GateSensor through a metric source."""

from __future__ import annotations

from typing import Any

from include.slow_injection import registry
from include.slow_injection.durations import format_duration
from include.slow_injection.gates.evaluation import Evaluator, MetricWindow, measurement_count
from include.slow_injection.kinds.base import MeasuredGate
from include.slow_injection.plan import Gate
from include.slow_injection.ports import Measurement, SettlingSource
from include.slow_injection.queries import render_query
from include.slow_injection.spec.models import MetricGate


class MetricKind(MeasuredGate):
    name = "metric"
    spec_model = MetricGate
    trips_breaker = True

    def plan_line(self, gate: Gate) -> str:
        g = gate.spec
        assert isinstance(g, MetricGate)
        count = measurement_count(gate.window, g.interval)
        source = self._settling(g.model_dump())
        settling = (
            f", the first up to {format_duration(source.longest_settle())} after the step (its data arrives late)"
            if source
            else ""
        )
        return (
            f"gate {g.name}: {g.env} value {g.comparator.replace('_', ' ')} {g.threshold:g}, "
            f"measured {count}× every {format_duration(g.interval)} over {format_duration(gate.window)}{settling}; "
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
        query = render_query(gate["query"], service, gate["env"])
        if isinstance(source, SettlingSource):
            # The gate starts after its stage's traffic step: only periods from then on are judged.
            return source.query_after(query, started_at)
        return source.query(query)

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

    def _settling(self, gate: dict[str, Any]) -> SettlingSource | None:
        """The gate's source when its data arrives late (built only: no call is made)."""
        try:
            if not issubclass(registry.driver_class("metric_source", gate["source"]["type"]), SettlingSource):
                return None  # built only where its data arrives late: this runs at every DAG parse
            source = registry.build("metric_source", gate["source"], env=gate["env"])
        except Exception:  # a source that cannot be built fails at its first reading, named there
            return None
        return source if isinstance(source, SettlingSource) else None

    def ready_at(self, gate: dict[str, Any], started_at: float) -> float:
        source = self._settling(gate)
        return source.first_settled_at(started_at) if source else started_at

    def longest(self, gate: dict[str, Any], window: float) -> float:
        settle = source.longest_settle() if (source := self._settling(gate)) else 0.0
        if gate["on_no_data"] == "hold":
            return max(settle + 2 * window, float(gate["hold_timeout"]))
        # Twice the window: a trigger restarted by a triggerer failover measures its window again
        # (a 105 s outage rolled a healthy e2e wave back with one window of slack).
        return settle + 2 * window


KIND = MetricKind()
