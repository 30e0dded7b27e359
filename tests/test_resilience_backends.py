"""Metrics backend down for a whole gate never promotes. The real Prometheus driver talks HTTP to a
stand-in that answers 503, hangs past the driver's timeout, returns an empty vector, NaN, two series,
garbage or a query error; a closed port and a simulated source that raises cover the rest. Every mode
goes through the gate's own measuring loop (GateRun, as the sensor and trigger run it): a fail verdict
under on_no_data: fail, a hold under hold — 0 passes. Whole waves (dag.test) for one mode of each kind
(an HTTP error, a refused connection, a driver exception; a hang under hold) show the wave then rolls
back or holds at its step, and a control run shows the same wave promotes once the backend answers."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest

from tests.support.standins import PrometheusStandIn
from tests.support.waves import events, healthy_world, run_wave, small_wave, weights_history

pytestmark = [pytest.mark.airflow, pytest.mark.usefixtures("airflow_db")]

CONNECTION = "prom_resilience"
HTTP_MODES = ["http_503", "hang", "empty", "nan", "two_series", "garbage", "query_error"]
ALL_MODES = [*HTTP_MODES, "refused", "raises"]
WAVE_MODES = ["http_503", "refused", "raises"]  # one per kind: an HTTP error, no connection, an exception
# What the gate's verdict must say, so a run failed for some other reason does not count.
REASON = {
    "http_503": "HTTP 503",
    "hang": "timed out",
    "empty": "no_data",
    "nan": "NaN",
    "two_series": "2 series",
    "garbage": "not JSON",
    "query_error": "bad_data",
    "refused": "unreachable",
    "raises": "RuntimeError",
}
GATE_TASK = "gradual_transition.web.step1_25pct.gate_error-rate"


@pytest.fixture(scope="module")
def prometheus():
    server = PrometheusStandIn(hang_for=1.0).start()
    yield server
    server.stop()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once the socket is closed


def broken_wave(world_name: str, mode: str, on_no_data: str) -> dict[str, Any]:
    """small_wave's exposed service alone, its step gate and release gate on the broken backend."""
    data = small_wave(world_name, "down")
    data["services"] = [data["services"][1]]
    source = (
        {"type": "simulated", "world": world_name}
        if mode == "raises"
        else {"type": "prometheus", "connection": CONNECTION, "timeout": 0.3}
    )
    for gate in (data["services"][0]["gates"][0], data["release_monitoring"]["gates"][0]):
        gate.update(source=source, on_no_data=on_no_data, hold_timeout=1)
    return data


def break_backend(world, monkeypatch, prometheus: PrometheusStandIn, mode: str) -> None:
    """A healthy world whose metrics backend fails in `mode` (or answers, for "healthy")."""
    world.reset(healthy_world())
    if mode == "raises":
        from include.slow_injection.drivers.simulated import SimulatedMetricSource

        def query(self, query: str):
            raise RuntimeError("metrics backend exploded")

        monkeypatch.setattr(SimulatedMetricSource, "query", query)
    url = f"http://127.0.0.1:{closed_port()}" if mode == "refused" else prometheus.url
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONNECTION.upper()}", json.dumps({"conn_type": "http", "host": url}))
    prometheus.mode = mode


def run_against(tmp_path: Path, world, monkeypatch, prometheus: PrometheusStandIn, mode: str, on_no_data: str):
    break_backend(world, monkeypatch, prometheus, mode)
    return run_wave(tmp_path, world, broken_wave(world.path.stem, mode, on_no_data))


def gate_verdict(task_id: str) -> dict[str, Any]:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = (
            session.query(XComModel)
            .filter(XComModel.run_id == run_wave.last_run_id, XComModel.task_id == task_id, XComModel.key == "verdict")
            .one()
        )
        return XComModel.deserialize_value(row)


def promoted(world, tis: dict[str, Any]) -> bool:
    return (
        100 in weights_history(world)
        or world.read()["routers"]["web"]["green"] == 100
        or tis.get("post_release.wave_completed") == "success"
        or "wave_completed" in events(world)
    )


