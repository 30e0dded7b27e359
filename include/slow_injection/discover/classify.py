"""What each blue workload is: a scheduled job, a user-facing (exposed) or internal service, or
something the migration cannot move. Pure: reads an Inventory, returns records."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from include.slow_injection.discover.inventory import Inventory
from include.slow_injection.kubernetes.fargate_fit import Cluster, check, pod_template
from include.slow_injection.kubernetes.transforms import to_green

Kind = Literal["scheduled", "exposed", "internal"]
EXPOSING_SERVICE_TYPES = ("LoadBalancer", "NodePort")
GREEN_LABELS = {"compute": "fargate"}  # what the drafts' green platform adds (a Fargate profile selects it)
_NAME_MAX = 40


@dataclass
class Discovered:
    """One workload the drafts move."""

    kind: str  # Deployment | CronJob
    namespace: str
    name: str  # the Kubernetes object's name
    classified: Kind
    spec_name: str = ""  # the service name in the draft (spec Name rules, unique in its namespace)
    why: list[str] = field(default_factory=list)  # what made it exposed / internal
    services: list[str] = field(default_factory=list)  # Kubernetes Services that select its pods
    config_maps: list[str] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)  # Fargate preflight, as its lines read
    probe_hint: str = ""  # readinessProbe path/port, a hint for the health check placeholder
    obj: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def key(self) -> tuple[str, str]:
        return self.namespace, self.spec_name


@dataclass(frozen=True)
class NotMigrated:
    kind: str
    namespace: str
    name: str
    reason: str


def classify(inventory: Inventory) -> tuple[list[Discovered], list[NotMigrated]]:
    found: list[Discovered] = []
    skipped: list[NotMigrated] = []
    for ns in inventory.namespaces:
        ingress_backends = {name for ing in inventory.of("ingresses", ns) for name in ingress_services(ing)}
        services = inventory.of("services", ns)
        cluster = Cluster(
            pvcs={f"{ns}/{p['metadata']['name']}": p for p in inventory.of("pvcs", ns)},
            storage_classes=inventory.storage_classes,
            pdbs=inventory.of("pdbs", ns),
        )
        for cron in inventory.of("cronjobs", ns):
            found.append(_record(cron, "scheduled", ["CronJob"], services, cluster))
        for deploy in inventory.of("deployments", ns):
            selecting = [s for s in services if selects(s, deploy)]
            why = [
                f"Service {s['metadata']['name']} type {s['spec']['type']}"
                for s in selecting
                if (s.get("spec") or {}).get("type") in EXPOSING_SERVICE_TYPES
            ]
            why += [
                f"Ingress backend Service {s['metadata']['name']}"
                for s in selecting
                if s["metadata"]["name"] in ingress_backends
            ]
            if why:
                found.append(_record(deploy, "exposed", why, services, cluster))
            else:
                names = ", ".join(s["metadata"]["name"] for s in selecting) or "none"
                found.append(
                    _record(
                        deploy,
                        "internal",
                        [f"no LoadBalancer/NodePort Service or Ingress (Services: {names})"],
                        services,
                        cluster,
                    )
                )
        for ds in inventory.of("daemonsets", ns):
            skipped.append(
                NotMigrated(
                    "DaemonSet",
                    ns,
                    ds["metadata"]["name"],
                    "DaemonSets do not run on Fargate (make it a sidecar, or keep it on EC2 nodes)",
                )
            )
        for sts in inventory.of("statefulsets", ns):
            skipped.append(
                NotMigrated(
                    "StatefulSet",
                    ns,
                    sts["metadata"]["name"],
                    "a wave moves Deployments and CronJobs only (stateful data needs its own plan)",
                )
            )
        for job in inventory.of("jobs", ns):
            owners = [o.get("kind") for o in (job["metadata"].get("ownerReferences") or [])]
            if "CronJob" not in owners:
                skipped.append(
                    NotMigrated(
                        "Job",
                        ns,
                        job["metadata"]["name"],
                        "a one-off Job (no CronJob owns it): run it again on green if still needed",
                    )
                )
    _assign_names(found)
    return found, skipped


def _record(
    obj: dict[str, Any], classified: Kind, why: list[str], services: list[dict[str, Any]], cluster: Cluster
) -> Discovered:
    from include.slow_injection.drivers.kubernetes import config_maps_named

    meta = obj["metadata"]
    ns = meta["namespace"]
    pod = (pod_template(obj) or {}).get("spec") or {}
    # as the driver checks it: the copy with the Fargate transforms the drafts configure
    green_like = to_green(obj, ns, GREEN_LABELS, strip_scheduling=True, requests_equal_limits=True)
    return Discovered(
        kind=obj["kind"],
        namespace=ns,
        name=meta["name"],
        classified=classified,
        why=why,
        services=sorted(s["metadata"]["name"] for s in services if selects(s, obj)),
        config_maps=config_maps_named(pod),
        findings=[str(f) for f in check(green_like, cluster, ns)],
        probe_hint=_probe_hint(pod),
        obj=obj,
    )


def selects(service: dict[str, Any], workload: dict[str, Any]) -> bool:
    """Whether a Service's selector picks the workload's pods (same namespace, all labels match)."""
    if (service.get("metadata") or {}).get("namespace") != (workload.get("metadata") or {}).get("namespace"):
        return False
    selector = (service.get("spec") or {}).get("selector") or {}
    labels = ((pod_template(workload) or {}).get("metadata") or {}).get("labels") or {}
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def ingress_services(ingress: dict[str, Any]) -> list[str]:
    """Service names an Ingress (networking.k8s.io/v1) sends traffic to."""
    spec = ingress.get("spec") or {}
    backends = [spec.get("defaultBackend") or {}]
    backends += [
        (p.get("backend") or {})
        for rule in spec.get("rules") or []
        for p in ((rule.get("http") or {}).get("paths") or [])
    ]
    return sorted({name for b in backends if (name := (b.get("service") or {}).get("name")) is not None})


def spec_name(name: str) -> str:
    """A Kubernetes name as a spec service Name (lowercase, digits, '-', at most 40 characters)."""
    cleaned = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")
    return cleaned[:_NAME_MAX].rstrip("-") or "service"


def _assign_names(found: list[Discovered]) -> None:
    """Unique per namespace (a wave holds one namespace); a clash gets its kind as a suffix."""
    taken: dict[str, set[str]] = {}
    for d in sorted(found, key=lambda d: (d.namespace, d.kind != "Deployment", d.name)):
        used = taken.setdefault(d.namespace, set())
        base = spec_name(d.name)
        candidate, n = base, 1
        while candidate in used:
            n += 1
            suffix = f"-{d.kind.lower()}" if n == 2 else f"-{d.kind.lower()}-{n}"
            candidate = base[: _NAME_MAX - len(suffix)].rstrip("-") + suffix
        used.add(candidate)
        d.spec_name = candidate


def _probe_hint(pod: dict[str, Any]) -> str:
    for c in pod.get("containers") or []:
        http = ((c.get("readinessProbe") or c.get("livenessProbe") or {}).get("httpGet")) or {}
        if http:
            return f"its pods' probe: GET {http.get('path', '/')} on port {http.get('port', '?')}"
    return ""
