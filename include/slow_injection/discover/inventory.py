"""Read blue: every object discover needs, as plain dicts, in one `Inventory` (the rest is pure)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SYSTEM_NAMESPACES = ("kube-system", "kube-public", "kube-node-lease")
REQUEST_TIMEOUT_S = 15

# what → (client API, list call for one namespace, list call for all); optional ones may be unserved (404)
_NAMESPACED: dict[str, tuple[str, str, str]] = {
    "deployments": ("AppsV1Api", "list_namespaced_deployment", "list_deployment_for_all_namespaces"),
    "cronjobs": ("BatchV1Api", "list_namespaced_cron_job", "list_cron_job_for_all_namespaces"),
    "daemonsets": ("AppsV1Api", "list_namespaced_daemon_set", "list_daemon_set_for_all_namespaces"),
    "statefulsets": ("AppsV1Api", "list_namespaced_stateful_set", "list_stateful_set_for_all_namespaces"),
    "jobs": ("BatchV1Api", "list_namespaced_job", "list_job_for_all_namespaces"),
    "services": ("CoreV1Api", "list_namespaced_service", "list_service_for_all_namespaces"),
    "ingresses": ("NetworkingV1Api", "list_namespaced_ingress", "list_ingress_for_all_namespaces"),
    "configmaps": ("CoreV1Api", "list_namespaced_config_map", "list_config_map_for_all_namespaces"),
    "pvcs": ("CoreV1Api", "list_namespaced_persistent_volume_claim", "list_persistent_volume_claim_for_all_namespaces"),
    "pdbs": ("PolicyV1Api", "list_namespaced_pod_disruption_budget", "list_pod_disruption_budget_for_all_namespaces"),
}
_OPTIONAL = {"statefulsets", "jobs", "ingresses", "pdbs"}
# a real API server leaves `kind` off list items; the rules (and preflight) read it
KINDS = {
    "deployments": "Deployment",
    "cronjobs": "CronJob",
    "daemonsets": "DaemonSet",
    "statefulsets": "StatefulSet",
    "jobs": "Job",
    "services": "Service",
    "ingresses": "Ingress",
    "configmaps": "ConfigMap",
    "pvcs": "PersistentVolumeClaim",
    "pdbs": "PodDisruptionBudget",
}


class DiscoverError(Exception):
    """A problem the user can act on; `exit_code` follows the CLI's (1: bad input, 2: cluster failed)."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class Source:
    """Where the inventory came from, for the drafts' header."""

    connection: str | None
    kubeconfig: str | None
    context: str | None
    server: str

    def describe(self) -> str:
        parts = [f"connection {self.connection}"] if self.connection else []
        if self.kubeconfig:
            parts.append(f"kubeconfig {self.kubeconfig}")
        parts.append(f"context {self.context or '(from the connection)'}")
        return f"{', '.join(parts)}, server {self.server}"


@dataclass
class Inventory:
    source: Source
    namespaces: list[str]
    objects: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # plural → objects in `namespaces`
    storage_classes: dict[str, dict[str, Any]] = field(default_factory=dict)
    unserved: list[str] = field(default_factory=list)  # optional kinds the API does not serve
    unreadable: list[str] = field(default_factory=list)  # what these credentials may not read, and what it costs

    def of(self, plural: str, namespace: str | None = None) -> list[dict[str, Any]]:
        items = self.objects.get(plural, [])
        if namespace is None:
            return items
        return [o for o in items if (o.get("metadata") or {}).get("namespace") == namespace]


