"""Small wave specs for tests, as plain data (what a YAML file would hold)."""

from __future__ import annotations

import json
from typing import Any

import yaml


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
