"""A spec's references in the JSON form tasks take them (drivers are built from them at run time):
written here once, for the wave's DAG, the emergency rollback and the report alike."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from include.slow_injection.spec.models import Service, Wave

ENVS = ("blue", "green")


def platform_ref(wave: Wave) -> dict[str, Any]:
    """Both environments' platform references; the driver acts on both (copy blue → green)."""
    return {env: getattr(wave.environments, env).platform.model_dump() for env in ENVS}


def notifications(wave: Wave) -> list[dict[str, Any]]:
    return [{"notifier": n.notifier.model_dump(), "events": list(n.events)} for n in wave.notifications]


def workloads(services: Iterable[Service]) -> dict[str, dict[str, Any]]:
    return {s.name: s.workload.model_dump() for s in services}


def routers(services: Iterable[Service]) -> dict[str, dict[str, Any]]:
    return {s.name: s.router.model_dump() for s in services if s.router is not None}


def scheduled_jobs(services: Iterable[Service]) -> dict[str, dict[str, Any]]:
    return workloads(s for s in services if s.exposure == "scheduled")


def job_wait_timeout(services: Iterable[Service]) -> float:
    """How long handing jobs back to blue may wait for green's running Job (the longest handover wait)."""
    return max((s.handover.wait_timeout for s in services if s.exposure == "scheduled"), default=0.0)


def fargate_profiles(profile: dict[str, Any]) -> dict[str, Any]:
    """The EKS driver reference a spec's green Fargate profile (or its gate) is read and created through."""
    return {"type": "eks", "connection": profile["aws_connection"], "region": profile.get("region")}


def data_migrations(wave: Wave) -> list[dict[str, Any]]:
    return [m.model_dump() for m in wave.data_migration]
