"""Project files that people copy from: the README's example spec and the compose file."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from include.slow_injection.plan import plan_lines
from include.slow_injection.spec import load_wave

ROOT = Path(__file__).resolve().parents[1]


def test_readme_shows_the_two_commands_first() -> None:
    readme = (ROOT / "README.md").read_text()
    first_block = re.search(r"```bash\n(.*?)```", readme, re.S).group(1)
    assert [line.split("#")[0].strip() for line in first_block.strip().splitlines()] == ["make demo", "make test"]


def test_readme_example_spec_is_a_valid_wave(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    example = next(b for b in re.findall(r"```yaml\n(.*?)```", readme, re.S) if "services:" in b)
    wave_id = yaml.safe_load(example)["id"]
    path = tmp_path / f"{wave_id}.yaml"
    path.write_text(example)
    wave = load_wave(path)
    assert [s.name for s in wave.services] == ["nightly-report", "checkout"]
    lines = plan_lines(wave)
    assert any("route 5 % of checkout" in line for line in lines)
    assert any("schedule.window is recorded but NOT enforced yet" in line for line in lines)


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
        for dependency in (service.get("depends_on") or {}):
            assert dependency in services
