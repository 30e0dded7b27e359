"""Scale-out on a distributed executor: Airflow on CeleryExecutor with a real Redis broker (Debian's
redis-server on loopback) and two Celery workers, with the settings of docker-compose.yaml's `celery`
profile (deploy/celery.env), and the lab (HAProxy, Prometheus, a real Kubernetes control plane).

The worker running a traffic step's weight change (held in flight by a proxy on HAProxy's admin socket:
lab/admin_proxy.py) is killed with SIGKILL, with every process it started, as losing its machine would.
The scheduler notices the missing heartbeats, the task is retried on the other worker, and the wave
completes; HAProxy's weights, read every 0.2 s through its runtime API, only ever take the steps' values.

Its own lab and Airflow (not the `lab` fixture's): tests/run_suite.sh runs it after the minute-tick tests,
in their process.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
import yaml
from celery import Celery

from include.slow_injection.drivers.haproxy import HAProxyRouter, HAProxyRuntime
from include.slow_injection.lab.admin_proxy import SlowAdminSocket
from include.slow_injection.lab.airflow_stack import CELERY_ENV, AirflowStack, read_env_file
from include.slow_injection.lab.lab import Lab, Ports
from tests.e2e.conftest import fast_wave
from tests.support.e2e_runs import WeightWatch, patient, problems, try_of

pytestmark = pytest.mark.e2e
WAVE = "e2e-celery"
DAG = f"wave_{WAVE}"
SET_TRAFFIC = "gradual_transition.web.step1_5pct.set_traffic"
ASKED = {0, 5, 100}  # green % before the wave (blue only), then fast_wave's steps
HOLD = 2.5  # seconds the weight change is held: below the driver's 3 s socket timeout
# A task on a lost worker is failed (and retried) once its heartbeats are 20 s late instead of 60 s; the
# task supervisor beats every 5 s ([workers] min_heartbeat_interval), so a slow beat is not a lost one.
HEARTBEAT = {
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20",
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "2",
}


@dataclass
class CeleryLab:
    lab: Lab
    airflow: AirflowStack
    router: HAProxyRouter


@pytest.fixture(scope="module")
def celery_lab():
    root = Path(tempfile.mkdtemp(prefix="slow-injection-celery-"))
    # the wave's haproxy router writes HAProxy itself: no route controller to resync it
    lab = Lab(root / "lab", Ports.free(), load_rate=50, route_controller=None)
    waves = root / "waves"
    waves.mkdir()
    (waves / f"{WAVE}.yaml").write_text(yaml.safe_dump(fast_wave(WAVE), sort_keys=False))
    airflow = AirflowStack(
        root / "airflow", waves, extra_env={**lab.airflow_env(), **HEARTBEAT}, executor="CeleryExecutor"
    )
    try:
        lab.start()
        airflow.start()
        airflow.wait_for_dag(DAG)
        router = HAProxyRouter(
            HAProxyRuntime(str(lab.admin_socket)),
            HAProxyRouter.Settings(backend="web", blue_server="blue", green_server="green"),
        )
        yield CeleryLab(lab, airflow, router)
    finally:
        airflow.stop()
        lab.stop()
        print(f"Celery e2e logs kept in {root} (workers' under airflow/logs, task logs under airflow/airflow/logs)")


def test_both_workers_run_the_compose_profile_s_celery_settings(celery_lab: CeleryLab) -> None:
    """Asked through the broker (Celery's remote control), each live worker reports its configuration:
    every setting of deploy/celery.env is in force, and both listen on this stack's Redis."""
    wanted, broker = read_env_file(CELERY_ENV), f"redis://127.0.0.1:{celery_lab.airflow.redis_port}/0"
    inspect = Celery(broker=broker).control.inspect(timeout=10, limit=len(celery_lab.airflow.workers))
    reported = inspect.conf(with_defaults=False) or {}
    assert sorted(name.split("@")[0] for name in reported) == sorted(celery_lab.airflow.workers), reported.keys()
    for name, conf in reported.items():
        running = {
            **{f"AIRFLOW__CELERY__{k.upper()}": str(v) for k, v in conf.items()},
            **{
                f"AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__{k.upper()}": str(v)
                for k, v in conf.get("broker_transport_options", {}).items()
            },
        }
        assert {k: running.get(k) for k in wanted} == wanted, name
        assert conf["broker_url"] == broker, name


def test_a_worker_killed_mid_weight_change_its_task_retries_on_the_other_worker_and_the_wave_completes(
    celery_lab: CeleryLab,
) -> None:
    airflow, workers = celery_lab.airflow, celery_lab.airflow.workers
    with SlowAdminSocket(celery_lab.lab.admin_socket) as proxy:
        watch = WeightWatch(HAProxyRouter(HAProxyRuntime(str(proxy.behind)), celery_lab.router.settings))
        proxy.hold_next(HOLD)  # the wave's first weight change: step 1, 5 %
        run_id = airflow.trigger(DAG)
        try:
            assert proxy.held.wait(timeout=600), f"no weight change reached HAProxy: {proxy.commands}"
            held = proxy.held_commands()[0]
            lost = airflow.worker_running(held.pid)  # the worker whose task process is inside the change
            assert lost is not None, f"PID {held.pid} is in no Celery worker's process tree"
            killed = airflow.kill_worker(lost)
            killed_at, killed_while_held = time.time(), held.forwarded_at is None
            state = airflow.wait_for_run(DAG, run_id, timeout=600)
        finally:
            greens = watch.stop()
    tis = patient(lambda: airflow.task_instances(DAG, run_id))
    assert state == "success", problems(tis)
    assert killed_while_held, "the kill landed after HAProxy had answered: not mid-change"
    assert held.pid in killed and not any(psutil.pid_exists(pid) for pid in killed), killed
    survivor = next(w for w in workers if w != lost)

    # The killed try ran on the lost worker; the scheduler failed it for its missing heartbeats and the
    # retry ran on the other worker, which read HAProxy back at the step's weight.
    first = try_of(celery_lab, DAG, run_id, SET_TRAFFIC, 1)
    assert (first["hostname"], first["pid"]) == (lost, held.pid), first
    assert first["state"] in ("up_for_retry", "failed"), first["state"]
    last = try_of(celery_lab, DAG, run_id, SET_TRAFFIC, tis[SET_TRAFFIC]["try_number"])
    assert last["try_number"] >= 2 and last["state"] == "success" and last["hostname"] == survivor, last
    assert airflow.xcom(DAG, run_id, SET_TRAFFIC)["after"] == "blue 95, green 5"
    print(
        f"{SET_TRAFFIC}: try 1 on {first['hostname']} (pid {first['pid']}) killed; try {last['try_number']} on "
        f"{last['hostname']} (pid {last['pid']}) started {_epoch(last['start_date']) - killed_at:.1f} s after the kill"
    )
    # Every task that ran (EmptyOperators never reach a worker) ran on a Celery worker; after the kill, only
    # on the survivor.
    ran = {task: ti["hostname"] for task, ti in tis.items() if ti["state"] == "success" and ti["hostname"]}
    assert set(ran.values()) <= set(workers), ran
    after = [t for t, ti in tis.items() if ti["start_date"] and _epoch(ti["start_date"]) > killed_at + 1]
    assert after and all(ran.get(t, survivor) == survivor for t in after), {t: ran.get(t) for t in after}
    print(f"tasks per worker: { {w: sorted(ran.values()).count(w) for w in workers} }")

    # No split that no step asked for: every weight HAProxy was told, and every weight it showed.
    told = [c.weights() for c in proxy.sets()]
    assert told and all(w in ({"web/blue": 95, "web/green": 5}, {"web/blue": 0, "web/green": 100}) for w in told), told
    assert set(greens) <= ASKED and greens == sorted(greens) and greens[0] == 0 and greens[-1] == 100, greens
    assert not watch.errors, watch.errors


def _epoch(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
