"""What the lab's cluster holds before a wave, written through the real Kubernetes API: blue's web
Deployment and report CronJob in namespace `lab` (on the EC2 node group), green's namespace `lab-fargate`
selected by a Fargate profile, and the PodDisruptionBudget green's namespace needs (the Fargate preflight
asks for one). Also the way back to that state (`LabCluster.reset`) and the lab's Job faults (kwok's stages,
set on a CronJob's pod template).
"""

from __future__ import annotations

import copy
import time
from typing import Any

EVERY_MINUTE = "* * * * *"  # Kubernetes' finest schedule: the handover waits for a minute tick
GREEN_LABELS = {"compute": "fargate"}  # what the lab wave's add_labels put on green (the profile selects it)
PROFILE_NAME = "fp-lab"
DRIVER_ACCOUNT = ("airflow", "slow-injection")  # namespace and ServiceAccount of the `lab_kube` connection

# kwok's stages (deploy/kube/build.sh installs them with kwok): a Job's pod completes ~1 s after it starts
# unless these say otherwise.
KWOK_DELAY = "pod-complete.stage.kwok.x-k8s.io/delay"
KWOK_COMPLETE_WEIGHT = "pod-complete.stage.kwok.x-k8s.io/weight"  # "0": a failing pod never completes instead
KWOK_FAIL = "pod-container-running-failed.stage.kwok.x-k8s.io"
KWOK_EXIT_CODE = "pod-container-running-failed.stage.kwok.x-k8s.io/exit-code"
KWOK_FAIL_DELAY = "pod-container-running-failed.stage.kwok.x-k8s.io/delay"
HANG = "3600000ms"  # "hang": a Job pod running for an hour


def deployment(name: str, namespace: str, replicas: int) -> dict[str, Any]:
    labels = {"app": name}
    container = {
        "name": name,
        "image": f"registry.example/{name}:1",
        "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"cpu": "500m", "memory": "512Mi"}},
    }
    pod = {"nodeSelector": {"eks.amazonaws.com/nodegroup": "ec2-general"}, "containers": [container]}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": pod},
        },
    }


def cronjob(name: str, namespace: str, schedule: str) -> dict[str, Any]:
    container = {
        "name": name,
        "image": f"registry.example/{name}:1",
        "resources": {"limits": {"cpu": "250m", "memory": "256Mi"}},
    }
    job = {
        "ttlSecondsAfterFinished": 600,
        "backoffLimit": 0,  # a failed run is one failed Job, not six retries
        "template": {
            "metadata": {"labels": {"app": name}},
            "spec": {"restartPolicy": "Never", "containers": [container]},
        },
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
        "spec": {"schedule": schedule, "suspend": False, "concurrencyPolicy": "Forbid", "jobTemplate": {"spec": job}},
    }


def pod_disruption_budget(name: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": name}}},
    }


# The web service's routing objects, in green's namespace (the AWS Load Balancer Controller forwards only to
# Services of the Ingress's own namespace): blue's Service stands for blue's pods (namespace `lab`, no
# selector: a Service selects pods of its own namespace only), green's selects green's pods, so its ready
# endpoints come from the endpoint-slice controller once the wave deployed green. The lab's route controller
# (lab/route_controller.py) maps the two Services to HAProxy's servers.
INGRESS_CLASS, INGRESS, ACTION = "alb", "web", "web-weighted"
BLUE_SERVICE, GREEN_SERVICE = "web-blue", "web-green"
GATEWAY_CLASS, GATEWAY, ROUTE = "slow-injection-lab", "lab", "web"
TARGET_TYPE = "alb.ingress.kubernetes.io/target-type"
GATEWAY_API = ("gateway.networking.k8s.io", "v1")


def web_service(name: str, namespace: str, selector: dict[str, str] | None) -> dict[str, Any]:
    spec: dict[str, Any] = {"ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]}
    if selector:
        spec["selector"] = selector
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace, "annotations": {TARGET_TYPE: "ip"}},
        "spec": spec,
    }


