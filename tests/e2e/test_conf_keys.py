"""A REST trigger whose conf has a key the form does not know (`dryrun`, a typo of `dry_run`) is a run
refused by plan_wave before anything acts, naming the key and the valid ones: accepted, it would have
started a live migration."""

from __future__ import annotations

import json

import pytest

from include.slow_injection.drivers.simulated import SimulatedWorld
from tests.support.e2e_runs import post_run
from tests.support.waves import healthy_world

DAG = "wave_e2e-uat"  # the simulated wave the trigger-form tests use too
pytestmark = pytest.mark.e2e


def test_an_unknown_conf_key_refuses_the_run_and_nothing_acts(lab) -> None:
    SimulatedWorld("e2e-uat").reset(healthy_world())
    code, run = post_run(lab, DAG, {"dryrun": True})
    assert code == 200  # Airflow accepts extra conf keys: the DAG must refuse them itself
    assert lab.airflow.wait_for_run(DAG, run["dag_run_id"], timeout=120) == "failed"
    tis = lab.airflow.task_instances(DAG, run["dag_run_id"])
    assert tis["preparation.run_refused"]["state"] == "failed"
    assert SimulatedWorld("e2e-uat").read().get("history", []) == []
    log = json.dumps(
        lab.airflow.get(
            f"/api/v2/dags/{DAG}/dagRuns/{run['dag_run_id']}/taskInstances/"
            "preparation.run_refused/logs/1?full_content=true"
        )
    )
    assert "unknown key(s) 'dryrun'" in log and "dry_run" in log, log[-2000:]
