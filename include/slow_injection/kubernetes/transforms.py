"""Blue's workload → green's copy: the declared transforms for Fargate, nothing else."""

from __future__ import annotations

import copy
from typing import Any

from include.slow_injection.kubernetes.fargate_fit import pod_template

SCHEDULING_KEYS = ("nodeSelector", "tolerations", "affinity", "nodeName")  # node placement Fargate ignores
DROPPED_ANNOTATIONS = ("kubectl.kubernetes.io/last-applied-configuration", "deployment.kubernetes.io/revision")
OUR_MARKERS = "slow-injection.io/"  # a side's own handover/retire markers never travel to the other side


def to_green(
    blue: dict[str, Any],
    namespace: str,
    add_labels: dict[str, str] | None = None,
    strip_scheduling: bool = True,
    requests_equal_limits: bool = True,
) -> dict[str, Any]:
    """The object to create or converge in green: blue's spec with the Fargate transforms applied."""
    add_labels = add_labels or {}
    meta = blue.get("metadata") or {}
    annotations = {
        k: v
        for k, v in (meta.get("annotations") or {}).items()
        if k not in DROPPED_ANNOTATIONS and not k.startswith(OUR_MARKERS)
    }
    green = {
        "apiVersion": blue.get("apiVersion"),
        "kind": blue.get("kind"),
        "metadata": {
            "name": meta["name"],
            "namespace": namespace,
            "labels": {**(meta.get("labels") or {}), **add_labels},
            **({"annotations": annotations} if annotations else {}),
        },
        "spec": copy.deepcopy(blue.get("spec") or {}),
    }
    template = pod_template(green)
    if template is not None:
        template.setdefault("metadata", {}).setdefault("labels", {}).update(add_labels)
        pod = template.setdefault("spec", {})
        if strip_scheduling:
            for key in SCHEDULING_KEYS:
                pod.pop(key, None)
        if requests_equal_limits:
            for c in list(pod.get("initContainers") or []) + list(pod.get("containers") or []):
                resources = c.setdefault("resources", {})
                limits, requests = resources.get("limits") or {}, resources.get("requests") or {}
                for res in ("cpu", "memory"):
                    value = limits.get(res, requests.get(res))
                    if value is not None:
                        resources.setdefault("limits", {})[res] = value
                        resources.setdefault("requests", {})[res] = value
    return green


def is_subset(desired: Any, current: Any) -> bool:
    """Whether `current` already holds everything `desired` says (fields a server adds are ignored)."""
    if isinstance(desired, dict):
        return isinstance(current, dict) and all(is_subset(v, current.get(k)) for k, v in desired.items())
    if isinstance(desired, list):
        return (
            isinstance(current, list)
            and len(desired) == len(current)
            and all(is_subset(d, c) for d, c in zip(desired, current, strict=False))
        )
    return desired == current
