"""The run's scope, pure: the trigger form's cross-field rules, the maintenance window, resume and hold."""

from __future__ import annotations

import datetime as dt

import pytest

from include.slow_injection.run_scope import Scope, Window, check_dependencies, check_form, stage_verdict

SERVICES = {"report-job": {"exposure": "scheduled"}, "web": {"exposure": "exposed", "depends_on": ["report-job"]}}
UTC = dt.UTC


def at(hour: int, minute: int = 0, day: int = 26) -> dt.datetime:
    return dt.datetime(2026, 11, day, hour, minute, tzinfo=UTC)


def scope(**changes) -> Scope:
    base = Scope(services=["report-job", "web"], all_services=["report-job", "web"])
    for key, value in changes.items():
        setattr(base, key, value)
    return base


def test_a_valid_form_has_no_problems() -> None:
    assert (
        check_form(
            {
                "dry_run": False,
                "services": ["web"],
                "max_weight": 25,
                "skip_phases": [],
                "skip_reason": "",
                "approval_timeout": "30m",
            },
            SERVICES,
        )
        == []
    )


def test_every_form_problem_is_named_by_its_field() -> None:
    problems = check_form(
        {
            "dry_run": "yes",
            "services": ["api", "web"],
            "max_weight": 0,
            "skip_phases": ["validation", "rollback"],
            "skip_reason": "short",
            "approval_timeout": "500ms",
        },
        SERVICES,
    )
    text = "\n".join(problems)
    assert len(problems) == 6, text
    for field in (
        "dry_run",
        "services: unknown 'api'",
        "max_weight",
        "skip_phases: 'rollback'",
        "skip_reason",
        "approval_timeout",
    ):
        assert field in text


def test_skipping_a_phase_needs_a_reason() -> None:
    assert check_form({"skip_phases": ["validation"], "skip_reason": ""}, SERVICES)
    assert check_form({"skip_phases": ["validation"], "skip_reason": "load tested by hand in staging"}, SERVICES) == []


def test_a_chosen_service_whose_dependency_stays_on_blue_is_refused() -> None:
    only_web = scope(services=["web"])
    assert "depends on 'report-job'" in check_dependencies(only_web, {"web": ["report-job"]})[0]
    assert check_dependencies(scope(services=["web"], jobs_on_green=["report-job"]), {"web": ["report-job"]}) == []


@pytest.mark.parametrize(("now", "inside"), [(at(1, 59), False), (at(2), True), (at(5, 59), True), (at(6), False)])
def test_a_window_inside_one_day(now: dt.datetime, inside: bool) -> None:
    assert Window("02:00", "06:00").contains(now) is inside


@pytest.mark.parametrize(
    ("now", "inside"),
    [(at(21, 59), False), (at(22), True), (at(23, 30), True), (at(3), True), (at(6), False), (at(12), False)],
)
def test_a_window_past_midnight(now: dt.datetime, inside: bool) -> None:
    assert Window("22:00", "06:00").contains(now) is inside


def test_a_window_keeps_its_time_zone() -> None:
    paris = Window("02:00", "04:00", "Europe/Paris")
    assert paris.contains(at(1, 30)) and not paris.contains(at(3, 30))  # 02:30 and 04:30 in Paris (UTC+1)
    assert paris.next_open(at(12)) == dt.datetime(2026, 11, 27, 2, 0, tzinfo=paris.next_open(at(12)).tzinfo)
    assert paris.next_open(at(12)).astimezone(UTC) == at(1, day=27)


def test_steps_behind_the_current_weight_are_skipped_and_the_current_one_runs_again() -> None:
    resumed = scope(green_weights={"web": 25})
    behind = stage_verdict(resumed, {"phase": "gradual_transition", "service": "web", "weight": 5}, "action", at(3))
    assert behind["status"] == "skipped" and "behind us" in behind["reason"]
    assert (
        stage_verdict(resumed, {"phase": "gradual_transition", "service": "web", "weight": 25}, "gate", at(3)) is None
    )
    assert (
        stage_verdict(resumed, {"phase": "validation", "service": None, "weight": None}, "gate", at(3))["status"]
        == "skipped"
    )
    assert stage_verdict(resumed, {"phase": "validation", "service": "web", "weight": None}, "action", at(3)) is None


def test_a_step_above_max_weight_holds() -> None:
    capped = scope(max_weight=25)
    verdict = stage_verdict(capped, {"phase": "gradual_transition", "service": "web", "weight": 50}, "action", at(3))
    assert verdict["status"] == "hold" and "max_weight" in verdict["reason"]


def test_outside_the_window_actions_hold_but_a_started_stage_finishes_its_gates() -> None:
    windowed = scope(window={"start": "02:00", "end": "06:00", "timezone": "UTC", "outside": "wait"})
    step = {"phase": "gradual_transition", "service": "web", "weight": 50}
    assert stage_verdict(windowed, step, "action", at(5, 59)) is None
    held = stage_verdict(windowed, step, "action", at(6, 1))
    assert held["status"] == "hold" and "02:00–06:00 UTC" in held["reason"]
    assert stage_verdict(windowed, step, "gate", at(6, 1)) is None  # its action ran inside: the step is validated
    assert stage_verdict(windowed, step, "gate", at(6, 1), held_actions=[held["reason"]])["status"] == "hold"
    windowed.ignore_window = True
    assert stage_verdict(windowed, step, "action", at(6, 1)) is None


def test_services_not_chosen_and_skipped_phases_are_skipped_with_the_reason() -> None:
    narrowed = scope(services=["report-job"], skip_phases=["validation"], skip_reason="tested by hand in staging")
    assert (
        "not in this run"
        in stage_verdict(narrowed, {"phase": "gradual_transition", "service": "web", "weight": 25}, "action", at(3))[
            "reason"
        ]
    )
    skipped = stage_verdict(narrowed, {"phase": "validation", "service": None, "weight": None}, "gate", at(3))
    assert skipped["status"] == "skipped" and "tested by hand in staging" in skipped["reason"]


def test_a_completed_wave_only_verifies() -> None:
    verifying = scope(verify=True, green_weights={"web": 100}, jobs_on_green=["report-job"])
    assert (
        stage_verdict(verifying, {"phase": "release_monitoring", "service": None, "weight": None}, "gate", at(3))[
            "status"
        ]
        == "skipped"
    )
    assert (
        stage_verdict(verifying, {"phase": "gradual_transition", "service": "web", "weight": 100}, "action", at(3))
        is None
    )  # runs, changing nothing (or reporting drift)
