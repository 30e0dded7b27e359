"""The deferrable gate: trigger serialisation, one verdict event, sensor deferral and completion."""

from __future__ import annotations

import asyncio
import importlib

import pytest
from airflow.sdk.exceptions import AirflowFailException, TaskDeferred

from slow_injection_gates.sensors import GateSensor
from slow_injection_gates.triggers import GateTrigger


def gate(world_name: str, **overrides):
    g = {
        "name": "errors",
        "source": {"type": "simulated", "world": world_name},
        "query": "err",
        "env": "green",
        "comparator": "less_than",
        "threshold": 0.01,
        "interval": 0.05,
        "bake": 0.1,
        "failure_limit": 1,
        "on_no_data": "fail",
        "hold_timeout": 600.0,
    }
    return {**g, **overrides}


class FakeTI:
    def __init__(self) -> None:
        self.pushed: dict[str, object] = {}

    def xcom_push(self, key: str, value: object) -> None:
        self.pushed[key] = value


def test_trigger_serialises_to_an_importable_class_with_the_same_arguments(world) -> None:
    trigger = GateTrigger("metric", gate(world.path.stem), "web", 0.1, 123.0)
    path, kwargs = trigger.serialize()
    module, _, name = path.rpartition(".")
    clone = getattr(importlib.import_module(module), name)(**kwargs)
    assert clone.serialize() == (path, kwargs)
    assert module == "slow_injection_gates.triggers"  # from plugins/, not the DAG bundle


@pytest.mark.parametrize(("value", "status"), [(0.001, "pass"), (0.2, "fail")])
def test_trigger_yields_one_event_with_the_verdict_and_values(world, value: float, status: str) -> None:
    import time

    world.reset({"metrics": {"err": value}})
    trigger = GateTrigger("metric", gate(world.path.stem), "web", 0.1, time.time())

    async def first_event():
        return await trigger.run().asend(None)

    event = asyncio.run(first_event())
    assert event.payload["status"] == status
    assert event.payload["measurements"][0]["value"] == value


def test_sensor_decides_a_short_gate_in_the_task_without_deferring(world) -> None:
    world.reset({"metrics": {"err": 0.001}})
    sensor = GateSensor(task_id="gate_errors", kind="metric", gate=gate(world.path.stem), service="web", window=0.1)
    ti = FakeTI()
    assert sensor.execute({"params": {"dry_run": False}, "ti": ti})["status"] == "pass"
    assert ti.pushed["verdict"]["status"] == "pass"


def test_sensor_defers_what_it_cannot_decide_in_its_inline_budget(world) -> None:
    world.reset({"metrics": {"err": 0.001}})
    sensor = GateSensor(
        task_id="gate_errors", kind="metric", gate=gate(world.path.stem), service="web", window=5, inline_seconds=0.2
    )
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute({"params": {"dry_run": False}, "ti": FakeTI()})
    assert deferred.value.trigger.pass_not_before > deferred.value.trigger.started_at


def test_sensor_defers_at_once_without_an_inline_budget(world) -> None:
    sensor = GateSensor(
        task_id="gate_errors", kind="metric", gate=gate(world.path.stem), service="web", window=0.1, inline_seconds=0
    )
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute({"params": {"dry_run": False}, "ti": FakeTI()})
    assert isinstance(deferred.value.trigger, GateTrigger)
    assert deferred.value.method_name == "execute_complete"
    assert sensor.retries == 0  # a failed gate is never re-measured behind the operator's back


def test_trigger_holds_a_pass_back_until_pass_not_before(world) -> None:
    import time

    world.reset({"metrics": {"err": 0.001}})
    start = time.time()
    trigger = GateTrigger("metric", gate(world.path.stem), "web", 0.1, start, pass_not_before=start + 1.0)

    async def first_event():
        return await trigger.run().asend(None)

    event = asyncio.run(first_event())
    assert event.payload["status"] == "pass" and time.time() - start >= 1.0


def test_sensor_in_dry_run_reads_once_without_deferring(world) -> None:
    world.reset({"metrics": {"err": 0.001}})
    sensor = GateSensor(task_id="gate_errors", kind="metric", gate=gate(world.path.stem), service="web", window=60)
    ti = FakeTI()
    verdict = sensor.execute({"params": {"dry_run": True}, "ti": ti})
    assert verdict["status"] == "pass" and verdict["dry_run"] is True
    assert ti.pushed["verdict"] == verdict


def test_sensor_in_dry_run_shows_a_bad_reading_without_failing(world) -> None:
    world.reset({"metrics": {}})
    sensor = GateSensor(task_id="gate_errors", kind="metric", gate=gate(world.path.stem), service="web", window=60)
    verdict = sensor.execute({"params": {"dry_run": True}, "ti": FakeTI()})
    assert (verdict["status"], verdict["dry_run"]) == ("fail", True)


def test_sensor_fails_red_on_a_failed_verdict_but_keeps_the_evidence(world) -> None:
    sensor = GateSensor(task_id="gate_errors", kind="metric", gate=gate(world.path.stem), service="web", window=0.1)
    ti = FakeTI()
    event = {
        "status": "fail",
        "gate": "errors",
        "kind": "metric",
        "reason": "1 breach(es) of < 0.01; limit 1",
        "measurements": [{"t": 0.05, "value": 0.2, "outcome": "breach"}],
    }
    with pytest.raises(AirflowFailException, match="gate errors FAIL: 1 breach"):
        sensor.execute_complete({"ti": ti, "params": {}}, event)
    assert ti.pushed["verdict"] == event


def test_sensor_treats_an_empty_event_as_a_failure(world) -> None:
    sensor = GateSensor(task_id="gate_errors", kind="metric", gate=gate(world.path.stem), service="web", window=0.1)
    with pytest.raises(AirflowFailException, match="trigger gave no verdict"):
        sensor.execute_complete({"ti": FakeTI(), "params": {}}, None)


def test_sensor_can_run_in_process_when_not_deferrable(world) -> None:
    world.reset({"metrics": {"err": 0.001}})
    sensor = GateSensor(
        task_id="gate_errors", kind="metric", gate=gate(world.path.stem), service="web", window=0.1, deferrable=False
    )
    assert sensor.execute({"params": {"dry_run": False}, "ti": FakeTI()})["status"] == "pass"
