"""Fargate preflight: can this workload run on EKS Fargate? Every finding names the resource and why.

Input is what the Kubernetes API returns (as dicts); related objects (PVCs, storage classes, PDBs,
Fargate profiles) come in a `Cluster` so the rules stay pure and testable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from include.slow_injection.kubernetes.fargate_profiles import FargateProfile, choose_profile
from include.slow_injection.kubernetes.right_sizing import LARGEST, fargate_size, pod_facts, pod_request

FARGATE_START_S = 60  # node + image pull on Fargate commonly take more than a minute
EFS_PROVISIONER = "efs.csi.aws.com"
FARGATE_RESOURCES = ("cpu", "memory", "ephemeral-storage")
NLB_TARGET_TYPE = "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type"
ALB_TARGET_TYPE = "alb.ingress.kubernetes.io/target-type"
IRSA_ROLE = "eks.amazonaws.com/role-arn"


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
    services: list[dict[str, Any]] = field(default_factory=list)  # Services that will front the workload
    ingresses: list[dict[str, Any]] = field(default_factory=list)  # Ingresses routing to those Services


@dataclass
class Present:
    """What green already has, for the prerequisites check (None: the namespace itself is missing)."""

    namespace: str
    service_accounts: dict[str, dict[str, Any]] | None
    secrets: set[str] = field(default_factory=set)
    config_maps: set[str] = field(default_factory=set)


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
        probe.get("failureThreshold", 3)
    )


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
        if (c.get("securityContext") or {}).get("privileged"):
            add("privileged", "privileged containers are not supported on Fargate", where)
        for port in c.get("ports") or []:
            if port.get("hostPort"):
                add("host-port", f"hostPort {port['hostPort']} is not supported on Fargate", where)
        resources = c.get("resources") or {}
        requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
        extended = [k for k in {**requests, **limits} if k not in FARGATE_RESOURCES]
        if extended:  # GPUs (nvidia.com/gpu, amd.com/gpu), Neuron, hugepages…: Fargate offers CPU and memory only
            add(
                "gpu",
                f"resources {', '.join(sorted(extended))} are not available on Fargate "
                f"(CPU, memory and ephemeral storage only)",
                where,
            )
        for res in ("cpu", "memory"):
            if requests.get(res) is None or str(requests.get(res)) != str(limits.get(res)):
                add(
                    "requests-limits",
                    f"{res} request ({requests.get(res)}) must equal its limit "
                    f"({limits.get(res)}): Fargate sizes the pod from requests",
                    where,
                )
        startup, liveness = c.get("startupProbe"), c.get("livenessProbe")
        if startup and _probe_window(startup) < FARGATE_START_S:
            add(
                "startup-window",
                f"startupProbe allows {_probe_window(startup)}s; Fargate start-up often takes over {FARGATE_START_S}s",
                where,
            )
        elif liveness and not startup and _probe_window(liveness) < FARGATE_START_S:
            add(
                "startup-window",
                f"livenessProbe restarts a container after {_probe_window(liveness)}s with no "
                f"startupProbe; Fargate start-up often takes over {FARGATE_START_S}s",
                where,
            )
    for volume in pod.get("volumes") or []:
        if "hostPath" in volume:
            add("host-path", f"hostPath volume {volume.get('name')} is not supported on Fargate")
        claim = (volume.get("persistentVolumeClaim") or {}).get("claimName")
        if claim:
            pvc = cluster.pvcs.get(f"{ns}/{claim}")
            storage_class = ((pvc or {}).get("spec") or {}).get("storageClassName")
            provisioner = (cluster.storage_classes.get(storage_class or "") or {}).get("provisioner")
            parameters = (cluster.storage_classes.get(storage_class or "") or {}).get("parameters") or {}
            if provisioner != EFS_PROVISIONER:
                add(
                    "pvc-storage",
                    f"PVC {claim} uses {storage_class or 'an unknown storage class'} "
                    f"({provisioner or 'provisioner unknown'}); Fargate mounts only static EFS volumes",
                )
            elif parameters.get("provisioningMode"):
                add(
                    "pvc-storage",
                    f"PVC {claim} uses dynamic EFS provisioning (storage class {storage_class}, "
                    f"provisioningMode {parameters['provisioningMode']}); Fargate mounts only "
                    "statically provisioned EFS volumes",
                )
    request = pod_request(pod_facts(template))
    if fargate_size(request.cpu, request.memory) is None:
        add(
            "largest-size",
            f"its pods request {request}, above the largest Fargate size "
            f"({LARGEST}, less Fargate's 256 MB): they would stay Pending",
        )
    for svc in cluster.services:
        found += _service_findings(svc, ns)
    for ingress in cluster.ingresses:
        target = ((ingress.get("metadata") or {}).get("annotations") or {}).get(ALB_TARGET_TYPE)
        if target != "ip":
            found.append(
                Finding(
                    _name(ingress, ns),
                    "ip-targets",
                    f"{ALB_TARGET_TYPE} is {target or 'unset (instance)'}; Fargate pods can only be "
                    "registered as IP targets: set it to ip",
                )
            )
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
            add(
                "starting-deadline",
                f"startingDeadlineSeconds {deadline}s: a run that waits for Fargate "
                f"capacity (often over {FARGATE_START_S}s) would be missed",
            )
    if cluster.profiles is not None:
        profile = choose_profile(cluster.profiles, ns, labels)
        if profile is None:
            add(
                "fargate-profile",
                f"no Fargate profile selects namespace {ns} with labels {labels or '{}'}: its pods would stay Pending",
            )
        else:
            for problem in profile.problems():
                add("fargate-profile", problem)
    return found


def _service_findings(svc: dict[str, Any], namespace: str) -> list[Finding]:
    spec, annotations = svc.get("spec") or {}, (svc.get("metadata") or {}).get("annotations") or {}
    if spec.get("type") != "LoadBalancer":
        return []
    if annotations.get(NLB_TARGET_TYPE) == "ip":
        return []
    return [
        Finding(
            _name(svc, namespace),
            "ip-targets",
            f"a LoadBalancer Service needs {NLB_TARGET_TYPE}: ip on Fargate (instance targets need nodes "
            f"Fargate does not have); it is {annotations.get(NLB_TARGET_TYPE) or 'unset'}",
        )
    ]


def missing_prerequisites(template: dict[str, Any], present: Present, copied_config_maps: bool) -> list[str]:
    """What green's namespace must hold before the workload can start there: the namespace, its
    ServiceAccount (with blue's IRSA role: Fargate pods get AWS credentials only through IRSA), and the
    Secrets and ConfigMaps the pod refers to. Each entry names the object and why."""
    ns = present.namespace
    if present.service_accounts is None:
        return [f"namespace {ns} does not exist in green"]
    pod = template.get("spec") or {}
    missing = []
    account = pod.get("serviceAccountName") or "default"
    if account not in present.service_accounts:
        missing.append(f"ServiceAccount {ns}/{account} (the pod's serviceAccountName)")
    secrets, config_maps = references(pod)
    missing += [f"Secret {ns}/{name} (referenced by the pod)" for name in sorted(secrets - present.secrets)]
    if not copied_config_maps:
        missing += [
            f"ConfigMap {ns}/{name} (referenced by the pod; or set copy_config_maps)"
            for name in sorted(config_maps - present.config_maps)
        ]
    return missing


def irsa_gap(blue_account: dict[str, Any] | None, green_account: dict[str, Any] | None) -> str | None:
    role = ((blue_account or {}).get("metadata") or {}).get("annotations", {}).get(IRSA_ROLE)
    if role is None or green_account is None:
        return None
    green_role = ((green_account.get("metadata") or {}).get("annotations") or {}).get(IRSA_ROLE)
    if green_role == role:
        return None
    name = (green_account.get("metadata") or {}).get("name")
    return (
        f"ServiceAccount {name} in green has {IRSA_ROLE}={green_role!r}, blue's has {role!r}: on Fargate "
        "pods get AWS credentials only through IRSA (no instance metadata, no EKS Pod Identity)"
    )


def env_references(pod: dict[str, Any]) -> tuple[set[str], set[str]]:
    """Secret and ConfigMap names the containers' env and envFrom refer to."""
    secrets: set[Any] = set()
    config_maps: set[Any] = set()
    for c in _containers(pod):
        for e in c.get("env") or []:
            source = e.get("valueFrom") or {}
            secrets.add((source.get("secretKeyRef") or {}).get("name"))
            config_maps.add((source.get("configMapKeyRef") or {}).get("name"))
        for e in c.get("envFrom") or []:
            secrets.add((e.get("secretRef") or {}).get("name"))
            config_maps.add((e.get("configMapRef") or {}).get("name"))
    return {s for s in secrets if s}, {c for c in config_maps if c}


def references(pod: dict[str, Any]) -> tuple[set[str], set[str]]:
    """Secret and ConfigMap names a pod spec refers to (env, envFrom, volumes incl. projected, pull secrets)."""
    env_secrets, env_config_maps = env_references(pod)
    secrets: set[str | None] = {*env_secrets, *(s.get("name") for s in pod.get("imagePullSecrets") or [])}
    config_maps: set[str | None] = set(env_config_maps)
    for volume in pod.get("volumes") or []:
        secrets.add((volume.get("secret") or {}).get("secretName"))
        config_maps.add((volume.get("configMap") or {}).get("name"))
        for source in (volume.get("projected") or {}).get("sources") or []:
            secrets.add((source.get("secret") or {}).get("name"))
            config_maps.add((source.get("configMap") or {}).get("name"))
    return {s for s in secrets if s}, {c for c in config_maps if c}


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
