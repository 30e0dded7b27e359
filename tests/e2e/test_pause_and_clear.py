"""Pause and clear on a real Airflow (scheduler, triggerer, LocalExecutor on PostgreSQL) with the lab,
as an operator does it through REST API v2 (what the UI calls).

Pause: the step in progress finishes, nothing new starts, traffic stays where it is; unpaused, the
wave goes on to 100 % green. Clear: a step that failed because HAProxy's runtime API was unreachable
is cleared once it is back and converges — a rollback step (the shipped policy: a failed step rolls
back at once) puts all traffic on blue; a traffic step of a wave whose failures hold for a human
(`rollback.automatic: false`) resumes the wave, which completes.
"""

from __future__ import annotations

import time

import pytest

from include.slow_injection.drivers.haproxy import HAProxyRouter, HAProxyRuntime
from include.slow_injection.ports import Weights
from tests.support.e2e_runs import patient, problems

# these waves write HAProxy with the haproxy router: the route controller must not resync it meanwhile
pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("without_route_controller")]
OBSERVE = 20.0  # seconds paused at least (the step's gates bake 12 s: tests/e2e/conftest.py fast_wave)
SETTLED = 10.0  # seconds paused after the step's gates ended (the decision would start ~1-2 s after them)
GRACE = 3.0
STEP1_GATES = {
    "gradual_transition.web.step1_5pct.gate_error-ratio",
    "gradual_transition.web.step1_5pct.gate_p95-latency",
}
# States a task reaches only by being queued or run. `skipped` / `upstream_failed` are not among them: the
# scheduler still settles trigger rules of a paused DAG (e.g. the fast-path marker once its gates passed),
# without running anything.
STARTED = {"queued", "running", "deferred", "success", "failed", "up_for_retry", "up_for_reschedule"}


DAG = "wave_e2e-fast"  # the lab's web service, steps 5 → 100 %, no validation phase (tests/e2e/conftest.py)


def pause(lab, paused: bool) -> None:
    lab.airflow._request("PATCH", f"/api/v2/dags/{DAG}", {"is_paused": paused})


def wait_for_green(
    lab, router: HAProxyRouter, run_id: str, green: int, seen: list[Weights], timeout: float = 600, dag: str = DAG
) -> None:
    """Polls the router until green has `green` %; the run (asked less often, the API server is
    slow on a loaded machine) must not end first."""
    deadline, asked = time.time() + timeout, 0.0
    while time.time() < deadline:
        w = router.get_weights()
        if not seen or seen[-1] != w:
            seen.append(w)
        if w.green == green:
            return
        if time.time() - asked > 5:
            asked = time.time()
            state = patient(lambda: lab.airflow.run_state(dag, run_id))
            assert state not in ("success", "failed"), (
                state,
                seen,
                problems(lab.airflow.task_instances(dag, run_id), lab),
            )
        time.sleep(0.3)
    raise TimeoutError(f"green never reached {green} %: {seen}")


def wait_for_tasks(
    lab, run_id: str, task_ids: set[str], states: set[str], timeout: float = 120, dag: str = DAG
) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        tis = patient(lambda: lab.airflow.task_instances(dag, run_id))
        if any(tis.get(t, {}).get("state") in states for t in task_ids):
            return
        time.sleep(0.3)
    raise TimeoutError(f"none of {sorted(task_ids)} reached {sorted(states)}")


def started(tis: dict) -> set[str]:
    return {
        t
        for t, ti in tis.items()
        if ti["state"] in STARTED or (ti.get("start_date") and ti["state"] not in ("skipped", "upstream_failed"))
    }


