"""Parallel operation watches both sides through the Kubernetes driver: green's runs of a moved job
(count, success rate, duration, pod restarts) and blue's user-facing pods (restarts), on the API
test server with the stand-in controllers and a controllable clock."""

from __future__ import annotations

import datetime as dt

import pytest
from kubernetes import config

from include.slow_injection.drivers.kubernetes import KubeAccess, KubernetesPlatform
from include.slow_injection.lab.kube.api_server import KubernetesTestServer
from include.slow_injection.lab.kube.controllers import KNOB, StandInControllers
from tests.test_kubernetes_platform import CRONJOB, DEPLOYMENT, blue_cronjob, blue_deployment

START = dt.datetime(2026, 11, 26, 2, 0, 30, tzinfo=dt.timezone.utc)
LIMITS = {"runs": 2, "min_success_rate": 1.0, "max_duration": 30.0, "max_pod_restarts": 0}


@pytest.fixture
def world():  # noqa: ANN201
    with KubernetesTestServer() as server:
        api = KubeAccess(config.new_client_from_config_dict(server.kubeconfig()))
        controller = StandInControllers(server.store, START)
        server.store.put("cronjobs", blue_cronjob(), creating=True)
        server.store.put("deployments", blue_deployment(), creating=True)
        driver = KubernetesPlatform(api, api, KubernetesPlatform.Settings(), clock=lambda: controller.now)
        driver.deploy_green(CRONJOB, apply=True)
        driver.activate(CRONJOB, "green", apply=True)
        yield server, driver, controller


def knob(server, name: str, value: str) -> None:  # noqa: ANN001
    job = server.store.get("cronjobs", "shop-fargate", "report")
    job["metadata"].setdefault("annotations", {})[KNOB + name] = value
    server.store.put("cronjobs", job)


def watch_until_verdict(driver, controller, limits: dict, seconds: int = 400):  # noqa: ANN001, ANN201
    since = controller.now.timestamp()
    for _ in range(seconds):
        reading = driver.watch_jobs(CRONJOB, "green", since, limits)
        if reading.state != "waiting":
            return reading, controller.now
        controller.tick(1)
    return reading, controller.now


def test_two_clean_green_runs_pass(world) -> None:  # noqa: ANN001
    server, driver, controller = world
    reading, at = watch_until_verdict(driver, controller, LIMITS)
    assert reading.state == "ready" and "2 finished run(s) (2 succeeded)" in reading.detail
    assert at >= START.replace(second=0) + dt.timedelta(minutes=2)  # it really waited for the second run


def test_a_failed_run_fails_the_watch_at_once(world) -> None:  # noqa: ANN001
    server, driver, controller = world
    knob(server, "job-outcome", "fail")
    reading, at = watch_until_verdict(driver, controller, LIMITS)
    assert reading.state == "failed" and "success rate cannot reach 1" in reading.detail
    assert at < START + dt.timedelta(minutes=1, seconds=10)  # no need to wait for the second run


def test_a_lower_success_floor_tolerates_one_failure_in_four(world) -> None:  # noqa: ANN001
    server, driver, controller = world
    knob(server, "job-outcome", "fail")
    since = controller.now.timestamp()
    for _ in range(65):
        controller.tick()
    knob(server, "job-outcome", "succeed")
    for _ in range(200):
        controller.tick()
    reading = driver.watch_jobs(CRONJOB, "green", since, {**LIMITS, "runs": 4, "min_success_rate": 0.75})
    assert reading.state == "ready", reading.detail


def test_a_slow_run_fails_on_duration_even_before_it_ends(world) -> None:  # noqa: ANN001
    server, driver, controller = world
    knob(server, "job-seconds", "50")
    reading, _ = watch_until_verdict(driver, controller, LIMITS)
    assert reading.state == "failed" and "over 30s" in reading.detail


def test_pod_restarts_of_a_run_fail_the_watch(world) -> None:  # noqa: ANN001
    server, driver, controller = world
    knob(server, "pod-restarts", "2")
    reading, _ = watch_until_verdict(driver, controller, LIMITS)
    assert reading.state == "failed" and "2 pod restart(s), over 0" in reading.detail


def test_blue_pods_pass_after_the_window_and_fail_on_a_restart(world) -> None:  # noqa: ANN001
    server, driver, controller = world
    limits = {"window": 30.0, "max_restarts": 0}
    since = controller.now.timestamp()
    assert driver.watch_pods(DEPLOYMENT, "blue", since, limits).state == "waiting"  # no pods yet: never a pass
    for _ in range(5):
        controller.tick()
    assert driver.watch_pods(DEPLOYMENT, "blue", since, limits).state == "waiting"  # pods, window not over
    for _ in range(30):
        controller.tick()
    assert driver.watch_pods(DEPLOYMENT, "blue", since, limits).state == "ready"
    pod = server.store.get("pods", "shop", "web-1")
    pod["status"]["containerStatuses"][0].update(restartCount=1, lastState={"terminated": {
        "exitCode": 137, "finishedAt": controller.now.strftime("%Y-%m-%dT%H:%M:%SZ")}})
    server.store.put("pods", pod)
    failed = driver.watch_pods(DEPLOYMENT, "blue", since, limits)
    assert failed.state == "failed" and "web-1" in failed.detail
