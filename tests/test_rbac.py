"""The Kubernetes RBAC `slow-injection iam` prints allows every request the platform driver makes:
a wave's worth of driver calls against the API test server, each request checked against the Role."""

from __future__ import annotations

import time
from urllib.parse import urlparse

from kubernetes import client, config

from include.slow_injection.drivers.kubernetes import KubeAccess, KubernetesPlatform
from include.slow_injection.kubernetes.rbac import allows, manifests
from include.slow_injection.lab.kube.api_server import _PATH, KubernetesTestServer
from tests.test_kubernetes_platform import CRONJOB, DEPLOYMENT, blue_cronjob, blue_deployment

VERBS = {"POST": "create", "PATCH": "patch", "PUT": "update", "DELETE": "delete"}


def rbac_request(method: str, path: str) -> tuple[str, str, str, str | None]:
    """(apiGroup, resource[/sub], verb, namespace) of one request, as the API server authorises it."""
    m = _PATH.match(urlparse(path).path)
    assert m, path
    resource = m.group("plural") + (f"/{m.group('sub')}" if m.group("sub") else "")
    verb = VERBS.get(method) or ("get" if m.group("name") else "list")
    return m.group("group") or "", resource, verb, m.group("ns")


def test_every_request_of_a_wave_s_driver_calls_is_allowed_by_the_printed_rbac() -> None:
    with KubernetesTestServer() as server:
        api = KubeAccess(config.new_client_from_config_dict(server.kubeconfig()))
        api.create("Deployment", "shop", blue_deployment())
        api.create("CronJob", "shop", blue_cronjob())
        core = client.CoreV1Api(api.api_client)
        core.create_namespaced_config_map("shop", {"metadata": {"name": "web-env"}, "data": {"k": "v"}})
        core.create_namespaced_service("shop", {"metadata": {"name": "web"}, "spec": {"ports": [{"port": 80}]}})
        core.create_namespaced_secret("shop", {"metadata": {"name": "web-secrets"}, "data": {"k": "dg=="}})
        api.patch("Deployment", "shop", "web", {"spec": {"template": {"spec": {"containers": [
            {"name": "app", "image": "web:1", "envFrom": [{"configMapRef": {"name": "web-env"}},
                                                          {"secretRef": {"name": "web-secrets"}}]}]}}}})
        driver = KubernetesPlatform(api, api, KubernetesPlatform.Settings(add_labels={"compute": "fargate"}))
        first = len(server.store.requests)

        web = {**DEPLOYMENT, "copy_config_maps": True, "copy_services": ["web"]}
        since = time.time() - 60
        for workload in (web, CRONJOB):
            driver.preflight(workload)
            driver.deploy_green(workload, apply=True)
            driver.deploy_green(workload, apply=True)  # converge: reads only
            driver.rollout(workload)
            driver.config_drift(workload)
        driver.handover_moment(CRONJOB, 0)
        driver.activate(CRONJOB, "green", apply=True)
        driver.first_run(CRONJOB, "green", since)
        driver.watch_jobs(CRONJOB, "green", since, {"runs": 1, "min_success_rate": 1.0, "max_pod_restarts": 0})
        driver.watch_pods(web, "blue", since, {"window": 60, "max_restarts": 0})
        driver.restore_blue(CRONJOB, apply=True)
        driver.activate(CRONJOB, "blue", apply=True)
        driver.retire_blue(web, apply=True)
        driver.restore_blue(web, apply=True)
        driver.capacity(web)  # the report's right-sizing: green's pods
        driver.capacity(CRONJOB)
        requests = server.store.requests[first:]

    rbac = manifests(["shop", "shop-fargate"])
    seen = {rbac_request(method, path) for method, path in requests}
    assert {("apps", "deployments", "patch", "shop"), ("", "configmaps", "create", "shop-fargate"),
            ("batch", "cronjobs", "patch", "shop-fargate"), ("", "secrets", "get", "shop"),
            ("", "services", "list", "shop-fargate")} <= seen  # the scenario really wrote (and compared)
    denied = sorted(str(r) for r in seen if not allows(rbac, *r))
    assert denied == []


def test_a_role_is_scoped_to_its_namespace_and_cluster_reads_to_the_cluster_role() -> None:
    rbac = manifests(["shop"])
    assert allows(rbac, "apps", "deployments", "patch", "shop")
    assert not allows(rbac, "apps", "deployments", "patch", "kube-system")
    assert not allows(rbac, "apps", "deployments", "delete", "shop")
    assert allows(rbac, "", "secrets", "get", "shop")  # the drift gate reads a Secret by name, hashes it
    assert not any(allows(rbac, "", "secrets", verb, "shop") for verb in ("list", "watch", "create", "patch"))
    assert allows(rbac, "storage.k8s.io", "storageclasses", "list", None)
