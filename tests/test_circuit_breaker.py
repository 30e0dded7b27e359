"""The circuit breaker (gates/breaker.py): a metric gate that fails at a traffic step moves its service's
router to 0 % green itself, records it in its verdict, and still fails; the rollback then finds the router
at 0 % already. Rules with a fake of the router port; where it is armed from the built DAG; whole runs with
dag.test() against the simulated world."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from include.slow_injection.builders.factory import build_dag
from include.slow_injection.gates.breaker import trip
from include.slow_injection.gates.verdict import BreakerMove, Verdict
from include.slow_injection.ports import ReadbackMismatch, Weights
from include.slow_injection.spec import load_wave
from tests.support.waves import _xcom, healthy_world, metric_gate, run_wave, sim, small_wave, weights_history, write

ARMED = {"service": "web", "router": {"type": "haproxy", "backend": "web"}}
STEP1_GATE = "gradual_transition.web.step1_25pct.gate_error-rate"


class FakeRouter:
    """The router port, in memory: every write kept."""

    def __init__(self, weights: Weights, foreign: bool = False, broken: bool = False) -> None:
        self.weights, self.foreign, self.broken, self.sets = weights, foreign, broken, []

    def describe(self) -> str:
        return "fake/web"

    def get_weights(self) -> Weights:
        if self.broken:
            raise ConnectionRefusedError("runtime API down")
        if self.foreign:
            raise ReadbackMismatch("not our split", found=self.weights)
        return self.weights

    def set_weights(self, weights: Weights) -> None:
        self.sets.append(weights)
        self.weights, self.foreign = weights, False


def verdict(status: str) -> Verdict:
    return Verdict(gate="error-rate", kind="metric", status=status, reason="1 breach(es) of < 0.05; limit 1")


def tripped(v: Verdict, router: FakeRouter, breaker=ARMED, **kwargs) -> Verdict:
    built = []

    def build(kind, ref, service):
        built.append((kind, ref, service))
        return router

    out = trip(v, breaker, build=build, clock=lambda: 1_700_000_000.0, **kwargs)
    assert all(b == ("router", ARMED["router"], "web") for b in built)
    return out


def test_a_breach_at_a_traffic_step_moves_the_service_to_0_percent_green_and_still_fails() -> None:
    router = FakeRouter(Weights(75, 25))
    out = tripped(verdict("fail"), router)
    assert router.sets == [Weights(100, 0)]
    assert out.status == "fail" and out.reason == verdict("fail").reason
    assert out.breaker == BreakerMove(
        service="web", router="fake/web", at=1_700_000_000.0, before="blue 75, green 25", changed=True
    )
    assert out.breaker.line() == (
        "circuit breaker moved web to 0 % green at 22:13:20.000 UTC (fake/web, was blue 75, green 25)"
    )
    assert Verdict.read(out.to_xcom()) == out  # what XCom holds reads back the same


@pytest.mark.parametrize("status", ["hold", "pass", "skipped"])
def test_a_hold_or_a_pass_moves_nothing(status: str) -> None:
    router = FakeRouter(Weights(75, 25))
    assert tripped(verdict(status), router) == verdict(status)
    assert router.sets == []


def test_a_gate_without_a_breaker_moves_nothing() -> None:
    router = FakeRouter(Weights(75, 25))
    assert tripped(verdict("fail"), router, breaker=None) == verdict("fail")
    assert router.sets == []


def test_dry_run_only_logs_what_it_would_do() -> None:
    router = FakeRouter(Weights(75, 25))
    out = tripped(verdict("fail"), router, dry_run=True)
    assert router.sets == []
    assert out.breaker is not None and out.breaker.dry_run and not out.breaker.changed
    assert out.breaker.line().startswith("[dry-run] circuit breaker would move web to 0 % green")


def test_twice_gives_the_same_result_and_one_write() -> None:
    router = FakeRouter(Weights(75, 25))
    once = tripped(verdict("fail"), router)
    assert tripped(once, router) == once  # the verdict already says what it did
    again = tripped(verdict("fail"), router)  # a re-run trigger, from a fresh verdict
    assert router.sets == [Weights(100, 0)]
    assert again.breaker is not None and not again.breaker.changed and router.weights == Weights(100, 0)
    assert again.breaker.line().startswith("circuit breaker found web at 0 % green already")


def test_a_split_someone_else_set_goes_back_to_blue_all_the_same() -> None:
    router = FakeRouter(Weights(50, 50), foreign=True)
    out = tripped(verdict("fail"), router)
    assert router.sets == [Weights(100, 0)] and out.breaker is not None and out.breaker.changed


def test_a_router_it_cannot_reach_is_recorded_and_tried_again_later() -> None:
    router = FakeRouter(Weights(75, 25), broken=True)
    out = tripped(verdict("fail"), router)
    assert out.status == "fail" and out.breaker is not None
    assert out.breaker.error == "runtime API down" and not out.breaker.changed
    assert "could not move web" in out.breaker.line()
    router.broken = False  # e.g. the sensor's execute_complete after the trigger's try
    again = tripped(out, router)
    assert router.sets == [Weights(100, 0)] and again.breaker is not None and again.breaker.error is None


# Where the DAG arms it -------------------------------------------------------------------------------


def _gate_breakers(tmp_path: Path, data: dict) -> dict[str, dict | None]:
    dag = build_dag(load_wave(write(tmp_path, data)))
    return {t.task_id: t.breaker for t in dag.tasks if type(t).__name__ == "GateSensor"}


def test_only_the_gates_at_traffic_steps_are_armed_with_their_services_router(tmp_path: Path) -> None:
    data = small_wave("w")
    breakers = _gate_breakers(tmp_path, data)
    armed = {t: b for t, b in breakers.items() if b is not None}
    assert set(armed) == {STEP1_GATE, "gradual_transition.web.step2_100pct.gate_error-rate"}
    assert all(b["service"] == "web" and b["router"].items() >= sim("w").items() for b in armed.values())
    # the scheduled job's, the health check and release monitoring's gates move no traffic of their own
    assert len(breakers) > len(armed)
    dag = build_dag(load_wave(write(tmp_path, data)))
    assert dag.get_task("rollback.traffic_to_blue").breaker_gate_ids == sorted(armed)


def test_none_when_users_must_wait_for_the_data_before_going_back_to_blue(tmp_path: Path) -> None:
    data = small_wave("w")
    data["validation"] = {"data_sync": {"checks": [sim("w")], "interval": 0.1, "timeout": 2}}
    assert not any(_gate_breakers(tmp_path, data).values())
    data["validation"]["data_sync"]["before_rollback"] = False
    assert any(_gate_breakers(tmp_path, data).values())


def test_none_when_a_data_migration_must_move_the_writes_back_first(tmp_path: Path) -> None:
    """After the cut-over blue is fenced read-only until the rollback's data_to_blue: users sent there by a
    breaker could not write."""
    data = small_wave("w")
    assert any(_gate_breakers(tmp_path, data).values())
    data["data_migration"] = [
        {
            "name": "orders",
            "replication": {
                "type": "postgres_logical",
                "blue_connection": "blue_shop",
                "green_connection": "green_shop",
                "tables": ["orders"],
                "name": "shop",
            },
        }
    ]
    assert not any(_gate_breakers(tmp_path, data).values())


def test_none_when_a_human_decides_on_a_failure(tmp_path: Path) -> None:
    data = small_wave("w")
    data["rollback"]["automatic"] = False
    assert not any(_gate_breakers(tmp_path, data).values())


def test_a_completed_wave_being_verified_never_trips_it() -> None:
    from include.slow_injection.run_scope import Scope
    from slow_injection_gates.sensors import GateSensor

    sensor = GateSensor(
        task_id="g", kind="metric", gate={"interval": 1, "on_no_data": "fail"}, service="web", window=0, breaker=ARMED
    )
    sensor.plan_task_id = "plan"

    def context(verify: bool) -> dict:
        scope = Scope(services=["web"], all_services=["web"], verify=True) if verify else None
        return {"_slow_injection_scope": scope}

    assert sensor.armed(context(verify=False)) == ARMED
    assert sensor.armed(context(verify=True)) is None


# Whole runs (dag.test, simulated world) ----------------------------------------------------------------


def _broken_at_25() -> dict:
    broken = healthy_world()
    broken["metrics"]['error_ratio{service="web",env="green"}'] = {
        "router": "web",
        "when_green_at_least": 25,
        "value": 0.2,
        "otherwise": 0.001,
    }
    return broken


@pytest.mark.airflow
@pytest.mark.usefixtures("airflow_db")
def test_the_failed_gate_moves_users_to_blue_before_the_rollback_runs(tmp_path: Path, world, reports_dir: Path) -> None:
    world.reset(_broken_at_25())
    state, tis = run_wave(tmp_path, world, small_wave(world.path.stem))
    run_id = run_wave.last_run_id
    assert state == "failed" and tis[STEP1_GATE] == "failed"
    assert weights_history(world) == [25, 0]  # one move to blue: the gate's
    moved = _xcom(run_id, STEP1_GATE, "verdict")["breaker"]
    assert moved["changed"] is True and moved["before"] == "blue 75, green 25"
    back = _xcom(run_id, "rollback.traffic_to_blue", "return_value")
    assert back["services"]["web"]["changed"] is False  # the rollback found it at 0 % and converged the rest
    assert back["breaker"] == [BreakerMove.model_validate(moved).line()]
    assert tis["rollback.restore_blue_workloads"] == "success" and tis["rollback.traffic_to_blue"] == "success"
    assert world.read()["routers"]["web"] == {"blue": 100, "green": 0}
    line = BreakerMove.model_validate(moved).line()
    report = (reports_dir / "wave_small" / run_id.replace(":", "_") / "report.md").read_text()
    assert f"## Circuit breaker\n\n- {line}" in report
    timeline = json.loads((reports_dir / "wave_small" / run_id.replace(":", "_") / "report.json").read_text())[
        "timeline"
    ]
    assert any(e["text"] == line and e["task"] == STEP1_GATE for e in timeline)


@pytest.mark.airflow
@pytest.mark.usefixtures("airflow_db")
def test_with_before_rollback_the_rollback_moves_users_after_the_data_check(tmp_path: Path, world) -> None:
    world.reset(_broken_at_25())
    data = small_wave(world.path.stem)
    data["validation"] = {"data_sync": {"checks": [sim(world.path.stem)], "interval": 0.1, "timeout": 5}}
    state, tis = run_wave(tmp_path, world, data)
    run_id = run_wave.last_run_id
    assert state == "failed" and tis[STEP1_GATE] == "failed"
    assert "breaker" not in _xcom(run_id, STEP1_GATE, "verdict")
    assert tis["rollback.data_in_sync"] == "success"
    assert _xcom(run_id, "rollback.traffic_to_blue", "return_value")["services"]["web"]["changed"] is True
    assert weights_history(world) == [25, 0]


@pytest.mark.airflow
@pytest.mark.usefixtures("airflow_db")
def test_a_dry_run_logs_the_breaker_and_moves_nothing(tmp_path: Path, world) -> None:
    always = healthy_world()
    always["metrics"]['error_ratio{service="web",env="green"}'] = 0.2
    world.reset(always)
    state, _ = run_wave(tmp_path, world, small_wave(world.path.stem), conf={"dry_run": True})
    moved = _xcom(run_wave.last_run_id, STEP1_GATE, "verdict")["breaker"]
    assert moved["dry_run"] is True and moved["changed"] is False
    assert world.read().get("history", []) == []


def test_a_deferred_gate_trips_it_in_the_trigger_and_the_event_carries_it(world) -> None:
    import asyncio
    import time

    from slow_injection_gates.triggers import GateTrigger

    world.reset({"metrics": {"err": 0.2}, "routers": {"web": {"blue": 95, "green": 5}}})
    armed = {"service": "web", "router": sim(world.path.stem)}
    gate = {
        **metric_gate(world.path.stem, "errors", "err", interval=0.05, bake=0.1),
        **{"env": "green", "failure_limit": 1, "on_no_data": "fail", "hold_timeout": 600.0},
    }
    trigger = GateTrigger("metric", gate, "web", 0.1, time.time(), breaker=armed)
    path, kwargs = trigger.serialize()
    assert kwargs["breaker"] == armed  # a restarted trigger keeps it

    async def first_event():
        return await trigger.run().asend(None)

    event = asyncio.run(first_event())
    assert event.payload["status"] == "fail"
    assert event.payload["breaker"]["changed"] is True and event.payload["breaker"]["before"] == "blue 95, green 5"
    assert world.read()["routers"]["web"] == {"blue": 100, "green": 0}
