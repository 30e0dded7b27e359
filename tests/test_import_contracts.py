"""The import contracts (pyproject.toml [tool.importlinter], run by tests/run_suite.sh before pytest) hold,
and our own contract type refuses what it should: Airflow's DAG building imported by a driver-like module."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import grimp

from tests.support.import_contracts import AllowedImportsContract

ROOT = Path(__file__).resolve().parents[1]


def test_the_contracts_are_kept() -> None:
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'plugins'}"}
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]


def test_allowed_imports_refuses_dag_building_and_keeps_hooks(tmp_path: Path, monkeypatch) -> None:
    package = tmp_path / "contract_probe"
    (package / "drivers").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "drivers" / "__init__.py").write_text("")
    (package / "drivers" / "good.py").write_text(
        "from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook\n"
        "from airflow.sdk import BaseHook\n"
    )
    (package / "drivers" / "bad.py").write_text(
        "def build():\n    from airflow.sdk import DAG, TaskGroup\n    return DAG, TaskGroup\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    graph = grimp.build_graph("contract_probe", include_external_packages=True, cache_dir=None)
    contract = AllowedImportsContract(
        "drivers",
        {},
        {
            "source_modules": ["contract_probe.drivers"],
            "external": "airflow",
            "allowed": [
                r"^from airflow\.providers\.[\w.]+\.(hooks|notifications)\.[\w.]+ import ",
                r"^from airflow\.sdk import (BaseHook|Connection)(, (BaseHook|Connection))*$",
            ],
        },
    )
    check = contract.check(graph, verbose=False)
    assert not check.kept
    assert [(d["importer"], d["line_contents"].strip()) for d in check.metadata["refused"]] == [
        ("contract_probe.drivers.bad", "from airflow.sdk import DAG, TaskGroup")
    ]
