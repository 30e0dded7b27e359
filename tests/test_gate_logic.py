"""Gate semantics: thresholds, comparators, failure_limit, no data never passes, interval × bake."""

from __future__ import annotations

import asyncio
import math

import pytest

from include.slow_injection import kinds
from include.slow_injection.gates.evaluation import HealthStreak, MetricWindow, measurement_count
from include.slow_injection.gates.runner import GateRun
from include.slow_injection.ports import Measurement, Probe

METRIC = kinds.measured("metric")

OK = Measurement(0.001)
BAD = Measurement(0.5)
NO_DATA = Measurement(None)
ERROR = Measurement(None, "HTTP 503")
NAN = Measurement(float("nan"))


def feed(window: MetricWindow, readings) -> tuple[str | None, int]:
    for i, m in enumerate(readings, start=1):
        verdict = window.add(m, float(i))
        if verdict:
            return verdict.status, i
    return None, len(readings)


@pytest.mark.parametrize(
    ("comparator", "value", "passes"),
    [
        ("less_than", 0.0099, True),
        ("less_than", 0.01, False),
        ("at_most", 0.01, True),
        ("at_most", 0.0101, False),
        ("greater_than", 0.0101, True),
        ("greater_than", 0.01, False),
        ("at_least", 0.01, True),
        ("at_least", 0.0099, False),
    ],
)
def test_comparators_at_and_around_the_threshold(comparator: str, value: float, passes: bool) -> None:
    w = MetricWindow(comparator=comparator, threshold=0.01, count=1)
    assert feed(w, [Measurement(value)])[0] == ("pass" if passes else "fail")


def test_a_full_window_of_good_values_passes_only_at_its_end() -> None:
    w = MetricWindow("less_than", 0.01, count=5)
    assert feed(w, [OK] * 4) == (None, 4)
    assert w.add(OK, 5.0).status == "pass"


def test_failure_limit_counts_breaches_and_fails_at_once() -> None:
    w = MetricWindow("less_than", 0.01, count=10, failure_limit=2)
    assert feed(w, [OK, BAD, OK, OK, BAD, OK]) == ("fail", 5)


def test_breaches_below_the_limit_still_pass() -> None:
    w = MetricWindow("less_than", 0.01, count=4, failure_limit=2)
    assert feed(w, [OK, BAD, OK, OK]) == ("pass", 4)


@pytest.mark.parametrize("reading", [NO_DATA, ERROR, NAN], ids=["empty", "query-error", "nan"])
def test_no_data_never_passes_under_fail_policy(reading: Measurement) -> None:
    w = MetricWindow("less_than", 0.01, count=3, failure_limit=1, on_no_data="fail")
    assert feed(w, [reading]) == ("fail", 1)


def test_no_data_for_a_whole_window_never_passes_even_with_a_lax_limit() -> None:
    w = MetricWindow("less_than", 0.01, count=3, failure_limit=5, on_no_data="fail")
    status, _ = feed(w, [NO_DATA] * 3)
    assert status == "fail"


def test_hold_policy_waits_for_data_and_then_holds() -> None:
    w = MetricWindow("less_than", 0.01, count=3, on_no_data="hold", hold_deadline=10.0)
    assert feed(w, [NO_DATA] * 9) == (None, 9)
    assert w.add(NO_DATA, 10.0).status == "hold"


def test_hold_policy_passes_once_data_returns_for_a_full_window() -> None:
    w = MetricWindow("less_than", 0.01, count=3, on_no_data="hold", hold_deadline=100.0)
    assert feed(w, [NO_DATA, OK, NO_DATA, OK, OK]) == ("pass", 5)


def test_hold_policy_still_fails_on_a_real_breach() -> None:
    w = MetricWindow("less_than", 0.01, count=3, on_no_data="hold", hold_deadline=100.0)
    assert feed(w, [NO_DATA, BAD]) == ("fail", 2)


@pytest.mark.parametrize(("bake", "interval", "count"), [(60, 10, 6), (4, 1, 4), (5, 2, 3), (0, 5, 1), (1, 5, 1)])
def test_measurement_count_is_bake_over_interval_rounded_up(bake: float, interval: float, count: int) -> None:
    assert measurement_count(bake, interval) == count


def test_health_needs_consecutive_successes_and_failure_resets_the_streak() -> None:
    h = HealthStreak(consecutive=3, deadline=100)
    readings = [Probe(True), Probe(True), Probe(False, "HTTP 500"), Probe(True), Probe(True)]
    assert all(h.add(p, float(i)) is None for i, p in enumerate(readings))
    assert h.add(Probe(True), 6.0).status == "pass"


def test_health_fails_at_its_deadline() -> None:
    h = HealthStreak(consecutive=2, deadline=3)
    assert h.add(Probe(False, "refused"), 1.0) is None
    verdict = h.add(Probe(False, "refused"), 3.0)
    assert verdict.status == "fail" and "refused" in verdict.reason


def _metric_gate(**overrides):
    gate = {
        "name": "errors",
        "source": {"type": "simulated", "world": "unused"},
        "query": 'err{env="${env}"}',
        "env": "green",
        "comparator": "less_than",
        "threshold": 0.01,
        "interval": 10.0,
        "bake": 40.0,
        "failure_limit": 1,
        "on_no_data": "fail",
        "hold_timeout": 600.0,
    }
    return {**gate, **overrides}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_runner_measures_every_interval_for_the_bake_window(world) -> None:
    world.reset({"metrics": {'err{env="green"}': 0.001}})
    clock = FakeClock()
    run = GateRun(METRIC, _metric_gate(source={"type": "simulated", "world": world.path.stem}), "web", 40.0, clock.now)
    result = asyncio.run(run.run(clock=clock, sleep=clock.sleep, call=lambda fn: asyncio.sleep(0, fn())))
    assert result.status == "pass"
    assert clock.sleeps == [10.0] * 4 and len(result.measurements) == 4
    assert result.query == 'err{env="green"}'


def test_runner_turns_a_broken_backend_into_no_data_never_a_pass() -> None:
    clock = FakeClock()
    gate = _metric_gate(source={"type": "simulated", "world": "x", "bogus": 1})  # driver cannot even be built
    run = GateRun(METRIC, gate, "web", 40.0, clock.now)
    result = asyncio.run(run.run(clock=clock, sleep=clock.sleep, call=lambda fn: asyncio.sleep(0, fn())))
    assert result.status == "fail"
    assert "bogus" in result.measurements[0]["error"]


def test_dry_run_takes_one_reading_and_judges_it(world) -> None:
    world.reset({"metrics": {'err{env="green"}': 0.5}})
    run = GateRun(METRIC, _metric_gate(source={"type": "simulated", "world": world.path.stem}), "web", 40.0, 0.0)
    result = run.run_once(clock=lambda: 1.0)
    assert (result.status, result.dry_run, len(result.measurements)) == ("fail", True, 1)


def test_hold_deadline_counts_from_the_gate_start_not_from_a_restart(world) -> None:
    world.reset({"metrics": {}})
    clock = FakeClock()
    started = clock.now - 590  # a restarted trigger keeps the original start
    gate = _metric_gate(source={"type": "simulated", "world": world.path.stem}, on_no_data="hold", hold_timeout=600.0)
    run = GateRun(METRIC, gate, "web", 40.0, started)
    result = asyncio.run(run.run(clock=clock, sleep=clock.sleep, call=lambda fn: asyncio.sleep(0, fn())))
    assert result.status == "hold"
    assert sum(clock.sleeps) == pytest.approx(10.0)
    assert not math.isnan(result.finished_at)
