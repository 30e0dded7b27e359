"""Two runs targeting one service never act at once (the platform's leases, tasks/leases.py), with
whole runs (dag.test) and the holder's DAG run as a real row of the metadata DB. What
test_operating_runs does not cover: a second run of the *same* wave while the first runs, a live
holder of another wave, leases after a failed and after a cleared run, and stale leases:
- a live holder (queued/running) refuses every other run, the same wave's included;
- a lease left by an ended run of the same wave is taken over (the run reads the world and converges);
- one left by an ended run of another wave still refuses (that wave may have left the service
  half-moved): the message says the holder ended and which Variable to delete once checked."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from tests.support.waves import events, healthy_world, run_wave, small_wave, weights_history, write

pytestmark = [pytest.mark.airflow, pytest.mark.usefixtures("airflow_db")]
WEB = {"kind": "Deployment", "namespace": "shop", "name": "web"}
JOB = {"kind": "CronJob", "namespace": "shop", "name": "report-job"}


def holder_run(dag_id: str, run_id: str, state: str = "running") -> None:
    """Another run of `dag_id`, as the scheduler would have it in the metadata DB."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    now = dt.datetime.now(dt.UTC)
    with create_session() as session:
        session.add(DagRun(dag_id=dag_id, run_id=run_id, run_type="manual", state=state, run_after=now, start_date=now))


def set_holder_state(dag_id: str, run_id: str, state: str) -> None:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        session.query(DagRun).filter(DagRun.dag_id == dag_id, DagRun.run_id == run_id).update({"state": state})


def _key(workload: dict[str, Any]) -> str:
    return f"{workload['kind']}/{workload['namespace']}/{workload['name']}"


def lease(world, workload: dict[str, Any]) -> dict[str, Any] | None:
    """The workload's lease as the simulated platform keeps it (what a Kubernetes Lease is there)."""
    return world.read().get("leases", {}).get(_key(workload))


def hold_lease(world, workload: dict[str, Any], wave: str, run_id: str, dag_id: str | None = None) -> None:
    holder = {"wave": wave, "run_id": run_id, "service": "web", "dag_id": dag_id or "", "version": 7}
    world.update(lambda state: state.setdefault("leases", {}).__setitem__(_key(workload), holder))


def no_leases(world) -> bool:
    return not world.read().get("leases")


def refusal(run_id: str) -> list[str]:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = (
            session.query(XComModel)
            .filter(
                XComModel.run_id == run_id,
                XComModel.task_id == "preparation.plan_wave",
                XComModel.key == "plan_outcome",
            )
            .one()
        )
        return XComModel.deserialize_value(row).get("problems", [])


def test_a_second_run_of_the_same_wave_is_refused_while_the_first_runs_and_starts_once_it_ended(
    tmp_path: Path, world
) -> None:
    world.reset(healthy_world())
    holder_run("wave_small", "manual__first")
    hold_lease(world, WEB, "small", "manual__first", "wave_small")
    state, tis = run_wave(tmp_path, world, small_wave(world.path.stem))
    assert state == "failed" and tis["preparation.run_refused"] == "failed"
    problems = refusal(run_wave.last_run_id)
    assert len(problems) == 1 and "wave small (run manual__first)" in problems[0], problems
    assert "web (Deployment shop/web)" in problems[0]
    assert world.read().get("history", []) == [] and "wave_started" not in events(world)
    assert lease(world, WEB)["run_id"] == "manual__first"  # neither taken over nor released by the refused run
    assert lease(world, JOB) is None  # all or nothing: the free service was not leased either

    set_holder_state("wave_small", "manual__first", "failed")  # the first run ended without its report
    state, tis = run_wave(tmp_path, world, small_wave(world.path.stem))
    assert state == "success", {k: v for k, v in tis.items() if v not in ("success", "skipped")}
    assert weights_history(world) == [25, 100]
    assert no_leases(world)  # the stale lease was taken over, then released by this run's release_leases


