"""Whole waves through the Kubernetes driver: dag.test() against the real control plane (tests/kube.py:
kube-apiserver, the CronJob/Job/Deployment controllers, kube-scheduler, kwok, the Fargate emulation), the
official client reaching it through the cncf-kubernetes KubernetesHook and a kubeconfig. One CronJob and one
Deployment move to green; then both are rolled back. Routing and metrics stay simulated here (the lab's
e2e has them real).

A real CronJob ticks once a minute (`* * * * *`), so each wave waits for real minute ticks: green's first
run, then one more run during parallel operation (timeouts allow a tick plus start-up). Blue has been
running before each wave: its lastScheduleTime is set back, and the CronJob controller runs the missed
minute at once. The stand-in's per-namespace Job faults become kwok's pod knobs written onto green's
CronJob once it is handed over (after the copy and its drift check, as a fault of green's environment);
a green Job "nearly always running" becomes one green Job running for 20 s while the traffic gate fails.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from include.slow_injection.drivers.kubernetes import ACTIVE_SINCE
from include.slow_injection.kubernetes.timestamps import from_rfc3339
from tests.support.kube import wait_for
from tests.support.kube_support import (
    KWOK_DELAY,
    KWOK_FAIL,
    KWOK_FAIL_DELAY,
    KWOK_FAIL_JITTER,
    KWOK_JITTER,
    SCHEDULED_AT,
    TICK,
    Shop,
    assert_exactly_once,
    job_end,
    job_failed,
    k8s_wave,
    set_job_pods,
)
from tests.support.waves import run_wave, weights_history

pytestmark = [pytest.mark.airflow, pytest.mark.usefixtures("airflow_db")]


class Meanwhile(threading.Thread):
    """While dag.test runs: once `when()` holds, `then()` once (what green's environment does to it)."""

    def __init__(self, when: Callable[[], Any], then: Callable[[Any], Any]) -> None:
        super().__init__(daemon=True)
        self.when, self.then, self.result, self.error = when, then, None, None
        self.stopping = threading.Event()

    def run(self) -> None:
        try:
            while not self.stopping.is_set():
                try:
                    seen = self.when()
                except Exception:
                    seen = None
                if seen:
                    self.result = self.then(seen) or seen
                    return
                time.sleep(0.2)
        except Exception as err:
            self.error = err

    def __enter__(self) -> Meanwhile:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.join(5)


def handed_over(shop: Shop) -> Callable[[], bool]:
    return lambda: (shop.cronjob(shop.green) or {}).get("spec", {}).get("suspend") is False


def test_a_cronjob_and_a_deployment_move_to_green(tmp_path: Path, world, shop) -> None:
    world.reset(
        {"routers": {"web": {"blue": 100, "green": 0}}, "metrics": {'error_ratio{service="web",env="green"}': 0.001}}
    )
    shop.run_blue_now()  # so "ran on both sides, exactly once" does not hang on start-up timing
    state, tis = run_wave(tmp_path, world, k8s_wave(world.path.stem, shop))
    assert state == "success", {k: v for k, v in tis.items() if v not in ("success", "skipped")}
    assert shop.suspended(shop.blue) is True
    assert shop.suspended(shop.green) is False
    green_web = shop.deployment(shop.green)
    assert green_web["spec"]["replicas"] == 2 and green_web["status"]["readyReplicas"] == 2
    assert "nodeSelector" not in green_web["spec"]["template"]["spec"]
    pods = shop.api.list("CoreV1Api", "list_namespaced_pod", shop.green, label_selector="app=web")
    assert {p["spec"]["schedulerName"] for p in pods} == {"fargate-scheduler"}  # green's pods run on Fargate
    assert shop.deployment(shop.blue)["spec"]["replicas"] == 0  # blue retired after release
    assert weights_history(world) == [50, 100]
    jobs = shop.jobs()
    assert {j["metadata"]["namespace"] for j in jobs} == {shop.blue, shop.green}
    assert len(shop.jobs(shop.green)) >= 2  # the first run, and the one parallel operation watched
    assert tis["parallel_operation.jobs_report"] == "success" and tis["parallel_operation.pods_web"] == "success"
    assert_exactly_once(jobs)


def test_a_failed_traffic_gate_rolls_both_back_to_blue(tmp_path: Path, world, shop) -> None:
    """The 50 % gate fails while a green Job runs: rollback hands the schedule back to blue only once
    that Job has ended, and the next run is blue's."""
    world.reset(
        {"routers": {"web": {"blue": 100, "green": 0}}, "metrics": {'error_ratio{service="web",env="green"}': 0.001}}
    )
    shop.run_blue_now()
    slow = {KWOK_DELAY: "20000ms", KWOK_JITTER: "20000ms"}

    def at_50() -> bool:
        return world.read()["routers"]["web"]["green"] >= 50

    def running_slow_green_job() -> dict | None:
        return next(
            (
                j
                for j in shop.jobs(shop.green)
                if job_end(j) is None
                and j["status"].get("startTime")
                and j["metadata"]["creationTimestamp"] >= slowed.result
            ),
            None,
        )

    def fail_the_gate(job: dict) -> dict:
        world.update(lambda s: s["metrics"].update({'error_ratio{service="web",env="green"}': 0.2}))
        return job

    # Green's runs take 20 s from the 50 % step on; the gate fails once such a run is under way.
    with (
        Meanwhile(
            at_50,
            lambda _: (
                set_job_pods(shop.api, shop.green, "report", annotations=slow),
                time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            )[1],
        ) as slowed,
        Meanwhile(lambda: slowed.result and running_slow_green_job(), fail_the_gate) as failing,
    ):
        state, tis = run_wave(tmp_path, world, k8s_wave(world.path.stem, shop, step_bake=TICK))
    assert slowed.error is None and failing.error is None
    assert state == "failed"
    assert tis["gradual_transition.web.step1_50pct.gate_error-rate"] == "failed"
    assert tis["rollback.jobs_to_blue"] == "success"
    assert weights_history(world) == [50, 0]
    assert shop.suspended(shop.blue) is False  # the job runs on blue again
    assert shop.suspended(shop.green) is True
    assert shop.deployment(shop.blue)["spec"]["replicas"] == 2
    running = failing.result
    assert running is not None, "no green Job was running when the gate failed"
    green_job = next(j for j in shop.jobs(shop.green) if j["metadata"]["name"] == running["metadata"]["name"])
    resumed = shop.cronjob(shop.blue)["metadata"]["annotations"][ACTIVE_SINCE]
    assert from_rfc3339(resumed) >= from_rfc3339(job_end(green_job)), "blue resumed while green's Job ran"
    last_green = green_job["metadata"]["annotations"][SCHEDULED_AT]
    wait_for(
        lambda: [
            j for j in shop.jobs(shop.blue) if j["metadata"]["annotations"][SCHEDULED_AT] > last_green and job_end(j)
        ],
        "blue's next run after the rollback",
        timeout=TICK,
    )
    assert shop.jobs()[-1]["metadata"]["namespace"] == shop.blue  # new runs happen on blue
    assert_exactly_once(shop.jobs())


def test_a_failing_green_job_hands_the_schedule_back_to_blue(tmp_path: Path, world, shop) -> None:
    world.reset({"routers": {"web": {"blue": 100, "green": 0}}})
    shop.run_blue_now()
    fail = ({KWOK_FAIL_DELAY: "500ms", KWOK_FAIL_JITTER: "500ms"}, {KWOK_FAIL: "true"})
    with Meanwhile(
        handed_over(shop), lambda _: set_job_pods(shop.api, shop.green, "report", annotations=fail[0], labels=fail[1])
    ) as failing:
        state, tis = run_wave(tmp_path, world, k8s_wave(world.path.stem, shop))
    assert failing.error is None
    assert state == "failed"
    assert tis["migrate_scheduled_jobs.report.handover.wait_first_run"] == "failed"
    assert tis["rollback.jobs_to_blue"] == "success"
    assert shop.suspended(shop.blue) is False
    assert shop.suspended(shop.green) is True
    assert weights_history(world) == []  # users never moved
    assert [job_failed(j) for j in shop.jobs(shop.green)] == [True]
    assert_exactly_once(shop.jobs())
