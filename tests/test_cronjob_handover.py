"""Scheduled jobs move without a gap or a double run, on the real control plane (the real CronJob v2, Job
and TTL-after-finished controllers; kwok runs the pods): `* * * * *` CronJobs across a handover and a
rollback, the controller's catch-up that the carried lastScheduleTime prevents, the safe moment, a rollback
that waits for green's running Job, switches asked for right at a tick, and Jobs deleted as soon as they
finish (ttlSecondsAfterFinished: 0) whose scheduled time must not vanish with them.

Real CronJobs tick at most once a minute, so every scenario runs at once, each on a CronJob pair of its own
(a blue and a green namespace), in threads started by one module fixture against the same minute ticks
(T1, T2); each test then checks its scenario. A watcher lists the Jobs every 0.5 s and keeps each one's
scheduled-timestamp annotation, so Jobs deleted later (TTL, history limits) still count.

Dropped from the stand-in version (cannot exist on real Kubernetes): the simulated clock that ticked
through hours in milliseconds (real ticks are a minute apart, so each scenario covers one or two), seconds
in schedules (the stand-in accepted six fields), setting status.active by hand (the controller owns the
status: a running Job stands there instead) and the stand-in's job-seconds knob (kwok's pod-complete
delay). The controller's race is not faked either, with one exception said where it is used: the state a
suspend leaves when it lands between the controller's Job create and its status write (a Job that its
CronJob's status does not name) is set up as that Job, created the way the controller creates it.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from kubernetes import client

from include.slow_injection.drivers.kubernetes import SCHEDULED_AT, KubeAccess, KubernetesPlatform
from include.slow_injection.kubernetes.handover import next_run, safe_moment
from include.slow_injection.kubernetes.timestamps import to_rfc3339
from include.slow_injection.ports import JobStillActive
from tests.support.kube import Kube, wait_for
from tests.support.kube_support import JobRecorder, long_job_annotations, minute_cronjob

MARGIN = dt.timedelta(seconds=10)
LEAD = 20.0  # seconds from the end of the setup to T1 at least (the earliest step is at T1 - 12 s)
JOB_MS = 20_000  # the "long" Jobs


def controller_job(api: KubeAccess, namespace: str, scheduled: float, run_ms: int) -> None:
    """The Job the CronJob controller creates for `scheduled` (its name, owner reference and scheduled-timestamp
    annotation), finished after `run_ms` and deleted at once (ttlSecondsAfterFinished: 0)."""
    owner = api.get("CronJob", namespace, "report")
    meta = {
        "name": f"report-{int(scheduled) // 60}",
        "annotations": {SCHEDULED_AT: to_rfc3339(scheduled)},
        "ownerReferences": [
            {
                "apiVersion": "batch/v1",
                "kind": "CronJob",
                "name": "report",
                "uid": owner["metadata"]["uid"],
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ],
    }
    body = {
        "metadata": meta,
        "spec": {
            "backoffLimit": 0,
            "ttlSecondsAfterFinished": 0,
            "template": {
                "metadata": {"annotations": long_job_annotations(run_ms)},
                "spec": {"containers": [{"name": "job", "image": "report:1"}], "restartPolicy": "Never"},
            },
        },
    }
    client.BatchV1Api(api.api_client).create_namespaced_job(namespace, body)


@dataclass
class Pair:
    """One scenario's CronJob: blue's and green's namespaces, a driver with a client of its own."""

    blue: str
    green: str
    api: KubeAccess
    driver: KubernetesPlatform

    @property
    def workload(self) -> dict[str, Any]:
        return {"kind": "CronJob", "namespace": self.blue, "name": "report", "green_namespace": self.green}

    def ns(self, env: str) -> str:
        return self.green if env == "green" else self.blue

    def suspended(self, env: str) -> bool:
        return bool(self.api.get("CronJob", self.ns(env), "report")["spec"].get("suspend"))

    def status(self, env: str) -> dict[str, Any]:
        return self.api.get("CronJob", self.ns(env), "report").get("status") or {}