def test_a_paused_wave_holds_its_step_and_completes_once_unpaused(lab) -> None:
    seen: list[Weights] = []
    run_id = lab.airflow.trigger(DAG)
    try:
        wait_for_green(lab, lab.router, run_id, 5, seen)
        wait_for_tasks(lab, run_id, STEP1_GATES, {"running", "success"})  # the step is baking: pause now
        pause(lab, True)
        paused_at = time.time()
        time.sleep(GRACE)  # a scheduler loop that began before the pause may still queue what it found
        at_pause = patient(lambda: lab.airflow.task_instances(DAG, run_id))
        allowed = started(at_pause)
        in_flight = {t for t, ti in at_pause.items() if ti["state"] in ("queued", "running", "deferred")}
        assert in_flight & STEP1_GATES, {t: at_pause[t]["state"] for t in STEP1_GATES}

        # Observe at least OBSERVE s, and SETTLED s after the last task in flight ended: unpaused, the
        # step's decision would have started within a few seconds of its gates ending.
        ended_at = None
        while ended_at is None or time.time() < max(paused_at + OBSERVE, ended_at + SETTLED):
            assert lab.router.get_weights() == Weights(95, 5), "traffic moved while the DAG was paused"
            tis = patient(lambda: lab.airflow.task_instances(DAG, run_id))
            new = started(tis) - allowed
            assert not new, f"started while paused: { {t: tis[t]['state'] for t in new} }"
            if ended_at is None and all(tis[t]["state"] in ("success", "failed") for t in in_flight):
                ended_at = time.time()
            assert time.time() < paused_at + 300, {t: tis[t]["state"] for t in in_flight}
            time.sleep(1)
        # The step in progress was not killed: its gates finished their bake and passed.
        assert all(tis[t]["state"] == "success" for t in in_flight & STEP1_GATES), {
            t: tis[t]["state"] for t in in_flight
        }
        assert not tis["gradual_transition.web.step1_5pct.decide"].get("start_date")
        assert lab.airflow.run_state(DAG, run_id) == "running"
    finally:
        pause(lab, False)

    def poll() -> None:
        w = lab.router.get_weights()
        if seen[-1] != w:
            seen.append(w)

    state = lab.airflow.wait_for_run(DAG, run_id, timeout=600, on_poll=poll)
    poll()
    assert state == "success", problems(lab.airflow.task_instances(DAG, run_id), lab)
    assert [w.green for w in seen] == [0, 5, 100]


def test_a_failed_rollback_step_cleared_once_haproxy_is_back_puts_all_traffic_on_blue(lab) -> None:
    admin, hidden = lab.lab.admin_socket, lab.lab.admin_socket.with_name("hidden.sock")
    behind = HAProxyRouter(HAProxyRuntime(str(hidden)), lab.router.settings)  # the test still sees HAProxy
    seen: list[Weights] = []
    run_id = lab.airflow.trigger(DAG)
    try:
        wait_for_green(lab, lab.router, run_id, 5, seen)
        lab.lab.set_fault("green", error_rate=0.6)  # the 5 % step's gate fails: the wave rolls back …
        admin.rename(hidden)  # … but HAProxy's runtime API cannot be reached (HAProxy itself keeps routing)

        state = lab.airflow.wait_for_run(DAG, run_id, timeout=600)
        tis = lab.airflow.task_instances(DAG, run_id)
        assert state == "failed", problems(tis, lab)
        assert tis["rollback.restore_blue_workloads"]["state"] == "success"
        assert tis["rollback.traffic_to_blue"]["state"] == "failed"  # every retry failed
        assert tis["rollback.traffic_to_blue"]["try_number"] == 4  # rollback retries: 3
        assert tis["rollback.wave_rolled_back"]["state"] == "upstream_failed"
        assert behind.get_weights() == Weights(95, 5)  # green still takes users: the failure is real
    finally:
        if hidden.exists():
            hidden.rename(admin)

    path = f"/api/v2/dags/{DAG}/clearTaskInstances"
    cleared = lab.airflow._request(
        "POST",
        path,
        {
            "dry_run": False,
            "dag_run_id": run_id,
            "task_ids": ["rollback.traffic_to_blue"],
            "include_downstream": True,
            "only_failed": True,
            "reset_dag_runs": True,
        },
    )
    assert {ti["task_id"] for ti in cleared["task_instances"]} >= {
        "rollback.traffic_to_blue",
        "rollback.wave_rolled_back",
    }

    state = lab.airflow.wait_for_run(DAG, run_id, timeout=300)
    tis = lab.airflow.task_instances(DAG, run_id)
    assert state == "failed"  # a rolled-back wave stays red on purpose (wave_rolled_back)
    assert tis["rollback.traffic_to_blue"]["state"] == "success", problems(tis, lab)
    assert tis["rollback.traffic_to_blue"]["try_number"] == 5
    assert tis["rollback.wave_rolled_back"]["state"] == "failed"
    assert lab.router.get_weights() == Weights(100, 0)
    moved = lab.airflow.xcom(DAG, run_id, "rollback.traffic_to_blue")
    assert moved["services"]["web"]["before"] == "blue 95, green 5" and moved["services"]["web"]["changed"]


