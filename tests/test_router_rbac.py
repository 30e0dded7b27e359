"""The Kubernetes routers' RBAC (`rbac_rules`, printed by `slow-injection iam` beside the platform's) is all
they need, on the real API server with RBAC on: the Roles applied as printed, bound to a ServiceAccount, and
every router step run through an Airflow connection holding that ServiceAccount's token. Without the binding
the same token is refused (403), so the check can fail."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from include.slow_injection import registry
from include.slow_injection.drivers.gateway_api import GROUP, GatewayApiRouter
from include.slow_injection.drivers.k8s_ingress import AlbIngressRouter
from include.slow_injection.kubernetes.rbac import ROUTER_ROLE, router_manifests
from include.slow_injection.ports import Weights
from tests.support.kube import Kube
from tests.support.routing_support import http_route, ingress, seed_web

CONN = "kube_router_rbac"
SA = "airflow-router"


def bound_connection(
    kube: Kube, monkeypatch: pytest.MonkeyPatch, docs: list[dict[str, Any]], bind: bool = True
) -> None:
    """Apply the Roles as printed, bind them to a ServiceAccount of its own namespace, and point the
    connection at a kubeconfig holding that ServiceAccount's token."""
    rbac, core = client.RbacAuthorizationV1Api(kube.api_client), client.CoreV1Api(kube.api_client)
    home = kube.namespace("airflow")
    core.create_namespaced_service_account(home, {"metadata": {"name": SA}})
    for doc in docs:
        assert doc["kind"] == "Role" and doc["metadata"]["name"] == ROUTER_ROLE
        namespace = doc["metadata"]["namespace"]
        rbac.create_namespaced_role(namespace, doc)
        if bind:
            rbac.create_namespaced_role_binding(
                namespace,
                {
                    "metadata": {"name": ROUTER_ROLE},
                    "subjects": [{"kind": "ServiceAccount", "name": SA, "namespace": home}],
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": ROUTER_ROLE},
                },
            )
    token = core.create_namespaced_service_account_token(SA, home, {"spec": {"expirationSeconds": 3600}}).status.token
    kube.connection(monkeypatch, CONN, kube.kubeconfig_file(SA, token, name=f"{SA}-{home}"))


def run_steps(router: Any) -> None:
    """Everything a wave asks of a router: attach, readiness, the steps read back, twice, and the rollback."""
    assert router.get_weights() == Weights(100, 0)
    router.attach_green(apply=True)
    assert router.green_ready().state == "ready"
    for green in (5, 25, 25, 100):
        router.set_weights(Weights.green_at(green))
        assert router.get_weights() == Weights.green_at(green)
    router.set_weights(Weights.green_at(0))
    assert router.get_weights() == Weights(100, 0)


def test_the_ingress_router_runs_on_its_printed_role(kube: Kube, monkeypatch: pytest.MonkeyPatch) -> None:
    namespace = kube.namespace("ing")
    seed_web(kube, namespace)
    client.NetworkingV1Api(kube.api_client).create_namespaced_ingress(namespace, ingress(namespace))
    ref = {
        "namespace": namespace,
        "ingress": "shop",
        "action": "web-split",
        "blue_service": {"name": "web", "port": 80},
        "green_service": {"name": "web-green", "port": 80},
        "reconcile_delay": "0s",
    }
    bound_connection(
        kube, monkeypatch, router_manifests(AlbIngressRouter.rbac_rules(AlbIngressRouter.Settings.model_validate(ref)))
    )
    run_steps(registry.build("router", {"type": "alb_ingress", "connection": CONN, **ref}))


def test_the_gateway_router_runs_on_its_printed_roles_across_namespaces(
    kube: Kube, gateway_api: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    namespace, green = kube.namespace("gw"), kube.namespace("gw-green")
    seed_web(kube, namespace, green_namespace=green)
    objects = client.CustomObjectsApi(kube.api_client)
    objects.create_namespaced_custom_object(GROUP, "v1", namespace, "httproutes", http_route(namespace))
    objects.create_namespaced_custom_object(
        GROUP,
        "v1beta1",
        green,
        "referencegrants",
        {
            "apiVersion": f"{GROUP}/v1beta1",
            "kind": "ReferenceGrant",
            "metadata": {"name": "shop-routes"},
            "spec": {
                "from": [{"group": GROUP, "kind": "HTTPRoute", "namespace": namespace}],
                "to": [{"group": "", "kind": "Service"}],
            },
        },
    )
    ref = {
        "namespace": namespace,
        "route": "shop",
        "blue_service": {"name": "web", "port": 80},
        "green_service": {"name": "web-green", "port": 80, "namespace": green},
        "poll_interval": "100ms",
    }
    docs = router_manifests(GatewayApiRouter.rbac_rules(GatewayApiRouter.Settings.model_validate(ref)))
    assert sorted(d["metadata"]["namespace"] for d in docs) == sorted([namespace, green])
    bound_connection(kube, monkeypatch, docs)
    run_steps(registry.build("router", {"type": "gateway_api", "connection": CONN, **ref}))


def test_without_the_binding_the_same_token_is_refused(
    kube: Kube, gateway_api: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    namespace = kube.namespace("gw")
    client.CustomObjectsApi(kube.api_client).create_namespaced_custom_object(
        GROUP, "v1", namespace, "httproutes", http_route(namespace)
    )
    ref = {
        "namespace": namespace,
        "route": "shop",
        "blue_service": {"name": "web", "port": 80},
        "green_service": {"name": "web-green", "port": 80},
    }
    bound_connection(
        kube,
        monkeypatch,
        router_manifests(GatewayApiRouter.rbac_rules(GatewayApiRouter.Settings.model_validate(ref))),
        bind=False,
    )
    with pytest.raises(ApiException) as refused:
        registry.build("router", {"type": "gateway_api", "connection": CONN, **ref}).get_weights()
    assert refused.value.status == 403


def test_slow_injection_iam_prints_the_routers_roles_beside_the_platforms(tmp_path: Any) -> None:
    from include.slow_injection.permissions import rbac_manifests
    from include.slow_injection.spec.models import Wave
    from tests.support.waves import small_wave

    data = small_wave("rbac")
    web = data["services"][1]
    web["router"] = {
        "type": "gateway_api",
        "connection": "eks_shop",
        "namespace": "shop",
        "route": "shop",
        "blue_service": {"name": "web", "port": 80},
        "green_service": {"name": "web", "port": 80, "namespace": "shop-fargate"},
    }
    docs = [d for d in rbac_manifests(Wave.model_validate(data)) if d["metadata"]["name"] == ROUTER_ROLE]
    by_namespace = {
        d["metadata"]["namespace"]: {(r["apiGroups"][0], r["resources"][0]): r["verbs"] for r in d["rules"]}
        for d in docs
    }
    assert by_namespace == {
        "shop": {(GROUP, "httproutes"): ["get", "update"]},
        "shop-fargate": {
            ("", "services"): ["get"],
            ("discovery.k8s.io", "endpointslices"): ["list"],
            (GROUP, "referencegrants"): ["list"],
        },
    }
