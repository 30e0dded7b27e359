"""Operating verbs on whole runs (dag.test, simulated world): the trigger form, the maintenance window,
hold then resume, a completed wave's nightly verification, service Assets and wave chaining."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from include.slow_injection import run_scope
from tests.support.waves import _xcom, events, healthy_world, run_wave, small_wave, weights_history

pytestmark = [pytest.mark.airflow, pytest.mark.usefixtures("airflow_db")]
UTC = dt.UTC


def windowed(world, outside: str = "wait") -> dict:
    data = small_wave(world.path.stem)
    data["schedule"] = {"cron": "0 2 * * *", "window": {"start": "02:00", "end": "06:00", "outside": outside}}
    return data


def clock(monkeypatch, when) -> None:
    """The wave's clock: `when()` gives the hour:minute (UTC) it reads."""
    monkeypatch.setattr(run_scope, "now_utc", lambda: dt.datetime(2026, 11, 26, *when(), tzinfo=UTC))


def untouched(world) -> bool:
    return world.read().get("history", []) == []


def test_a_form_that_breaks_a_rule_is_refused_before_anything_changes(tmp_path: Path, world) -> None:
    world.reset(healthy_world())
    state, tis = run_wave(
        tmp_path, world, small_wave(world.path.stem), conf={"skip_phases": ["validation"], "skip_reason": ""}
    )
    assert state == "failed"
    assert tis["preparation.run_refused"] == "failed"
    ran = {t for t, s in tis.items() if s not in ("skipped", None)}
    assert ran <= {"preparation.plan_wave", "preparation.run_refused", "post_release.evaluation_report"}, ran
    assert untouched(world) and "wave_started" not in events(world)


def test_an_unknown_conf_key_refuses_the_run_before_anything_acts(tmp_path: Path, world) -> None:
    """`{"dryrun": true}` is a typo of dry_run: accepting it would start a live migration."""
    world.reset(healthy_world())
    state, tis = run_wave(tmp_path, world, small_wave(world.path.stem), conf={"dryrun": True})
    assert state == "failed" and tis["preparation.run_refused"] == "failed"
    assert untouched(world) and "wave_started" not in events(world)
    from airflow.models.xcom import XComModel  # the refusal names the key and the valid ones
    from airflow.utils.session import create_session

    with create_session() as session:
        outcome = [x.value for x in session.query(XComModel).filter(XComModel.key == "plan_outcome").all()]
    text = str(outcome[-1])
    assert "'dryrun'" in text and "dry_run" in text and "max_weight" in text, text


def test_max_weight_holds_at_the_step_and_the_next_run_resumes_from_it(tmp_path: Path, world) -> None:
    world.reset(healthy_world())
    state, tis = run_wave(tmp_path, world, small_wave(world.path.stem), conf={"max_weight": 25})
    assert state == "failed" and tis["wave_held"] == "failed"
    assert tis["gradual_transition.web.step2_100pct.hold_requested"] == "success"
    assert tis["rollback.traffic_to_blue"] == "skipped"
    assert world.read()["routers"]["web"] == {"blue": 75, "green": 25}
    assert not world.read().get("leases")  # the held run's release_leases gave them back
    jobs_moved = len([h for h in world.read()["history"] if h["what"] != "set_weights"])

    state, tis = run_wave(tmp_path, world, small_wave(world.path.stem))
    assert state == "success", {k: v for k, v in tis.items() if v not in ("success", "skipped")}
    assert weights_history(world) == [25, 100]  # never back to an earlier step
    assert world.read()["routers"]["web"] == {"blue": 0, "green": 100}
    moves = [h for h in world.read()["history"] if h["what"] != "set_weights"][jobs_moved:]
    assert not [h for h in moves if "report-job" in str(h)], moves  # the job's handover is not redone


def test_a_wave_holds_at_the_window_end_and_resumes_in_the_next_window(tmp_path: Path, world, monkeypatch) -> None:
    world.reset(healthy_world())
    # The window closes while green is at 25 %: the 25 % step finishes its gates, the next one holds.
    clock(monkeypatch, lambda: (6, 1) if 25 in weights_history(world) else (5, 50))
    state, tis = run_wave(tmp_path, world, windowed(world))
    assert state == "failed" and tis["wave_held"] == "failed"
    assert tis["gradual_transition.web.step1_25pct.gate_error-rate"] == "success"
    assert tis["gradual_transition.web.step2_100pct.hold_requested"] == "success"
    assert world.read()["routers"]["web"] == {"blue": 75, "green": 25}
    assert "wave_held" in events(world) and "rollback_started" not in events(world)

    clock(monkeypatch, lambda: (2, 5))  # the next night
    state, tis = run_wave(tmp_path, world, windowed(world))
    assert state == "success"
    assert weights_history(world) == [25, 100]


def test_outside_the_window_a_skip_policy_run_changes_nothing(tmp_path: Path, world, monkeypatch) -> None:
    world.reset(healthy_world())
    clock(monkeypatch, lambda: (12, 0))
    state, tis = run_wave(tmp_path, world, windowed(world, outside="skip"))
    assert state == "success"
    assert tis["preparation.plan_wave"] == "success" and tis["post_release.wave_completed"] == "skipped"
    assert untouched(world)


