"""Whole waves through the Kubernetes driver: dag.test() against the stand-in API server, its
controllers running in real time (a CronJob every 10 s), the official client reaching it through
the cncf-kubernetes KubernetesHook and a kubeconfig. One CronJob and one Deployment move to green;
then both are rolled back. Routing and metrics stay simulated here (the lab's e2e has them real)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from include.slow_injection.lab.kube.api_server import KubernetesTestServer
from include.slow_injection.lab.kube.controllers import StandInControllers
from include.slow_injection.lab.kube.seed import seed
from tests.test_wave_runs import run_wave, weights_history
from tests.waves import metric_gate, sim

pytestmark = [pytest.mark.airflow, pytest.mark.usefixtures("airflow_db")]


@pytest.fixture
def cluster(tmp_path: Path, monkeypatch):  # noqa: ANN001, ANN201
    with KubernetesTestServer() as server:
        seed(server.store, "shop", "shop-fargate")
        controllers = StandInControllers(server.store)
        stop = controllers.run_in_background(0.2)
        kubeconfig = tmp_path / "kubeconfig.json"
        kubeconfig.write_text(json.dumps(server.kubeconfig()))
        monkeypatch.setenv("AIRFLOW_CONN_STAND_IN", json.dumps(
            {"conn_type": "kubernetes", "extra": {"kube_config_path": str(kubeconfig)}}))
        yield server, controllers
        stop.set()


def k8s_wave(world: str) -> dict:
    platform = {"type": "kubernetes", "connection": "stand_in", "add_labels": {"compute": "fargate"}}
    return {
        "id": "k8s", "owner": "team-test",
        "environments": {"blue": {"name": "eks-ec2", "platform": platform},
                         "green": {"name": "eks-fargate", "platform": dict(platform)}},
        "retries": {"count": 2, "delay": 0.5}, "rollback": {"retries": 2, "retry_delay": 0.5},
        "services": [
            {"name": "report", "exposure": "scheduled",
             "workload": {"kind": "CronJob", "namespace": "shop", "name": "report", "green_namespace": "shop-fargate"},
             "handover": {"margin": 3, "wait_timeout": 60, "first_run_timeout": 60}},
            {"name": "web", "exposure": "exposed",
             "workload": {"kind": "Deployment", "namespace": "shop", "name": "web", "green_namespace": "shop-fargate"},
             "router": sim(world), "rollout_timeout": 60,
             "traffic_steps": [{"weight": 50, "bake": 0.4}, {"weight": 100, "bake": 0.4}],
             "gates": [metric_gate(world, "error-rate", 'error_ratio{service="${service}",env="${env}"}')]},
        ],
        "parallel_operation": {"jobs": {"runs": 1, "timeout": 60}, "blue_pods": {"window": 2}},
    }


def blue_has_run(controllers: StandInControllers, timeout: float = 15.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not any(ns == "shop" for ns, _, _ in controllers.runs):
        assert time.monotonic() < deadline, "blue's CronJob never ran"
        time.sleep(0.2)


def cronjob(server, namespace: str) -> dict:  # noqa: ANN001
    return server.store.get("cronjobs", namespace, "report")


def assert_exactly_once(controllers: StandInControllers) -> None:
    times = sorted(t for _, _, t in controllers.runs)
    assert len(times) == len(set(times)), "a scheduled time ran twice"
    assert all(b - a == dt.timedelta(seconds=10) for a, b in zip(times, times[1:])), f"a gap: {times}"
    assert not controllers.skipped
    jobs = sorted((j["status"]["startTime"], j["status"].get("completionTime") or "9999", j["metadata"]["namespace"])
                  for j in controllers.store.list("jobs", None))
    for (_, end, ns), (start, _, next_ns) in zip(jobs, jobs[1:]):
        assert ns == next_ns or start >= end, f"a {next_ns} Job started at {start} while a {ns} Job ran until {end}"


def test_a_cronjob_and_a_deployment_move_to_green(tmp_path: Path, world, cluster) -> None:  # noqa: ANN001
    server, controllers = cluster
    world.reset({"routers": {"web": {"blue": 100, "green": 0}},
                 "metrics": {'error_ratio{service="web",env="green"}': 0.001}})
    blue_has_run(controllers)  # so "ran on both sides, exactly once" does not hang on start-up timing
    state, tis = run_wave(tmp_path, world, k8s_wave(world.path.stem))
    assert state == "success", {k: v for k, v in tis.items() if v not in ("success", "skipped")}
    assert cronjob(server, "shop")["spec"]["suspend"] is True
    assert cronjob(server, "shop-fargate")["spec"]["suspend"] is False
    green_web = server.store.get("deployments", "shop-fargate", "web")
    assert green_web["spec"]["replicas"] == 2 and green_web["status"]["readyReplicas"] == 2
    assert "nodeSelector" not in green_web["spec"]["template"]["spec"]
    assert server.store.get("deployments", "shop", "web")["spec"]["replicas"] == 0  # blue retired after release
    assert weights_history(world) == [50, 100]
    assert {ns for ns, _, _ in controllers.runs} == {"shop", "shop-fargate"}
    assert tis["parallel_operation.jobs_report"] == "success" and tis["parallel_operation.pods_web"] == "success"
    assert_exactly_once(controllers)


def test_a_failed_traffic_gate_rolls_both_back_to_blue(tmp_path: Path, world, cluster) -> None:  # noqa: ANN001
    server, controllers = cluster
    server.store.faults["shop-fargate"] = {"job-seconds": "8"}  # a green Job is nearly always running
    world.reset({"routers": {"web": {"blue": 100, "green": 0}},
                 "metrics": {'error_ratio{service="web",env="green"}': {
                     "router": "web", "when_green_at_least": 50, "value": 0.2, "otherwise": 0.001}}})
    state, tis = run_wave(tmp_path, world, k8s_wave(world.path.stem))
    assert state == "failed"
    assert tis["gradual_transition.web.step1_50pct.gate_error-rate"] == "failed"
    assert tis["rollback.jobs_to_blue"] == "success"
    assert weights_history(world) == [50, 0]
    assert cronjob(server, "shop")["spec"]["suspend"] is False  # the job runs on blue again
    assert cronjob(server, "shop-fargate")["spec"]["suspend"] is True
    assert server.store.get("deployments", "shop", "web")["spec"]["replicas"] == 2
    runs_before = len(controllers.runs)
    controllers_wait_until(controllers, lambda: len(controllers.runs) >= runs_before + 2)
    assert controllers.runs[-1][0] == "shop"  # new runs happen on blue
    assert_exactly_once(controllers)


def test_a_failing_green_job_hands_the_schedule_back_to_blue(tmp_path: Path, world, cluster) -> None:  # noqa: ANN001
    server, controllers = cluster
    server.store.faults["shop-fargate"] = {"job-outcome": "fail"}
    world.reset({"routers": {"web": {"blue": 100, "green": 0}}})
    state, tis = run_wave(tmp_path, world, k8s_wave(world.path.stem))
    assert state == "failed"
    assert tis["migrate_scheduled_jobs.report.handover.wait_first_run"] == "failed"
    assert tis["rollback.jobs_to_blue"] == "success"
    assert cronjob(server, "shop")["spec"]["suspend"] is False
    assert cronjob(server, "shop-fargate")["spec"]["suspend"] is True
    assert weights_history(world) == []  # users never moved
    assert_exactly_once(controllers)


def controllers_wait_until(controllers: StandInControllers, check, timeout: float = 30.0) -> None:  # noqa: ANN001
    import time

    deadline = time.time() + timeout
    while not check():
        assert time.time() < deadline, "the stand-in controllers did not get there in time"
        time.sleep(0.2)
