"""The Kubernetes RBAC the platform driver needs: a Role in each namespace a wave touches (blue's and
green's), and a ClusterRole for the one cluster-wide read (StorageClasses, by the preflight)."""

from __future__ import annotations

from typing import Any

ROLE_NAME = "slow-injection"

# (apiGroup, resource, verbs): every call KubeAccess makes (tests/test_rbac.py replays a wave's
# driver calls against the API test server and checks each request is allowed by these).
NAMESPACED_RULES: list[tuple[str, str, tuple[str, ...]]] = [
    ("apps", "deployments", ("get", "create", "patch")),
    ("apps", "daemonsets", ("list",)),
    ("batch", "cronjobs", ("get", "create", "patch")),
    ("batch", "cronjobs/status", ("patch",)),
    ("batch", "jobs", ("list",)),
    ("", "configmaps", ("get", "create", "patch")),
    ("", "services", ("get", "list", "create", "patch")),
    ("", "secrets", ("get",)),  # the drift gate compares the data blue's and green's env refer to, hashed
    ("", "pods", ("list",)),
    ("", "persistentvolumeclaims", ("list",)),
    ("policy", "poddisruptionbudgets", ("list",)),
]
CLUSTER_RULES: list[tuple[str, str, tuple[str, ...]]] = [
    ("storage.k8s.io", "storageclasses", ("list",)),
]


def _rules(rules: list[tuple[str, str, tuple[str, ...]]]) -> list[dict[str, Any]]:
    return [{"apiGroups": [group], "resources": [resource], "verbs": list(verbs)} for group, resource, verbs in rules]


def manifests(namespaces: list[str]) -> list[dict[str, Any]]:
    """Role per namespace + a ClusterRole; bind them to the identity of the Airflow connection."""
    out: list[dict[str, Any]] = [
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
         "metadata": {"name": ROLE_NAME, "namespace": ns}, "rules": _rules(NAMESPACED_RULES)}
        for ns in sorted(set(namespaces))
    ]
    out.append({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                "metadata": {"name": f"{ROLE_NAME}-cluster-reads"}, "rules": _rules(CLUSTER_RULES)})
    return out


def allows(manifest_list: list[dict[str, Any]], group: str, resource: str, verb: str, namespace: str | None) -> bool:
    for doc in manifest_list:
        if doc["kind"] == "Role" and doc["metadata"]["namespace"] != namespace:
            continue
        if doc["kind"] == "Role" and namespace is None:
            continue
        for rule in doc["rules"]:
            if group in rule["apiGroups"] and resource in rule["resources"] and verb in rule["verbs"]:
                return True
    return False