@dataclass
class Lab:
    kube: Kube
    t1: float = 0.0
    recorder: JobRecorder | None = None

    @property
    def t2(self) -> float:
        return self.t1 + 60

    def pair(self, run_ms: int = 0, ttl_zero: bool = False) -> Pair:
        blue, green = self.kube.namespace("shop"), self.kube.namespace("green")
        api = KubeAccess(self.kube.plane.api_client())
        api.create("CronJob", blue, minute_cronjob(blue, run_ms, ttl_zero))
        driver = KubernetesPlatform(api, api, KubernetesPlatform.Settings())
        pair = Pair(blue, green, api, driver)
        driver.deploy_green(pair.workload, apply=True)  # created suspended
        if self.recorder is not None:  # made by a running scenario: watched from now on
            self.recorder.namespaces.update((blue, green))
        return pair

    @staticmethod
    def at(moment: float) -> None:
        time.sleep(max(0.0, moment - time.time()))

    def runs(self, pair: Pair) -> list[tuple[float, str]]:
        """(scheduled time, side) of every Job the pair ran, deleted ones included."""
        assert self.recorder is not None
        return sorted(
            [(t, "blue") for t in self.recorder.runs(pair.blue)]
            + [(t, "green") for t in self.recorder.runs(pair.green)]
        )

    def wait_deleted(self, pair: Pair, env: str, scheduled: float) -> None:
        """Until the Job of `scheduled` is gone from `env` (ttlSecondsAfterFinished: 0 deletes it once finished)."""
        wait_for(
            lambda: (
                not any(
                    j["metadata"]["name"] == f"report-{int(scheduled) // 60}"
                    for j in pair.api.list("BatchV1Api", "list_namespaced_job", pair.ns(env))
                )
            ),
            f"{env}'s Job of {_hms(scheduled)} deleted",
            30,
        )

    def wait_ran(self, pair: Pair, scheduled: float, late: float = 20.0) -> list[str]:
        return wait_for(
            lambda: [side for t, side in self.runs(pair) if t == scheduled],
            f"a Job of {pair.blue}/{pair.green} scheduled at {_hms(scheduled)}",
            until(scheduled + late),
        )


def until(moment: float) -> float:
    """A timeout that ends at `moment` (epoch s), one second at least."""
    return max(1.0, moment - time.time())


