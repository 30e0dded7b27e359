"""The circuit breaker on a real Airflow and the lab: green fails half its requests at the 5 % step, the
error-ratio gate (Prometheus) fails, and the gate itself returns HAProxy to 100 % blue before the rollback
group's first task starts; the rollback then finds 0 % green and converges the rest.

The same with the gate deferred to the triggerer (a bake longer than the gate's 20 s in its task): the
triggerer moves the router as the trigger decides, before the task resumes.

HAProxy's weights are read every 0.05 s through the real admin socket, each change with its time."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest

from include.slow_injection.ports import Weights
from tests.support.e2e_runs import patient, problems

# waves on the haproxy router: the route controller must not resync HAProxy meanwhile (conftest)
pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("without_route_controller")]
DAG = "wave_e2e-fast"  # the web service alone, no validation (so no data_sync.before_rollback): armed
GATE = "gradual_transition.web.step1_5pct.gate_error-ratio"


def trigger_logs(lab, dag: str, run_id: str, task_id: str) -> list[str]:
    """The first try's trigger logs (Airflow writes `attempt=1.log.trigger.<triggerer job id>.log`)."""
    folder = lab.airflow.root / "airflow" / "logs" / f"dag_id={dag}" / f"run_id={run_id}" / f"task_id={task_id}"
    return [p.read_text() for p in sorted(folder.glob("attempt=1.log.trigger.*.log"))]


def epoch(iso: str) -> float:
    return dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


class TimedWatch:
    """Reads HAProxy's weights every 0.05 s; keeps each change with when it was first seen; injects the fault
    the moment green takes traffic."""

    def __init__(self, lab, inject: bool = True) -> None:
        self.lab, self.seen, self.injected = lab, [(time.time(), lab.router.get_weights())], None
        self.inject = inject
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            w = self.lab.router.get_weights()
            if self.seen[-1][1] != w:
                self.seen.append((time.time(), w))
            if self.inject and self.injected is None and w.green > 0:
                self.lab.lab.set_fault("green", error_rate=0.5)
                self.injected = time.time()

    def stop(self) -> list[tuple[float, Weights]]:
        self._stop.set()
        self._thread.join(timeout=5)
        return self.seen


def test_the_failed_gate_moves_users_to_blue_before_the_rollback_group_runs(lab) -> None:
    watch = TimedWatch(lab)
    run_id = lab.airflow.trigger(DAG)
    try:
        state = lab.airflow.wait_for_run(DAG, run_id, timeout=600)
    finally:
        seen = watch.stop()
    tis = patient(lambda: lab.airflow.task_instances(DAG, run_id))
    assert watch.injected, f"the wave never reached its 5 % step: {seen} {problems(tis, lab)}"
    assert state == "failed" and tis[GATE]["state"] == "failed", problems(tis, lab)
    assert [w.green for _, w in seen] == [0, 5, 0]  # one way back to blue, no other split on the way

    verdict = lab.airflow.xcom(DAG, run_id, GATE, "verdict")
    moved = verdict["breaker"]
    assert verdict["status"] == "fail"
    assert moved["changed"] is True and moved["error"] is None and moved["before"] == "blue 95, green 5"
    assert moved["router"] == "haproxy/web"
    back_on_blue = seen[-1][0]  # when the watcher first read 0 % green
    assert verdict["finished_at"] <= moved["at"] <= back_on_blue + 0.2  # moved as the gate decided
    print(
        f"gate in its task: verdict → breaker {moved['at'] - verdict['finished_at']:.3f} s, "
        f"verdict → 0 % green seen {back_on_blue - verdict['finished_at']:.3f} s"
    )
    restore = tis["rollback.restore_blue_workloads"]
    assert restore["state"] == "success" and back_on_blue < epoch(restore["start_date"])

    rolled_back = lab.airflow.xcom(DAG, run_id, "rollback.traffic_to_blue")
    assert rolled_back["services"]["web"]["changed"] is False  # it found 0 % green and left it
    assert rolled_back["breaker"] and rolled_back["breaker"][0].startswith("circuit breaker moved web to 0 % green")
    assert tis["rollback.wave_rolled_back"]["state"] == "failed"
    assert lab.router.get_weights() == Weights(100, 0)


def test_a_deferred_gate_trips_the_breaker_in_the_triggerer(lab) -> None:
    dag = "wave_e2e-drill"  # fast_wave whose 5 % gates measure 20 s in their task, then defer to the triggerer
    gate = "gradual_transition.web.step1_5pct.gate_error-ratio"
    watch = TimedWatch(lab, inject=False)
    run_id = lab.airflow.trigger(dag)
    try:
        deadline = time.time() + 480
        while patient(lambda: lab.airflow.task_instances(dag, run_id)).get(gate, {}).get("state") != "deferred":
            assert time.time() < deadline and lab.airflow.run_state(dag, run_id) in ("queued", "running")
            time.sleep(0.5)
        lab.lab.set_fault("green", error_rate=0.5)
        state = lab.airflow.wait_for_run(dag, run_id, timeout=600)
    finally:
        seen = watch.stop()
    tis = patient(lambda: lab.airflow.task_instances(dag, run_id))
    assert state == "failed" and tis[gate]["state"] == "failed", problems(tis, lab)
    assert [w.green for _, w in seen] == [0, 5, 0]
    back_on_blue = seen[-1][0]
    assert back_on_blue < epoch(tis["rollback.restore_blue_workloads"]["start_date"])
    # The triggerer logged the move as it decided. (Airflow 3.3 may fail a deferred task whose trigger fires
    # early, apache/airflow#72716: then the task never resumes to push the verdict, and this log is the record.)
    logged = "".join(trigger_logs(lab, dag, run_id, gate))
    assert "circuit breaker moved web to 0 % green" in logged, logged[-2000:]
    verdict = lab.airflow.xcom(dag, run_id, gate, "verdict")
    if verdict is not None:  # the task resumed: it pushed the trigger's verdict, breaker and all
        moved = verdict["breaker"]
        assert moved["changed"] is True and moved["error"] is None
        assert verdict["finished_at"] <= moved["at"] <= back_on_blue + 0.2
        assert back_on_blue < epoch(tis[gate]["end_date"])
        print(
            f"deferred gate: verdict → breaker {moved['at'] - verdict['finished_at']:.3f} s, "
            f"verdict → 0 % green seen {back_on_blue - verdict['finished_at']:.3f} s, "
            f"verdict → task end {epoch(tis[gate]['end_date']) - verdict['finished_at']:.3f} s"
        )
