"""Fargate preflight: can this workload run on EKS Fargate? Every finding names the resource and why.

Input is what the Kubernetes API returns (as dicts); related objects (PVCs, storage classes, PDBs,
Fargate profiles) come in a `Cluster` so the rules stay pure and testable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from include.slow_injection.kubernetes.fargate_profiles import FargateProfile, choose_profile

FARGATE_START_S = 60  # node + image pull on Fargate commonly take more than a minute
EFS_PROVISIONER = "efs.csi.aws.com"


@dataclass(frozen=True)
class Finding:
    resource: str
    rule: str
    reason: str

    def __str__(self) -> str:
        return f"{self.resource}: {self.reason} [{self.rule}]"


@dataclass
class Cluster:
    """Objects of the green side that the rules look up."""

    pvcs: dict[str, dict[str, Any]] = field(default_factory=dict)  # "namespace/name" → PVC
    storage_classes: dict[str, dict[str, Any]] = field(default_factory=dict)  # name → StorageClass
    pdbs: list[dict[str, Any]] = field(default_factory=list)
    profiles: list[FargateProfile] | None = None  # None: not known, the profile match is not simulated


def pod_template(obj: dict[str, Any]) -> dict[str, Any] | None:
    kind, spec = obj.get("kind"), obj.get("spec") or {}
    if kind == "CronJob":
        return ((spec.get("jobTemplate") or {}).get("spec") or {}).get("template")
    if kind in ("Deployment", "Job", "StatefulSet", "DaemonSet", "ReplicaSet"):
        return spec.get("template")
    return None


def _name(obj: dict[str, Any], namespace: str | None = None) -> str:
    meta = obj.get("metadata") or {}
    return f"{obj.get('kind')} {namespace or meta.get('namespace', 'default')}/{meta.get('name')}"


def _containers(pod_spec: dict[str, Any]) -> list[dict[str, Any]]:
    return list(pod_spec.get("initContainers") or []) + list(pod_spec.get("containers") or [])


def _probe_window(probe: dict[str, Any]) -> int:
    return int(probe.get("initialDelaySeconds", 0)) + int(probe.get("periodSeconds", 10)) * int(
        probe.get("failureThreshold", 3))


def check(obj: dict[str, Any], cluster: Cluster, namespace: str | None = None) -> list[Finding]:
    """Findings for one workload as it would run in `namespace` (green's) on Fargate."""
    resource = _name(obj, namespace)
    ns = namespace or (obj.get("metadata") or {}).get("namespace", "default")
    if obj.get("kind") == "DaemonSet":
        return [Finding(resource, "daemonset", "DaemonSets do not run on Fargate (use a sidecar instead)")]
    template = pod_template(obj)
    if template is None:
        return [Finding(resource, "kind", f"{obj.get('kind')} is not a workload the migration can move")]
    pod = template.get("spec") or {}
    labels = dict((template.get("metadata") or {}).get("labels") or {})
    found: list[Finding] = []

    def add(rule: str, reason: str, where: str = "") -> None:
        found.append(Finding(f"{resource}{where}", rule, reason))

    if pod.get("hostNetwork"):
        add("host-network", "hostNetwork is not supported on Fargate")
    for c in _containers(pod):
        where = f" container {c.get('name')}"
        if ((c.get("securityContext") or {}).get("privileged")):
            add("privileged", "privileged containers are not supported on Fargate", where)
        for port in c.get("ports") or []:
            if port.get("hostPort"):
                add("host-port", f"hostPort {port['hostPort']} is not supported on Fargate", where)
        resources = c.get("resources") or {}
        requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
        gpus = [k for k in {**requests, **limits} if k.endswith("/gpu")]
        if gpus:
            add("gpu", f"GPU resources ({', '.join(sorted(gpus))}) are not available on Fargate", where)
        for res in ("cpu", "memory"):
            if requests.get(res) is None or str(requests.get(res)) != str(limits.get(res)):
                add("requests-limits", f"{res} request ({requests.get(res)}) must equal its limit "
                                       f"({limits.get(res)}): Fargate sizes the pod from requests", where)
        startup, liveness = c.get("startupProbe"), c.get("livenessProbe")
        if startup and _probe_window(startup) < FARGATE_START_S:
            add("startup-window", f"startupProbe allows {_probe_window(startup)}s; Fargate start-up often "
                                  f"takes over {FARGATE_START_S}s", where)
        elif liveness and not startup and _probe_window(liveness) < FARGATE_START_S:
            add("startup-window", f"livenessProbe restarts a container after {_probe_window(liveness)}s with no "
                                  f"startupProbe; Fargate start-up often takes over {FARGATE_START_S}s", where)
    for volume in pod.get("volumes") or []:
        if "hostPath" in volume:
            add("host-path", f"hostPath volume {volume.get('name')} is not supported on Fargate")
        claim = (volume.get("persistentVolumeClaim") or {}).get("claimName")
        if claim:
            pvc = cluster.pvcs.get(f"{ns}/{claim}")
            storage_class = ((pvc or {}).get("spec") or {}).get("storageClassName")
            provisioner = (cluster.storage_classes.get(storage_class or "") or {}).get("provisioner")
            if provisioner != EFS_PROVISIONER:
                add("pvc-storage", f"PVC {claim} uses {storage_class or 'an unknown storage class'} "
                                   f"({provisioner or 'provisioner unknown'}); Fargate mounts only static EFS volumes")
    spec = obj.get("spec") or {}
    if obj.get("kind") == "Deployment":
        if not any(_selects(pdb, ns, labels) for pdb in cluster.pdbs):
            add("pdb", "no PodDisruptionBudget selects its pods; Fargate recycles pods for patching")
        deadline = spec.get("progressDeadlineSeconds", 600)
        if deadline < 2 * FARGATE_START_S:
            add("startup-window", f"progressDeadlineSeconds {deadline}s is too short for Fargate start-up")
    job_spec = ((spec.get("jobTemplate") or {}).get("spec") or {}) if obj.get("kind") == "CronJob" else spec
    if obj.get("kind") in ("CronJob", "Job") and job_spec.get("ttlSecondsAfterFinished") is None:
        add("job-ttl", "Jobs need ttlSecondsAfterFinished: finished pods keep billing on Fargate")
    if obj.get("kind") == "CronJob":
        deadline = spec.get("startingDeadlineSeconds")
        if deadline is not None and deadline < FARGATE_START_S:
            add("starting-deadline", f"startingDeadlineSeconds {deadline}s: a run that waits for Fargate "
                                     f"capacity (often over {FARGATE_START_S}s) would be missed")
    if cluster.profiles is not None:
        profile = choose_profile(cluster.profiles, ns, labels)
        if profile is None:
            add("fargate-profile", f"no Fargate profile selects namespace {ns} with labels {labels or '{}'}: "
                                   "its pods would stay Pending")
    return found


def _selects(pdb: dict[str, Any], namespace: str, labels: dict[str, str]) -> bool:
    if (pdb.get("metadata") or {}).get("namespace", "default") != namespace:
        return False
    selector = (pdb.get("spec") or {}).get("selector") or {}
    wanted = selector.get("matchLabels") or {}
    if not wanted and not selector.get("matchExpressions"):
        return False
    if not all(labels.get(k) == v for k, v in wanted.items()):
        return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True
