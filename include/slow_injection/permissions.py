"""What a wave is allowed to do, and no more: the IAM policy its AWS calls need and the Kubernetes
RBAC its platform driver needs, both assembled from the drivers the spec names."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from include.slow_injection import registry
from include.slow_injection.aws.iam import policy, wave_statements
from include.slow_injection.spec.models import Wave, green_namespaces


def iam_policy(wave: Wave) -> dict[str, Any]:
    return policy(wave_statements(wave))


def rbac_manifests(wave: Wave) -> list[dict[str, Any]]:
    """The platform driver's RBAC for the namespaces the wave's workloads use, per cluster: blue and
    green on one connection share one set; on two, each cluster gets its own (annotated with it)."""
    clusters: dict[str | None, set[str]] = {}
    for env in ("blue", "green"):
        ref = getattr(wave.environments, env).platform
        names = {
            (s.workload.green_namespace or s.workload.namespace) if env == "green" else s.workload.namespace
            for s in wave.services
        }
        clusters.setdefault(ref.connection, set()).update(names)
    ref = wave.environments.green.platform
    declare: Callable[[list[str]], list[dict[str, Any]]] = getattr(
        registry.driver_class("platform", ref.type), "rbac_manifests", None
    ) or (lambda _: [])
    docs: list[tuple[str | None, dict[str, Any]]] = [(c, d) for c, ns in clusters.items() for d in declare(sorted(ns))]
    docs += _router_manifests(wave)
    test = wave.full_transition.e2e_test
    if test is not None:  # its pod runs where the spec says, through its own or green's connection
        from include.slow_injection.kubernetes.rbac import e2e_test_manifests

        connection = test.connection or wave.environments.green.platform.connection
        docs += [(connection, d) for d in e2e_test_manifests(test.namespace or green_namespaces(wave)[0])]
    many = len({c for c, _ in docs}) > 1
    return [
        {**d, "metadata": {**d["metadata"], "annotations": {"slow-injection.io/connection": str(c)}}} if many else d
        for c, d in docs
    ]


def _router_manifests(wave: Wave) -> list[tuple[str | None, dict[str, Any]]]:
    """The Roles the services' Kubernetes routers need (a router class declares `rbac_rules(settings)`:
    namespace → rules), per connection the router reaches its cluster through."""
    from include.slow_injection.kubernetes.rbac import router_manifests

    wanted: dict[str | None, dict[str, list[Any]]] = {}
    for svc in wave.services:
        if svc.router is None:
            continue
        cls = registry.driver_class("router", svc.router.type)
        declare = getattr(cls, "rbac_rules", None)
        if declare is None:
            continue
        for namespace, rules in declare(cls.Settings.model_validate(svc.router.settings)).items():
            wanted.setdefault(svc.router.connection, {}).setdefault(namespace, []).extend(rules)
    return [(connection, doc) for connection, by_namespace in wanted.items() for doc in router_manifests(by_namespace)]
