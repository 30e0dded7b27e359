"""Wave spec validation: every problem names the file, the field path and what would be valid."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from include.slow_injection.spec import SpecError, load_wave, load_waves
from tests.support.waves import small_wave, two_good_one_broken, write


def base() -> dict:
    return small_wave("w", wave_id="w3")


def _set(path: str, value):
    def mutate(d: dict) -> None:
        keys = path.replace("]", "").replace("[", ".").split(".")
        for key in keys[:-1]:
            d = d[int(key)] if key.isdigit() else d[key]
        last = keys[-1]
        if value is _DELETE:
            del d[int(last) if last.isdigit() else last]
        elif last.isdigit():
            d[int(last)] = value
        else:
            d[last] = value

    return mutate


_DELETE = object()

MALFORMED = [
    (
        "threshold not a number",
        _set("services[1].gates[0].threshold", "five"),
        'services[1].gates[0].threshold: must be a number ≥ 0, got "five"',
    ),
    (
        "negative threshold",
        _set("services[1].gates[0].threshold", -1),
        "services[1].gates[0].threshold: must be a number ≥ 0, got -1",
    ),
    ("unknown top-level key", _set("colour", "blue"), "colour: unknown key (valid keys: id, description, owner"),
    ("typo in a service key", _set("services[0].exposre", "scheduled"), "services[0].exposre: unknown key"),
    ("missing owner", _set("owner", _DELETE), "owner: is required"),
    (
        "bad exposure",
        _set("services[0].exposure", "internal"),
        "services[0].exposure: must be one of 'exposed' or 'scheduled', got \"internal\"",
    ),
    (
        "exposed without router",
        _set("services[1].router", _DELETE),
        "services[1].router: is required for an exposed service",
    ),
    (
        "scheduled with router",
        _set("services[0].router", {"type": "simulated"}),
        "services[0].router: a scheduled service takes no user traffic",
    ),
    (
        "unknown router type",
        _set("services[1].router", {"type": "nginx"}),
        "services[1].router.type: unknown router type 'nginx'; known:",
    ),
    ("unknown driver setting", _set("services[1].router.wrld", "x"), "services[1].router.wrld: unknown key"),
    (
        "unknown dependency",
        _set("services[1].depends_on", ["db"]),
        "services[1].depends_on: unknown service 'db' (known: report-job, web)",
    ),
    (
        "self dependency",
        _set("services[1].depends_on", ["web"]),
        "services[1].depends_on: a service cannot depend on itself",
    ),
    (
        "scheduled waits for exposed",
        _set("services[0].depends_on", ["web"]),
        "services[0].depends_on: scheduled jobs migrate before exposed services",
    ),
    (
        "steps not increasing",
        _set("services[1].traffic_steps", [{"weight": 50}, {"weight": 25}, {"weight": 100}]),
        "services[1].traffic_steps[1].weight: weights must increase step by step, got [50, 25, 100]",
    ),
    (
        "last step not 100",
        _set("services[1].traffic_steps", [{"weight": 5}, {"weight": 50}]),
        "services[1].traffic_steps[1].weight: the last step must be 100, got 50",
    ),
    (
        "weight above 100",
        _set("services[1].traffic_steps[1].weight", 150),
        "services[1].traffic_steps[1].weight: must be a whole number ≥ 1 and ≤ 100, got 150",
    ),
    (
        "weight as text",
        _set("services[1].traffic_steps[0].weight", "25"),
        'services[1].traffic_steps[0].weight: must be a whole number ≥ 1 and ≤ 100, got "25"',
    ),
    (
        "bad duration",
        _set("services[1].gates[0].interval", "soon"),
        "services[1].gates[0].interval: must be a duration like 30s, 5m or 1h, got 'soon'",
    ),
    (
        "zero interval",
        _set("services[1].gates[0].interval", 0),
        "services[1].gates[0].interval: must be a duration > 0",
    ),
    (
        "symbol comparator",
        _set("services[1].gates[0].comparator", "<"),
        "services[1].gates[0].comparator: must be one of 'less_than', 'at_most', 'greater_than' or 'at_least'",
    ),
    (
        "failure_limit zero",
        _set("services[1].gates[0].failure_limit", 0),
        "services[1].gates[0].failure_limit: must be a whole number ≥ 1",
    ),
    (
        "bad no-data policy",
        _set("services[1].gates[0].on_no_data", "pass"),
        "services[1].gates[0].on_no_data: must be one of 'fail' or 'hold', got \"pass\"",
    ),
    ("empty query", _set("services[1].gates[0].query", ""), "services[1].gates[0].query: must not be empty"),
    (
        "bad service name",
        _set("services[1].name", "Web_App"),
        "services[1].name: must be lowercase letters, digits and '-'",
    ),
    ("duplicate service", _set("services[1].name", "report-job"), "services: name 'report-job' is used twice"),
    ("no services", _set("services", []), "services: must list at least 1 item(s)"),
    ("services not a list", _set("services", {"web": {}}), "services: must be a list"),
    (
        "cron invalid",
        _set("schedule", {"cron": "every night"}),
        "schedule.cron: must be a 5-field cron expression like '0 2 * * *', got 'every night'",
    ),
    (
        "cron with seconds",
        _set("schedule", {"cron": "0 0 2 * * *"}),  # croniter accepts six fields; Airflow's does not
        "schedule.cron: must be a 5-field cron expression like '0 2 * * *', got '0 0 2 * * *'",
    ),
    (
        "unquoted window time",
        _set("schedule", {"cron": "0 2 * * *", "window": {"start": 120, "end": "05:00"}}),
        'schedule.window.start: must be a quoted time like "02:00"',
    ),
    (
        "bad time zone",
        _set("schedule", {"cron": "0 2 * * *", "timezone": "Mars/Olympus"}),
        "schedule.timezone: must be an IANA time zone",
    ),
    ("retries below two", _set("retries.count", 1), "retries.count: must be a whole number ≥ 2"),
    ("dry_run not boolean", _set("dry_run", "yes please"), 'dry_run: must be true or false, got "yes please"'),
    (
        "CronJob exposed",
        _set("services[1].workload.kind", "CronJob"),
        "services[1].exposure: a CronJob workload must be 'scheduled'",
    ),
    (
        "unknown workload kind",
        _set("services[1].workload.kind", "StatefulSet"),
        "services[1].workload.kind: must be one of 'Deployment' or 'CronJob'",
    ),
    (
        "platform types differ",
        _set("environments.green.platform", {"type": "kubernetes"}),
        "environments.green.platform.type: must match blue's platform type 'simulated', got 'kubernetes'",
    ),
    (
        "unknown notification event",
        _set("notifications[0].events", ["wave_exploded"]),
        "notifications[0].events[0]: must be one of 'wave_started'",
    ),
    (
        "health timeout below interval",
        _set("services[1].health_checks[0].timeout", 0.05),
        "services[1].health_checks[0].timeout: must be at least one interval",
    ),
    (
        "connection id with spaces",
        _set("services[1].router.connection", "my router"),
        "services[1].router.connection: must be an Airflow connection id",
    ),
    ("id differs from file name", _set("id", "other"), "id: must match the file name 'w3' (one wave per file)"),
]


@pytest.mark.parametrize(("case", "mutate", "expected"), MALFORMED, ids=[c[0] for c in MALFORMED])
def test_malformed_spec_is_refused_with_file_field_and_reason(tmp_path: Path, case, mutate, expected) -> None:
    data = base()
    mutate(data)
    path = write(tmp_path, data, name="w3")
    with pytest.raises(SpecError) as caught:
        load_wave(path)
    message = str(caught.value)
    assert f"w3.yaml: {expected}" in message, message


def test_the_table_covers_at_least_25_malformed_specs() -> None:
    assert len(MALFORMED) >= 25


def test_every_problem_in_a_file_is_reported_not_only_the_first(tmp_path: Path) -> None:
    data = base()
    data["owner"] = ""
    data["services"][1]["gates"][0]["threshold"] = "five"
    with pytest.raises(SpecError) as caught:
        load_wave(write(tmp_path, data, name="w3"))
    assert len(caught.value.problems) == 2


def test_the_demo_wave_is_valid() -> None:
    result = load_waves()
    assert result.errors == []
    assert [w.id for w in result.waves] == ["demo-shop", "lab-web"]


def test_defaults_file_is_merged_under_each_wave_and_the_wave_wins(tmp_path: Path) -> None:
    (tmp_path / "_defaults.yaml").write_text("owner: platform\nretries: {count: 4, delay: 1s}\ntags: [nightly]\n")
    data = base()
    del data["owner"]
    data["retries"] = {"delay": 7}
    wave = load_wave(write(tmp_path, data, name="w3"))
    assert wave.owner == "platform"
    assert (wave.retries.count, wave.retries.delay) == (4, 7.0)
    assert wave.tags == ["nightly"]


def test_an_error_in_a_value_from_defaults_says_where_it_came_from(tmp_path: Path) -> None:
    (tmp_path / "_defaults.yaml").write_text("retries: {count: 1}\n")
    with pytest.raises(SpecError, match=r"retries.count: must be a whole number ≥ 2.*\(value from .*_defaults.yaml\)"):
        load_wave(write(tmp_path, {k: v for k, v in base().items() if k != "retries"}, name="w3"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a: &x [1, 2]\nb: *x\n", "YAML aliases (*name) are not allowed"),
        ("lol: &a [x, x]\nlol2: &b [*a, *a, *a, *a]\nlol3: [*b, *b, *b, *b]\n", "YAML aliases (*name) are not allowed"),
        ("id: !!python/object/apply:os.system ['true']\n", "tags such as !!python/object are not allowed"),
        ("id: w3\nid: w4\n", "duplicate key 'id'"),
        ("- just\n- a list\n", "must hold a mapping of wave fields"),
        ("id: [unclosed\n", "line 2"),
    ],
)
def test_unsafe_or_malformed_yaml_is_refused(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "w3.yaml"
    path.write_text(text)
    with pytest.raises(SpecError) as caught:
        load_wave(path)
    assert expected in str(caught.value)
    assert "w3.yaml" in str(caught.value)


def test_oversized_file_is_refused_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "w3.yaml"
    path.write_text("description: '" + "x" * 300_000 + "'\n")
    with pytest.raises(SpecError, match="a wave spec may be at most"):
        load_wave(path)


def test_a_broken_spec_does_not_stop_the_valid_ones_from_loading(tmp_path: Path) -> None:
    two_good_one_broken(tmp_path)
    result = load_waves(tmp_path)
    assert [w.id for w in result.waves] == ["alpha", "gamma"]
    assert len(result.errors) == 1
    assert 'beta.yaml: services[1].gates[0].threshold: must be a number ≥ 0, got "five"' in str(result.errors[0])


def test_validate_command_exit_codes_and_no_traceback(tmp_path: Path) -> None:
    good = write(tmp_path, small_wave("w", "alpha"))
    bad_data = small_wave("w", "beta")
    bad_data["owner"] = 7
    bad = write(tmp_path, bad_data)
    cli = [sys.executable, "-m", "include.slow_injection.cli"]
    ok = subprocess.run([*cli, "validate", str(good)], capture_output=True, text=True, check=False)
    assert ok.returncode == 0, ok.stderr
    assert "ok: wave alpha" in ok.stdout
    failed = subprocess.run([*cli, "validate", str(good), str(bad)], capture_output=True, text=True, check=False)
    assert failed.returncode == 1
    assert "beta.yaml: owner: must be a string (quote it), got 7" in failed.stderr
    assert "Traceback" not in failed.stderr + failed.stdout
    missing = subprocess.run(
        [*cli, "validate", str(tmp_path / "nope.yaml")], capture_output=True, text=True, check=False
    )
    assert missing.returncode == 1 and "no such file" in missing.stderr and "Traceback" not in missing.stderr


def test_plan_command_lists_actions_in_order(tmp_path: Path) -> None:
    path = write(tmp_path, small_wave("w", "alpha"))
    out = subprocess.run(
        [sys.executable, "-m", "include.slow_injection.cli", "plan", str(path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    order = [
        out.index(s)
        for s in (
            "copy CronJob shop/report-job",
            "hand report-job",
            "route 25 % of web",
            "route 100 % of web",
            "scale blue shop/web down",
        )
    ]
    assert order == sorted(order)