def ingress_class() -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "IngressClass",
        "metadata": {"name": INGRESS_CLASS},
        "spec": {"controller": "ingress.k8s.aws/alb"},
    }


def web_ingress(namespace: str) -> dict[str, Any]:
    """The Ingress as a team has it before a wave: every path to blue's Service, IP targets (Fargate)."""
    backend = {"service": {"name": BLUE_SERVICE, "port": {"number": 80}}}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {
            "name": INGRESS,
            "namespace": namespace,
            "annotations": {"alb.ingress.kubernetes.io/scheme": "internal", TARGET_TYPE: "ip"},
        },
        "spec": {
            "ingressClassName": INGRESS_CLASS,
            "rules": [{"http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend}]}}],
        },
    }


def gateway_objects(namespace: str) -> list[tuple[str, dict[str, Any]]]:
    """(plural, object): the lab's GatewayClass and Gateway, and the HTTPRoute with every request to blue."""
    api_version = "/".join(GATEWAY_API)
    return [
        (
            "gatewayclasses",
            {
                "apiVersion": api_version,
                "kind": "GatewayClass",
                "metadata": {"name": GATEWAY_CLASS},
                "spec": {"controllerName": "slow-injection.io/lab-gateway"},
            },
        ),
        (
            "gateways",
            {
                "apiVersion": api_version,
                "kind": "Gateway",
                "metadata": {"name": GATEWAY, "namespace": namespace},
                "spec": {
                    "gatewayClassName": GATEWAY_CLASS,
                    "listeners": [{"name": "http", "protocol": "HTTP", "port": 80}],
                },
            },
        ),
        ("httproutes", web_route(namespace)),
    ]


def web_route(namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "/".join(GATEWAY_API),
        "kind": "HTTPRoute",
        "metadata": {"name": ROUTE, "namespace": namespace},
        "spec": {
            "parentRefs": [{"name": GATEWAY}],
            "rules": [
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                    "backendRefs": [{"name": BLUE_SERVICE, "port": 80}],
                }
            ],
        },
    }


def fargate_profile(green_namespace: str) -> dict[str, Any]:
    """Green's Fargate profile, in the shape of eks.describe_fargate_profile."""
    return {"name": PROFILE_NAME, "selectors": [{"namespace": green_namespace, "labels": dict(GREEN_LABELS)}]}


