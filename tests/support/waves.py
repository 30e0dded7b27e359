"""Small wave specs for tests, as plain data (what a YAML file would hold)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from airflow.dag_processing.dagbag import DagBag

from include.slow_injection.spec import load_wave


def sim(world: str, **extra: Any) -> dict[str, Any]:
    return {"type": "simulated", "world": world, **extra}


def metric_gate(
    world: str, name: str, query: str, comparator: str = "less_than", threshold: float = 0.01, **extra: Any
) -> dict[str, Any]:
    return {
        "name": name,
        "source": sim(world),
        "query": query,
        "comparator": comparator,
        "threshold": threshold,
        "interval": 0.2,
        "bake": 0.4,
        **extra,
    }


def small_wave(world: str, wave_id: str = "small") -> dict[str, Any]:
    """One scheduled job and one exposed service stepping 25 → 100 %, every gate a fraction of a second."""
    return {
        "id": wave_id,
        "owner": "team-test",
        "environments": {
            "blue": {"name": "eks-ec2", "platform": sim(world)},
            "green": {"name": "eks-fargate", "platform": sim(world)},
        },
        "retries": {"count": 2, "delay": 0.5},
        "rollback": {"retries": 2, "retry_delay": 0.5},
        "notifications": [{"notifier": sim(world)}],
        "services": [
            {
                "name": "report-job",
                "exposure": "scheduled",
                "workload": {"kind": "CronJob", "namespace": "shop", "name": "report-job"},
                "gates": [metric_gate(world, "job-failures", 'job_failures{env="${env}"}', "at_most", 0)],
            },
            {
                "name": "web",
                "exposure": "exposed",
                "workload": {"kind": "Deployment", "namespace": "shop", "name": "web"},
                "router": sim(world),
                "health_checks": [
                    {
                        "name": "ready",
                        "check": sim(world, target="web-green"),
                        "consecutive_successes": 2,
                        "interval": 0.1,
                        "timeout": 5,
                    }
                ],
                "traffic_steps": [{"weight": 25, "bake": 0.4}, {"weight": 100, "bake": 0.4}],
                "gates": [metric_gate(world, "error-rate", 'error_ratio{service="${service}",env="${env}"}')],
            },
        ],
        "release_monitoring": {
            "gates": [metric_gate(world, "release-errors", 'error_ratio{service="web",env="green"}')]
        },
    }


def healthy_world() -> dict[str, Any]:
    return {
        "routers": {"web": {"blue": 100, "green": 0}},
        "workloads": {
            "blue": {"CronJob/shop/report-job": {"suspended": False}, "Deployment/shop/web": {"replicas": 2}}
        },
        "metrics": {'job_failures{env="green"}': 0, 'error_ratio{service="web",env="green"}': 0.001},
        "health": {"web-green": True},
    }


def write(folder, data: dict[str, Any], name: str | None = None):
    path = folder / f"{name or data['id']}.yaml"
    unshared = json.loads(json.dumps(data))  # shared dicts would become YAML aliases, which specs refuse
    path.write_text(yaml.safe_dump(unshared, sort_keys=False))
    return path


def two_good_one_broken(folder) -> None:
    """alpha and gamma are valid; beta has a threshold that is not a number."""
    write(folder, small_wave("w", "alpha"))
    write(folder, small_wave("w", "gamma"))
    broken = small_wave("w", "beta")
    broken["services"][1]["gates"][0]["threshold"] = "five"
    write(folder, broken)


def run_wave(tmp_path: Path, world, wave_data: dict, conf: dict | None = None):
    from airflow.models import TaskInstance
    from airflow.utils.session import create_session

    from include.slow_injection.builders.factory import build_dag

    dag = build_dag(load_wave(write(tmp_path, wave_data)))
    # dag.test() re-parses the DAG bundle (dags/), so the waves folder must hold this wave.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SLOW_INJECTION_WAVES_DIR", str(tmp_path))
        run = dag.test(run_conf=conf or {})
    with create_session() as session:
        tis = (
            session.query(TaskInstance)
            .filter(TaskInstance.dag_id == dag.dag_id, TaskInstance.run_id == run.run_id)
            .all()
        )
        states = {ti.task_id: str(ti.state) if ti.state else None for ti in tis}
    run_wave.last_run_id = run.run_id
    return run.state, states


def weights_history(world, service: str = "web") -> list[int]:
    return [
        h["green"] for h in world.read().get("history", []) if h["what"] == "set_weights" and h["service"] == service
    ]


def events(world) -> list[str]:
    return [n["event"] for n in world.read().get("notifications", [])]


ROOT = Path(__file__).resolve().parents[2]


def bag_for(folder: Path | None = None) -> DagBag:
    old = os.environ.get("SLOW_INJECTION_WAVES_DIR")
    if folder is not None:
        os.environ["SLOW_INJECTION_WAVES_DIR"] = str(folder)
    try:
        return DagBag(dag_folder=str(ROOT / "dags"))
    finally:
        if folder is not None:
            if old is None:
                del os.environ["SLOW_INJECTION_WAVES_DIR"]
            else:
                os.environ["SLOW_INJECTION_WAVES_DIR"] = old


def _paths(data, prefix=()):
    yield prefix
    if isinstance(data, dict):
        for key, value in data.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            yield from _paths(value, (*prefix, i))


def _xcom(run_id: str, task_id: str, key: str):
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = (
            session.query(XComModel)
            .filter(XComModel.run_id == run_id, XComModel.task_id == task_id, XComModel.key == key)
            .one()
        )
        return XComModel.deserialize_value(row)
