"""Whole wave runs with dag.test() against the simulated world: promote, roll back, hold, dry-run."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.waves import events, healthy_world, run_wave, small_wave, weights_history

pytestmark = [pytest.mark.airflow, pytest.mark.usefixtures("airflow_db")]


def test_promote_path_ends_with_green_at_100_and_blue_retired(tmp_path: Path, world) -> None:
    world.reset(healthy_world())
    state, tis = run_wave(tmp_path, world, small_wave(world.path.stem))
    assert state == "success", {k: v for k, v in tis.items() if v != "success"}
    now = world.read()
    assert now["routers"]["web"] == {"blue": 0, "green": 100}
    assert weights_history(world) == [25, 100]
    assert now["workloads"]["blue"]["CronJob/shop/report-job"]["suspended"] is True
    assert now["workloads"]["green"]["CronJob/shop/report-job"]["suspended"] is False
    assert now["workloads"]["blue"]["Deployment/shop/web"]["replicas"] == 0
    assert now["workloads"]["green"]["Deployment/shop/web"]["replicas"] == 2
    assert tis["rollback.restore_blue_workloads"] == "skipped" and tis["wave_held"] == "skipped"
    assert tis["post_release.evaluation_report"] == "success"
    assert events(world)[0] == "wave_started" and events(world)[-1] == "wave_completed"
    assert "gate_failed" not in events(world)


def test_a_failed_metric_gate_during_the_25_percent_step_returns_all_traffic_to_blue(
    tmp_path: Path, world, reports_dir: Path
) -> None:
    broken = healthy_world()
    broken["metrics"]['error_ratio{service="web",env="green"}'] = {
        "router": "web",
        "when_green_at_least": 25,
        "value": 0.2,
        "otherwise": 0.001,
    }
    world.reset(broken)
    state, tis = run_wave(tmp_path, world, small_wave(world.path.stem))
    assert state == "failed"
    assert world.read()["routers"]["web"] == {"blue": 100, "green": 0}
    assert weights_history(world) == [25, 0]
    assert tis["gradual_transition.web.step1_25pct.gate_error-rate"] == "failed"
    assert tis["gradual_transition.web.step1_25pct.rollback_requested"] == "success"
    assert tis["gradual_transition.web.step2_100pct.set_traffic"] == "skipped"
    assert tis["rollback.restore_blue_workloads"] == "success"
    assert tis["rollback.traffic_to_blue"] == "success"
    assert tis["rollback.wave_rolled_back"] == "failed"  # the run is red on purpose
    jobs = world.read()["workloads"]
    assert jobs["blue"]["CronJob/shop/report-job"]["suspended"] is False  # the job is back on blue
    assert jobs["green"]["CronJob/shop/report-job"]["suspended"] is True
    assert {"gate_failed", "rollback_started", "rollback_finished"} <= set(events(world))
    assert events(world).count("gate_failed") == 1
    report = (reports_dir / "wave_small" / run_wave.last_run_id.replace(":", "_") / "report.md").read_text()
    assert "Outcome: rolled back" in report and "gate error-rate failed" in report


def test_a_failed_step_reaches_rollback_too(tmp_path: Path, world) -> None:
    failing = healthy_world()
    failing["faults"] = {"deploy_green": True}
    world.reset(failing)
    data = small_wave(world.path.stem)
    data["services"][0].pop("gates")  # no gate needs green's copy of the job
    failing["faults"] = {"deploy_green": False}
    state, tis = run_wave(tmp_path, world, data)
    assert state == "failed"
    assert tis["migrate_scheduled_jobs.report-job.copy.deploy_green"] == "failed"
    assert tis["migrate_scheduled_jobs.report-job.copy.decide"] == "success"
    assert tis["rollback.traffic_to_blue"] == "success"
    assert world.read()["routers"]["web"] == {"blue": 100, "green": 0}
    assert weights_history(world) == []


def test_no_data_with_hold_policy_holds_at_the_current_step_without_rollback(tmp_path: Path, world) -> None:
    quiet = healthy_world()
    del quiet["metrics"]['error_ratio{service="web",env="green"}']
    world.reset(quiet)
    data = small_wave(world.path.stem)
    data["services"][1]["gates"][0].update(on_no_data="hold", hold_timeout=1)
    state, tis = run_wave(tmp_path, world, data)
    assert state == "failed"
    assert tis["gradual_transition.web.step1_25pct.hold_requested"] == "success"
    assert tis["wave_held"] == "failed"
    assert tis["rollback.traffic_to_blue"] == "skipped"
    assert world.read()["routers"]["web"] == {"blue": 75, "green": 25}  # holds where it stopped
    assert "wave_held" in events(world)


def test_dry_run_changes_nothing(tmp_path: Path, world) -> None:
    world.reset(healthy_world())
    before = world.read()
    state, tis = run_wave(tmp_path, world, small_wave(world.path.stem), conf={"dry_run": True})
    assert state == "success", {k: v for k, v in tis.items() if v not in ("success", "skipped")}
    after = world.read()
    assert after.get("history", []) == []
    assert after["routers"] == before["routers"] and after["workloads"] == before["workloads"]


def test_a_failed_first_run_on_green_hands_the_job_back_to_blue(tmp_path: Path, world) -> None:
    failing = healthy_world()
    failing["job_results"] = {"CronJob/shop/report-job": "failed"}
    world.reset(failing)
    state, tis = run_wave(tmp_path, world, small_wave(world.path.stem))
    assert state == "failed"
    assert tis["migrate_scheduled_jobs.report-job.handover.wait_first_run"] == "failed"
    assert tis["rollback.restore_blue_workloads"] == "success"
    jobs = world.read()["workloads"]
    assert jobs["blue"]["CronJob/shop/report-job"]["suspended"] is False
    assert jobs["green"]["CronJob/shop/report-job"]["suspended"] is True
    assert weights_history(world) == []  # user traffic never moved