def test_a_live_run_of_another_wave_refuses_naming_it(tmp_path: Path, world) -> None:
    world.reset(healthy_world())
    holder_run("wave_other", "scheduled__other")
    hold_lease(world, JOB, "other", "scheduled__other", "wave_other")
    state, tis = run_wave(tmp_path, world, small_wave(world.path.stem))
    assert state == "failed" and tis["preparation.run_refused"] == "failed"
    problems = refusal(run_wave.last_run_id)
    assert "report-job (CronJob shop/report-job) is being migrated by wave other (run scheduled__other)" in problems[0]
    assert world.read().get("history", []) == []
    assert lease(world, JOB)["wave"] == "other" and lease(world, WEB) is None


def test_a_stale_lease_of_another_wave_still_refuses_and_says_the_holder_ended(tmp_path: Path, world) -> None:
    world.reset(healthy_world())
    holder_run("wave_other", "manual__gone", state="failed")
    hold_lease(world, WEB, "other", "manual__gone", "wave_other")
    state, tis = run_wave(tmp_path, world, small_wave(world.path.stem))
    assert state == "failed" and tis["preparation.run_refused"] == "failed"
    (problem,) = refusal(run_wave.last_run_id)
    assert "wave other (run manual__gone), which is no longer running" in problem
    assert "then delete simulated lease Deployment/shop/web" in problem
    assert world.read().get("history", []) == []
    assert lease(world, WEB)["run_id"] == "manual__gone"


def test_a_failed_run_releases_its_leases(tmp_path: Path, world) -> None:
    broken = healthy_world()
    broken["metrics"]['error_ratio{service="web",env="green"}'] = 0.5
    world.reset(broken)
    state, tis = run_wave(tmp_path, world, small_wave(world.path.stem))
    assert state == "failed" and tis["rollback.traffic_to_blue"] == "success"
    assert no_leases(world)


def test_a_run_cleared_after_failing_takes_its_own_lease_again_and_releases_it(tmp_path: Path, world) -> None:
    """dag.test on the same logical date clears every task of that run and runs it again (same run_id):
    plan_wave finds the run's own lease or none, never a conflict with itself."""
    from include.slow_injection.builders.factory import build_dag
    from include.slow_injection.spec import load_wave

    failing = healthy_world()
    failing["faults"] = {"platform_down": True}
    world.reset(failing)
    dag = build_dag(load_wave(write(tmp_path, small_wave(world.path.stem))))
    when = dt.datetime(2026, 1, 2, tzinfo=dt.UTC)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SLOW_INJECTION_WAVES_DIR", str(tmp_path))
        first = dag.test(logical_date=when, run_after=when)
        assert first.state == "failed"
        assert no_leases(world)
        world.reset(healthy_world())
        hold_lease(world, WEB, "small", first.run_id, "wave_small")  # as if release_leases had not run before the clear
        again = dag.test(logical_date=when, run_after=when)
    assert again.run_id == first.run_id
    assert again.state == "success"
    assert weights_history(world) == [25, 100]
    assert no_leases(world)


def test_another_waves_lease_with_the_same_run_id_is_neither_taken_nor_released(tmp_path: Path, world) -> None:
    """Run ids are unique per DAG only: two waves on one cron both run scheduled__<time>. A lease is
    this run's own only when wave and run id both match; the refused run's release_leases leaves it alone."""
    from include.slow_injection.builders.factory import build_dag
    from include.slow_injection.spec import load_wave

    world.reset(healthy_world())
    when = dt.datetime(2026, 1, 3, tzinfo=dt.UTC)
    dag = build_dag(load_wave(write(tmp_path, small_wave(world.path.stem))))
    same_run_id = "manual__2026-01-03T00:00:00+00:00"
    holder_run("wave_other", same_run_id)
    hold_lease(world, WEB, "other", same_run_id, "wave_other")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SLOW_INJECTION_WAVES_DIR", str(tmp_path))
        run = dag.test(logical_date=when, run_after=when)
    assert run.run_id == same_run_id
    assert run.state == "failed"
    assert "is being migrated by wave other" in refusal(run.run_id)[0]
    assert world.read().get("history", []) == []
    assert lease(world, WEB)["wave"] == "other"  # still held: not released by the other wave's release_leases
