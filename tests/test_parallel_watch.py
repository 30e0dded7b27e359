"""Parallel operation watches both sides through the Kubernetes driver: green's runs of a moved job
(count, success rate, duration, pod restarts) and blue's user-facing pods (restarts), on the real control
plane: the Job controller runs each Job, kwok's pod stages make its pod complete or fail, the TTL and
garbage collector controllers remove what they remove.

The Jobs are started the way the CronJob controller starts them (owned by green's CronJob, with their
scheduled time), by the test, so that each case takes seconds rather than one real minute tick per run
(the controller's own ticks are exercised by tests/test_kubernetes_wave_runs.py). The stand-in's knobs
become kwok's pod annotations; a container restart is written to the pod's status the way the kubelet
reports one. The blue pod window is judged on the driver's clock moved forward, not waited for."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from include.slow_injection.drivers.kubernetes import KubeAccess, KubernetesPlatform
from tests.support.kube import wait_for
from tests.support.kube_support import RARELY, Shop, owned_job, restart_container

LIMITS = {"runs": 2, "min_success_rate": 1.0, "max_duration": 30.0, "max_pod_restarts": 0}


class Clock:
    """Real time, plus however far the test moved it on."""

    def __init__(self) -> None:
        self.offset = dt.timedelta()

    def __call__(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC) + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += dt.timedelta(seconds=seconds)


@pytest.fixture
def world(kube):
    """The report CronJob handed over to green (a schedule that never fires during a test: the runs are
    the test's); blue's web Deployment scaled to 0 until a test scales it."""
    shop = Shop.seed(kube, schedule=RARELY, replicas=0, wait_ready=False)
    clock = Clock()
    driver = KubernetesPlatform(shop.api, shop.api, KubernetesPlatform.Settings(), clock=clock)
    driver.deploy_green(shop.report, apply=True)
    driver.activate(shop.report, "green", apply=True)
    return shop, driver, clock


def run(shop: Shop, name: str, **how: object) -> None:
    owned_job(shop.api, shop.green, "report", name, **how)


def verdict(driver: KubernetesPlatform, shop: Shop, since: float, limits: dict, timeout: float = 30.0):
    return wait_for(
        lambda: (r := driver.watch_jobs(shop.report, "green", since, limits)).state != "waiting" and r,
        "the watch's verdict",
        timeout,
    )


def test_two_clean_green_runs_pass(world) -> None:
    shop, driver, _ = world
    since = time.time() - 1
    run(shop, "report-1")
    wait_for(
        lambda: "1 finished run(s) (1 succeeded)" in driver.watch_jobs(shop.report, "green", since, LIMITS).detail,
        "the first run counted",
    )
    assert driver.watch_jobs(shop.report, "green", since, LIMITS).state == "waiting"  # it waits for the second run
    run(shop, "report-2")
    reading = verdict(driver, shop, since, LIMITS)
    assert reading.state == "ready" and "2 finished run(s) (2 succeeded)" in reading.detail


def test_a_failed_run_fails_the_watch_at_once(world) -> None:
    shop, driver, _ = world
    since = time.time() - 1
    run(shop, "report-1", fail=True)
    reading = verdict(driver, shop, since, LIMITS)
    assert reading.state == "failed" and "success rate cannot reach 1" in reading.detail
    assert len(shop.api.list("BatchV1Api", "list_namespaced_job", shop.green)) == 1  # no need for a second run


def test_a_lower_success_floor_tolerates_one_failure_in_four(world) -> None:
    shop, driver, _ = world
    since = time.time() - 1
    limits = {**LIMITS, "runs": 4, "min_success_rate": 0.75}
    run(shop, "report-1", fail=True)
    for i in (2, 3, 4):
        run(shop, f"report-{i}")
    reading = verdict(driver, shop, since, limits)
    assert reading.state == "ready", reading.detail
    assert "4 finished run(s) (3 succeeded)" in reading.detail


def test_a_slow_run_fails_on_duration_even_before_it_ends(world) -> None:
    shop, driver, _ = world
    since = time.time() - 1
    run(shop, "report-1", run_ms=600_000)
    reading = verdict(driver, shop, since, {**LIMITS, "max_duration": 3.0})
    assert reading.state == "failed" and "over 3s" in reading.detail
    [job] = shop.api.list("BatchV1Api", "list_namespaced_job", shop.green)
    assert not job["status"].get("completionTime")  # still running


def test_pod_restarts_of_a_run_fail_the_watch(world) -> None:
    shop, driver, _ = world
    since = time.time() - 1
    run(shop, "report-1", run_ms=600_000)
    pod = wait_for(
        lambda: [
            p
            for p in shop.api.list("CoreV1Api", "list_namespaced_pod", shop.green, label_selector="job-name=report-1")
            if (p.get("status") or {}).get("containerStatuses")
        ],
        "the run's pod running",
    )[0]
    assert driver.watch_jobs(shop.report, "green", since, LIMITS).state == "waiting"
    restart_container(shop.api, shop.green, pod["metadata"]["name"], restarts=2)
    reading = verdict(driver, shop, since, LIMITS)
    assert reading.state == "failed" and "2 pod restart(s), over 0" in reading.detail


def test_blue_pods_pass_after_the_window_and_fail_on_a_restart(world) -> None:
    shop, driver, clock = world
    limits = {"window": 30.0, "max_restarts": 0}
    since = clock().timestamp()
    assert driver.watch_pods(shop.web, "blue", since, limits).state == "waiting"  # no pods yet: never a pass
    shop.api.patch("Deployment", shop.blue, "web", {"spec": {"replicas": 2}})
    wait_for(lambda: (shop.deployment(shop.blue)["status"].get("readyReplicas") or 0) == 2, "blue's pods ready")
    reading = driver.watch_pods(shop.web, "blue", since, limits)
    assert reading.state == "waiting" and "2 pod(s)" in reading.detail  # pods, window not over
    clock.advance(30)
    assert driver.watch_pods(shop.web, "blue", since, limits).state == "ready"
    pod = shop.api.list("CoreV1Api", "list_namespaced_pod", shop.blue, label_selector="app=web")[0]
    restart_container(KubeAccess(shop.kube.api_client), shop.blue, pod["metadata"]["name"])
    failed = driver.watch_pods(shop.web, "blue", since, limits)
    assert failed.state == "failed" and pod["metadata"]["name"] in failed.detail
