"""Resilience drills on a real Airflow (scheduler, triggerer, LocalExecutor on PostgreSQL) with the lab.

1. A task killed with SIGKILL in the middle of its weight change (the runtime API made slow for one
   command by a proxy on HAProxy's admin socket: include/slow_injection/lab/admin_proxy.py) is
   retried and converges to the step's weight; HAProxy never sees a weight no step asked for.
2. The scheduler and the triggerer killed with SIGKILL while a step's gates are deferred, then
   started again: the deferred gates resume (same try) and the run completes.

HAProxy's weights are read every 0.2 s through the real admin socket during each drill.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from include.slow_injection.drivers.haproxy import HAProxyRouter, HAProxyRuntime
from include.slow_injection.lab.admin_proxy import SlowAdminSocket
from include.slow_injection.lab.airflow_stack import COMPONENTS
from include.slow_injection.ports import Weights
from tests.support.e2e_runs import WeightWatch, patient, problems, try_of

# these waves write HAProxy with the haproxy router: the route controller must not resync it meanwhile
pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("without_route_controller")]
STEP1 = "gradual_transition.web.step1_5pct"
ASKED = {0, 5, 100}  # green % before the wave (blue only), then the waves' steps (tests/e2e/conftest.py)
HOLD = 2.5  # seconds the weight change is held: below the driver's 3 s socket timeout


def test_a_task_killed_mid_weight_change_is_retried_and_converges(lab) -> None:
    dag, task = "wave_e2e-fast", f"{STEP1}.set_traffic"
    with SlowAdminSocket(lab.lab.admin_socket) as proxy:
        watch = WeightWatch(HAProxyRouter(HAProxyRuntime(str(proxy.behind)), lab.router.settings))
        proxy.hold_next(HOLD)  # the wave's first weight change: step 1, 5 %
        run_id = lab.airflow.trigger(dag)
        try:
            assert proxy.held.wait(timeout=600), f"no weight change reached HAProxy: {proxy.commands}"
            held = proxy.held_commands()[0]
            os.kill(held.pid, signal.SIGKILL)  # the process inside the weight change, by its socket peer PID
            killed_while_held = held.forwarded_at is None
            state = lab.airflow.wait_for_run(dag, run_id, timeout=600)
        finally:
            greens = watch.stop()
    tis = patient(lambda: lab.airflow.task_instances(dag, run_id))
    assert state == "success", problems(tis, lab)
    assert killed_while_held, "the kill landed after HAProxy had answered: not mid-change"
    assert held.weights() == {"web/blue": 95, "web/green": 5}

    # The killed process was the task's first try (the PID Airflow recorded for it), and it was retried.
    first = try_of(lab, dag, run_id, task, 1)
    assert first["pid"] == held.pid, (first["pid"], held.pid)
    assert first["state"] in ("up_for_retry", "failed"), first["state"]
    assert tis[task]["try_number"] >= 2 and tis[task]["state"] == "success"
    moved = lab.airflow.xcom(dag, run_id, task)
    assert moved["after"] == "blue 95, green 5", moved  # the retry read HAProxy back at the step's weight
    # The held command reached HAProxy after its sender died (it was on the wire); the retry either found
    # 5 % already or set 5 % itself: both are the same change, so the outcome is the same.
    assert held.sender_gone and held.forwarded_at is not None

    # Every weight HAProxy was told, and every weight it showed, is one a step asked for.
    told = [c.weights() for c in proxy.sets()]
    assert told and all(w in ({"web/blue": 95, "web/green": 5}, {"web/blue": 0, "web/green": 100}) for w in told), told
    assert set(greens) <= ASKED and greens == sorted(greens), greens
    assert greens[0] == 0 and greens[-1] == 100, greens
    assert not watch.errors, watch.errors


def trigger_logs(lab, dag: str, run_id: str, task_id: str) -> dict[int, str]:
    """The first try's trigger logs by triggerer job id (Airflow writes `attempt=1.log.trigger.<job id>.log`)."""
    folder = lab.airflow.root / "airflow" / "logs" / f"dag_id={dag}" / f"run_id={run_id}" / f"task_id={task_id}"
    return {int(p.name.split(".")[-2]): p.read_text() for p in folder.glob("attempt=1.log.trigger.*.log")}


def test_scheduler_and_triggerer_killed_while_gates_are_deferred_resume_and_complete(lab) -> None:
    dag = "wave_e2e-drill"  # fast_wave whose 5 % gates defer (tests/e2e/conftest.py deferring_wave)
    gates = {f"{STEP1}.gate_error-ratio", f"{STEP1}.gate_p95-latency"}
    watch = WeightWatch(lab.router)
    run_id = lab.airflow.trigger(dag)
    try:
        deadline = time.time() + 480
        while True:  # both gates deferred, and the triggerer is running their triggers
            tis = patient(lambda: lab.airflow.task_instances(dag, run_id))
            running = {
                g: [job for job, text in trigger_logs(lab, dag, run_id, g).items() if "starting" in text] for g in gates
            }
            if all(tis.get(g, {}).get("state") == "deferred" and running[g] for g in gates):
                killed_jobs = {job for jobs in running.values() for job in jobs}
                break
            assert time.time() < deadline, {g: tis.get(g, {}).get("state") for g in gates}
            assert lab.airflow.run_state(dag, run_id) in ("queued", "running"), problems(tis, lab)
            time.sleep(0.5)
        lab.airflow.kill("scheduler")
        lab.airflow.kill("triggerer")
        time.sleep(3)  # down for a moment: nothing may move
        assert lab.router.get_weights() == Weights(95, 5)
        lab.airflow.restart("triggerer", "scheduler")
        state = lab.airflow.wait_for_run(dag, run_id, timeout=600)
    finally:
        greens = watch.stop()
        running = lab.airflow.book.read()
        missing = [c for c in COMPONENTS if c not in running]
        if missing:  # the next test needs the whole stack
            lab.airflow.restart(*missing)
    tis = patient(lambda: lab.airflow.task_instances(dag, run_id))
    assert state == "success", problems(tis, lab)
    # The deferred gates resumed in their first try: a new triggerer took their triggers over.
    assert {g: (tis[g]["state"], tis[g]["try_number"]) for g in gates} == {g: ("success", 1) for g in gates}
    for g in gates:  # … whose triggers the killed triggerer had started, and another triggerer fired
        fired = {job for job, text in trigger_logs(lab, dag, run_id, g).items() if "Trigger fired event" in text}
        assert fired and not fired & killed_jobs, (g, fired, killed_jobs)
    for g in gates:
        assert lab.airflow.xcom(dag, run_id, g, "verdict")["status"] == "pass"
    assert greens == [0, 5, 100], greens
    assert not watch.errors, watch.errors
