"""Scheduled jobs move without a gap or a double run: runs every minute across a handover and a
rollback, on the API test server with a simulated CronJob controller and a controllable clock."""

from __future__ import annotations

import datetime as dt

import pytest
from kubernetes import config

from include.slow_injection.drivers.kubernetes import KubeAccess, KubernetesPlatform
from include.slow_injection.kubernetes.handover import safe_moment
from include.slow_injection.ports import JobStillActive
from include.slow_injection.lab.kube.api_server import KubernetesTestServer
from include.slow_injection.lab.kube.controllers import StandInControllers
from tests.test_kubernetes_platform import CRONJOB, blue_cronjob

START = dt.datetime(2026, 11, 26, 2, 0, 0, tzinfo=dt.timezone.utc)
MARGIN = dt.timedelta(seconds=20)


@pytest.fixture
def world():  # noqa: ANN201
    with KubernetesTestServer() as server:
        api = KubeAccess(config.new_client_from_config_dict(server.kubeconfig()))
        controller = StandInControllers(server.store, START)
        server.store.put("cronjobs", blue_cronjob(), creating=True)
        yield server, api, KubernetesPlatform(api, api, KubernetesPlatform.Settings()), controller


def hand_over(server, api, driver, controller, to: str) -> None:  # noqa: ANN001
    """Wait for a safe moment, carry lastScheduleTime over, then suspend the old side first."""
    source_ns = "shop" if to == "green" else "shop-fargate"
    target_ns = "shop-fargate" if to == "green" else "shop"
    while not safe_moment(api.get("CronJob", source_ns, "report"), controller.now, MARGIN).safe:
        controller.tick()
    changes = [c.target for c in driver.activate(CRONJOB, to, apply=True)]
    assert changes[0].startswith(f"{'blue' if to == 'green' else 'green'} CronJob {source_ns}/")  # suspended first
    assert changes[-1] == f"{to} CronJob {target_ns}/report"


def scheduled_times(controller: StandInControllers) -> list[dt.datetime]:
    return sorted(t for _, _, t in controller.runs)


def test_runs_every_minute_across_a_handover_and_a_rollback_have_no_duplicate_and_no_gap(world) -> None:  # noqa: ANN001
    server, api, driver, controller = world
    for _ in range(150):
        controller.tick()
    driver.deploy_green(CRONJOB, apply=True)  # created suspended
    for _ in range(35):
        controller.tick()
    hand_over(server, api, driver, controller, "green")
    for _ in range(200):
        controller.tick()
    hand_over(server, api, driver, controller, "blue")  # rollback, same rule
    for _ in range(130):
        controller.tick()
    times = scheduled_times(controller)
    expected = [START + dt.timedelta(minutes=m) for m in range(1, len(times) + 1)]
    assert times == expected, "a scheduled time ran twice or not at all"
    where = {ns for ns, _, _ in controller.runs}
    assert where == {"shop", "shop-fargate"}  # both sides really ran jobs


def test_without_carrying_last_schedule_time_green_would_run_a_time_blue_already_ran(world) -> None:  # noqa: ANN001
    server, api, driver, controller = world
    for _ in range(150):
        controller.tick()
    driver.deploy_green(CRONJOB, apply=True)
    for _ in range(35):
        controller.tick()
    while not safe_moment(api.get("CronJob", "shop", "report"), controller.now, MARGIN).safe:
        controller.tick()
    driver.activate(CRONJOB, "blue", apply=True)  # blue only: nothing to carry yet
    job = server.store.get("cronjobs", "shop", "report")
    job["spec"]["suspend"] = True
    server.store.put("cronjobs", job)
    green = server.store.get("cronjobs", "shop-fargate", "report")
    green["spec"]["suspend"] = False  # unsuspended by hand, without the carry-over
    server.store.put("cronjobs", green)
    controller.tick()
    times = scheduled_times(controller)
    assert len(times) != len(set(times)), "expected the controller's catch-up to duplicate a run"


def test_a_handover_requested_while_a_blue_job_is_active_waits(world) -> None:  # noqa: ANN001
    server, api, driver, controller = world
    job = server.store.get("cronjobs", "shop", "report")
    job["status"] = {"active": [{"name": "report-123"}]}
    server.store.put("cronjobs", job)
    moment = safe_moment(api.get("CronJob", "shop", "report"), START + dt.timedelta(seconds=10), MARGIN)
    assert not moment.safe and "1 Job(s) still active in blue" in moment.reason
    job["status"] = {}
    server.store.put("cronjobs", job)
    late = safe_moment(api.get("CronJob", "shop", "report"), START + dt.timedelta(seconds=50), MARGIN)
    assert not late.safe and "less than 20s away" in late.reason
    assert safe_moment(api.get("CronJob", "shop", "report"), START + dt.timedelta(seconds=10), MARGIN).safe


def test_a_rollback_while_green_runs_a_job_resumes_blue_only_after_it_ends_with_no_gap(world) -> None:  # noqa: ANN001
    server, api, driver, controller = world
    driver.now = lambda: controller.now
    for _ in range(90):
        controller.tick()
    driver.deploy_green(CRONJOB, apply=True)
    hand_over(server, api, driver, controller, "green")
    green = server.store.get("cronjobs", "shop-fargate", "report")
    green["metadata"].setdefault("annotations", {})["stand-in.slow-injection.io/job-seconds"] = "45"
    server.store.put("cronjobs", green)
    while not server.store.get("cronjobs", "shop-fargate", "report").get("status", {}).get("active"):
        controller.tick()
    driver.restore_blue(CRONJOB, apply=True)  # green starts nothing new
    waited = 0
    while True:
        try:
            driver.activate(CRONJOB, "blue", apply=True)
            break
        except JobStillActive:
            assert server.store.get("cronjobs", "shop", "report")["spec"]["suspend"] is True
            controller.tick()
            waited += 1
    assert 30 <= waited <= 46  # blue resumed when green's 45 s Job ended, not before
    for _ in range(150):
        controller.tick()
    times = scheduled_times(controller)
    assert times == [START + dt.timedelta(minutes=m) for m in range(1, len(times) + 1)]
    assert not controller.skipped
