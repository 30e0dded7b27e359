"""What a wave is allowed to do, and no more: the IAM policy its AWS calls need and the Kubernetes
RBAC its platform driver needs, both assembled from the drivers the spec names."""

from __future__ import annotations

from typing import Any

from include.slow_injection import registry
from include.slow_injection.aws.iam import policy, wave_statements
from include.slow_injection.spec.models import Wave


def iam_policy(wave: Wave) -> dict[str, Any]:
    return policy(wave_statements(wave))


def rbac_manifests(wave: Wave) -> list[dict[str, Any]]:
    """Each environment's platform driver, for the namespaces the wave's workloads use there."""
    out: list[dict[str, Any]] = []
    for env in ("blue", "green"):
        ref = getattr(wave.environments, env).platform
        cls = registry.driver_class("platform", ref.type)
        declare = getattr(cls, "rbac_manifests", None)
        if declare is None:
            continue
        namespaces = sorted({(s.workload.green_namespace or s.workload.namespace) if env == "green"
                             else s.workload.namespace for s in wave.services})
        for doc in declare(namespaces):
            doc = {**doc, "metadata": {**doc["metadata"], "labels": {"slow-injection.io/environment": env}}}
            if doc not in out:
                out.append(doc)
    return out
