"""The trigger form's Params through REST API v2, as the UI sends them: a valid form is accepted and
honoured, a value outside a Param's schema is refused at once with its message, and a rule that
spans fields (a skipped phase needs a reason) refuses the run before it changes anything."""

from __future__ import annotations

import json
import time

import pytest

from include.slow_injection.drivers.simulated import SimulatedWorld
from tests.support.e2e_runs import post_run
from tests.support.waves import healthy_world

pytestmark = pytest.mark.e2e
DAG = "wave_e2e-uat"  # a simulated wave: quick runs


def test_the_form_describes_every_param_with_the_specs_defaults(lab) -> None:
    params = lab.airflow.get(f"/api/v2/dags/{DAG}/details")["params"]
    assert {"dry_run", "services", "max_weight", "skip_phases", "skip_reason", "approval_timeout"} <= set(params)
    assert params["approval_timeout"]["value"] == "10m"  # the spec's validation.approval.timeout
    assert params["services"]["schema"]["items"]["enum"] == ["web"]
    for name, param in params.items():
        assert param["schema"].get("title") and param["description"], name


def test_a_value_outside_the_schema_is_refused_with_its_message(lab) -> None:
    code, body = post_run(lab, DAG, {"max_weight": 33})
    assert code == 400 and "max_weight" in json.dumps(body), body
    code, body = post_run(lab, DAG, {"services": ["api"]})
    assert code == 400 and "services" in json.dumps(body), body


def test_a_skipped_phase_without_a_reason_refuses_the_run_before_any_change(lab) -> None:
    SimulatedWorld("e2e-uat").reset(healthy_world())
    code, run = post_run(lab, DAG, {"skip_phases": ["validation"], "skip_reason": ""})
    assert code == 200
    assert lab.airflow.wait_for_run(DAG, run["dag_run_id"], timeout=120) == "failed"
    tis = lab.airflow.task_instances(DAG, run["dag_run_id"])
    assert tis["preparation.run_refused"]["state"] == "failed"
    assert SimulatedWorld("e2e-uat").read().get("history", []) == []
    log = lab.airflow.get(
        f"/api/v2/dags/{DAG}/dagRuns/{run['dag_run_id']}/taskInstances/preparation.run_refused/logs/1?full_content=true"
    )
    assert "skip_reason: required when skipping validation" in json.dumps(log)


def test_a_valid_form_is_accepted_and_honoured(lab) -> None:
    SimulatedWorld("e2e-uat").reset(healthy_world())
    code, run = post_run(
        lab,
        DAG,
        {
            "dry_run": True,
            "max_weight": 100,
            "approval_timeout": "30m",
            "skip_phases": ["release_monitoring"],
            "skip_reason": "watched by hand tonight",
        },
    )
    assert code == 200, run
    deadline = time.time() + 120
    while (scope := lab.airflow.xcom(DAG, run["dag_run_id"], "preparation.plan_wave", "scope")) is None:
        assert lab.airflow.run_state(DAG, run["dag_run_id"]) in ("queued", "running") and time.time() < deadline
        time.sleep(1)
    assert scope["approval_timeout"] == 1800 and scope["skip_phases"] == ["release_monitoring"]
    assert scope["skip_reason"] == "watched by hand tonight" and scope["max_weight"] == 100
    # plan_wave pushes its scope while it runs; the scheduler skips run_refused only after it succeeded.
    while (refused := lab.airflow.task_instances(DAG, run["dag_run_id"])["preparation.run_refused"]["state"]) in (
        None,
        "scheduled",
        "queued",
    ):
        assert time.time() < deadline, "run_refused never decided"
        time.sleep(1)
    assert refused == "skipped"
    lab.airflow.end_unfinished_runs([DAG])  # accepted and planned is what this test is about
