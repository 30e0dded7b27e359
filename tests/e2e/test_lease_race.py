"""Five wave DAGs sharing one service, triggered in the same second through the REST API of a real Airflow
(scheduler, LocalExecutor workers as separate processes), round after round: exactly one run acts each
time, the other four are refused by plan_wave naming it, and the winner's release_leases gives the lease
back for the next round. The waves are simulated (one world, one web workload), so a round costs a few
task hops, not a lab migration."""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Any

import pytest

from include.slow_injection.drivers.simulated import SimulatedWorld
from tests.e2e.conftest import LEASE_WAVES, LEASE_WORLD
from tests.support.waves import healthy_world

pytestmark = pytest.mark.e2e
ROUNDS = 3


def trigger_together(lab: Any) -> dict[str, str]:
    """Each wave's run, all POSTed at one barrier (the DAGs unpaused first, so the POSTs are all that's left)."""
    for wave in LEASE_WAVES:
        lab.airflow._request("PATCH", f"/api/v2/dags/wave_{wave}", {"is_paused": False})
    barrier = threading.Barrier(len(LEASE_WAVES))
    runs: dict[str, str] = {}

    def post(wave: str) -> None:
        barrier.wait()
        runs[wave] = lab.airflow.trigger(f"wave_{wave}")

    threads = [threading.Thread(target=post, args=(w,)) for w in LEASE_WAVES]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return runs


def when(ti: dict[str, Any], field: str) -> dt.datetime:
    return dt.datetime.fromisoformat(ti[field].replace("Z", "+00:00"))


def test_five_waves_sharing_a_service_triggered_in_the_same_second_exactly_one_acts(lab) -> None:
    world = SimulatedWorld(LEASE_WORLD)
    took = []
    for round_ in range(ROUNDS):
        world.reset(healthy_world())
        lab.airflow.forget_wave_states()  # last round's winner completed: it would only verify (and lease nothing)
        started = time.monotonic()
        runs = trigger_together(lab)
        states = {w: lab.airflow.wait_for_run(f"wave_{w}", r, timeout=300) for w, r in runs.items()}
        outcomes = {
            w: lab.airflow.xcom(f"wave_{w}", r, "preparation.plan_wave", key="plan_outcome") for w, r in runs.items()
        }
        planned = [w for w, o in outcomes.items() if o and o["state"] == "planned"]
        assert len(planned) == 1, f"round {round_}: {outcomes}"
        (winner,) = planned
        assert states[winner] == "success", f"round {round_}: {states}"
        for wave, outcome in outcomes.items():
            if wave != winner:
                assert states[wave] == "failed", f"round {round_}: {states}"
                (problem,) = outcome["problems"]
                assert f"is being migrated by wave {winner} (run {runs[winner]})" in problem, problem
        weights = [h["green"] for h in world.read().get("history", []) if h["what"] == "set_weights"]
        assert weights == [25, 100], f"round {round_}: only the winner moved traffic, once: {weights}"
        assert not world.read().get("leases"), "the winner's release_leases gave the lease back"
        # every refusal was decided while the winner held the lease, not after it let go
        released = lab.airflow.task_instances(f"wave_{winner}", runs[winner])["post_release.release_leases"]
        for wave in LEASE_WAVES:
            if wave != winner:
                plan = lab.airflow.task_instances(f"wave_{wave}", runs[wave])["preparation.plan_wave"]
                assert when(plan, "end_date") < when(released, "start_date"), (wave, plan, released)
        took.append(round(time.monotonic() - started))
    print(f"{ROUNDS} rounds of {len(LEASE_WAVES)} waves triggered together: {took} s each")