def gate_against(monkeypatch, prometheus: PrometheusStandIn, world, mode: str, on_no_data: str) -> dict[str, Any]:
    """The step gate of broken_wave, measured by GateRun for a 1 s window (4 readings)."""
    import asyncio
    import time

    from include.slow_injection import kinds
    from include.slow_injection.gates.runner import GateRun
    from include.slow_injection.spec import parse_wave

    break_backend(world, monkeypatch, prometheus, mode)
    wave = parse_wave(broken_wave(world.path.stem, mode, on_no_data), "down.yaml")
    gate = wave.services[0].gates[0].model_copy(update={"interval": 0.25}).model_dump()

    async def no_thread(fn):
        return fn()

    run = GateRun(kinds.measured("metric"), gate, "web", 1.0, time.time())
    return asyncio.run(run.run(call=no_thread)).to_xcom()  # as the trigger hands it on


@pytest.mark.parametrize("mode", ALL_MODES)
@pytest.mark.parametrize("on_no_data", ["fail", "hold"])
def test_a_gate_whose_backend_fails_its_whole_window_never_passes(
    monkeypatch, prometheus, world, mode: str, on_no_data: str
) -> None:
    verdict = gate_against(monkeypatch, prometheus, world, mode, on_no_data)
    assert verdict["status"] == on_no_data, verdict  # "fail" or "hold": never "pass"
    readings = json.dumps(verdict, default=str)
    assert REASON[mode] in readings, readings[:800]
    assert verdict["measurements"] and all(m.get("value") is None for m in verdict["measurements"])


def test_the_same_gate_passes_once_the_backend_answers(monkeypatch, prometheus, world) -> None:
    assert gate_against(monkeypatch, prometheus, world, "healthy", "fail")["status"] == "pass"


@pytest.mark.parametrize("mode", WAVE_MODES)
def test_a_backend_failing_for_the_whole_bake_never_promotes_and_rolls_back(
    tmp_path: Path, world, monkeypatch, prometheus, mode: str
) -> None:
    state, tis = run_against(tmp_path, world, monkeypatch, prometheus, mode, "fail")
    assert not promoted(world, tis)
    assert state == "failed"
    assert tis[GATE_TASK] == "failed"
    verdict = gate_verdict(GATE_TASK)
    assert verdict["status"] == "fail"
    readings = json.dumps(verdict, default=str)
    assert REASON[mode] in readings, readings[:800]
    assert all(m.get("value") is None for m in verdict["measurements"])  # nothing was read as a number
    assert weights_history(world) == [25, 0]
    assert world.read()["routers"]["web"] == {"blue": 100, "green": 0}
    assert tis["rollback.traffic_to_blue"] == "success"


@pytest.mark.parametrize("mode", ["hang"])
def test_a_backend_failing_for_the_whole_bake_under_hold_policy_holds_at_the_step(
    tmp_path: Path, world, monkeypatch, prometheus, mode: str
) -> None:
    state, tis = run_against(tmp_path, world, monkeypatch, prometheus, mode, "hold")
    assert not promoted(world, tis)
    assert state == "failed" and tis["wave_held"] == "failed"
    assert gate_verdict(GATE_TASK)["status"] == "hold"
    assert tis["rollback.traffic_to_blue"] == "skipped"
    assert world.read()["routers"]["web"] == {"blue": 75, "green": 25}  # held where it stopped


def test_the_same_wave_promotes_once_the_backend_answers(tmp_path: Path, world, monkeypatch, prometheus) -> None:
    """The control: the failures above come from the backend, not from the wave or the stand-in."""
    state, tis = run_against(tmp_path, world, monkeypatch, prometheus, "healthy", "fail")
    assert state == "success", {k: v for k, v in tis.items() if v not in ("success", "skipped")}
    assert weights_history(world) == [25, 100]
