"""The emergency_rollback DAG with dag.test() against the simulated world: named services back on blue,
the stop flag, and what a wave run does when it meets the flag."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from include.slow_injection.spec import load_wave, load_waves
from tests.support.waves import healthy_world, sim, small_wave, write

pytestmark = [pytest.mark.airflow, pytest.mark.usefixtures("airflow_db")]

JOB, WEB, API = "CronJob/shop/report-job", "Deployment/shop/web", "Deployment/shop/api"


def two_exposed_wave(world) -> dict:
    """small_wave (report-job, web) plus a second exposed service, api; the wave id is the world's name."""
    wave = small_wave(world.path.stem, world.path.stem)
    api = json.loads(json.dumps(wave["services"][1]))
    api.update(
        name="api", workload={"kind": "Deployment", "namespace": "shop", "name": "api"}, router=sim(world.path.stem)
    )
    api["health_checks"][0]["check"] = sim(world.path.stem, target="api-green")
    wave["services"].append(api)
    return wave


def mid_wave_world() -> dict:
    """The job runs on green; web is at 25 % green and api at 50 %; blue still has its pods."""
    return {
        "routers": {"web": {"blue": 75, "green": 25}, "api": {"blue": 50, "green": 50}},
        "workloads": {
            "blue": {JOB: {"suspended": True}, WEB: {"replicas": 2}, API: {"replicas": 2}},
            "green": {JOB: {"suspended": False}, WEB: {"replicas": 2}, API: {"replicas": 2}},
        },
    }


def run_emergency(tmp_path: Path, wave_data: dict, conf: dict):
    from airflow.models import TaskInstance
    from airflow.utils.session import create_session

    from include.slow_injection.builders.emergency_dag import build_dag

    write(tmp_path, wave_data)
    with pytest.MonkeyPatch.context() as mp:  # the tasks load the wave's spec from this folder
        mp.setenv("SLOW_INJECTION_WAVES_DIR", str(tmp_path))
        dag = build_dag(load_waves(tmp_path).waves)
        run = dag.test(run_conf=conf)
    with create_session() as session:
        tis = (
            session.query(TaskInstance)
            .filter(TaskInstance.dag_id == dag.dag_id, TaskInstance.run_id == run.run_id)
            .all()
        )
        states = {ti.task_id: str(ti.state) if ti.state else None for ti in tis}
    return run.state, states


def run_wave(tmp_path: Path, wave_data: dict):
    from airflow.models import TaskInstance
    from airflow.utils.session import create_session

    from include.slow_injection.builders.factory import build_dag

    dag = build_dag(load_wave(write(tmp_path, wave_data)))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SLOW_INJECTION_WAVES_DIR", str(tmp_path))
        run = dag.test()
    with create_session() as session:
        tis = (
            session.query(TaskInstance)
            .filter(TaskInstance.dag_id == dag.dag_id, TaskInstance.run_id == run.run_id)
            .all()
        )
        states = {ti.task_id: str(ti.state) if ti.state else None for ti in tis}
    return run.state, states


def stop_flags(wave_id: str) -> dict[str, dict]:
    from airflow.models import Variable
    from airflow.utils.session import create_session

    from include.slow_injection.tasks.emergency_stop import STOP_PREFIX

    prefix = f"{STOP_PREFIX}__{wave_id}__"
    with create_session() as session:
        found = session.query(Variable).filter(Variable.key.startswith(prefix)).all()
        return {v.key[len(prefix) :]: json.loads(v.val) for v in found}


def set_flag(wave_id: str, service: str, at: dt.datetime) -> None:
    from airflow.models import Variable

    from include.slow_injection.tasks.emergency_stop import stop_key

    Variable.set(
        stop_key(wave_id, service),
        json.dumps(
            {"at": at.isoformat(), "wave": wave_id, "service": service, "reason": "test", "run_id": "manual__test"}
        ),
    )


@pytest.fixture(autouse=True)
def no_flags_left():
    """Every test's wave id is its own world's name; the flags are removed afterwards all the same."""
    yield
    from airflow.models import Variable
    from airflow.utils.session import create_session

    from include.slow_injection.tasks.emergency_stop import STOP_PREFIX

    with create_session() as session:
        session.query(Variable).filter(Variable.key.startswith(STOP_PREFIX)).delete(synchronize_session=False)


def events(world) -> list[str]:
    return [n["event"] for n in world.read().get("notifications", [])]


def test_named_services_go_back_to_blue_and_the_others_stay(tmp_path: Path, world) -> None:
    world.reset(mid_wave_world())
    wave_id = world.path.stem
    state, tis = run_emergency(
        tmp_path,
        two_exposed_wave(world),
        {"wave": wave_id, "services": ["web", "report-job"], "reason": "5xx spike on web"},
    )
    assert state == "success", tis
    now = world.read()
    assert now["routers"]["web"] == {"blue": 100, "green": 0}
    assert now["routers"]["api"] == {"blue": 50, "green": 50}  # not named: left where it was
    assert now["workloads"]["blue"][JOB]["suspended"] is False  # the job runs on blue again
    assert now["workloads"]["green"][JOB]["suspended"] is True
    flags = stop_flags(wave_id)
    assert sorted(flags) == ["report-job", "web"]
    assert flags["web"]["reason"] == "5xx spike on web" and flags["web"]["run_id"].startswith("manual__")
    assert dt.datetime.fromisoformat(flags["web"]["at"]).tzinfo is not None
    assert events(world) == ["rollback_started", "rollback_finished"]
    started = world.read()["notifications"][0]
    assert "EMERGENCY" in started["subject"] and "5xx spike on web" in started["body"]


