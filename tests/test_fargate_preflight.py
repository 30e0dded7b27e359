"""Fargate preflight: one fixture per rule, each named in the findings; a clean workload passes."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from include.slow_injection.kubernetes.fargate_fit import Cluster, check
from include.slow_injection.kubernetes.fargate_profiles import FargateProfile, Selector, choose_profile

PROFILES = [FargateProfile("shop", (Selector("shop", {"compute": "fargate"}),))]
PDB = {"metadata": {"namespace": "shop", "name": "web"}, "spec": {"selector": {"matchLabels": {"app": "web"}}}}


def container(**extra: Any) -> dict[str, Any]:
    return {
        "name": "app",
        "image": "web:1",
        "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "500m", "memory": "1Gi"}},
        **extra,
    }


def deployment(**pod: Any) -> dict[str, Any]:
    return {
        "kind": "Deployment",
        "metadata": {"namespace": "shop", "name": "web"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web", "compute": "fargate"}},
                "spec": {"containers": [container()], **pod},
            },
        },
    }


def cronjob(**spec: Any) -> dict[str, Any]:
    job = {
        "ttlSecondsAfterFinished": 600,
        "template": {
            "metadata": {"labels": {"app": "report", "compute": "fargate"}},
            "spec": {"containers": [container()], "restartPolicy": "Never"},
        },
    }
    return {
        "kind": "CronJob",
        "metadata": {"namespace": "shop", "name": "report"},
        "spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": job}, **spec},
    }


def cluster(**extra: Any) -> Cluster:
    return Cluster(pdbs=[PDB], profiles=PROFILES, **extra)


def rules(obj: dict[str, Any], c: Cluster | None = None) -> set[str]:
    return {f.rule for f in check(obj, c or cluster())}


def with_container(**extra: Any) -> dict[str, Any]:
    return deployment(containers=[container(**extra)])


def test_a_clean_deployment_and_cronjob_pass() -> None:
    assert check(deployment(), cluster()) == []
    assert check(cronjob(), cluster()) == []


@pytest.mark.parametrize(
    ("obj", "rule", "text"),
    [
        (
            {"kind": "DaemonSet", "metadata": {"namespace": "shop", "name": "agent"}, "spec": {"template": {}}},
            "daemonset",
            "DaemonSets do not run on Fargate",
        ),
        (with_container(securityContext={"privileged": True}), "privileged", "privileged containers"),
        (deployment(hostNetwork=True), "host-network", "hostNetwork"),
        (with_container(ports=[{"containerPort": 80, "hostPort": 8080}]), "host-port", "hostPort 8080"),
        (deployment(volumes=[{"name": "logs", "hostPath": {"path": "/var/log"}}]), "host-path", "hostPath volume logs"),
        (
            deployment(volumes=[{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}]),
            "pvc-storage",
            "PVC data uses gp3 (ebs.csi.aws.com)",
        ),
        (
            with_container(
                resources={
                    "requests": {"cpu": "1", "memory": "1Gi", "nvidia.com/gpu": 1},
                    "limits": {"cpu": "1", "memory": "1Gi", "nvidia.com/gpu": 1},
                }
            ),
            "gpu",
            "nvidia.com/gpu",
        ),
        (
            with_container(
                resources={"requests": {"cpu": "250m", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}}
            ),
            "requests-limits",
            "cpu request (250m) must equal its limit (1)",
        ),
        (
            with_container(startupProbe={"httpGet": {"path": "/"}, "periodSeconds": 5, "failureThreshold": 6}),
            "startup-window",
            "startupProbe allows 30s",
        ),
        (
            with_container(livenessProbe={"httpGet": {"path": "/"}, "initialDelaySeconds": 10}),
            "startup-window",
            "livenessProbe restarts a container after 40s",
        ),
        (cronjob(startingDeadlineSeconds=30), "starting-deadline", "startingDeadlineSeconds 30s"),
    ],
)
def test_each_rule_names_the_resource_and_the_reason(obj: dict, rule: str, text: str) -> None:
    c = cluster(
        pvcs={"shop/data": {"spec": {"storageClassName": "gp3"}}},
        storage_classes={"gp3": {"provisioner": "ebs.csi.aws.com"}},
    )
    findings = check(obj, c)
    match = [f for f in findings if f.rule == rule]
    assert match, findings
    assert text in str(match[0])
    assert str(match[0]).startswith(f"{obj['kind']} shop/")


def test_efs_volumes_pass_and_missing_pdb_or_job_ttl_are_findings() -> None:
    efs = cluster(
        pvcs={"shop/data": {"spec": {"storageClassName": "efs"}}},
        storage_classes={"efs": {"provisioner": "efs.csi.aws.com"}},
    )
    assert rules(deployment(volumes=[{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}]), efs) == set()
    assert rules(deployment(), Cluster(profiles=PROFILES)) == {"pdb"}
    job = cronjob()
    del job["spec"]["jobTemplate"]["spec"]["ttlSecondsAfterFinished"]
    assert rules(job) == {"job-ttl"}


def test_a_pod_no_profile_selects_would_stay_pending() -> None:
    obj = deployment()
    obj["spec"]["template"]["metadata"]["labels"] = {"app": "web"}
    findings = check(obj, cluster())
    assert [f.rule for f in findings] == ["fargate-profile"]
    assert "would stay Pending" in findings[0].reason
    assert check(obj, Cluster(pdbs=[PDB])) == []  # profiles unknown: not simulated


def test_profile_choice_wildcards_alphabetical_and_explicit_label() -> None:
    profiles = [
        FargateProfile("zeta", (Selector("shop-*"),)),
        FargateProfile("alpha", (Selector("shop-?", {"tier": "w*"}),)),
        FargateProfile("mid", (Selector("batch"),)),
    ]
    assert choose_profile(profiles, "shop-a", {"tier": "web"}).name == "alpha"  # both match: alphabetical
    assert choose_profile(profiles, "shop-ab", {"tier": "web"}).name == "zeta"  # ? is one character
    assert choose_profile(profiles, "shop-a", {"tier": "db"}).name == "zeta"
    assert (
        choose_profile(profiles, "shop-a", {"tier": "web", "eks.amazonaws.com/fargate-profile": "zeta"}).name == "zeta"
    )
    assert choose_profile(profiles, "other", {}) is None
    eks = FargateProfile.from_eks(
        {"fargateProfileName": "fp", "selectors": [{"namespace": "ns", "labels": {"a": "b"}}]}
    )
    assert eks.matches("ns", {"a": "b", "c": "d"}) and not eks.matches("ns", {})


def test_green_namespace_is_what_the_rules_look_at() -> None:
    obj = copy.deepcopy(deployment())
    findings = check(obj, cluster(), namespace="shop-fargate")
    assert {f.rule for f in findings} == {"pdb", "fargate-profile"}
    assert findings[0].resource.startswith("Deployment shop-fargate/web")


@pytest.mark.parametrize("resource", ["nvidia.com/gpu", "amd.com/gpu", "aws.amazon.com/neuron", "hugepages-2Mi"])
def test_any_accelerator_or_extended_resource_is_named(resource: str) -> None:
    obj = with_container(
        resources={
            "requests": {"cpu": "1", "memory": "1Gi", resource: "1"},
            "limits": {"cpu": "1", "memory": "1Gi", resource: "1"},
        }
    )
    finding = next(f for f in check(obj, cluster()) if f.rule == "gpu")
    assert resource in finding.reason and "CPU, memory and ephemeral storage only" in finding.reason


def test_a_pod_above_the_largest_fargate_size_would_stay_pending() -> None:
    big = with_container(
        resources={"requests": {"cpu": "16", "memory": "120Gi"}, "limits": {"cpu": "16", "memory": "120Gi"}}
    )
    finding = next(f for f in check(big, cluster()) if f.rule == "largest-size")
    assert "16 vCPU" in finding.reason and "16vCPU 120GB" in finding.reason and "stay Pending" in finding.reason
    fits = with_container(
        resources={"requests": {"cpu": "16", "memory": "100Gi"}, "limits": {"cpu": "16", "memory": "100Gi"}}
    )
    assert "largest-size" not in rules(fits)


def test_load_balancers_need_ip_targets_on_fargate() -> None:
    nlb = {"kind": "Service", "metadata": {"name": "web", "annotations": {}}, "spec": {"type": "LoadBalancer"}}
    ingress = {
        "kind": "Ingress",
        "metadata": {"name": "shop", "annotations": {"alb.ingress.kubernetes.io/target-type": "instance"}},
    }
    findings = [f for f in check(deployment(), cluster(services=[nlb], ingresses=[ingress])) if f.rule == "ip-targets"]
    assert [f.resource for f in findings] == ["Service shop/web", "Ingress shop/shop"]
    assert "aws-load-balancer-nlb-target-type: ip" in findings[0].reason and "instance" in findings[1].reason
    nlb["metadata"]["annotations"]["service.beta.kubernetes.io/aws-load-balancer-nlb-target-type"] = "ip"
    ingress["metadata"]["annotations"]["alb.ingress.kubernetes.io/target-type"] = "ip"
    cluster_ip = {"kind": "Service", "metadata": {"name": "internal"}, "spec": {"type": "ClusterIP"}}
    assert "ip-targets" not in rules(deployment(), cluster(services=[nlb, cluster_ip], ingresses=[ingress]))


def test_dynamic_efs_provisioning_is_refused_static_efs_passes() -> None:
    volumes = [{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}]
    dynamic = cluster(
        pvcs={"shop/data": {"spec": {"storageClassName": "efs-ap"}}},
        storage_classes={"efs-ap": {"provisioner": "efs.csi.aws.com", "parameters": {"provisioningMode": "efs-ap"}}},
    )
    finding = next(f for f in check(deployment(volumes=volumes), dynamic) if f.rule == "pvc-storage")
    assert "dynamic EFS provisioning" in finding.reason and "efs-ap" in finding.reason


def test_a_profile_eks_reports_unusable_is_named() -> None:
    selectors = [{"namespace": f"ns{i}"} for i in range(5)] + [{"namespace": "shop", "labels": {"compute": "fargate"}}]
    creating = FargateProfile.from_eks(
        {"fargateProfileName": "shop", "status": "CREATING", "subnets": [], "selectors": selectors}
    )
    reasons = [f.reason for f in check(deployment(), Cluster(pdbs=[PDB], profiles=[creating]))]
    assert reasons == [
        "Fargate profile shop is CREATING, not ACTIVE",
        "Fargate profile shop has no subnets (it needs private subnets)",
        "Fargate profile shop has 6 selectors; EKS allows 5",
    ]
    active = FargateProfile.from_eks(
        {"fargateProfileName": "shop", "status": "ACTIVE", "subnets": ["subnet-1"], "selectors": selectors[-1:]}
    )
    assert check(deployment(), Cluster(pdbs=[PDB], profiles=[active])) == []


def test_prerequisites_name_each_missing_object() -> None:
    from include.slow_injection.kubernetes.fargate_fit import Present, missing_prerequisites

    pod = {
        "spec": {
            "serviceAccountName": "web",
            "imagePullSecrets": [{"name": "registry"}],
            "containers": [
                {
                    "name": "a",
                    "env": [{"name": "K", "valueFrom": {"secretKeyRef": {"name": "db", "key": "k"}}}],
                    "envFrom": [{"configMapRef": {"name": "web-env"}}],
                }
            ],
            "volumes": [{"name": "v", "projected": {"sources": [{"secret": {"name": "tls"}}]}}],
        }
    }
    assert missing_prerequisites(pod, Present("green", None), False) == ["namespace green does not exist in green"]
    assert missing_prerequisites(pod, Present("green", {}, set(), set()), False) == [
        "ServiceAccount green/web (the pod's serviceAccountName)",
        "Secret green/db (referenced by the pod)",
        "Secret green/registry (referenced by the pod)",
        "Secret green/tls (referenced by the pod)",
        "ConfigMap green/web-env (referenced by the pod; or set copy_config_maps)",
    ]
    everything = Present("green", {"web": {}}, {"db", "registry", "tls"}, set())
    assert missing_prerequisites(pod, everything, True) == []