class LabCluster:
    """The lab's objects on a real API server (an ApiClient of an identity allowed to write them)."""

    def __init__(
        self,
        api_client: Any,
        namespace: str = "lab",
        green_namespace: str = "lab-fargate",
        *,
        web: str = "web",
        job: str = "report",
        schedule: str = EVERY_MINUTE,
        replicas: int = 2,
    ) -> None:
        from kubernetes import client

        self.api_client = api_client
        self.core, self.apps = client.CoreV1Api(api_client), client.AppsV1Api(api_client)
        self.batch, self.policy = client.BatchV1Api(api_client), client.PolicyV1Api(api_client)
        self.namespace, self.green_namespace = namespace, green_namespace
        self.web, self.job, self.schedule, self.replicas = web, job, schedule, replicas

    # --- seeding -------------------------------------------------------------------------
    def seed(self, timeout: float = 30.0) -> None:
        """Namespaces (each once its default ServiceAccount exists: pods need it), the Fargate profile,
        blue's Deployment and CronJob, green's PodDisruptionBudget; waits for blue's pods to be ready."""
        from include.slow_injection.lab.kube.fargate import set_profiles

        for ns in (self.namespace, self.green_namespace):
            _create(lambda ns=ns: self.core.create_namespace({"metadata": {"name": ns}}))
        set_profiles(self.api_client, [fargate_profile(self.green_namespace)])
        for ns in (self.namespace, self.green_namespace):
            _wait(
                lambda ns=ns: any(
                    sa.metadata.name == "default" for sa in self.core.list_namespaced_service_account(ns).items
                ),
                f"the default ServiceAccount of {ns}",
                timeout,
            )
        _create(
            lambda: self.policy.create_namespaced_pod_disruption_budget(
                self.green_namespace, pod_disruption_budget(self.web, self.green_namespace)
            )
        )
        self._converge_blue()
        self.wait_blue_ready(timeout)

    def seed_routing(self) -> None:
        """The web service's routing, all to blue: the `alb` IngressClass, blue's and green's Services and the
        Ingress in green's namespace; with the Gateway API's CRDs installed, a Gateway and the HTTPRoute too."""
        from kubernetes import client

        ns = self.green_namespace
        _create(lambda: client.NetworkingV1Api(self.api_client).create_ingress_class(ingress_class()))
        _create(lambda: self.core.create_namespaced_service(ns, web_service(BLUE_SERVICE, ns, None)))
        _create(lambda: self.core.create_namespaced_service(ns, web_service(GREEN_SERVICE, ns, {"app": self.web})))
        if self.has_gateway_api():
            objects = client.CustomObjectsApi(self.api_client)
            for plural, obj in gateway_objects(ns)[:2]:
                if obj["metadata"].get("namespace"):
                    _create(lambda p=plural, o=obj: objects.create_namespaced_custom_object(*GATEWAY_API, ns, p, o))
                else:
                    _create(lambda p=plural, o=obj: objects.create_cluster_custom_object(*GATEWAY_API, p, o))
        self._converge_routing()

    def _converge_routing(self) -> None:
        """The Ingress (and the HTTPRoute) as seeded: all to blue, no split recorded (replaced whole)."""
        from kubernetes import client

        ns, net = self.green_namespace, client.NetworkingV1Api(self.api_client)
        _put(
            lambda: net.read_namespaced_ingress(INGRESS, ns),
            lambda body: net.create_namespaced_ingress(ns, body),
            lambda body: net.replace_namespaced_ingress(INGRESS, ns, body),
            web_ingress(ns),
        )
        if self.has_gateway_api():
            objects = client.CustomObjectsApi(self.api_client)
            args = (*GATEWAY_API, ns, "httproutes")
            _put(
                lambda: _Meta(objects.get_namespaced_custom_object(*args, ROUTE)),
                lambda body: objects.create_namespaced_custom_object(*args, body),
                lambda body: objects.replace_namespaced_custom_object(*args, ROUTE, body),
                web_route(ns),
            )

    def has_gateway_api(self) -> bool:
        """The Gateway API's HTTPRoute CRD is installed (lab/kube/gateway_api_crds.py)."""
        from kubernetes import client
        from kubernetes.client.rest import ApiException

        try:
            client.ApiextensionsV1Api(self.api_client).read_custom_resource_definition(
                f"httproutes.{GATEWAY_API[0]}", _preload_content=False
            )
            return True
        except ApiException as err:
            if err.status == 404:
                return False
            raise

    def blue_objects(self) -> tuple[dict[str, Any], dict[str, Any]]:
        return (deployment(self.web, self.namespace, self.replicas), cronjob(self.job, self.namespace, self.schedule))

    def _converge_blue(self) -> None:
        """Blue's Deployment and CronJob exactly as seeded (created, or replaced whole: the driver's
        retired-from/active-since markers, a changed size or a suspend all go)."""
        web, job = self.blue_objects()
        _put(
            lambda: self.apps.read_namespaced_deployment(self.web, self.namespace),
            lambda body: self.apps.create_namespaced_deployment(self.namespace, body),
            lambda body: self.apps.replace_namespaced_deployment(self.web, self.namespace, body),
            web,
        )
        _put(
            lambda: self.batch.read_namespaced_cron_job(self.job, self.namespace),
            lambda body: self.batch.create_namespaced_cron_job(self.namespace, body),
            lambda body: self.batch.replace_namespaced_cron_job(self.job, self.namespace, body),
            job,
        )

    def wait_blue_ready(self, timeout: float = 60.0) -> None:
        def ready() -> bool:
            d = self.apps.read_namespaced_deployment(self.web, self.namespace)
            return (
                (d.status.observed_generation or 0) >= d.metadata.generation
                and (d.status.ready_replicas or 0) == self.replicas
                and (d.status.updated_replicas or 0) == self.replicas
                and (d.status.replicas or 0) == self.replicas
            )

        _wait(ready, f"blue Deployment {self.namespace}/{self.web} ready with {self.replicas} replicas", timeout)

    # --- back to blue only -----------------------------------------------------------------
    def reset(self, timeout: float = 60.0) -> None:
        """Blue only, as seeded: green's Deployment, CronJob and Jobs deleted (and gone, pods included),
        blue's objects replaced by the seeded ones (unsuspended, full size, no markers, no faults), and no
        wave's lease on them (a run ended by hand never released its own)."""
        from kubernetes import client
        from kubernetes.client.rest import ApiException

        from include.slow_injection.kubernetes.leases import MANAGED_BY

        green = self.green_namespace
        client.CoordinationV1Api(self.api_client).delete_collection_namespaced_lease(
            self.namespace, label_selector=",".join(f"{k}={v}" for k, v in MANAGED_BY.items())
        )
        deletions = [
            lambda: self.apps.delete_namespaced_deployment(self.web, green, propagation_policy="Background"),
            lambda: self.batch.delete_namespaced_cron_job(self.job, green, propagation_policy="Background"),
            lambda: self.batch.delete_collection_namespaced_job(green, propagation_policy="Background"),
        ]
        for delete in deletions:
            try:
                delete()
            except ApiException as err:
                if err.status != 404:
                    raise
        self._converge_blue()
        self._converge_routing()

        def green_empty() -> bool:
            return not (
                self.apps.list_namespaced_deployment(green).items
                or self.batch.list_namespaced_cron_job(green).items
                or self.batch.list_namespaced_job(green).items
                or self.apps.list_namespaced_replica_set(green).items
                or self.core.list_namespaced_pod(green).items
            )

        _wait(green_empty, f"green's objects in {green} gone", timeout)
        self.wait_blue_ready(timeout)

    # --- faults ----------------------------------------------------------------------------
    def set_job_fault(
        self, namespace: str, *, job_outcome: str = "succeed", job_seconds: float | None = None, name: str | None = None
    ) -> dict[str, Any]:
        """How the Jobs of `namespace`'s CronJob behave from its next run on, through kwok's stages on the
        jobTemplate's pod template: job_outcome succeed | fail (exit code 3) | hang (an hour);
        job_seconds how long a run takes (default ~1 s). Returns the pod template's metadata."""
        if job_outcome not in ("succeed", "fail", "hang"):
            raise ValueError(f"job_outcome: succeed, fail or hang, not {job_outcome!r}")
        delay = HANG if job_outcome == "hang" else (f"{int(job_seconds * 1000)}ms" if job_seconds else None)
        failing = job_outcome == "fail"
        patch = {
            "spec": {
                "jobTemplate": {
                    "spec": {
                        "template": {
                            "metadata": {
                                "labels": {KWOK_FAIL: "true" if failing else None},
                                "annotations": {
                                    KWOK_EXIT_CODE: "3" if failing else None,
                                    KWOK_COMPLETE_WEIGHT: "0" if failing else None,
                                    KWOK_DELAY: None if failing else delay,
                                    KWOK_FAIL_DELAY: delay if failing else None,
                                },
                            }
                        }
                    }
                }
            }
        }
        answer = self.batch.patch_namespaced_cron_job(name or self.job, namespace, patch)
        meta = answer.spec.job_template.spec.template.metadata
        return {"labels": meta.labels or {}, "annotations": meta.annotations or {}}

    # --- the driver's identity ------------------------------------------------------------
    def bind_driver(self, manifests: list[dict[str, Any]], valid_seconds: int = 30 * 86400) -> str:
        """A ServiceAccount bound to exactly `manifests` (the Roles and ClusterRoles `slow-injection iam
        --only rbac` prints for the lab wave), as an operator would set Airflow up; returns its token."""
        from kubernetes import client

        rbac = client.RbacAuthorizationV1Api(self.api_client)
        namespace, account = DRIVER_ACCOUNT
        _create(lambda: self.core.create_namespace({"metadata": {"name": namespace}}))
        _create(lambda: self.core.create_namespaced_service_account(namespace, {"metadata": {"name": account}}))
        subject = [{"kind": "ServiceAccount", "name": account, "namespace": namespace}]
        for doc in manifests:
            name, role_ns = doc["metadata"]["name"], doc["metadata"].get("namespace")
            ref = {"apiGroup": "rbac.authorization.k8s.io", "kind": doc["kind"], "name": name}
            if doc["kind"] == "Role":
                binding = {"metadata": {"name": name, "namespace": role_ns}, "roleRef": ref, "subjects": subject}
                _put(  # a lab started again after an upgrade gets the Role's current rules (e.g. leases)
                    lambda ns=role_ns, n=name: rbac.read_namespaced_role(n, ns),
                    lambda body, ns=role_ns: rbac.create_namespaced_role(ns, body),
                    lambda body, ns=role_ns, n=name: rbac.replace_namespaced_role(n, ns, body),
                    doc,
                )
                _create(lambda ns=role_ns, body=binding: rbac.create_namespaced_role_binding(ns, body))
            elif doc["kind"] == "ClusterRole":
                binding = {"metadata": {"name": name}, "roleRef": ref, "subjects": subject}
                _put(
                    lambda n=name: rbac.read_cluster_role(n),
                    rbac.create_cluster_role,
                    lambda body, n=name: rbac.replace_cluster_role(n, body),
                    doc,
                )
                _create(lambda body=binding: rbac.create_cluster_role_binding(body))
        request = self.core.create_namespaced_service_account_token(
            account, namespace, {"spec": {"expirationSeconds": valid_seconds}}
        )
        return request.status.token

    # --- readings --------------------------------------------------------------------------
    def next_tick(self, after: float | None = None) -> float:
        """The report CronJob's next scheduled time (epoch seconds)."""
        import datetime as dt

        from include.slow_injection.kubernetes.handover import next_run

        now = dt.datetime.fromtimestamp(after if after is not None else time.time(), dt.UTC)
        return next_run(self.schedule, now).timestamp()


