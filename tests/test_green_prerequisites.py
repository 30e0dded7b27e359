"""What green's namespace must hold before a workload can start there, read from a real control plane:
the namespace, the pod's ServiceAccount (with blue's IRSA role: on Fargate the only way to AWS
credentials), its Secrets and ConfigMaps. Preflight lists what is missing; deploy_green refuses, before
any write, with the exact list."""

from __future__ import annotations

import pytest
from kubernetes import client

from include.slow_injection.drivers.kubernetes import KubeAccess, KubernetesPlatform
from tests.support.kube_support import blue_deployment

ROLE = "eks.amazonaws.com/role-arn"


@pytest.fixture
def sides(kube):
    blue_ns, green_ns = kube.namespace("shop"), kube.namespace("green")
    api = KubeAccess(kube.api_client)
    core = client.CoreV1Api(kube.api_client)
    deployment = blue_deployment(blue_ns)
    pod = deployment["spec"]["template"]["spec"]
    pod["serviceAccountName"] = "web"
    pod["containers"][0]["env"] = [{"name": "DB", "valueFrom": {"secretKeyRef": {"name": "db", "key": "url"}}}]
    pod["containers"][0]["envFrom"] = [{"configMapRef": {"name": "web-env"}}]
    core.create_namespaced_service_account(
        blue_ns, {"metadata": {"name": "web", "annotations": {ROLE: "arn:aws:iam::123456789012:role/web"}}}
    )
    core.create_namespaced_secret(blue_ns, {"metadata": {"name": "db"}, "stringData": {"url": "postgres://x"}})
    core.create_namespaced_config_map(blue_ns, {"metadata": {"name": "web-env"}, "data": {"A": "1"}})
    api.create("Deployment", blue_ns, deployment)
    workload = {"kind": "Deployment", "namespace": blue_ns, "name": "web", "green_namespace": green_ns}
    driver = KubernetesPlatform(api, api, KubernetesPlatform.Settings())
    return driver, api, core, workload


def test_preflight_lists_and_deploy_refuses_until_green_has_what_the_pod_needs(sides) -> None:
    driver, api, core, workload = sides
    green_ns = workload["green_namespace"]
    findings = [f for f in driver.preflight(workload) if "[prerequisites]" in f]
    assert findings == [
        f"Deployment {green_ns}/web: green lacks {m} [prerequisites]"
        for m in [
            f"ServiceAccount {green_ns}/web (the pod's serviceAccountName)",
            f"Secret {green_ns}/db (referenced by the pod)",
            f"ConfigMap {green_ns}/web-env (referenced by the pod; or set copy_config_maps)",
        ]
    ]
    with pytest.raises(LookupError, match="create these first \\(nothing was changed\\)") as refused:
        driver.deploy_green(workload, apply=True)
    for missing in (f"ServiceAccount {green_ns}/web", f"Secret {green_ns}/db", f"ConfigMap {green_ns}/web-env"):
        assert missing in str(refused.value)
    assert api.get("Deployment", green_ns, "web") is None
    assert driver.deploy_green(workload, apply=False)  # a dry run still says what it would do

    core.create_namespaced_service_account(green_ns, {"metadata": {"name": "web"}})  # IRSA role forgotten
    core.create_namespaced_secret(green_ns, {"metadata": {"name": "db"}, "stringData": {"url": "postgres://x"}})
    gaps = [f for f in driver.preflight({**workload, "copy_config_maps": True}) if "[prerequisites]" in f]
    assert len(gaps) == 1 and "arn:aws:iam::123456789012:role/web" in gaps[0] and "IRSA" in gaps[0]
    core.patch_namespaced_service_account(
        "web", green_ns, {"metadata": {"annotations": {ROLE: "arn:aws:iam::123456789012:role/web"}}}
    )
    copied = {**workload, "copy_config_maps": True}
    assert not [f for f in driver.preflight(copied) if "[prerequisites]" in f]
    targets = [c.target for c in driver.deploy_green(copied, apply=True)]
    assert targets == [f"green ConfigMap {green_ns}/web-env", f"green Deployment {green_ns}/web"]


def test_a_missing_green_namespace_is_named(sides) -> None:
    driver, _, _, workload = sides
    missing = {**workload, "green_namespace": "green-does-not-exist"}
    findings = [f for f in driver.preflight(missing) if "[prerequisites]" in f]
    assert findings == [
        "Deployment green-does-not-exist/web: green lacks namespace green-does-not-exist does not "
        "exist in green [prerequisites]"
    ]


def test_preflight_reads_the_load_balancers_in_front(sides) -> None:
    driver, api, core, workload = sides
    blue_ns = workload["namespace"]
    core.create_namespaced_service(
        blue_ns,
        {
            "metadata": {"name": "web-nlb"},
            "spec": {"type": "LoadBalancer", "selector": {"app": "web"}, "ports": [{"port": 80}]},
        },
    )
    core.create_namespaced_service(
        blue_ns,
        {
            "metadata": {"name": "other"},
            "spec": {"type": "LoadBalancer", "selector": {"app": "other"}, "ports": [{"port": 80}]},
        },
    )
    client.NetworkingV1Api(api.api_client).create_namespaced_ingress(
        blue_ns,
        {
            "metadata": {"name": "shop", "annotations": {"alb.ingress.kubernetes.io/target-type": "instance"}},
            "spec": {
                "rules": [
                    {
                        "http": {
                            "paths": [
                                {
                                    "path": "/",
                                    "pathType": "Prefix",
                                    "backend": {"service": {"name": "web-nlb", "port": {"number": 80}}},
                                }
                            ]
                        }
                    }
                ]
            },
        },
    )
    findings = [f for f in driver.preflight(workload) if "[ip-targets]" in f]
    assert len(findings) == 2, findings
    assert findings[0].startswith(f"Service {workload['green_namespace']}/web-nlb")
    assert findings[1].startswith(f"Ingress {workload['green_namespace']}/shop")
