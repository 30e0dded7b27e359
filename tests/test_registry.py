"""The driver registry checks drivers against the ports as ports.py writes them (one source)."""

from __future__ import annotations

import pytest

from include.slow_injection import ports, registry


@pytest.mark.parametrize("kind", registry.KINDS)
def test_every_builtin_driver_implements_its_port(kind: str) -> None:
    for type_name in registry.known(kind):
        cls = registry.driver_class(kind, type_name)
        missing = [m for m in registry.port_methods(registry.PORTS[kind]) if not callable(getattr(cls, m, None))]
        assert not missing, f"{kind} driver {type_name} lacks {missing}"


def test_the_checked_methods_are_the_protocols_own() -> None:
    assert registry.PORT_METHODS["metric_source"] == ("describe", "query")
    assert "capacity" in registry.PORT_METHODS["platform"] and "config_drift" in registry.PORT_METHODS["platform"]
    assert registry.port_methods(ports.RangeSource) == ("query_range",)


def test_range_queries_are_a_port_of_their_own() -> None:
    """Parity and the report's plots need history; an alarm source has none and is still a metric source."""
    with_history = {
        t
        for t in registry.known("metric_source")
        if issubclass(registry.driver_class("metric_source", t), ports.RangeSource)
    }
    assert with_history == {"cloudwatch", "prometheus", "simulated"}
