"""Project files that people copy from: the README, the example spec in the docs and the compose file."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from include.slow_injection.phases.plan_text import plan_lines
from include.slow_injection.spec import load_wave

ROOT = Path(__file__).resolve().parents[1]


def test_readme_shows_the_two_commands_first() -> None:
    readme = (ROOT / "README.md").read_text()
    first_block = re.search(r"```bash\n(.*?)```", readme, re.S).group(1)
    assert [line.split("#")[0].strip() for line in first_block.strip().splitlines()] == ["make demo", "make test"]


def test_the_docs_example_spec_is_a_valid_wave(tmp_path: Path) -> None:
    page = (ROOT / "docs" / "writing-a-spec.md").read_text()
    example = next(b for b in re.findall(r"```yaml\n(.*?)```", page, re.S) if "services:" in b)
    wave_id = yaml.safe_load(example)["id"]
    path = tmp_path / f"{wave_id}.yaml"
    path.write_text(example)
    wave = load_wave(path)
    assert [s.name for s in wave.services] == ["nightly-report", "checkout"]
    lines = plan_lines(wave)
    assert any("route 5 % of checkout" in line for line in lines)
    assert wave.schedule is not None and wave.schedule.window is not None  # enforced: tests/test_operating_runs.py


def test_compose_file_has_the_airflow_components_and_mounts_the_project() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yaml").read_text())
    services = compose["services"]
    for name in ("postgres", "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer"):
        assert name in services
    common = compose["x-airflow-common"]
    mounts = {v.split(":")[1] for v in common["volumes"]}
    assert {"/opt/airflow/dags", "/opt/airflow/plugins", "/opt/airflow/include"} <= mounts
    assert "/opt/airflow" in common["environment"]["PYTHONPATH"].split(":")
    for service in services.values():
        for dependency in service.get("depends_on") or {}:
            assert dependency in services


COMPOSE_SCHEMA = "check_jsonschema/builtin_schemas/vendor/compose-spec.json"


def compose_errors(compose: dict) -> list[str]:
    """The Compose Specification's JSON Schema (vendored by check-jsonschema), plus what it cannot
    check: depends_on targets, named volumes, profiles, bind-mount sources."""
    import importlib.util
    import json

    import jsonschema

    package = Path(importlib.util.find_spec("check_jsonschema").origin).parents[1]
    schema = json.loads((package / COMPOSE_SCHEMA).read_text())
    errors = [
        f"{'/'.join(map(str, e.path))}: {e.message}"
        for e in jsonschema.validators.validator_for(schema)(schema).iter_errors(compose)
    ]
    services = compose.get("services", {})
    for name, service in services.items():
        deps = service.get("depends_on") or []
        for dep in deps if isinstance(deps, list) else deps.keys():
            if dep not in services:
                errors.append(f"services.{name}.depends_on: no service {dep!r}")
            elif not service.get("profiles") and services[dep].get("profiles"):
                errors.append(
                    f"services.{name}.depends_on: {dep!r} only runs with profiles {services[dep]['profiles']}"
                )
        env_files = service.get("env_file") or []
        for env_file in [env_files] if isinstance(env_files, str) else env_files:
            if not (ROOT / env_file).is_file():
                errors.append(f"services.{name}.env_file: {env_file} does not exist")
        for volume in service.get("volumes") or []:
            source = volume.split(":")[0]
            if source.startswith("."):
                if not (ROOT / source).exists():
                    errors.append(f"services.{name}.volumes: {source} does not exist")
            elif source not in (compose.get("volumes") or {}):
                errors.append(f"services.{name}.volumes: named volume {source!r} is not declared")
    return errors


def test_compose_file_is_valid_compose_with_consistent_references() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yaml").read_text())
    assert compose_errors(compose) == []
    broken = yaml.safe_load((ROOT / "docker-compose.yaml").read_text())
    broken["services"]["airflow-scheduler"]["restart_policy"] = "always"  # not a Compose field
    broken["services"]["airflow-scheduler"]["depends_on"]["redis"] = {"condition": "service_healthy"}
    broken["services"]["airflow-triggerer"]["volumes"] = ["./nope:/x", "missing-volume:/y"]
    broken["services"]["airflow-worker"]["env_file"] = ["deploy/nope.env"]
    found = compose_errors(broken)
    assert "services.airflow-worker.env_file: deploy/nope.env does not exist" in found
    assert any(e.startswith("services/airflow-scheduler") and "restart_policy" in e for e in found), found
    assert "services.airflow-scheduler.depends_on: 'redis' only runs with profiles ['celery']" in found
    assert "services.airflow-triggerer.volumes: ./nope does not exist" in found
    assert "services.airflow-triggerer.volumes: named volume 'missing-volume' is not declared" in found


def test_compose_scales_out_with_celery_and_carries_the_makefile_s_lab() -> None:
    from include.slow_injection.lab.lab import COMPOSE_LAB

    compose = yaml.safe_load((ROOT / "docker-compose.yaml").read_text())
    services = compose["services"]
    assert services["airflow-worker"]["command"] == "celery worker" and services["redis"]["profiles"] == ["celery"]
    assert compose["x-airflow-common"]["environment"]["AIRFLOW__CORE__EXECUTOR"] == "${AIRFLOW_EXECUTOR:-LocalExecutor}"
    for name, text in COMPOSE_LAB.items():  # the same generator as the Makefile's lab
        assert (ROOT / "deploy" / "lab" / name).read_text().split("\n", 1)[1] == text
    for env, port in (("blue", "8081"), ("green", "8082")):
        command = services[f"lab-{env}"]["command"]
        assert command[command.index("--port") + 1] == port and f"lab-{env}:{port}" in COMPOSE_LAB["haproxy.cfg"]


def test_compose_s_celery_settings_are_the_file_the_lab_s_celery_stack_runs(tmp_path: Path) -> None:
    from include.slow_injection.lab.airflow_stack import CELERY_ENV, AirflowStack, read_env_file

    compose = yaml.safe_load((ROOT / "docker-compose.yaml").read_text())
    common, settings = compose["x-airflow-common"], read_env_file(CELERY_ENV)
    assert [ROOT / f for f in common["env_file"]] == [CELERY_ENV] and settings
    # beside the file, compose says only where its broker and result backend are; no service overrides the file
    assert {k for k in common["environment"] if "CELERY" in k} == {
        "AIRFLOW__CELERY__BROKER_URL",
        "AIRFLOW__CELERY__RESULT_BACKEND",
    }
    for name, service in compose["services"].items():
        assert not set(service.get("environment") or {}) & {*settings, "AIRFLOW__CORE__EXECUTOR"} - set(
            common["environment"]
        ), name
    celery = AirflowStack(tmp_path / "celery", tmp_path, executor="CeleryExecutor").env()
    assert settings.items() <= celery.items() and celery["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert celery["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql")
    local = AirflowStack(tmp_path / "local", tmp_path).env()
    assert local["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor" and not set(settings) & set(local)


def test_the_celery_settings_file_is_read_as_compose_reads_it_or_refused(tmp_path: Path) -> None:
    import pytest

    from include.slow_injection.lab.airflow_stack import AirflowStack, read_env_file

    good = tmp_path / "good.env"
    good.write_text("# a comment\n\nAIRFLOW__CELERY__WORKER_CONCURRENCY=4\n")
    assert read_env_file(good) == {"AIRFLOW__CELERY__WORKER_CONCURRENCY": "4"}
    for line in ('A="4"', "A=${B}", "A=4 # four", "A = 4", "just words"):
        bad = tmp_path / "bad.env"
        bad.write_text(f"# first\n{line}\n")
        with pytest.raises(ValueError, match=r"bad.env, line 2: .* is not KEY=VALUE"):
            read_env_file(bad)
    with pytest.raises(ValueError, match="executor 'SequentialExecutor' is not one of LocalExecutor, CeleryExecutor"):
        AirflowStack(tmp_path, tmp_path, executor="SequentialExecutor")
