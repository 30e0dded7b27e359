"""Test support for the Kubernetes routers (alb_ingress, gateway_api) on the real control plane: blue's and
green's Deployments (kwok runs their pods, the endpoint-slice controller lists them) and Services, and the
edits somebody else makes to a routing object, made through the admin identity."""

from __future__ import annotations

import json
from typing import Any

from include.slow_injection.drivers.gateway_api import GROUP
from include.slow_injection.drivers.kubernetes import KubeAccess
from include.slow_injection.lab.kube.seed import deployment
from tests.support.kube import Kube, wait_for

TARGET_TYPE = "alb.ingress.kubernetes.io/target-type"


def service(name: str, namespace: str, app: str, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace, "annotations": annotations or {}},
        "spec": {
            "selector": {"app": app},
            "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}],
        },
    }


def ready_endpoints(api: KubeAccess, namespace: str, name: str) -> int:
    slices = api.list(
        "DiscoveryV1Api",
        "list_namespaced_endpoint_slice",
        namespace,
        label_selector=f"kubernetes.io/service-name={name}",
    )
    return sum(1 for s in slices for e in s.get("endpoints") or [] if (e.get("conditions") or {}).get("ready"))


def seed_web(
    kube: Kube,
    namespace: str,
    *,
    green: bool = True,
    green_namespace: str | None = None,
    green_annotations: dict[str, str] | None = None,
    replicas: int = 2,
) -> KubeAccess:
    """Blue's `web` (Deployment + Service) in `namespace`; green's `web-green` beside it (or in
    `green_namespace`) unless green=False; both Services list ready endpoints before this returns."""
    api = KubeAccess(kube.api_client)
    api.create("Deployment", namespace, deployment("web", namespace, replicas))
    api.create("Service", namespace, service("web", namespace, "web"))
    wanted = [(namespace, "web")]
    if green:
        ns = green_namespace or namespace
        api.create("Deployment", ns, deployment("web-green", ns, replicas))
        api.create(
            "Service",
            ns,
            service(
                "web-green", ns, "web-green", {TARGET_TYPE: "ip"} if green_annotations is None else green_annotations
            ),
        )
        wanted.append((ns, "web-green"))
    for ns, name in wanted:
        wait_for(
            lambda ns=ns, name=name: ready_endpoints(api, ns, name) == replicas,
            f"{replicas} ready endpoints behind {ns}/{name}",
            timeout=60,
        )
    return api


def annotation_json(obj: dict[str, Any], key: str) -> Any:
    raw = ((obj.get("metadata") or {}).get("annotations") or {}).get(key)
    return json.loads(raw) if raw is not None else None


def ingress(namespace: str) -> dict[str, Any]:
    """Blue's Ingress as a team has it before a wave: `/` and `/api` to web, `/docs` to another Service."""

    def path(prefix: str, service: str) -> dict[str, Any]:
        return {"path": prefix, "pathType": "Prefix", "backend": {"service": {"name": service, "port": {"number": 80}}}}

    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {
            "name": "shop",
            "namespace": namespace,
            "annotations": {"alb.ingress.kubernetes.io/scheme": "internet-facing", TARGET_TYPE: "ip"},
        },
        "spec": {
            "ingressClassName": "alb",
            "rules": [
                {
                    "host": "shop.example.com",
                    "http": {"paths": [path("/", "web"), path("/api", "web"), path("/docs", "docs")]},
                }
            ],
        },
    }


def http_route(namespace: str) -> dict[str, Any]:
    """Blue's route as a team has it before a wave: `/` and `/api` to web, `/docs` to another Service."""
    to_web = [{"name": "web", "port": 80}]
    return {
        "apiVersion": f"{GROUP}/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "shop", "namespace": namespace},
        "spec": {
            "parentRefs": [{"name": "shop-gateway"}],
            "hostnames": ["shop.example.com"],
            "rules": [
                {"matches": [{"path": {"type": "PathPrefix", "value": "/"}}], "backendRefs": to_web},
                {"matches": [{"path": {"type": "PathPrefix", "value": "/api"}}], "backendRefs": to_web},
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": "/docs"}}],
                    "backendRefs": [{"name": "docs", "port": 80}],
                },
            ],
        },
    }