class _Meta:
    """A custom object (a dict) with the `.metadata.resource_version` _put reads from a typed model."""

    def __init__(self, obj: dict[str, Any]) -> None:
        from types import SimpleNamespace

        self.metadata = SimpleNamespace(resource_version=obj["metadata"]["resourceVersion"])


def _create(call: Any) -> None:
    from kubernetes.client.rest import ApiException

    try:
        call()
    except ApiException as err:
        if err.status != 409:
            raise


def _put(read: Any, create: Any, replace: Any, desired: dict[str, Any], attempts: int = 5) -> None:
    """Create, or replace whole with the current resourceVersion; a controller writing meanwhile (409)
    means read again."""
    from kubernetes.client.rest import ApiException

    for attempt in range(attempts):
        try:
            current = read()
        except ApiException as err:
            if err.status != 404:
                raise
            current = None
        body = copy.deepcopy(desired)
        try:
            if current is None:
                create(body)
            else:
                body["metadata"]["resourceVersion"] = current.metadata.resource_version
                replace(body)
            return
        except ApiException as err:
            if err.status != 409 or attempt == attempts - 1:
                raise


def _wait(check: Any, what: str, timeout: float, interval: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception as err:
            last = err
        time.sleep(interval)
    raise TimeoutError(f"lab cluster: {what} not reached in {timeout:g}s (last error: {last})")