def test_no_services_named_means_every_service_of_the_wave(tmp_path: Path, world) -> None:
    world.reset(mid_wave_world())
    wave_id = world.path.stem
    state, tis = run_emergency(tmp_path, two_exposed_wave(world), {"wave": wave_id, "services": [], "reason": "drill"})
    assert state == "success", tis
    now = world.read()
    assert now["routers"] == {"web": {"blue": 100, "green": 0}, "api": {"blue": 100, "green": 0}}
    assert now["workloads"]["blue"][JOB]["suspended"] is False
    assert sorted(stop_flags(wave_id)) == ["api", "report-job", "web"]


def test_blue_retired_after_a_completed_wave_gets_its_pods_back_before_traffic(tmp_path: Path, world) -> None:
    done = mid_wave_world()
    done["routers"] = {"web": {"blue": 0, "green": 100}, "api": {"blue": 0, "green": 100}}
    done["workloads"]["blue"][WEB] = {"replicas": 0, "retired_from": 2}
    world.reset(done)
    state, tis = run_emergency(
        tmp_path, two_exposed_wave(world), {"wave": world.path.stem, "services": ["web"], "reason": "green broke"}
    )
    assert state == "success", tis
    history = world.read()["history"]
    order = [(h["what"], h.get("service") or h.get("key")) for h in history]
    assert order == [("workload", WEB), ("set_weights", "web")]  # blue's pods first, then its traffic
    assert world.read()["workloads"]["blue"][WEB]["replicas"] == 2


def test_an_unknown_service_is_refused_by_name_and_nothing_changes(tmp_path: Path, world) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    from include.slow_injection.tasks.emergency import rollback_plan

    world.reset(mid_wave_world())
    before = world.read()
    wave_id = world.path.stem
    state, tis = run_emergency(
        tmp_path, two_exposed_wave(world), {"wave": wave_id, "services": ["web", "checkout"], "reason": "typo"}
    )
    assert state == "failed"
    assert tis["stop_wave"] == "failed"
    assert tis["traffic_to_blue"] == "upstream_failed"
    assert world.read() == before
    assert stop_flags(wave_id) == {}
    with pytest.raises(AirflowFailException) as refused:
        rollback_plan(load_wave(tmp_path / f"{wave_id}.yaml"), ["web", "checkout"])
    assert str(refused.value) == (
        f"params.services: wave {wave_id} has no service 'checkout' (its services: "
        "report-job, web, api; leave the list empty for all). Nothing was changed."
    )


def test_a_wave_run_that_started_before_the_stop_may_not_move_traffic_and_rolls_itself_back(
    tmp_path: Path, world
) -> None:
    world.reset(healthy_world())
    wave = small_wave(world.path.stem, world.path.stem)
    # A stop recorded while the run is under way: dated after the run's start.
    set_flag(wave["id"], "web", dt.datetime.now(dt.UTC) + dt.timedelta(hours=1))
    state, tis = run_wave(tmp_path, wave)
    assert state == "failed"
    assert tis["gradual_transition.web.step1_25pct.set_traffic"] == "failed"  # refused, not retried into success
    assert tis["rollback.traffic_to_blue"] == "success" and tis["rollback.wave_rolled_back"] == "failed"
    assert [h for h in world.read().get("history", []) if h["what"] == "set_weights"] == []  # never left blue
    assert world.read()["routers"]["web"] == {"blue": 100, "green": 0}


def test_a_wave_run_started_after_an_emergency_rollback_proceeds(tmp_path: Path, world) -> None:
    world.reset(healthy_world())
    wave = small_wave(world.path.stem, world.path.stem)
    state, _ = run_emergency(tmp_path, wave, {"wave": wave["id"], "services": ["web"], "reason": "paused the wave"})
    assert state == "success" and "web" in stop_flags(wave["id"])
    state, tis = run_wave(tmp_path, wave)
    assert state == "success", {k: v for k, v in tis.items() if v not in ("success", "skipped")}
    assert world.read()["routers"]["web"] == {"blue": 0, "green": 100}


def test_a_flag_that_cannot_be_read_stops_traffic_too(tmp_path: Path, world) -> None:
    from airflow.models import Variable

    from include.slow_injection.tasks.emergency_stop import stop_key

    world.reset(healthy_world())
    wave = small_wave(world.path.stem, world.path.stem)
    Variable.set(stop_key(wave["id"], "web"), "stopped by hand")
    state, tis = run_wave(tmp_path, wave)
    assert state == "failed"
    assert tis["gradual_transition.web.step1_25pct.set_traffic"] == "failed"
    assert world.read()["routers"]["web"] == {"blue": 100, "green": 0}


def test_the_trigger_form_lists_the_waves_and_requires_a_reason(tmp_path: Path) -> None:
    from include.slow_injection.builders.emergency_dag import build_dag

    write(tmp_path, small_wave("w", "alpha"))
    write(tmp_path, small_wave("w", "beta"))
    dag = build_dag(load_waves(tmp_path).waves)
    schema = {k: dag.params.get_param(k).schema for k in ("wave", "services", "reason")}
    assert schema["wave"]["enum"] == ["alpha", "beta"]
    assert schema["services"]["type"] == "array" and dag.params["services"] == []
    assert schema["reason"]["minLength"] >= 3
    assert sorted(dag.task_ids) == [
        "data_to_blue",
        "jobs_to_blue",
        "restore_blue_workloads",
        "stop_wave",
        "traffic_to_blue",
    ]
    assert all(t.retries >= 5 for t in dag.tasks)
    assert dag.get_task("traffic_to_blue").upstream_task_ids == {"data_to_blue"}  # blue has green's writes first
    assert dag.get_task("data_to_blue").upstream_task_ids == {"restore_blue_workloads"}
