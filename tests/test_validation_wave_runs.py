"""The validation phase in whole runs (dag.test): a real locust stress test against a local green, the
parity analysis over simulated blue/green series, and the data-sync gate (also as the rollback's
precondition). The human approval needs a real Airflow: tests/e2e/test_uat_approval.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.standins import LabTarget
from tests.support.waves import healthy_world, run_wave, sim, small_wave

pytestmark = [pytest.mark.airflow, pytest.mark.usefixtures("airflow_db")]

LATENCY = 'latency_seconds{env="${env}"}'


def latency_series(median: float, seed: int) -> dict[str, Any]:
    return {"distribution": {"kind": "lognormal", "median": median, "sigma": 0.1, "seed": seed}}


def validating_wave(world: str, green_url: str, **validation: Any) -> dict[str, Any]:
    wave = small_wave(world)
    wave["services"] = [s for s in wave["services"] if s["name"] == "web"]  # no job handover to wait for
    wave["validation"] = {
        "stress": [
            {
                "name": "green-load",
                "url": green_url,
                "users": 4,
                "spawn_rate": 4,
                "duration": 2,
                "rate_limit": 40,
                "max_failure_ratio": 0.05,
                "max_p95": 0.5,
                "min_requests": 10,
            }
        ],
        "parity": {
            "source": sim(world),
            "window": 60,
            "step": 0.1,
            "min_samples": 10,  # over the 2 s stress window
            "metrics": [{"name": "latency", "query": LATENCY, "tolerance": 0.1, "critical": True}],
        },
        "data_sync": {"checks": [sim(world)], "interval": 0.2, "timeout": 3},
        **validation,
    }
    return wave


def world_state(green_median: float, **extra: Any) -> dict[str, Any]:
    state = healthy_world()
    state["metrics"].update(
        {
            'latency_seconds{env="blue"}': latency_series(0.050, 1),
            'latency_seconds{env="green"}': latency_series(green_median, 2),
        }
    )
    return {**state, **extra}


@pytest.fixture
def green():
    with LabTarget() as target:
        yield target


def run(tmp_path: Path, world, wave: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return run_wave(tmp_path, world, wave)


def verdict(tmp_path: Path, world, task_id: str) -> dict[str, Any]:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = (
            session.query(XComModel)
            .filter(
                XComModel.dag_id == "wave_small",
                XComModel.key == "verdict",
                XComModel.task_id == task_id,
                XComModel.run_id == run_wave.last_run_id,
            )
            .one()
        )
        return XComModel.deserialize_value(row)


def test_a_green_that_holds_load_matches_blue_and_has_the_data_promotes(tmp_path: Path, world, green) -> None:
    world.reset(world_state(0.051))
    state, tis = run(tmp_path, world, validating_wave(world.path.stem, green.url))
    assert state == "success", {k: v for k, v in tis.items() if v not in ("success", "skipped")}
    stress = verdict(tmp_path, world, "validation.checks.stress_green-load")
    assert stress["status"] == "pass" and stress["stats"]["requests"] >= 10 and stress["series"]
    parity = verdict(tmp_path, world, "validation.parity.parity")
    assert parity["status"] == "pass" and parity["score"] == 100
    assert parity["metrics"][0]["classification"] == "Pass"
    assert parity["window"]["start"] == stress["started_at"]  # compared over the load green was under
    assert set(green.paths) == {"/"}  # the load never went anywhere else
    assert tis["rollback.data_in_sync"] == "skipped"


def test_green_forty_percent_slower_but_error_free_is_caught_by_parity_alone(tmp_path: Path, world, green) -> None:
    world.reset(world_state(0.070))  # 40 % slower; the stress test's p95 limit (0.5 s) is far away
    state, tis = run(tmp_path, world, validating_wave(world.path.stem, green.url))
    assert state == "failed"
    assert tis["validation.checks.stress_green-load"] == "success"
    assert tis["validation.parity.parity"] == "failed"
    parity = verdict(tmp_path, world, "validation.parity.parity")
    latency = parity["metrics"][0]
    assert latency["classification"] == "High" and 0.3 < latency["relative_effect"] < 0.5
    assert parity["score"] == 0 and "critical" in parity["reason"]
    assert tis["rollback.traffic_to_blue"] == "success"
    assert tis["gradual_transition.web.step1_25pct.set_traffic"] == "skipped"  # users never reached green


def test_a_marginal_parity_without_an_approver_holds(tmp_path: Path, world, green) -> None:
    world.reset(world_state(0.070))
    wave = validating_wave(world.path.stem, green.url)
    wave["validation"]["parity"]["metrics"] = [
        {"name": "latency", "query": LATENCY, "weight": 1},
        {"name": "errors", "query": 'errors{env="${env}"}', "weight": 4},
    ]
    wave["validation"]["parity"].update(pass_score=95, marginal_score=70)
    world.update(lambda s: s["metrics"].update({'errors{env="blue"}': 0.0, 'errors{env="green"}': 0.0}))
    state, tis = run(tmp_path, world, wave)
    parity = verdict(tmp_path, world, "validation.parity.parity")
    assert parity["score"] == 80 and parity["decision"] == "marginal" and parity["status"] == "hold"
    assert tis["wave_held"] == "failed" and tis["rollback.restore_blue_workloads"] == "skipped"


def test_diverged_data_rolls_back_before_users_move(tmp_path: Path, world, green) -> None:
    world.reset(world_state(0.051, data_sync={"lag": 0, "diverged": True}))
    state, tis = run(tmp_path, world, validating_wave(world.path.stem, green.url))
    assert state == "failed"
    assert tis["validation.checks.data_in_sync"] == "failed"
    # the rollback's own data check then fails too: traffic stays put (it never left blue) for a human
    assert tis["rollback.data_in_sync"] == "failed" and tis["rollback.traffic_to_blue"] == "upstream_failed"
    assert world.read()["routers"]["web"] == {"blue": 100, "green": 0}