HOLD_DAG = "wave_e2e-clear"
STEP1 = "gradual_transition.web.step1_5pct"


def test_a_failed_traffic_step_cleared_once_haproxy_is_back_resumes_the_wave(lab) -> None:
    admin, hidden = lab.lab.admin_socket, lab.lab.admin_socket.with_name("hidden.sock")
    behind = HAProxyRouter(HAProxyRuntime(str(hidden)), lab.router.settings)
    run_id = lab.airflow.trigger(HOLD_DAG)
    try:
        # Green is attached and ready behind HAProxy; step 1 comes next.
        wait_for_tasks(lab, run_id, {"validation.web.decide"}, {"success"}, timeout=600, dag=HOLD_DAG)
        admin.rename(hidden)
        state = lab.airflow.wait_for_run(HOLD_DAG, run_id, timeout=600)
        tis = lab.airflow.task_instances(HOLD_DAG, run_id)
        assert state == "failed", problems(tis, lab)
        assert tis[f"{STEP1}.set_traffic"]["state"] == "failed"
        assert tis[f"{STEP1}.set_traffic"]["try_number"] == 3  # wave retries: 2
        assert tis[f"{STEP1}.hold_requested"]["state"] == "success"
        assert tis["wave_held"]["state"] == "failed" and tis["rollback.traffic_to_blue"]["state"] == "skipped"
        decision = lab.airflow.xcom(HOLD_DAG, run_id, f"{STEP1}.decide", "decision")
        assert decision["outcome"] == "hold" and f"{STEP1}.set_traffic did not complete" in decision["reasons"]
        assert behind.get_weights() == Weights(100, 0)
    finally:
        if hidden.exists():
            hidden.rename(admin)

    cleared = lab.airflow._request(
        "POST",
        f"/api/v2/dags/{HOLD_DAG}/clearTaskInstances",
        {
            "dry_run": False,
            "dag_run_id": run_id,
            "task_ids": [f"{STEP1}.set_traffic"],
            "include_downstream": True,
            "only_failed": False,
            "reset_dag_runs": True,
        },
    )
    assert {f"{STEP1}.set_traffic", f"{STEP1}.decide", "wave_held", "post_release.wave_completed"} <= {
        ti["task_id"] for ti in cleared["task_instances"]
    }

    seen: list[Weights] = [lab.router.get_weights()]

    def poll() -> None:
        w = lab.router.get_weights()
        if seen[-1] != w:
            seen.append(w)

    state = lab.airflow.wait_for_run(HOLD_DAG, run_id, timeout=600, on_poll=poll)
    poll()
    tis = lab.airflow.task_instances(HOLD_DAG, run_id)
    assert state == "success", problems(tis, lab)
    assert tis[f"{STEP1}.set_traffic"]["try_number"] == 4
    assert tis["wave_held"]["state"] == "skipped" and tis["post_release.wave_completed"]["state"] == "success"
    assert [w.green for w in seen] == [0, 5, 100]