def test_outside_the_window_a_wait_policy_run_waits_for_it(tmp_path: Path, world, monkeypatch) -> None:
    world.reset(healthy_world())
    real = dt.datetime.now(UTC)
    # 3 s before the window opens; the deferral lasts those 3 s of wall clock, then the window is open.
    fake_start = dt.datetime(2026, 11, 26, 1, 59, 57, tzinfo=UTC)
    monkeypatch.setattr(run_scope, "now_utc", lambda: fake_start + (dt.datetime.now(UTC) - real))
    state, tis = run_wave(tmp_path, world, windowed(world))
    assert state == "success", {k: v for k, v in tis.items() if v not in ("success", "skipped")}
    assert (dt.datetime.now(UTC) - real).total_seconds() >= 3
    assert weights_history(world) == [25, 100]


def test_a_completed_wave_publishes_its_assets_then_is_verified_nightly_and_drift_holds(tmp_path: Path, world) -> None:
    world.reset(healthy_world())
    assert run_wave(tmp_path, world, small_wave(world.path.stem, "assets"))[0] == "success"
    history = list(world.read()["history"])
    check_assets("assets")

    state, tis = run_wave(tmp_path, world, small_wave(world.path.stem, "assets"))
    assert state == "success"
    assert world.read()["history"] == history  # verified, nothing changed
    assert tis["post_release.publish_completion"] == "skipped"

    drifted = world.read()
    drifted["routers"]["web"] = {"blue": 10, "green": 90}  # somebody moved traffic by hand
    world.reset({k: v for k, v in drifted.items() if k != "history"})
    state, tis = run_wave(tmp_path, world, small_wave(world.path.stem, "assets"))
    assert state == "failed" and tis["wave_held"] == "failed"
    assert tis["rollback.traffic_to_blue"] == "skipped"
    assert world.read()["routers"]["web"] == {"blue": 10, "green": 90}
    assert world.read().get("history", []) == []


def test_a_subset_run_moves_only_the_chosen_services_and_skipped_checks_say_why(tmp_path: Path, world) -> None:
    world.reset(healthy_world())
    reason = "watched by hand tonight, ticket OPS-42"
    state, tis = run_wave(
        tmp_path,
        world,
        small_wave(world.path.stem),
        conf={"services": ["report-job"], "skip_phases": ["release_monitoring"], "skip_reason": reason},
    )
    assert state == "success", {k: v for k, v in tis.items() if v not in ("success", "skipped")}
    now = world.read()
    assert now["routers"]["web"] == {"blue": 100, "green": 0} and weights_history(world) == []
    assert now["workloads"]["green"]["CronJob/shop/report-job"]["suspended"] is False
    assert now["workloads"]["blue"]["Deployment/shop/web"]["replicas"] == 2  # web's blue is not retired
    assert tis["post_release.publish_completion"] == "skipped"  # the wave is not complete
    verdict = _xcom(run_wave.last_run_id, "release_monitoring.gate_release-errors", "verdict")
    assert verdict["status"] == "skipped" and reason in verdict["reason"]


def test_a_wave_can_be_scheduled_on_earlier_waves(tmp_path: Path, world) -> None:
    from include.slow_injection.builders.factory import build_dag
    from include.slow_injection.spec import load_waves
    from tests.support.waves import write

    first, second = small_wave(world.path.stem, "first"), small_wave(world.path.stem, "second")
    second["schedule"] = {"after": ["first"]}
    write(tmp_path, first)
    write(tmp_path, second)
    loaded = load_waves(tmp_path)
    assert not loaded.errors
    dag = build_dag(next(w for w in loaded.waves if w.id == "second"))
    from include.slow_injection.assets import wave_asset

    assert dag.timetable.asset_condition.uri == wave_asset("first").uri

    looped = small_wave(world.path.stem, "first")
    looped["schedule"] = {"after": ["second"]}
    write(tmp_path, looped)
    broken = load_waves(tmp_path)
    assert {w.id for w in broken.waves} == set()
    assert "schedule.after" in str(broken.errors[0]) and "cycle" in str(broken.errors[0])


def check_assets(wave_id: str) -> None:
    """Where each service runs, as its Asset's events; the wave's completion as the wave's."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    from include.slow_injection.assets import service_asset, wave_asset

    with create_session() as session:
        rows = (
            session.query(AssetModel.uri, AssetEvent.extra)
            .join(AssetEvent, AssetEvent.asset_id == AssetModel.id)
            .filter(AssetModel.uri.like(f"x-slow-injection://{wave_id}%"))
            .order_by(AssetEvent.id)
            .all()
        )
    by_uri: dict[str, list[dict]] = {}
    for uri, extra in rows:
        by_uri.setdefault(uri, []).append(extra)
    web = [(e["env"], e["weight"]) for e in by_uri[service_asset(wave_id, "web").uri]]
    assert web[:2] == [("split", 25), ("green", 100)] and set(web[2:]) <= {("green", 100)}  # + confirmations
    assert by_uri[service_asset(wave_id, "report-job").uri][-1]["env"] == "green"
    assert by_uri[wave_asset(wave_id).uri][-1]["outcome"] == "completed"


def test_two_waves_never_act_on_one_service_at_once(tmp_path: Path, world) -> None:
    world.reset(healthy_world())
    other = {"wave": "other", "run_id": "manual__x", "service": "web", "version": 1}
    world.update(lambda state: state.setdefault("leases", {}).__setitem__("Deployment/shop/web", other))
    state, tis = run_wave(tmp_path, world, small_wave(world.path.stem))
    assert state == "failed" and tis["preparation.run_refused"] == "failed"
    assert untouched(world)
    assert world.read()["leases"] == {"Deployment/shop/web": other}  # neither taken over nor released