def connect(connection: str | None, kubeconfig: str | None, context: str | None) -> tuple[Any, Source]:
    """An ApiClient as the platform driver gets it: from the cncf-kubernetes KubernetesHook for an
    Airflow connection (a kubeconfig/context given too override the connection's); from a kubeconfig
    alone through the official client's loader, the one the hook calls (no Airflow needed on a laptop)."""
    if not connection and not kubeconfig:
        raise DiscoverError("give --connection CONN_ID (an Airflow connection) or --kubeconfig FILE")
    what = " / ".join(
        filter(
            None,
            [f"connection {connection!r}" if connection else None, f"kubeconfig {kubeconfig}" if kubeconfig else None],
        )
    )
    try:
        if connection:
            from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook

            api_client = KubernetesHook(conn_id=connection, config_file=kubeconfig, cluster_context=context).get_conn()
        else:
            from kubernetes import config

            api_client = config.new_client_from_config(config_file=kubeconfig, context=context)
            context = context or (config.list_kube_config_contexts(config_file=kubeconfig)[1] or {}).get("name")
    except Exception as err:
        reason = str(err) or type(err).__name__
        if context and context in reason:
            reason = f"unknown context {context!r} ({reason})"
        raise DiscoverError(f"cannot load the Kubernetes client config from {what}: {reason}") from err
    server = getattr(api_client.configuration, "host", "") or "?"
    return api_client, Source(connection, kubeconfig, context, server)


def read_inventory(api_client: Any, source: Source, namespaces: list[str] | None = None) -> Inventory:
    """List blue's objects in `namespaces` (default: every non-system namespace)."""
    from kubernetes import client

    from include.slow_injection.drivers.kubernetes import KubeAccess

    access = KubeAccess(api_client)

    def call(api: str, method: str, namespace: str | None = None) -> list[dict[str, Any]]:
        return access.list(api, method, namespace, _request_timeout=REQUEST_TIMEOUT_S)

    inventory = Inventory(source, [])
    doing = "list namespaces"
    try:
        if namespaces:
            wanted = sorted(set(namespaces))
        else:
            listed = {n["metadata"]["name"] for n in call("CoreV1Api", "list_namespace")}
            wanted = sorted(n for n in listed if not _is_system(n))
        inventory.namespaces = wanted
        for plural, (api, one, every) in _NAMESPACED.items():
            doing = f"list {plural} in {', '.join(wanted) if namespaces else 'all namespaces'}"
            try:
                if namespaces:
                    items = [o for ns in wanted for o in call(api, one, ns)]
                else:
                    items = [o for o in call(api, every) if (o.get("metadata") or {}).get("namespace") in wanted]
            except client.ApiException as err:
                if err.status == 404 and plural in _OPTIONAL:
                    inventory.unserved.append(plural)
                    continue
                raise
            for item in items:
                item["kind"] = KINDS[plural]
            inventory.objects[plural] = sorted(
                items, key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"])
            )
        doing = "list storage classes"
        try:  # cluster-wide, and read by one preflight rule only: a namespace reader may not list them
            inventory.storage_classes = {s["metadata"]["name"]: s for s in call("StorageV1Api", "list_storage_class")}
        except client.ApiException as err:
            if err.status != 403:
                raise
            inventory.unreadable.append(
                f"storage classes could not be read (HTTP {err.status} {err.reason}): the "
                "preflight comments cannot tell a PVC's provisioner (the wave's preflight "
                "phase checks again with the driver's access)"
            )
    except client.ApiException as err:
        raise DiscoverError(
            f"the cluster at {source.server} refused to {doing}: HTTP {err.status} {err.reason} ({_message(err)})",
            exit_code=2,
        ) from err
    except Exception as err:
        raise DiscoverError(
            f"cannot reach the cluster at {source.server} ({source.describe()}): "
            f"{type(err).__name__}: {_first_line(err)}",
            exit_code=2,
        ) from err
    return inventory


def _is_system(namespace: str) -> bool:
    return namespace in SYSTEM_NAMESPACES or namespace.startswith("kube-")


def _message(err: Any) -> str:
    import json

    try:
        return json.loads(err.body).get("message") or ""
    except (TypeError, ValueError, AttributeError):
        return str(err.body or "")[:200]


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0][:300] if text else ""