def _hms(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%H:%M:%S")


def hand_over(lab: Lab, pair: Pair, to: str) -> list[Any]:
    """Wait for a safe moment on the side that runs now, then activate `to` (which suspends the other first)."""
    source = "blue" if to == "green" else "green"
    wait_for(
        lambda: safe_moment(pair.api.get("CronJob", pair.ns(source), "report"), dt.datetime.now(dt.UTC), MARGIN).safe,
        f"a safe moment on {source}",
        70,
    )
    changes = pair.driver.activate(pair.workload, to, apply=True)
    targets = [c.target for c in changes]
    assert targets[0] == f"{source} CronJob {pair.ns(source)}/report"  # suspended first
    assert targets[-1] == f"{to} CronJob {pair.ns(to)}/report"
    return changes


def retry_while_refused(pair: Pair, env: str, checks: Callable[[], None] = lambda: None, timeout: float = 40.0) -> int:
    """activate(env) the way a task retry would: again every second while the other side's Job runs."""
    refused, deadline = 0, time.monotonic() + timeout
    while True:
        try:
            pair.driver.activate(pair.workload, env, apply=True)
            return refused
        except JobStillActive:
            checks()
            refused += 1
            assert time.monotonic() < deadline, f"still refused after {timeout:g}s"
            time.sleep(1.0)


# --- the scenarios (each runs in a thread of its own; returns what its test checks) --------------------
SCENARIOS: dict[str, Callable[[Lab, Pair], Any]] = {}
PAIR_JOBS: dict[str, tuple[int, bool]] = {}  # scenario → its Jobs' run time (ms; 0: ~1 s), deleted once finished


def scenario(
    run_ms: int = 0, ttl_zero: bool = False
) -> Callable[[Callable[[Lab, Pair], Any]], Callable[[Lab, Pair], Any]]:
    def register(fn: Callable[[Lab, Pair], Any]) -> Callable[[Lab, Pair], Any]:
        SCENARIOS[fn.__name__], PAIR_JOBS[fn.__name__] = fn, (run_ms, ttl_zero)
        return fn

    return register


@scenario()
def handover_and_rollback(lab: Lab, pair: Pair) -> dict[str, Any]:
    lab.at(lab.t1 - 12)
    hand_over(lab, pair, "green")  # T1 is 12 s away: safe
    lab.at(lab.t1 + 3)
    hand_over(lab, pair, "blue")  # rollback, same rule (waits for green's T1 Job to end)
    lab.wait_ran(pair, lab.t2)
    time.sleep(3)
    return {"runs": lab.runs(pair)}


@scenario()
def no_carry(lab: Lab, pair: Pair) -> dict[str, Any]:
    wait_for(
        lambda: pair.status("blue").get("lastScheduleTime") == to_rfc3339(lab.t1), "blue ran T1", until(lab.t1 + 20)
    )
    pair.api.patch("CronJob", pair.blue, "report", {"spec": {"suspend": True}})
    pair.api.patch("CronJob", pair.green, "report", {"spec": {"suspend": False}})  # by hand, nothing carried
    try:
        wait_for(lambda: len([s for t, s in lab.runs(pair) if t == lab.t1]) > 1, "green's catch-up of T1", 15)
    except AssertionError:
        pass  # the test says what ran
    return {"runs": lab.runs(pair)}


@scenario(run_ms=JOB_MS)
def safe_moment_waits(lab: Lab, pair: Pair) -> dict[str, Any]:
    blue = wait_for(
        lambda: (c := pair.api.get("CronJob", pair.blue, "report")).get("status", {}).get("active") and c,
        "blue's T1 Job active",
        until(lab.t1 + 15),
    )
    now = dt.datetime.now(dt.UTC)
    out = {
        "while_active": safe_moment(blue, now, MARGIN),
        "gate_while_active": pair.driver.handover_moment(pair.workload, MARGIN.total_seconds()),
    }
    idle = wait_for(
        lambda: not (c := pair.api.get("CronJob", pair.blue, "report")).get("status", {}).get("active") and c,
        "blue's T1 Job to end",
        40,
    )
    upcoming = next_run(idle["spec"]["schedule"], dt.datetime.now(dt.UTC))
    out["late"] = safe_moment(idle, upcoming - dt.timedelta(seconds=5), MARGIN)
    out["early"] = safe_moment(idle, upcoming - dt.timedelta(seconds=30), MARGIN)
    out["gate_idle"] = pair.driver.handover_moment(pair.workload, MARGIN.total_seconds())
    out["upcoming"] = upcoming
    return out


@scenario(run_ms=JOB_MS)
def rollback_while_green_runs(lab: Lab, pair: Pair) -> dict[str, Any]:
    lab.at(lab.t1 - 12)
    hand_over(lab, pair, "green")
    wait_for(
        lambda: [
            j
            for j in pair.api.list("BatchV1Api", "list_namespaced_job", pair.green)
            if not (j.get("status") or {}).get("completionTime")
        ],
        "green's T1 Job running",
        until(lab.t1 + 15),
    )
    stop = [c.target for c in pair.driver.restore_blue(pair.workload, apply=True)]
    waiting: list[bool] = []
    began = time.monotonic()
    refused = retry_while_refused(pair, "blue", lambda: waiting.append(pair.suspended("blue")))
    waited = time.monotonic() - began
    lab.wait_ran(pair, lab.t2)
    time.sleep(3)
    missed = [
        e["message"]
        for ns in (pair.blue, pair.green)
        for e in pair.api.list("CoreV1Api", "list_namespaced_event", ns)
        if e.get("reason") == "MissSchedule"
    ]
    return {
        "stop": stop,
        "green": pair.green,
        "refused": refused,
        "waited": waited,
        "blue_suspended_while_refused": waiting,
        "runs": lab.runs(pair),
        "missed": missed,
    }


@scenario()
def refused_hand_back_job_deleted(lab: Lab, pair: Pair) -> dict[str, Any]:
    lab.at(lab.t1 - 12)
    pair.driver.activate(pair.workload, "green", apply=True)
    lab.at(lab.t1 - 3)
    pair.driver.restore_blue(pair.workload, apply=True)
    lab.at(lab.t1 + 0.2)
    # What green's controller leaves when restore_blue's suspend lands between its Job create and its status
    # write: the T1 Job exists, green's status does not name it.
    controller_job(pair.api, pair.green, lab.t1, 3000)
    refusals = 0
    try:
        pair.driver.activate(pair.workload, "blue", apply=True)
    except JobStillActive:
        refusals += 1
    lab.wait_deleted(pair, "green", lab.t1)
    pair.driver.activate(pair.workload, "blue", apply=True)  # the task's retry
    time.sleep(8)  # a catch-up would start at once
    lab.wait_ran(pair, lab.t2)
    return {"refusals": refusals, "runs": lab.runs(pair)}


@scenario()
def rollback_after_refused_handover_job_deleted(lab: Lab, pair: Pair) -> dict[str, Any]:
    lab.at(lab.t1 - 3)
    # activate(green)'s suspend of blue landing between blue's controller's Job create and its status write
    # leaves this state: blue suspended, its T1 Job running, its status not naming it.
    pair.api.patch("CronJob", pair.blue, "report", {"spec": {"suspend": True}})
    lab.at(lab.t1 + 0.2)
    controller_job(pair.api, pair.blue, lab.t1, 3000)
    refusals = 0
    try:
        pair.driver.activate(pair.workload, "green", apply=True)
    except JobStillActive:
        refusals += 1
    pair.driver.restore_blue(pair.workload, apply=True)  # the wave is rolled back instead
    lab.wait_deleted(pair, "blue", lab.t1)
    pair.driver.activate(pair.workload, "blue", apply=True)
    time.sleep(8)
    lab.wait_ran(pair, lab.t2)
    return {"refusals": refusals, "runs": lab.runs(pair), "green_suspended": pair.suspended("green")}


@scenario()
def restore_blue_records_the_raced_job(lab: Lab, pair: Pair) -> dict[str, Any]:
    lab.at(lab.t1 - 12)
    pair.driver.activate(pair.workload, "green", apply=True)
    lab.at(lab.t1 - 3)
    # restore_blue's own suspend landing between green's controller's Job create and its status write leaves
    # this state; restore_blue then finds green suspended already and reads what green ran.
    pair.api.patch("CronJob", pair.green, "report", {"spec": {"suspend": True}})
    lab.at(lab.t1 + 0.2)
    controller_job(pair.api, pair.green, lab.t1, 3000)
    stop = [str(c) for c in pair.driver.restore_blue(pair.workload, apply=True)]
    green_last = pair.status("green").get("lastScheduleTime")
    lab.wait_deleted(pair, "green", lab.t1)
    retry_while_refused(pair, "blue")  # jobs_to_blue runs later, after traffic_to_blue
    time.sleep(8)
    lab.wait_ran(pair, lab.t2)
    return {"stop": stop, "green_last": green_last, "runs": lab.runs(pair)}


AT_THE_TICK = (0.03, 0.08, 0.13, 0.2)  # seconds after T1: where the controller's create and status write are


@scenario(ttl_zero=True)
def switches_at_the_tick(lab: Lab, first: Pair) -> dict[str, Any]:
    """Handovers and hand-backs asked for right after T1, on CronJobs whose Jobs vanish once finished."""
    forth = [first] + [lab.pair(ttl_zero=True) for _ in AT_THE_TICK[1:]]
    back = [lab.pair(ttl_zero=True) for _ in AT_THE_TICK]
    for pair in back:
        retry_while_refused(pair, "green")  # a Job of an earlier tick may still run on a loaded machine

    def handover(pair: Pair, after: float) -> None:
        lab.at(lab.t1 + after)
        retry_while_refused(pair, "green")

    def hand_back(pair: Pair, after: float) -> None:
        lab.at(lab.t1 + after)
        pair.driver.restore_blue(pair.workload, apply=True)
        time.sleep(6)  # jobs_to_blue comes after traffic_to_blue: the raced Job is gone by then
        retry_while_refused(pair, "blue")

    threads = [threading.Thread(target=handover, args=(p, a)) for p, a in zip(forth, AT_THE_TICK, strict=False)]
    threads += [threading.Thread(target=hand_back, args=(p, a)) for p, a in zip(back, AT_THE_TICK, strict=False)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for pair in forth + back:
        lab.wait_ran(pair, lab.t2)
    time.sleep(2)
    lost = [
        f"{ns}: {e['message']}"
        for p in forth + back
        for ns in (p.blue, p.green)
        for e in p.api.list("CoreV1Api", "list_namespaced_event", ns)
        if e.get("reason") == "UnexpectedJob"
    ]
    left = [p.status("blue").get("lastScheduleTime") for p in forth] + [
        p.status("green").get("lastScheduleTime") for p in back
    ]
    return {"runs": [lab.runs(p) for p in forth + back], "lost": lost, "left_side_last": left}


@dataclass
class Outcomes:
    results: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    lab: Lab | None = None

    def of(self, name: str) -> Any:
        if name in self.errors:
            pytest.fail(f"scenario {name} failed:\n{self.errors[name]}")
        return self.results[name]


@pytest.fixture(scope="module")
def outcomes(control_plane) -> Iterator[Outcomes]:
    kube = Kube(control_plane)
    lab, out = Lab(kube), Outcomes()
    out.lab = lab
    try:
        pairs = {name: lab.pair(*PAIR_JOBS[name]) for name in SCENARIOS}
        lab.recorder = JobRecorder(kube.api_client, {ns for p in pairs.values() for ns in (p.blue, p.green)})
        lab.recorder.start()
        lab.t1 = (int(time.time() + LEAD) // 60 + 1) * 60.0

        def run(name: str) -> None:
            try:
                out.results[name] = SCENARIOS[name](lab, pairs[name])
            except BaseException:
                out.errors[name] = traceback.format_exc()

        threads = [threading.Thread(target=run, args=(name,), daemon=True) for name in SCENARIOS]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=max(1.0, lab.t2 + 90 - time.time()))
        for name, thread in zip(SCENARIOS, threads, strict=False):
            if thread.is_alive():
                out.errors[name] = "still running long after T2"
        lab.recorder.stop()
        yield out
    finally:
        kube.cleanup()


def times_ran(runs: list[tuple[float, str]]) -> list[float]:
    return [t for t, _ in runs]


def test_runs_every_minute_across_a_handover_and_a_rollback_have_no_duplicate_and_no_gap(outcomes: Outcomes) -> None:
    lab, runs = outcomes.lab, outcomes.of("handover_and_rollback")["runs"]
    times = times_ran(runs)
    assert len(times) == len(set(times)), f"a scheduled time ran twice: {runs}"
    assert (lab.t1, "green") in runs and (lab.t2, "blue") in runs, runs  # both sides really ran, each its tick
    assert [t for t in times if t >= lab.t1] == [lab.t1, lab.t2]


def test_without_carrying_last_schedule_time_green_would_run_a_time_blue_already_ran(outcomes: Outcomes) -> None:
    lab, runs = outcomes.lab, outcomes.of("no_carry")["runs"]
    assert sorted(side for t, side in runs if t == lab.t1) == ["blue", "green"], (
        f"expected the controller's catch-up to run T1 again on green: {runs}"
    )


def test_a_handover_requested_while_a_blue_job_is_active_waits(outcomes: Outcomes) -> None:
    out = outcomes.of("safe_moment_waits")
    assert not out["while_active"].safe and "1 Job(s) still active in blue" in out["while_active"].reason
    assert out["gate_while_active"].state == "waiting" and "report-" in out["gate_while_active"].detail
    assert not out["late"].safe and "less than 10s away" in out["late"].reason
    assert out["early"].safe
    assert out["gate_idle"].state == "ready", out["gate_idle"]


def test_a_rollback_while_green_runs_a_job_resumes_blue_only_after_it_ends_with_no_gap(outcomes: Outcomes) -> None:
    lab, out = outcomes.lab, outcomes.of("rollback_while_green_runs")
    assert out["stop"] == [f"green CronJob {out['green']}/report"]  # green starts nothing new
    assert out["refused"] >= 5 and all(out["blue_suspended_while_refused"])
    assert 8 <= out["waited"] <= 28  # blue resumed when green's 20 s Job ended, not before
    times = times_ran(out["runs"])
    assert len(times) == len(set(times)), out["runs"]
    assert (lab.t1, "green") in out["runs"] and (lab.t2, "blue") in out["runs"], out["runs"]
    assert not out["missed"]


def test_a_job_seen_at_a_refused_hand_back_is_not_run_again_after_it_was_deleted(outcomes: Outcomes) -> None:
    lab, out = outcomes.lab, outcomes.of("refused_hand_back_job_deleted")
    assert out["refusals"] == 1
    assert [side for t, side in out["runs"] if t == lab.t1] == ["green"], out["runs"]
    assert [side for t, side in out["runs"] if t == lab.t2] == ["blue"], out["runs"]


def test_a_rollback_after_a_refused_handover_does_not_rerun_on_blue_what_blue_ran(outcomes: Outcomes) -> None:
    lab, out = outcomes.lab, outcomes.of("rollback_after_refused_handover_job_deleted")
    assert out["refusals"] == 1 and out["green_suspended"]
    assert [side for t, side in out["runs"] if t == lab.t1] == ["blue"], out["runs"]
    assert [side for t, side in out["runs"] if t == lab.t2] == ["blue"], out["runs"]


def test_restore_blue_records_a_green_job_that_raced_its_suspend_before_its_deletion(outcomes: Outcomes) -> None:
    lab, out = outcomes.lab, outcomes.of("restore_blue_records_the_raced_job")
    assert out["green_last"] == to_rfc3339(lab.t1), out["stop"]
    assert [side for t, side in out["runs"] if t == lab.t1] == ["green"], out["runs"]
    assert [side for t, side in out["runs"] if t == lab.t2] == ["blue"], out["runs"]


def test_a_switch_at_a_tick_never_splits_the_controller_s_job_from_its_status_write(outcomes: Outcomes) -> None:
    """A suspend between the controller's Job create and its status write loses the write (UnexpectedJob);
    a Job deleted at once then leaves no trace, and the side taking over ran that time again."""
    lab, out = outcomes.lab, outcomes.of("switches_at_the_tick")
    for runs in out["runs"]:
        assert [t for t, _ in runs if t >= lab.t1] == [lab.t1, lab.t2], runs  # each once, on one side
    assert not out["lost"]
    # The tick the switch was asked at landed first, on the side left, and its status names it.
    assert out["left_side_last"] == [to_rfc3339(lab.t1)] * len(out["left_side_last"]), out["runs"]
