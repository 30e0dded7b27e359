"""Every side-effecting step reads the world, then converges it: a second run changes nothing."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from pydantic import ValidationError

from include.slow_injection.drivers.simulated import SimulatedPlatform, SimulatedWorld
from include.slow_injection.gates.verdict import Verdict
from include.slow_injection.ports import Weights
from include.slow_injection.tasks.decision import StageDecision, judge
from include.slow_injection.tasks.operators import converge_traffic
from tests.support.waves import healthy_world


class Step:
    log = logging.getLogger("test")


def router(world: SimulatedWorld) -> dict:
    return {"type": "simulated", "world": world.path.stem}


def sets(world: SimulatedWorld) -> list:
    return [h for h in world.read().get("history", []) if h["what"] == "set_weights"]


def test_setting_traffic_twice_changes_the_router_once(world) -> None:
    world.reset(healthy_world())
    first = converge_traffic(Step(), "web", router(world), Weights.green_at(25), dry_run=False)
    second = converge_traffic(Step(), "web", router(world), Weights.green_at(25), dry_run=False)
    assert (first["changed"], second["changed"]) == (True, False)
    assert len(sets(world)) == 1


def test_dry_run_traffic_says_what_it_would_set_and_sets_nothing(world) -> None:
    world.reset(healthy_world())
    result = converge_traffic(Step(), "web", router(world), Weights.green_at(25), dry_run=True)
    assert result["would_set"] == "blue 75, green 25" and result["after"] == "blue 100, green 0"
    assert sets(world) == []


def test_a_router_that_does_not_read_back_what_was_set_fails_the_step(world, monkeypatch) -> None:
    world.reset(healthy_world())
    from include.slow_injection.drivers import simulated

    monkeypatch.setattr(simulated.SimulatedRouter, "set_weights", lambda self, w: None)
    with pytest.raises(RuntimeError, match="reads back blue 100, green 0"):
        converge_traffic(Step(), "web", router(world), Weights.green_at(25), dry_run=False)


@pytest.mark.parametrize("action", ["deploy_green", "activate", "retire_blue", "restore_blue"])
def test_platform_actions_are_idempotent(world, action: str) -> None:
    world.reset(healthy_world())
    platform = SimulatedPlatform(world)
    for workload in (
        {"kind": "Deployment", "namespace": "shop", "name": "web"},
        {"kind": "CronJob", "namespace": "shop", "name": "report-job"},
    ):
        platform.deploy_green(workload, apply=True)

        def call(workload=workload):
            if action == "activate":
                return platform.activate(workload, "green", apply=True)
            return getattr(platform, action)(workload, apply=True)

        call()
        assert call() == [], f"{action} on {workload['kind']} changed something the second time"


def test_handover_suspends_blue_before_it_unsuspends_green(world) -> None:
    world.reset(healthy_world())
    platform = SimulatedPlatform(world)
    job = {"kind": "CronJob", "namespace": "shop", "name": "report-job"}
    platform.deploy_green(job, apply=True)
    platform.activate(job, "green", apply=True)
    order = [(h["env"], h.get("suspended")) for h in world.read()["history"] if h["what"] == "workload"]
    assert order[-2:] == [("blue", True), ("green", False)]


def verdict(status: str, **fields: Any) -> Verdict:
    return Verdict(gate="g", kind="metric", status=status, **fields)


def test_a_stage_never_continues_on_missing_results() -> None:
    ok = verdict("pass")
    assert judge({"a": {"ok": 1}}, {"g": ok}) == ("continue", [])
    assert judge({"a": None}, {"g": ok})[0] == "rollback"
    assert judge({"a": {}}, {"g": None})[0] == "rollback"
    assert judge({}, {"g": verdict("hold", reason="no data")})[0] == "hold"
    assert judge({}, {"g": verdict("hold"), "h": verdict("fail")})[0] == "rollback"


class StageTI:
    """A decision's `ti`: the gate's XCom verdict as pushed, and what the decision pushes."""

    def __init__(self, verdict: Any) -> None:
        self.verdict, self.pushed = verdict, {}

    def xcom_pull(self, task_ids: str, key: str = "return_value") -> Any:
        return self.verdict if (task_ids, key) == ("g", "verdict") else None

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


@pytest.mark.parametrize("pushed", [{"gate": "g", "kind": "metric", "status": "weird"}, {"status": "pass"}])
def test_a_verdict_the_decision_cannot_read_rolls_back(pushed: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        Verdict.read(pushed)
    decide = StageDecision(
        task_id="decide",
        wave_id="w",
        stage="s",
        action_ids=[],
        gate_ids=["g"],
        rollback_marker="rollback_requested",
        hold_marker="hold_requested",
        automatic_rollback=True,
    )
    ti = StageTI(pushed)
    assert decide.choose_branch({"ti": ti, "params": {}}) == ["rollback_requested"]
    assert ti.pushed["decision"]["reasons"][0].startswith("could not read the stage's results")
    passing = decide.choose_branch({"ti": StageTI(verdict("pass").to_xcom()), "params": {}})
    assert passing == []  # continue: nothing is downstream of this lone decision but its markers


def test_dry_run_readings_are_shown_not_judged_and_only_in_a_dry_run() -> None:
    reading = verdict("fail", dry_run=True, reason="no data")
    assert judge({}, {"g": reading}, dry_run=True) == ("continue", [])
    assert judge({}, {"g": reading}, dry_run=False)[0] == "rollback"
    assert judge({}, {"g": None}, dry_run=True)[0] == "rollback"


def test_returning_to_blue_goes_on_past_a_split_someone_else_set(world, monkeypatch) -> None:
    """A rollback after someone else's edit of the route: the mismatch is logged, traffic returns to blue."""
    world.reset(healthy_world())
    from include.slow_injection.drivers import simulated
    from include.slow_injection.ports import ReadbackMismatch

    converge_traffic(Step(), "web", router(world), Weights.green_at(25), dry_run=False)
    real = simulated.SimulatedRouter.get_weights
    calls = []

    def edited_once(self):
        calls.append(1)
        if len(calls) == 1:
            raise ReadbackMismatch("readback mismatch: edited by someone else", found=Weights.green_at(60))
        return real(self)

    monkeypatch.setattr(simulated.SimulatedRouter, "get_weights", edited_once)
    result = converge_traffic(Step(), "web", router(world), Weights.green_at(0), dry_run=False)
    assert result["changed"] and result["before"] == "blue 40, green 60" and result["after"] == "blue 100, green 0"


def test_a_traffic_step_stops_at_a_split_someone_else_set(world, monkeypatch) -> None:
    world.reset(healthy_world())
    from include.slow_injection.drivers import simulated
    from include.slow_injection.ports import ReadbackMismatch

    def edited(self):
        raise ReadbackMismatch("readback mismatch: edited by someone else", found=Weights.green_at(60))

    monkeypatch.setattr(simulated.SimulatedRouter, "get_weights", edited)
    with pytest.raises(ReadbackMismatch):
        converge_traffic(Step(), "web", router(world), Weights.green_at(50), dry_run=False)
    assert sets(world) == []
