"""Emergency rollback end to end: a real wave run mid-way through its traffic steps on HAProxy, the
emergency_rollback DAG triggered through REST API v2 as the UI does, and the wave run that must not
move traffic again."""

from __future__ import annotations

import time

import pytest

from include.slow_injection.ports import Weights

# these waves write HAProxy with the haproxy router: the route controller must not resync it meanwhile
pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("without_route_controller")]
WAVE_DAG, EMERGENCY_DAG = "wave_e2e-emergency", "emergency_rollback"


def test_an_emergency_rollback_mid_wave_returns_web_to_blue_and_the_wave_never_moves_it_again(lab) -> None:
    lab.airflow.wait_for_dag(EMERGENCY_DAG)
    wave_run = lab.airflow.trigger(WAVE_DAG)
    seen: list[Weights] = []

    def poll() -> Weights:
        w = lab.router.get_weights()
        if not seen or seen[-1] != w:
            seen.append(w)
        return w

    deadline = time.time() + 420  # the wave's preparation, job handover and validation come first
    while poll().green < 25:
        assert lab.airflow.run_state(WAVE_DAG, wave_run) not in ("success", "failed"), (
            f"the wave run ended before green reached 25 %: {seen}"
        )
        assert time.time() < deadline, f"green never reached 25 %: {seen}"
        time.sleep(0.2)
    reached = seen[-1]

    started = time.time()
    emergency_run = lab.airflow.trigger(
        EMERGENCY_DAG, conf={"wave": "e2e-emergency", "services": ["web"], "reason": "test"}
    )
    while poll() != Weights(100, 0):
        assert time.time() - started < 60, f"traffic not back on blue 60 s after the trigger: {seen}"
        time.sleep(0.1)
    to_blue = time.time() - started
    assert lab.airflow.wait_for_run(EMERGENCY_DAG, emergency_run, timeout=120) == "success", lab.airflow.task_instances(
        EMERGENCY_DAG, emergency_run
    )
    finished = time.time() - started
    print(
        f"\nemergency rollback at {reached}: 100 % blue {to_blue:.1f} s after the trigger, "
        f"run finished after {finished:.1f} s"
    )
    after: list[Weights] = []
    state = lab.airflow.wait_for_run(WAVE_DAG, wave_run, timeout=180, on_poll=lambda: after.append(poll()))
    after.append(poll())
    tis = lab.airflow.task_instances(WAVE_DAG, wave_run)
    assert state == "failed"
    assert all(w == Weights(100, 0) for w in after), f"green took traffic again after the emergency: {after}"
    assert tis["rollback.wave_rolled_back"]["state"] == "failed"  # the wave's own rollback ran, red on purpose
    assert tis["rollback.traffic_to_blue"]["state"] == "success"
    steps = {t: ti["state"] for t, ti in tis.items() if t.endswith(".set_traffic")}
    print(f"wave run {wave_run}: {state}; traffic steps {steps}; weights seen {[w.green for w in seen]}")
    # never reached, or refused by the stop (then the wave's own rollback ran)
    assert steps.get("gradual_transition.web.step2_100pct.set_traffic") in (
        None,
        "skipped",
        "upstream_failed",
        "failed",
    )
    assert to_blue < 30, f"{to_blue:.1f} s to 100 % blue"
