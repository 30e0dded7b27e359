"""User acceptance in a real Airflow: the approval task waits for input (HITL), shows the evidence,
and is answered through REST API v2 as the UI does: Promote, Roll back, or no answer (the default)."""

from __future__ import annotations

from pathlib import Path

import pytest

from include.slow_injection.drivers.simulated import SimulatedWorld
from tests.support.waves import healthy_world

pytestmark = pytest.mark.e2e

TASK = "validation.approval.uat_approval"


def start(lab, wave_id: str) -> str:
    SimulatedWorld(wave_id).reset(healthy_world())
    return lab.airflow.trigger(f"wave_{wave_id}")


def test_promote_by_a_human_moves_users_and_names_the_approver(lab) -> None:
    run_id = start(lab, "e2e-uat")
    lab.airflow.answer_hitl("wave_e2e-uat", run_id, TASK, "Promote")
    assert lab.airflow.wait_for_run("wave_e2e-uat", run_id, timeout=300) == "success"
    verdict = lab.airflow.xcom("wave_e2e-uat", run_id, TASK, key="verdict")
    assert verdict["status"] == "pass" and verdict["reason"] == "Promote chosen by admin"
    assert SimulatedWorld("e2e-uat").read()["routers"]["web"] == {"blue": 0, "green": 100}
    report = lab.airflow.xcom("wave_e2e-uat", run_id, "post_release.evaluation_report")
    markdown = (Path(report["location"].removeprefix("file:")) / "report.md").read_text()
    assert "User acceptance: Promote by admin" in markdown


def test_the_evidence_is_in_the_approval_request(lab) -> None:
    run_id = start(lab, "e2e-uat")
    details = None
    for _ in range(120):
        pending = lab.airflow.get("/api/v2/dags/~/dagRuns/~/hitlDetails?response_received=false")
        details = next((d for d in pending["hitl_details"] if d["task_instance"]["dag_run_id"] == run_id), None)
        if details:
            break
        import time

        time.sleep(1)
    assert details is not None
    assert details["options"] == ["Promote", "Hold", "Roll back"] and details["defaults"] == ["Roll back"]
    assert "place an order" in details["body"] and "| ready | pass |" in details["body"]  # a health gate's verdict
    lab.airflow.answer_hitl("wave_e2e-uat", run_id, TASK, "Roll back")
    assert lab.airflow.wait_for_run("wave_e2e-uat", run_id, timeout=300) == "failed"
    tis = lab.airflow.task_instances("wave_e2e-uat", run_id)
    assert tis["rollback.traffic_to_blue"]["state"] == "success"
    assert tis["gradual_transition.web.step1_25pct.set_traffic"]["state"] == "skipped"


def test_no_answer_within_the_timeout_takes_the_safe_default(lab) -> None:
    run_id = start(lab, "e2e-uat-timeout")
    assert lab.airflow.wait_for_run("wave_e2e-uat-timeout", run_id, timeout=300) == "failed"
    verdict = lab.airflow.xcom("wave_e2e-uat-timeout", run_id, TASK, key="verdict")
    assert verdict["timed_out"] is True and verdict["chosen"] == "Roll back"
    assert "no answer within 8s" in verdict["reason"]
    tis = lab.airflow.task_instances("wave_e2e-uat-timeout", run_id)
    assert tis["rollback.traffic_to_blue"]["state"] == "success"
