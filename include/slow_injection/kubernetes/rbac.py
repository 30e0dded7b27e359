"""The Kubernetes RBAC the platform driver needs: a Role in each namespace a wave touches (blue's and
green's), and a ClusterRole for the one cluster-wide read (StorageClasses, by the preflight)."""

from __future__ import annotations

from typing import Any

ROLE_NAME = "slow-injection"

# (apiGroup, resource, verbs): every call the platform driver makes (KubeAccess and the client it wraps).
# tests/test_rbac.py applies these as `slow-injection iam` prints them to a real API server with RBAC on,
# binds them to a ServiceAccount and runs a whole wave and its rollback with that token: no request may be
# refused. Green's copies converge by whole-object replace (PUT, and a dryRun=All PUT to see whether
# anything would change): `update`; a Deployment whose selector changed on blue is deleted and created
# again on green (the selector is immutable): `delete`, on Deployments only.
NAMESPACED_RULES: list[tuple[str, str, tuple[str, ...]]] = [
    ("apps", "deployments", ("get", "create", "update", "patch", "delete")),
    ("apps", "daemonsets", ("list",)),  # the preflight: a DaemonSet of the namespace cannot follow to Fargate
    ("batch", "cronjobs", ("get", "create", "update", "patch")),
    ("batch", "cronjobs/status", ("patch",)),  # the handover carries the last scheduled time over
    ("batch", "jobs", ("list",)),
    ("", "configmaps", ("get", "create", "update")),
    ("", "services", ("get", "list", "create", "update")),
    ("", "secrets", ("get",)),  # the drift gate compares the data blue's and green's env refer to, hashed
    ("", "serviceaccounts", ("get",)),  # green prerequisites: the pod's ServiceAccount (and its IRSA role)
    ("", "namespaces", ("get",)),  # green prerequisites: a Role in a namespace may get that namespace only
    ("", "pods", ("list",)),
    ("", "persistentvolumeclaims", ("list",)),
    ("policy", "poddisruptionbudgets", ("list",)),
    ("networking.k8s.io", "ingresses", ("list",)),  # the preflight: Ingresses in front of blue's Services
    # one Lease per workload (kubernetes/leases.py): create-if-absent, a conditional replace to take over
    # an ended run's, a conditional delete to release
    ("coordination.k8s.io", "leases", ("get", "create", "update", "delete")),
]
# The team's e2e test pod (cncf-kubernetes KubernetesPodOperator): made, watched, read, cleaned up.
E2E_TEST_ROLE = f"{ROLE_NAME}-e2e-test"
E2E_TEST_RULES: list[tuple[str, str, tuple[str, ...]]] = [
    ("", "pods", ("get", "list", "watch", "create", "patch", "delete")),
    ("", "pods/log", ("get",)),
    ("", "events", ("list",)),  # the operator lists the pod's events when it fails to start
]
CLUSTER_RULES: list[tuple[str, str, tuple[str, ...]]] = [
    ("storage.k8s.io", "storageclasses", ("list",)),
    # the preflight asks whether the connection may use leases (every authenticated user may ask, through
    # Kubernetes' default system:basic-user; listed so this Role says every call the driver makes)
    ("authorization.k8s.io", "selfsubjectaccessreviews", ("create",)),
]


def _rules(rules: list[tuple[str, str, tuple[str, ...]]]) -> list[dict[str, Any]]:
    return [{"apiGroups": [group], "resources": [resource], "verbs": list(verbs)} for group, resource, verbs in rules]


def manifests(namespaces: list[str]) -> list[dict[str, Any]]:
    """Role per namespace + a ClusterRole; bind them to the identity of the Airflow connection."""
    out: list[dict[str, Any]] = [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": ROLE_NAME, "namespace": ns},
            "rules": _rules(NAMESPACED_RULES),
        }
        for ns in sorted(set(namespaces))
    ]
    out.append(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": f"{ROLE_NAME}-cluster-reads"},
            "rules": _rules(CLUSTER_RULES),
        }
    )
    return out


# The Kubernetes routers (alb_ingress, gateway_api) declare theirs per namespace (`rbac_rules(settings)`).
ROUTER_ROLE = f"{ROLE_NAME}-router"
Rules = list[tuple[str, str, tuple[str, ...]]]


def router_manifests(rules_by_namespace: dict[str, Rules]) -> list[dict[str, Any]]:
    """A Role per namespace a router reads or writes, its rules merged (verbs joined per resource)."""
    out = []
    for namespace in sorted(rules_by_namespace):
        merged: dict[tuple[str, str], set[str]] = {}
        for group, resource, verbs in rules_by_namespace[namespace]:
            merged.setdefault((group, resource), set()).update(verbs)
        rules = [(group, resource, tuple(sorted(verbs))) for (group, resource), verbs in sorted(merged.items())]
        out.append(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": {"name": ROUTER_ROLE, "namespace": namespace},
                "rules": _rules(rules),
            }
        )
    return out


def e2e_test_manifests(namespace: str) -> list[dict[str, Any]]:
    """The Role the e2e test pod's connection needs in the namespace the pod runs in."""
    return [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": E2E_TEST_ROLE, "namespace": namespace},
            "rules": _rules(E2E_TEST_RULES),
        }
    ]


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
