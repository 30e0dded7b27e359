"""The Kubernetes RBAC `slow-injection iam` prints is all a wave needs, on a real API server with RBAC on
(tests/kube.py): its Roles and ClusterRole are applied as printed, bound to a ServiceAccount, and a whole
wave runs (dag.test) through an Airflow connection holding that ServiceAccount's token (TokenRequest API);
then the wave's rollback steps run with it too. Every request goes through a recording proxy: none may be
answered 403. A token without the binding is refused (403), so the check can fail."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from include.slow_injection.drivers.kubernetes import KubeAccess, KubernetesPlatform
from include.slow_injection.kubernetes.rbac import allows, manifests
from include.slow_injection.tasks.operators import PlatformStep
from include.slow_injection.tasks.rollback_steps import HandJobsBack, RollbackWorkloads
from tests.support.kube import wait_for
from tests.support.kube_support import EVERY_MINUTE, RARELY, ApiProxy, Shop, k8s_wave, path_request
from tests.support.reruns import context
from tests.support.waves import run_wave, write

ROOT = Path(__file__).resolve().parents[1]
CONN = "kube_rbac"
SA = "airflow-worker"


def printed_rbac(spec: Path) -> list[dict[str, Any]]:
    """What `slow-injection iam SPEC --only rbac` prints, parsed."""
    out = subprocess.run(
        [sys.executable, "-m", "include.slow_injection.cli", "iam", str(spec), "--only", "rbac"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def apply_and_bind(kube: Any, docs: list[dict[str, Any]], bind: bool = True) -> tuple[str, str]:
    """Apply the printed manifests as they are; a ServiceAccount of its own namespace bound to each Role
    (RoleBinding in the Role's namespace) and to the ClusterRole. Returns (namespace, token)."""
    rbac = client.RbacAuthorizationV1Api(kube.api_client)
    core = client.CoreV1Api(kube.api_client)
    home = kube.namespace("airflow")
    core.create_namespaced_service_account(home, {"metadata": {"name": SA}})
    subject = [{"kind": "ServiceAccount", "name": SA, "namespace": home}]
    for doc in docs:
        name = doc["metadata"]["name"]
        if doc["kind"] == "Role":
            ns = doc["metadata"]["namespace"]
            rbac.create_namespaced_role(ns, doc)
            if bind:
                rbac.create_namespaced_role_binding(
                    ns,
                    {
                        "metadata": {"name": name},
                        "subjects": subject,
                        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
                    },
                )
        elif doc["kind"] == "ClusterRole":
            try:
                rbac.create_cluster_role(doc)
            except ApiException as err:  # the session's cluster has it from an earlier test: the same rules
                if err.status != 409:
                    raise
                rbac.replace_cluster_role(name, doc)
            if bind:
                rbac.create_cluster_role_binding(
                    {
                        "metadata": {"name": f"{name}-{home}"},
                        "subjects": subject,
                        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
                    }
                )
        else:
            raise AssertionError(f"unexpected {doc['kind']} in the printed RBAC")
    token = core.create_namespaced_service_account_token(SA, home, {"spec": {"expirationSeconds": 3600}})
    return home, token.status.token


def shop_with_companions(kube: Any, schedule: str) -> Shop:
    """Blue's web reads a ConfigMap (copied) and a Secret (prepared on both sides: never copied), and a
    Service fronts it (copied): the wave then also copies, compares and hashes."""
    shop = Shop.seed(kube, schedule=schedule)
    core = client.CoreV1Api(kube.api_client)
    core.create_namespaced_config_map(shop.blue, {"metadata": {"name": "web-env"}, "data": {"MODE": "shop"}})
    for ns in (shop.blue, shop.green):
        core.create_namespaced_secret(ns, {"metadata": {"name": "web-secrets"}, "data": {"password": "cw=="}})
    core.create_namespaced_service(
        shop.blue,
        {
            "metadata": {"name": "web"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
        },
    )
    blue = shop.deployment(shop.blue)
    blue["spec"]["template"]["spec"]["containers"][0]["envFrom"] = [
        {"configMapRef": {"name": "web-env"}},
        {"secretRef": {"name": "web-secrets"}},
    ]
    shop.api.replace("Deployment", shop.blue, "web", blue)
    wait_for(
        lambda: (
            (d := shop.deployment(shop.blue))["status"].get("updatedReplicas") == 2
            and d["status"].get("readyReplicas") == 2
            and d["status"].get("observedGeneration") == 2
        ),
        "blue's new pods ready",
    )
    return shop


def refused(proxy: ApiProxy) -> list[str]:
    return [f"{r.method} {r.path}?{r.query} → {r.status}" for r in proxy.requests if r.status in (401, 403)]


@pytest.mark.airflow
@pytest.mark.usefixtures("airflow_db")
def test_a_whole_wave_and_its_rollback_with_a_token_bound_to_exactly_the_printed_rbac_see_no_403(
    tmp_path: Path, world: Any, kube: Any, api_proxy: ApiProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop = shop_with_companions(kube, EVERY_MINUTE)
    wave = k8s_wave(world.path.stem, shop, conn=CONN, copy_config_maps=True, copy_services=["web"])
    docs = printed_rbac(write(tmp_path, wave))  # the file run_wave writes again
    assert sorted((d["kind"], d["metadata"].get("namespace") or "") for d in docs) == sorted(
        [("ClusterRole", ""), ("Role", shop.blue), ("Role", shop.green)]
    )
    _, token = apply_and_bind(kube, docs)
    kube.connection(monkeypatch, CONN, api_proxy.kubeconfig_file(SA, token, name="rbac-bound"))
    world.reset(
        {"routers": {"web": {"blue": 100, "green": 0}}, "metrics": {'error_ratio{service="web",env="green"}': 0.001}}
    )
    shop.run_blue_now()
    api_proxy.clear()

    state, tis = run_wave(tmp_path, world, wave)
    assert refused(api_proxy) == []
    assert state == "success", {k: v for k, v in tis.items() if v not in ("success", "skipped")}
    assert shop.deployment(shop.blue)["spec"]["replicas"] == 0 and not shop.suspended(shop.green)

    platform = {"blue": wave["environments"]["blue"]["platform"], "green": wave["environments"]["green"]["platform"]}
    workloads = {"report": shop.report, "web": wave["services"][1]["workload"]}
    RollbackWorkloads(task_id="restore_blue_workloads", platform=platform, workloads=workloads, wave_id="k8s").execute(
        context()
    )
    HandJobsBack(
        task_id="jobs_to_blue",
        platform=platform,
        workloads={"report": shop.report},
        wait_timeout=90,
        poll_interval=0.5,
        wave_id="k8s",
    ).execute(context())
    assert refused(api_proxy) == []
    assert shop.deployment(shop.blue)["spec"]["replicas"] == 2
    assert not shop.suspended(shop.blue) and shop.suspended(shop.green)

    seen = {path_request(r) for r in api_proxy.requests}
    g, b = shop.green, shop.blue
    assert {
        ("batch", "cronjobs/status", "patch", g),
        ("batch", "cronjobs/status", "patch", b),
        ("batch", "cronjobs", "patch", b),
        ("apps", "deployments", "create", g),
        ("apps", "deployments", "patch", b),
        ("", "configmaps", "create", g),
        ("", "services", "create", g),
        ("", "secrets", "get", b),
        ("", "secrets", "get", g),
        ("batch", "jobs", "list", g),
        ("", "pods", "list", g),
        ("", "pods", "list", b),
        ("coordination.k8s.io", "leases", "create", b),
        ("coordination.k8s.io", "leases", "delete", b),
    } <= seen  # the wave really wrote, copied, handed over, watched, leased its workloads and released them
    assert sorted(str(r) for r in seen if not allows(docs, *r)) == []  # the generator's model agrees


def test_paths_a_wave_may_take_beyond_the_happy_one_are_allowed_too(kube: Any, api_proxy: ApiProxy) -> None:
    """A plan (a dry-run replace asks the API server what would change), a drifted green copy converged
    (a replace) and a green copy recreated because blue's selector changed (a delete): with the bound token."""
    shop = Shop.seed(kube, schedule=RARELY)
    _, token = apply_and_bind(kube, manifests([shop.blue, shop.green]))
    bound = KubeAccess(_client(api_proxy, token))
    driver = KubernetesPlatform(bound, bound, KubernetesPlatform.Settings(add_labels={"compute": "fargate"}))
    api_proxy.clear()
    assert driver.deploy_green(shop.web, apply=False)[0].applied is False
    driver.deploy_green(shop.web, apply=True)
    assert driver.deploy_green(shop.web, apply=False) == []  # an existing copy: a dry-run replace
    shop.api.patch("Deployment", shop.green, "web", {"spec": {"replicas": 1}})  # drift on green
    assert len(driver.deploy_green(shop.web, apply=True)) == 1  # converged: a replace
    blue = shop.deployment(shop.blue)
    shop.api.delete("Deployment", shop.blue, "web")
    wait_for(lambda: shop.deployment(shop.blue) is None, "blue deleted")
    labels = {"app": "web", "tier": "front"}
    blue["spec"]["selector"] = {"matchLabels": labels}
    blue["spec"]["template"]["metadata"]["labels"] = labels
    blue["metadata"] = {"name": "web", "namespace": shop.blue, "labels": {"app": "web"}}
    shop.api.create("Deployment", shop.blue, blue)
    [change] = driver.deploy_green(shop.web, apply=True)
    assert "recreated with selector" in change.after
    assert refused(api_proxy) == []
    sent = {(r.method, r.path, r.dry_run) for r in api_proxy.requests}
    web = f"/apis/apps/v1/namespaces/{shop.green}/deployments/web"
    assert {("PUT", web, True), ("PUT", web, False), ("DELETE", web, False)} <= sent


def _client(proxy: ApiProxy, token: str) -> Any:
    from kubernetes import config

    return config.new_client_from_config(str(proxy.kubeconfig_file(SA, token, name="rbac-driver")))


def test_a_token_without_the_binding_is_refused(
    kube: Any, api_proxy: ApiProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop = Shop.seed(kube, schedule=RARELY, wait_ready=False)
    _, token = apply_and_bind(kube, manifests([shop.blue, shop.green]), bind=False)
    kube.connection(monkeypatch, CONN, api_proxy.kubeconfig_file(SA, token, name="rbac-unbound"))
    api_proxy.clear()
    platform = {"blue": {"type": "kubernetes", "connection": CONN}, "green": {"type": "kubernetes", "connection": CONN}}
    with pytest.raises(ApiException) as denied:
        PlatformStep(
            task_id="deploy_green",
            action="deploy_green",
            service="web",
            platform=platform,
            workload=shop.web,
            wave_id="k8s",
        ).execute(context())
    assert denied.value.status == 403
    assert refused(api_proxy) and shop.deployment(shop.green) is None


def test_a_role_is_scoped_to_its_namespace_and_cluster_reads_to_the_cluster_role() -> None:
    rbac = manifests(["shop"])
    assert allows(rbac, "apps", "deployments", "patch", "shop")
    assert not allows(rbac, "apps", "deployments", "patch", "kube-system")
    assert allows(rbac, "apps", "deployments", "delete", "shop")  # a green copy recreated (selector changed)
    assert not any(
        allows(rbac, group, resource, "delete", "shop")
        for group, resource in (
            ("batch", "cronjobs"),
            ("", "configmaps"),
            ("", "services"),
            ("", "secrets"),
            ("batch", "jobs"),
            ("", "pods"),
        )
    )
    assert allows(rbac, "", "secrets", "get", "shop")  # the drift gate reads a Secret by name, hashes it
    assert not any(allows(rbac, "", "secrets", verb, "shop") for verb in ("list", "watch", "create", "patch", "update"))
    assert allows(rbac, "storage.k8s.io", "storageclasses", "list", None)


def test_the_e2e_test_pod_runs_under_exactly_its_printed_role(
    kube: Any, api_proxy: ApiProxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A wave with an e2e test prints a Role for the test pod's namespace; a token bound to exactly that
    creates, watches, reads the log of and cleans up the pod with no 403 (the operator's real calls)."""
    from include.slow_injection.kubernetes.rbac import E2E_TEST_ROLE
    from include.slow_injection.permissions import rbac_manifests
    from include.slow_injection.spec.loader import load_wave
    from include.slow_injection.tasks.e2e_test_pod import E2eTestPod
    from tests.support.e2e_job import e2e_test, fake_context, outcome

    shop = Shop.seed(kube, schedule=RARELY, wait_ready=False)
    spec = k8s_wave("rbac-e2e", shop, conn=CONN)
    spec["full_transition"] = {"e2e_test": {"image": "registry.example/e2e:1", "timeout": "30s"}}
    docs = rbac_manifests(load_wave(write(tmp_path, spec)))
    roles = [d for d in docs if d["metadata"]["name"] == E2E_TEST_ROLE]
    assert [(d["kind"], d["metadata"]["namespace"]) for d in roles] == [("Role", shop.green)]
    _, token = apply_and_bind(kube, roles)
    kube.connection(monkeypatch, "kube_e2e_bound", api_proxy.kubeconfig_file(SA, token, name="rbac-e2e"))
    api_proxy.clear()
    test = {**e2e_test(shop.green, **outcome(0)), "connection": "kube_e2e_bound"}
    context = fake_context()
    verdict = E2eTestPod(task_id="e2e_smoke", test=test).execute(context)
    assert refused(api_proxy) == []
    assert verdict["status"] == "pass" and context["ti"].pushed["e2e_test"]["exit_code"] == 0, verdict
    assert {r for r in (path_request(q) for q in api_proxy.requests)} >= {("", "pods", "create", shop.green)}
