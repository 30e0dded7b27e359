"""The edited-Ingress drill on a real Airflow and the lab: a wave routes the web service through the Ingress
(alb_ingress) and the lab's route controller applies it to HAProxy, as the AWS Load Balancer Controller
would to the ALB; someone edits the Ingress mid-bake to another split. The controller serves that split
(it owns the data plane), the next traffic step reads it back as a split this project did not set and
refuses to move on from it, and the rollback returns all traffic to blue: the run never promotes on it."""

from __future__ import annotations

import json
import time

import pytest
from kubernetes import client

from include.slow_injection.lab import route_controller as rc
from include.slow_injection.lab.kube import seed
from include.slow_injection.ports import Weights

pytestmark = pytest.mark.e2e
DAG = "wave_e2e-ingress"


def edit_ingress(lab, blue: int, green: int) -> None:
    """What `kubectl annotate --overwrite` by someone else does: a new split in the action, no record."""
    action = {
        "type": "forward",
        "forwardConfig": {
            "targetGroups": [
                {"serviceName": seed.BLUE_SERVICE, "servicePort": "80", "weight": blue},
                {"serviceName": seed.GREEN_SERVICE, "servicePort": "80", "weight": green},
            ]
        },
    }
    client.NetworkingV1Api(lab.lab.kube_client()).patch_namespaced_ingress(
        seed.INGRESS, "lab-fargate", {"metadata": {"annotations": {rc.ACTIONS + seed.ACTION: json.dumps(action)}}}
    )


def test_an_ingress_edited_mid_bake_is_detected_and_the_run_never_promotes_on_it(lab) -> None:
    assert lab.lab.route_controller == "ingress"  # the lab wave routes through the Ingress: its controller runs
    run_id = lab.airflow.trigger(DAG)
    seen: list[Weights] = []

    def poll() -> Weights:
        w = lab.router.get_weights()  # HAProxy itself: what the controller applied
        if not seen or seen[-1] != w:
            seen.append(w)
        return w

    deadline = time.time() + 300
    while poll().green != 5:
        assert lab.airflow.run_state(DAG, run_id) not in ("success", "failed"), f"run ended before 5 %: {seen}"
        assert time.time() < deadline, f"green never reached 5 % at HAProxy: {seen}"
        time.sleep(0.2)
    step1 = "gradual_transition.web.step1_5pct.set_traffic"
    while lab.airflow.task_instances(DAG, run_id).get(step1, {}).get("state") != "success":
        # the step returns reconcile_delay (2 s) after its write: the bake starts then
        assert time.time() < deadline, f"{step1} never succeeded: {seen}"
        time.sleep(0.2)
    edit_ingress(lab, 40, 60)  # mid-bake (the 5 % step bakes 12 s)
    state = lab.airflow.wait_for_run(DAG, run_id, timeout=300, on_poll=poll)
    tis = lab.airflow.task_instances(DAG, run_id)
    end = time.time() + 10  # the controller applies the rollback's write about 1 s after it
    while poll() != Weights(100, 0) and time.time() < end:
        time.sleep(0.2)
    states = {k: v["state"] for k, v in tis.items()}
    assert state == "failed", states
    assert Weights.green_at(60) in seen, f"the controller never served the edit: {seen}"
    assert 100 not in [w.green for w in seen], f"promoted on a split it did not set: {seen}"
    assert seen[-1] == Weights(100, 0), seen
    assert states["gradual_transition.web.step2_100pct.set_traffic"] == "failed", states
    assert states["rollback.traffic_to_blue"] == "success", states
    assert states["rollback.wave_rolled_back"] == "failed", states
    log = lab.lab.controller_log.read_text()
    assert "set to {'blue': 40, 'green': 60}" in log, log[-2000:]  # the edit reached HAProxy through the controller
    assert "set to {'blue': 100, 'green': 0} (was {'blue': 40, 'green': 60})" in log, log[-2000:]  # then the rollback
