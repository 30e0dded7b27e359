"""Kubernetes platform driver (blue and green clusters, or two namespaces of one): copy workloads to
green with the Fargate transforms, converge them, hand CronJobs over exactly once, watch green's jobs
and blue's pods, retire and restore blue. Clients come from the cncf-kubernetes provider's
KubernetesHook (one Airflow Connection per side; the same one twice for two namespaces of a cluster).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from include.slow_injection.kubernetes.fargate_fit import Cluster, check, pod_template
from include.slow_injection.kubernetes.fargate_profiles import FargateProfile
from include.slow_injection.kubernetes.handover import next_run, safe_moment
from include.slow_injection.kubernetes.leases import KubeLeases
from include.slow_injection.kubernetes.right_sizing import pod_facts
from include.slow_injection.kubernetes.rollout import FAILED, READY, rollout_state
from include.slow_injection.kubernetes.timestamps import from_rfc3339, to_rfc3339
from include.slow_injection.kubernetes.transforms import DROPPED_ANNOTATIONS, to_green
from include.slow_injection.ports import Change, HeldBy, JobStillActive, LeaseAnswer, LeaseHolder, Readiness

RETIRED_FROM = "slow-injection.io/retired-from-replicas"
ACTIVE_SINCE = "slow-injection.io/active-since"  # when the handover unsuspended this side (UTC)
SCHEDULED_AT = "batch.kubernetes.io/cronjob-scheduled-timestamp"  # on each Job the CronJob controller makes
SETTLE = 2.0  # seconds a CronJob controller may still act on a suspend it has not seen
CAPACITY_JOBS = 5  # a CronJob's right-sizing looks at the pods of its last few Jobs
_API = {  # kind → (client class, snake-case name in its methods)
    "Deployment": ("AppsV1Api", "deployment"),
    "CronJob": ("BatchV1Api", "cron_job"),
    "ConfigMap": ("CoreV1Api", "config_map"),
    "Service": ("CoreV1Api", "service"),
    "Secret": ("CoreV1Api", "secret"),  # read only, by the drift gate (which hashes the data at once)
    "ServiceAccount": ("CoreV1Api", "service_account"),  # read only: a green prerequisite
}
_SERVER_FIELDS = ("clusterIP", "clusterIPs", "healthCheckNodePort")  # a Service copy gets its own


class ProfileSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    name: str
    selectors: list[dict[str, Any]] = Field(min_length=1)


class EksProfiles(BaseModel):
    """Read the Fargate profiles from EKS (amazon provider's EksHook) instead of listing them."""

    model_config = ConfigDict(extra="forbid", strict=True)
    cluster: str = Field(min_length=1)
    aws_connection: str = Field(default="aws_default", min_length=1)
    region: str | None = None


class KubeAccess:
    """Dict-in, dict-out access to one cluster through the official client. A 422 (the API server's
    validation) becomes a ValueError naming the object and each refused field."""

    def __init__(self, api_client: Any) -> None:
        self.api_client = api_client

    def _api(self, name: str) -> Any:
        from kubernetes import client

        return getattr(client, name)(self.api_client)

    def _method(self, kind: str, verb: str) -> Any:
        api_name, snake = _API[kind]
        return getattr(self._api(api_name), f"{verb}_namespaced_{snake}")

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        from kubernetes.client.rest import ApiException

        try:
            return json.loads(self._method(kind, "read")(name, namespace, _preload_content=False).data)
        except ApiException as err:
            if err.status == 404:
                return None
            raise

    def create(self, kind: str, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        with _refusal(kind, namespace, body):
            return json.loads(self._method(kind, "create")(namespace, body, _preload_content=False).data)

    def replace(
        self, kind: str, namespace: str, name: str, body: dict[str, Any], dry_run: bool = False
    ) -> dict[str, Any]:
        """PUT the whole object (its metadata.resourceVersion guards against a concurrent writer: 409)."""
        extra = {"dry_run": "All"} if dry_run else {}
        with _refusal(kind, namespace, body):
            return json.loads(
                self._method(kind, "replace")(name, namespace, body, _preload_content=False, **extra).data
            )

    def delete(self, kind: str, namespace: str, name: str) -> None:
        from kubernetes.client.rest import ApiException

        try:
            self._method(kind, "delete")(name, namespace, propagation_policy="Background", _preload_content=False)
        except ApiException as err:
            if err.status != 404:
                raise

    def patch(self, kind: str, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        with _refusal(kind, namespace, {"metadata": {"name": name}}):
            return json.loads(self._method(kind, "patch")(name, namespace, body, _preload_content=False).data)

    def patch_status(self, kind: str, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        api_name, snake = _API[kind]
        call = getattr(self._api(api_name), f"patch_namespaced_{snake}_status")
        return json.loads(call(name, namespace, body, _preload_content=False).data)

    def list(self, api_name: str, method: str, namespace: str | None = None, **query: Any) -> list[dict[str, Any]]:
        """Items of a list call, each with its `kind` and `apiVersion` (the API server leaves them out)."""
        call = getattr(self._api(api_name), method)
        args = (namespace,) if namespace else ()
        answer = json.loads(call(*args, _preload_content=False, **query).data)
        kind = (answer.get("kind") or "").removesuffix("List")
        return [{"kind": kind, "apiVersion": answer.get("apiVersion"), **item} for item in answer.get("items", [])]


@contextmanager
def _refusal(kind: str, namespace: str, body: dict[str, Any]) -> Iterator[None]:
    from kubernetes.client.rest import ApiException

    try:
        yield
    except ApiException as err:
        if err.status != 422:
            raise
        try:
            details = json.loads(err.body or "{}")
        except ValueError:
            details = {}
        causes = (details.get("details") or {}).get("causes") or []
        fields = "; ".join(f"{c.get('field', '?')}: {c.get('message', '')}" for c in causes) or details.get(
            "message", ""
        )
        name = (body.get("metadata") or {}).get("name", "?")
        raise ValueError(f"the API server refused {kind} {namespace}/{name} (422 Invalid): {fields}") from None


class KubernetesPlatform:
    port = "platform"

    class Settings(BaseModel):
        model_config = ConfigDict(extra="forbid", strict=True)
        add_labels: dict[str, str] = Field(
            default_factory=dict, description="green labels, e.g. to pick a Fargate profile"
        )
        strip_scheduling: bool = True
        requests_equal_limits: bool = True
        fargate_profiles: list[ProfileSpec] | None = Field(default=None, description="profiles to simulate")
        fargate_profiles_from: EksProfiles | None = Field(default=None, description="or read them from EKS")

    def __init__(self, blue: KubeAccess, green: KubeAccess, settings: Settings, clock: Any = None) -> None:
        import datetime as dt

        self.blue, self.green, self.settings = blue, green, settings
        self._seen: dict[tuple[str, str, str, float], dict[str, dict[str, Any]]] = {}
        self.now = clock or (lambda: dt.datetime.now(dt.UTC))

    @classmethod
    def from_spec(
        cls, settings: Settings, connection_id: str | None, *, blue_ref: dict[str, Any] | None = None, **_: Any
    ) -> KubernetesPlatform:
        from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook

        if settings.fargate_profiles and settings.fargate_profiles_from:
            raise ValueError("fargate_profiles and fargate_profiles_from: set one, not both")
        blue_conn = (blue_ref or {}).get("connection") or connection_id
        green = KubeAccess(KubernetesHook(conn_id=connection_id).get_conn())
        blue = green if blue_conn == connection_id else KubeAccess(KubernetesHook(conn_id=blue_conn).get_conn())
        return cls(blue, green, settings)

    @classmethod
    def pod_labels(cls, settings: Settings) -> dict[str, str]:
        return dict(settings.add_labels)

    @classmethod
    def pod_connection(cls, connection_id: str | None) -> str | None:
        return connection_id

    @classmethod
    def retires_blue(cls, workload: dict[str, Any]) -> bool:
        return workload["kind"] == "Deployment"

    @classmethod
    def iam_statements(cls, settings: Settings) -> list[Any]:
        from include.slow_injection.aws.iam import Statement, arn

        source = settings.fargate_profiles_from
        if source is None:
            return []
        return [
            Statement(
                ("eks:ListFargateProfiles",),
                (arn("eks", source.region, "*", f"cluster/{source.cluster}"),),
                "read fargate profiles",
            ),
            Statement(
                ("eks:DescribeFargateProfile",),
                (arn("eks", source.region, "*", f"fargateprofile/{source.cluster}/*"),),
                "read fargate profiles",
            ),
        ]

    @classmethod
    def rbac_manifests(cls, namespaces: list[str]) -> list[dict[str, Any]]:
        from include.slow_injection.kubernetes.rbac import manifests

        return manifests(namespaces)

    def describe(self) -> str:
        return "kubernetes"

    def _side(self, env: str) -> KubeAccess:
        return self.green if env == "green" else self.blue

    @staticmethod
    def _where(workload: dict[str, Any], env: str) -> tuple[str, str, str]:
        namespace = (workload.get("green_namespace") if env == "green" else None) or workload["namespace"]
        return workload["kind"], namespace, workload["name"]

    def _blue(self, workload: dict[str, Any]) -> dict[str, Any]:
        kind, namespace, name = self._where(workload, "blue")
        obj = self.blue.get(kind, namespace, name)
        if obj is None:
            raise LookupError(f"blue {kind} {namespace}/{name} does not exist")
        return obj

    def preflight(self, workload: dict[str, Any]) -> list[str]:
        blue = self._blue(workload)
        _, namespace, _ = self._where(workload, "green")
        profiles = self._fargate_profiles()
        green_like = to_green(
            blue,
            namespace,
            self.settings.add_labels,
            self.settings.strip_scheduling,
            self.settings.requests_equal_limits,
        )
        blue_ns = workload["namespace"]
        fronting = self._fronting(workload, blue)
        services = {s["metadata"]["name"] for s in fronting}
        cluster = Cluster(
            pvcs={
                f"{namespace}/{p['metadata']['name']}": p
                for p in self.green.list("CoreV1Api", "list_namespaced_persistent_volume_claim", namespace)
            },
            storage_classes={s["metadata"]["name"]: s for s in self.green.list("StorageV1Api", "list_storage_class")},
            pdbs=self.green.list("PolicyV1Api", "list_namespaced_pod_disruption_budget", namespace),
            profiles=profiles,
            services=fronting,
            ingresses=[
                i
                for i in self.blue.list("NetworkingV1Api", "list_namespaced_ingress", blue_ns)
                if _ingress_backends(i) & services
            ],
        )
        findings = [str(f) for f in check(green_like, cluster, namespace)]
        findings += [
            f"{workload['kind']} {namespace}/{workload['name']}: green lacks {m} [prerequisites]"
            for m in self._missing_prerequisites(workload, green_like)
        ]
        findings += [
            str(f)
            for d in self.blue.list("AppsV1Api", "list_namespaced_daemon_set", blue_ns)
            for f in check(d, cluster, blue_ns)
        ]  # a DaemonSet of the namespace cannot follow it
        refused = self._leases.refused_verbs(blue_ns)
        if refused:
            findings.append(
                f"{workload['kind']} {blue_ns}/{workload['name']}: the connection may not "
                f"{', '.join(refused)} leases (coordination.k8s.io) in {blue_ns}, so runs cannot lease "
                f"the workload (`slow-injection iam` prints the Role that grants it) [rbac]"
            )
        return findings

    # Leases live beside blue's workload (the one a service is known by); the API server makes each
    # call atomic (kubernetes/leases.py).
    @property
    def _leases(self) -> KubeLeases:
        return KubeLeases(self.blue.api_client)

    def acquire_lease(self, workload: dict[str, Any], holder: LeaseHolder) -> LeaseAnswer:
        return self._leases.acquire(workload, holder)

    def take_over_lease(self, workload: dict[str, Any], holder: LeaseHolder, previous: HeldBy) -> LeaseAnswer:
        return self._leases.take_over(workload, holder, previous)

    def release_lease(self, workload: dict[str, Any], holder: LeaseHolder) -> bool:
        return self._leases.release(workload, holder)

    def lease_holder(self, workload: dict[str, Any]) -> HeldBy | None:
        return self._leases.holder(workload)

    def _fronting(self, workload: dict[str, Any], blue: dict[str, Any]) -> list[dict[str, Any]]:
        """Blue's Services that front the workload (listed to copy, or selecting its pods)."""
        from include.slow_injection.kubernetes.drift import selects

        listed = set(workload.get("copy_services") or [])
        return [
            s
            for s in self.blue.list("CoreV1Api", "list_namespaced_service", workload["namespace"])
            if s["metadata"]["name"] in listed or selects(s, blue)
        ]

    def _missing_prerequisites(self, workload: dict[str, Any], green_like: dict[str, Any]) -> list[str]:
        """Read with `get` only (what the generated RBAC grants): the namespace, the pod's ServiceAccount
        and each Secret/ConfigMap it refers to."""
        from kubernetes.client.rest import ApiException

        from include.slow_injection.kubernetes.fargate_fit import Present, irsa_gap, missing_prerequisites, references

        _, namespace, _ = self._where(workload, "green")
        template = pod_template(green_like) or {}
        try:
            self.green._api("CoreV1Api").read_namespace(namespace, _preload_content=False)
        except ApiException as err:
            if err.status == 404:
                return missing_prerequisites(template, Present(namespace, None), False)
            if err.status != 403:  # not allowed to read namespaces: the object checks below still tell
                raise
        account = (template.get("spec") or {}).get("serviceAccountName") or "default"
        green_account = self.green.get("ServiceAccount", namespace, account)
        secrets, config_maps = references(template.get("spec") or {})
        present = Present(
            namespace,
            {account: green_account} if green_account else {},
            {n for n in secrets if self.green.get("Secret", namespace, n) is not None},
            {n for n in config_maps if self.green.get("ConfigMap", namespace, n) is not None},
        )
        missing = missing_prerequisites(template, present, bool(workload.get("copy_config_maps")))
        gap = irsa_gap(self.blue.get("ServiceAccount", workload["namespace"], account), green_account)
        return missing + ([gap] if gap else [])

    def _fargate_profiles(self) -> list[FargateProfile] | None:
        if self.settings.fargate_profiles is not None:
            return [FargateProfile.from_eks(p.model_dump()) for p in self.settings.fargate_profiles]
        source = self.settings.fargate_profiles_from
        if source is None:
            return None
        from airflow.providers.amazon.aws.hooks.eks import EksHook

        try:
            eks = EksHook(aws_conn_id=source.aws_connection, region_name=source.region).conn
            pages = eks.get_paginator("list_fargate_profiles").paginate(clusterName=source.cluster)
            names = [name for page in pages for name in page.get("fargateProfileNames", [])]
            return [
                FargateProfile.from_eks(
                    eks.describe_fargate_profile(clusterName=source.cluster, fargateProfileName=n)["fargateProfile"]
                )
                for n in names
            ]
        except Exception as err:
            raise LookupError(
                f"fargate_profiles_from: could not read the Fargate profiles of EKS cluster "
                f"{source.cluster!r} through connection {source.aws_connection!r}: {err}"
            ) from err

    def deploy_green(self, workload: dict[str, Any], apply: bool) -> list[Change]:
        """Companions first, then the workload; refused, before any write, while green lacks what the
        pod needs and the spec does not copy (its namespace, ServiceAccount, Secrets, ConfigMaps)."""
        blue = self._blue(workload)
        _, namespace, _ = self._where(workload, "green")
        green_like = to_green(
            blue,
            namespace,
            self.settings.add_labels,
            self.settings.strip_scheduling,
            self.settings.requests_equal_limits,
        )
        missing = self._missing_prerequisites(workload, green_like)
        if missing and apply:
            raise LookupError(
                f"green is not ready for {workload['kind']} {namespace}/{workload['name']}; "
                f"create these first (nothing was changed): " + "; ".join(missing)
            )
        changes = self._copy_companions(workload, blue, apply)
        return changes + self._converge_workload(workload, blue, apply)

    def _copy_companions(self, workload: dict[str, Any], blue: dict[str, Any], apply: bool) -> list[Change]:
        """ConfigMaps the pod template names and the Services the spec lists, copied before the workload."""
        _, blue_ns, _ = self._where(workload, "blue")
        _, green_ns, _ = self._where(workload, "green")
        wanted = [("Service", n) for n in workload.get("copy_services") or []]
        if workload.get("copy_config_maps"):
            template = pod_template(blue) or {}
            wanted += [("ConfigMap", n) for n in config_maps_named(template.get("spec") or {})]
        changes = []
        for kind, name in wanted:
            source = self.blue.get(kind, blue_ns, name)
            if source is None:
                raise LookupError(
                    f"blue {kind} {blue_ns}/{name} does not exist "
                    f"(named by {workload['kind']} {blue_ns}/{workload['name']})"
                )
            changes += self._converge(kind, green_ns, _companion_copy(source, green_ns), apply, "same as blue")
        return changes

    def _converge_workload(self, workload: dict[str, Any], blue: dict[str, Any], apply: bool) -> list[Change]:
        kind, namespace, name = self._where(workload, "green")
        desired = to_green(
            blue,
            namespace,
            self.settings.add_labels,
            self.settings.strip_scheduling,
            self.settings.requests_equal_limits,
        )
        if kind == "Deployment":  # blue's size, or the size it had before it was retired
            retired_from = ((blue.get("metadata") or {}).get("annotations") or {}).get(RETIRED_FROM)
            desired["spec"]["replicas"] = (
                int(retired_from) if retired_from else (blue.get("spec") or {}).get("replicas", 1)
            )
        if kind == "CronJob":  # created suspended: never runs in both until the handover, which owns it after
            current = self.green.get(kind, namespace, name)
            desired["spec"]["suspend"] = True if current is None else bool((current.get("spec") or {}).get("suspend"))
        return self._converge(kind, namespace, desired, apply, None)

    def _converge(
        self, kind: str, namespace: str, desired: dict[str, Any], apply: bool, after: str | None, attempts: int = 5
    ) -> list[Change]:
        """Make green's object exactly `desired`: create it, or replace it whole (a patch would keep list
        entries blue dropped). A dry-run replace tells whether anything would change, defaults included.
        A controller writing the object meanwhile (409) means: read it again and decide again."""
        from kubernetes.client.rest import ApiException

        for attempt in range(attempts):
            try:
                return self._converge_once(kind, namespace, desired, apply, after)
            except ApiException as err:
                if err.status != 409 or attempt == attempts - 1:
                    raise
        return []

    def _converge_once(
        self, kind: str, namespace: str, desired: dict[str, Any], apply: bool, after: str | None
    ) -> list[Change]:
        name = desired["metadata"]["name"]
        target = f"green {kind} {namespace}/{name}"
        current = self.green.get(kind, namespace, name)
        if current is None:
            if apply:
                self.green.create(kind, namespace, desired)
            return [Change(target, "absent", after or _summary(desired), apply)]
        body = _keeping_server_fields(desired, current)
        if _selector(body) != _selector(current):  # immutable: only a new object can change it
            if apply:
                self.green.delete(kind, namespace, name)
                _wait_gone(self.green, kind, namespace, name)
                self.green.create(kind, namespace, desired)
            return [
                Change(target, f"selector {_selector(current)}", f"recreated with selector {_selector(body)}", apply)
            ]
        preview = self.green.replace(kind, namespace, name, body, dry_run=True)
        if _owned(preview) == _owned(current):
            return []
        if apply:
            self.green.replace(kind, namespace, name, body)
        return [Change(target, _summary(current) if after is None else "drifted", after or _summary(preview), apply)]

    def _suspend(
        self, access: KubeAccess, env: str, workload: dict[str, Any], value: bool, apply: bool
    ) -> list[Change]:
        kind, namespace, name = self._where(workload, env)
        current = access.get(kind, namespace, name)
        if current is None or bool((current.get("spec") or {}).get("suspend")) == value:
            return []
        if apply:
            access.patch(kind, namespace, name, {"spec": {"suspend": value}})
        return [Change(f"{env} {kind} {namespace}/{name}", f"suspend={not value}", f"suspend={value}", apply)]

    def activate(self, workload: dict[str, Any], env: str, apply: bool) -> list[Change]:
        """Run the CronJob in `env` only: suspend the other side first (not while a tick's Job and its status
        write may be in flight), let a tick that raced that suspend land, write the newest time the other
        side ran into its own status (its Jobs may vanish before a retry), refuse while its Jobs run, carry
        that time over (so this side's controller does not run it again), then unsuspend. The caller waits
        for a safe moment first (kubernetes/handover.py); this stays exactly-once without one."""
        if workload["kind"] != "CronJob":
            return []
        other = "blue" if env == "green" else "green"
        access = {e: self._side(e) for e in ("blue", "green")}
        kind, env_ns, name = self._where(workload, env)
        current = access[env].get(kind, env_ns, name)
        if current is None and not apply:  # dry-run: the copy it would hand over to is not made either
            return [Change(f"{env} {kind} {env_ns}/{name}", "absent", "suspend=False", apply)]
        if current is None:
            raise LookupError(f"{env} {kind} {env_ns}/{name} does not exist")
        if not (current.get("spec") or {}).get("suspend"):
            return self._suspend(access[other], other, workload, True, apply)  # already active here
        _, other_ns, _ = self._where(workload, other)
        source = access[other].get(kind, other_ns, name) or {}
        if apply and source and not (source.get("spec") or {}).get("suspend"):
            self._let_racing_tick_land(source)  # never suspend between a tick's Job and its status write
        changes = self._suspend(access[other], other, workload, True, apply)
        if apply and source:
            self._let_racing_tick_land(source)
            source = access[other].get(kind, other_ns, name) or {}
        jobs = self._jobs_of(access[other], other_ns, name, 0.0)
        if apply and source:  # the other side's own record first: a refused try's Job may be gone at the retry
            changes += self._carry_last_schedule(source, jobs, access[other], other, workload, apply)
        running = sorted(
            {a.get("name", "?") for a in (source.get("status") or {}).get("active") or []}
            | {j["metadata"]["name"] for j in jobs if _job_outcome(j) is None}
        )
        if running and apply:
            raise JobStillActive(
                f"{other} Job {', '.join(running)} of {kind} "
                f"{other_ns}/{name} is still running; {env} stays suspended until it ends"
            )
        changes += self._carry_last_schedule(source, jobs, access[env], env, workload, apply)
        if apply:
            access[env].patch(
                kind,
                env_ns,
                name,
                {"metadata": {"annotations": {ACTIVE_SINCE: to_rfc3339(self.now())}}, "spec": {"suspend": False}},
            )
        return changes + [Change(f"{env} {kind} {env_ns}/{name}", "suspend=True", "suspend=False", apply)]

    def _let_racing_tick_land(self, cronjob: dict[str, Any]) -> None:
        """Wait until a tick within SETTLE of now is SETTLE behind us. Before a suspend: the controller
        creates the tick's Job, then names it in status.lastScheduleTime in a second write, which a suspend
        landing between the two makes fail (and a Job finished and deleted at once, ttlSecondsAfterFinished:
        0, leaves no trace then). After one: a controller acting on its cache may still start that tick's
        Job; the Jobs read next include it."""
        import datetime as dt
        import time

        spec = cronjob.get("spec") or {}
        now = self.now()
        tick = next_run(spec["schedule"], now - dt.timedelta(seconds=SETTLE), spec.get("timeZone"))
        wait = (tick + dt.timedelta(seconds=SETTLE) - now).total_seconds()
        if tick <= now + dt.timedelta(seconds=SETTLE) and wait > 0:
            time.sleep(wait)

    def _carry_last_schedule(
        self,
        source: dict[str, Any],
        jobs: list[dict[str, Any]],
        target: KubeAccess,
        target_env: str,
        workload: dict[str, Any],
        apply: bool,
    ) -> list[Change]:
        """The newest scheduled time the other side ran: its status, or its Jobs' scheduled-timestamp
        annotation (the controller writes status in a second request, which a suspend can make fail).
        With `target` the source itself, this repairs that lost write, so the time outlives the Job
        (ttlSecondsAfterFinished, history limits): neither side runs it again later."""
        kind, target_ns, name = self._where(workload, target_env)
        times = [
            t
            for t in [(source.get("status") or {}).get("lastScheduleTime")]
            + [(j["metadata"].get("annotations") or {}).get(SCHEDULED_AT) for j in jobs]
            if t
        ]
        current = target.get(kind, target_ns, name)
        if not times or current is None:
            return []
        theirs = to_rfc3339(max(from_rfc3339(t) for t in times))
        ours = (current.get("status") or {}).get("lastScheduleTime")
        if ours is not None and from_rfc3339(ours) >= from_rfc3339(theirs):
            return []
        if apply:
            target.patch_status(kind, target_ns, name, {"status": {"lastScheduleTime": theirs}})
        return [
            Change(
                f"{target_env} {kind} {target_ns}/{name}",
                f"lastScheduleTime={ours}",
                f"lastScheduleTime={theirs}",
                apply,
            )
        ]

    def restore_blue(self, workload: dict[str, Any], apply: bool) -> list[Change]:
        if workload["kind"] == "CronJob":  # green starts no new run; blue resumes via activate once idle
            kind, namespace, name = self._where(workload, "green")
            green = self.green.get(kind, namespace, name) if apply else None
            if green and not (green.get("spec") or {}).get("suspend"):
                self._let_racing_tick_land(green)  # never suspend between a tick's Job and its status write
            changes = self._suspend(self.green, "green", workload, True, apply)
            if green:  # a Job that raced the suspend is named in green's own status before it can vanish
                self._let_racing_tick_land(green)
                green = self.green.get(kind, namespace, name) or green
                changes += self._carry_last_schedule(
                    green, self._jobs_of(self.green, namespace, name, 0.0), self.green, "green", workload, apply
                )
            return changes
        blue = self._blue(workload)
        kind, namespace, name = self._where(workload, "blue")
        retired_from = ((blue.get("metadata") or {}).get("annotations") or {}).get(RETIRED_FROM)
        replicas = (blue.get("spec") or {}).get("replicas", 0)
        if retired_from is None or replicas == int(retired_from):
            return []
        if apply:
            self.blue.patch(kind, namespace, name, {"spec": {"replicas": int(retired_from)}})
        return [Change(f"blue {kind} {namespace}/{name}", f"replicas={replicas}", f"replicas={retired_from}", apply)]

    def rollout(self, workload: dict[str, Any]) -> Readiness:
        kind, namespace, name = self._where(workload, "green")
        green = self.green.get(kind, namespace, name)
        if green is None:
            return Readiness("waiting", f"green {kind} {namespace}/{name} does not exist yet")
        if kind != "Deployment":
            return Readiness("ready", f"green {kind} {namespace}/{name} exists")
        state = rollout_state(green)
        return Readiness({READY: "ready", FAILED: "failed"}.get(state.state, "waiting"), state.detail)

    def handover_moment(self, workload: dict[str, Any], margin: float) -> Readiness:
        import datetime as dt

        blue = self._blue(workload)
        _, namespace, name = self._where(workload, "blue")
        running = [
            j["metadata"]["name"] for j in self._jobs_of(self.blue, namespace, name, 0.0) if _job_outcome(j) is None
        ]
        if running:  # the CronJob's status.active can lag its Jobs
            return Readiness("waiting", f"blue Job {', '.join(running)} still running")
        moment = safe_moment(blue, self.now(), dt.timedelta(seconds=margin))
        return Readiness("ready" if moment.safe else "waiting", moment.reason)

    def first_run(self, workload: dict[str, Any], env: str, since: float) -> Readiness:
        """Green's first Job after `since`: ready when it completed, failed when it failed or its
        scheduled time passed startingDeadlineSeconds (plus a minute) without a Job."""
        import datetime as dt

        access = self._side(env)
        kind, namespace, name = self._where(workload, env)
        cronjob = access.get(kind, namespace, name)
        if cronjob is None:
            return Readiness("failed", f"{env} {kind} {namespace}/{name} does not exist")
        activated = ((cronjob.get("metadata") or {}).get("annotations") or {}).get(ACTIVE_SINCE)
        if activated:  # a cleared-and-rerun gate still sees the runs since the handover
            since = min(since, from_rfc3339(activated).timestamp())
        if (cronjob.get("status") or {}).get("lastSuccessfulTime", "") >= to_rfc3339(since) and not self._jobs_seen(
            env, access, namespace, name, since
        ):
            return Readiness("ready", "a Job succeeded (already removed by its TTL or history limit)")
        for job in self._jobs_seen(env, access, namespace, name, since):
            outcome = _job_outcome(job)
            if outcome == "Complete":
                return Readiness("ready", f"Job {job['metadata']['name']} succeeded")
            if outcome == "Failed":
                return Readiness("failed", f"Job {job['metadata']['name']} failed")
            return Readiness("waiting", f"Job {job['metadata']['name']} is running")
        spec = cronjob.get("spec") or {}
        due = next_run(spec["schedule"], dt.datetime.fromtimestamp(since, dt.UTC), spec.get("timeZone"))
        late = (self.now() - due).total_seconds()
        if late > (spec.get("startingDeadlineSeconds") or 0) + 60:
            return Readiness("failed", f"the run due at {due:%H:%M:%S} did not start (missed)")
        return Readiness("waiting", f"next run due at {due:%H:%M:%S}")

    def retire_blue(self, workload: dict[str, Any], apply: bool) -> list[Change]:
        if workload["kind"] != "Deployment":
            return []
        blue = self._blue(workload)
        kind, namespace, name = self._where(workload, "blue")
        replicas = (blue.get("spec") or {}).get("replicas", 0)
        if replicas == 0:
            return []
        if apply:
            self.blue.patch(
                kind,
                namespace,
                name,
                {"metadata": {"annotations": {RETIRED_FROM: str(replicas)}}, "spec": {"replicas": 0}},
            )
        return [Change(f"blue {kind} {namespace}/{name}", f"replicas={replicas}", "replicas=0", apply)]

    @staticmethod
    def _jobs_of(access: KubeAccess, namespace: str, cronjob: str, since: float) -> list[dict[str, Any]]:
        """The CronJob's Jobs created at or after `since`, oldest first."""
        started = to_rfc3339(since)
        jobs = [
            j
            for j in access.list("BatchV1Api", "list_namespaced_job", namespace)
            if any(
                o.get("kind") == "CronJob" and o.get("name") == cronjob
                for o in (j["metadata"].get("ownerReferences") or [])
            )
            and j["metadata"].get("creationTimestamp", "") >= started
        ]
        return sorted(jobs, key=lambda j: j["metadata"].get("creationTimestamp", ""))

    def _jobs_seen(
        self, env: str, access: KubeAccess, namespace: str, cronjob: str, since: float
    ) -> list[dict[str, Any]]:
        """The CronJob's Jobs since `since`, including those this driver saw earlier in the watch that
        ttlSecondsAfterFinished or the history limits have deleted since (last state seen), oldest first."""
        seen = self._seen.setdefault((env, namespace, cronjob, since), {})
        for job in self._jobs_of(access, namespace, cronjob, since):
            seen[job["metadata"]["name"]] = job
        return sorted(seen.values(), key=lambda j: j["metadata"].get("creationTimestamp", ""))

    def watch_jobs(self, workload: dict[str, Any], env: str, since: float, limits: dict[str, Any]) -> Readiness:
        access = self._side(env)
        kind, namespace, name = self._where(workload, env)
        if kind != "CronJob":
            return Readiness("failed", f"{kind} {namespace}/{name} runs no Jobs to watch")
        jobs = self._jobs_seen(env, access, namespace, name, since)
        now = self.now()
        runs, floor = int(limits.get("runs", 1)), float(limits.get("min_success_rate", 1.0))
        longest, succeeded, finished = 0.0, 0, 0
        for job in jobs:
            status = job.get("status") or {}
            outcome = _job_outcome(job)
            if status.get("startTime"):
                end = from_rfc3339(status["completionTime"]) if status.get("completionTime") else now
                longest = max(longest, (end - from_rfc3339(status["startTime"])).total_seconds())
            if outcome is not None:
                finished += 1
                succeeded += outcome == "Complete"
        names = ",".join(j["metadata"]["name"] for j in jobs)
        pods = (
            access.list("CoreV1Api", "list_namespaced_pod", namespace, label_selector=f"job-name in ({names})")
            if jobs
            else []
        )
        restarts = sum(
            c.get("restartCount", 0) for pod in pods for c in (pod.get("status") or {}).get("containerStatuses") or []
        )
        seen = f"{finished} finished run(s) ({succeeded} succeeded) on {env} since the watch began"
        best_rate = (succeeded + max(runs - finished, 0)) / max(runs, finished)
        if best_rate < floor:
            return Readiness("failed", f"{seen}: success rate cannot reach {floor:g}")
        if limits.get("max_duration") is not None and longest > float(limits["max_duration"]):
            return Readiness("failed", f"{seen}: a run took {longest:.0f}s, over {float(limits['max_duration']):g}s")
        if restarts > int(limits.get("max_pod_restarts", 0)):
            return Readiness("failed", f"{seen}: {restarts} pod restart(s), over {limits.get('max_pod_restarts', 0)}")
        if finished >= runs:
            return Readiness("ready", f"{seen}, within limits")
        return Readiness("waiting", f"{seen}; watching for {runs}")

    def watch_pods(self, workload: dict[str, Any], env: str, since: float, limits: dict[str, Any]) -> Readiness:
        access = self._side(env)
        kind, namespace, name = self._where(workload, env)
        obj = access.get(kind, namespace, name)
        if obj is None:
            return Readiness("waiting", f"{env} {kind} {namespace}/{name} does not exist")
        labels = (pod_template(obj) or {}).get("metadata", {}).get("labels") or {}
        if kind == "Deployment":
            labels = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or labels
        selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
        pods = access.list("CoreV1Api", "list_namespaced_pod", namespace, label_selector=selector) if selector else []
        if not pods:
            return Readiness("waiting", f"no pods of {env} {kind} {namespace}/{name} to watch")
        started = to_rfc3339(since)
        restarted = sorted(
            pod["metadata"]["name"]
            for pod in pods
            for c in (pod.get("status") or {}).get("containerStatuses") or []
            if ((c.get("lastState") or {}).get("terminated") or {}).get("finishedAt", "") >= started
        )
        most = int(limits.get("max_restarts", 0))
        if len(restarted) > most:
            return Readiness(
                "failed",
                f"{len(restarted)} container restart(s) on {env} since the watch began "
                f"({', '.join(restarted[:5])}), over {most}",
            )
        window = float(limits.get("window", 0))
        if self.now().timestamp() - since >= window:
            return Readiness("ready", f"{len(pods)} pod(s) of {env} {kind} {namespace}/{name} stable for {window:g}s")
        return Readiness("waiting", f"{len(pods)} pod(s) stable so far")

    def config_drift(self, workload: dict[str, Any]) -> Readiness:
        """Blue's and green's live objects compared (kubernetes/drift.py); Secrets are read here and
        only their hashes leave the comparison."""
        from include.slow_injection.kubernetes.drift import Declared, Transforms, compare

        kind, green_ns, name = self._where(workload, "green")
        green = self.green.get(kind, green_ns, name)
        if green is None:
            return Readiness("waiting", f"green {kind} {green_ns}/{name} does not exist yet")
        blue = self._blue(workload)
        _, blue_ns, _ = self._where(workload, "blue")
        blue_services = {
            s["metadata"]["name"]: s for s in self.blue.list("CoreV1Api", "list_namespaced_service", blue_ns)
        }
        green_services = {
            s["metadata"]["name"]: s for s in self.green.list("CoreV1Api", "list_namespaced_service", green_ns)
        }
        services = sorted(
            set(workload.get("copy_services") or [])
            | _selecting(blue_services, blue)
            | _selecting(green_services, green)
        )
        sides = [
            _drift_side(access, ns, obj, {n: found.get(n) for n in services})
            for access, ns, obj, found in (
                (self.blue, blue_ns, blue, blue_services),
                (self.green, green_ns, green, green_services),
            )
        ]
        transforms = Transforms(
            green_ns, self.settings.add_labels, self.settings.strip_scheduling, self.settings.requests_equal_limits
        )
        found_diffs = compare(sides[0], sides[1], transforms, Declared.of(workload))
        where = f"blue {kind} {blue_ns}/{name} and green {green_ns}/{name}"
        if found_diffs:
            return Readiness(
                "failed",
                f"{len(found_diffs)} difference(s) the spec did not declare between {where}: "
                + "; ".join(str(d) for d in found_diffs),
            )
        compared = [
            f"{len(sides[0].config_maps)} ConfigMap(s)",
            f"{len(sides[0].secrets)} Secret(s)",
            f"{len(services)} Service(s)",
        ]
        return Readiness("ready", f"no undeclared difference between {where} (containers, env, {', '.join(compared)})")

    def capacity(self, workload: dict[str, Any]) -> list[dict[str, Any]]:
        """Green's pods (a CronJob's: those of its last CAPACITY_JOBS Jobs) as right-sizing facts. Read-only."""
        kind, namespace, name = self._where(workload, "green")
        obj = self.green.get(kind, namespace, name)
        if obj is None:
            raise LookupError(f"green {kind} {namespace}/{name} does not exist")
        if kind == "CronJob":
            jobs = self._jobs_of(self.green, namespace, name, 0.0)[-CAPACITY_JOBS:]
            selector = f"job-name in ({','.join(j['metadata']['name'] for j in jobs)})" if jobs else ""
        else:  # the green template's labels (with add_labels): never blue's pods in a shared namespace
            labels = (pod_template(obj) or {}).get("metadata", {}).get("labels") or {}
            selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
        pods = (
            self.green.list("CoreV1Api", "list_namespaced_pod", namespace, label_selector=selector) if selector else []
        )
        return [pod_facts(p) for p in pods]


def _selecting(services: dict[str, dict[str, Any]], workload: dict[str, Any]) -> set[str]:
    from include.slow_injection.kubernetes.drift import selects

    return {name for name, svc in services.items() if selects(svc, workload)}


def _drift_side(access: KubeAccess, namespace: str, obj: dict[str, Any], services: dict[str, Any]) -> Any:
    """One side's objects for the drift comparison: the ConfigMaps and Secrets its env refers to."""
    from include.slow_injection.kubernetes.drift import Side, references

    config_maps, secrets = references(obj)
    return Side(
        obj,
        {n: access.get("ConfigMap", namespace, n) for n in config_maps},
        {n: access.get("Secret", namespace, n) for n in secrets},
        services,
    )


def config_maps_named(pod_spec: dict[str, Any]) -> list[str]:
    """ConfigMaps a pod spec refers to: env valueFrom, envFrom, volumes (incl. projected)."""
    from include.slow_injection.kubernetes.fargate_fit import references

    return sorted(references(pod_spec)[1])


def _companion_copy(source: dict[str, Any], namespace: str) -> dict[str, Any]:
    """A ConfigMap's or Service's copy for green: labels and annotations (the AWS Load Balancer Controller
    reads its settings there) kept; a Service's allocated addresses left to green's API server, except a
    headless Service's `clusterIP: None`, which is its meaning."""
    meta = source.get("metadata") or {}
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k not in DROPPED_ANNOTATIONS}
    out = {
        "apiVersion": source.get("apiVersion"),
        "kind": source.get("kind"),
        "metadata": {
            "name": meta["name"],
            "namespace": namespace,
            "labels": dict(meta.get("labels") or {}),
            **({"annotations": annotations} if annotations else {}),
        },
    }
    for key in ("data", "binaryData"):
        if key in source:
            out[key] = source[key]
    if source.get("kind") == "Service":
        spec = {
            k: v
            for k, v in (source.get("spec") or {}).items()
            if k not in _SERVER_FIELDS or (k == "clusterIP" and v == "None")
        }
        if spec.get("clusterIP") == "None":
            spec["clusterIPs"] = ["None"]
        spec["ports"] = [{k: v for k, v in p.items() if k != "nodePort"} for p in spec.get("ports") or []]
        out["spec"] = spec
    return out


def _ingress_backends(ingress: dict[str, Any]) -> set[str]:
    spec = ingress.get("spec") or {}
    backends = [spec.get("defaultBackend") or {}] + [
        p.get("backend") or {} for r in spec.get("rules") or [] for p in (r.get("http") or {}).get("paths") or []
    ]
    return {name for b in backends if (name := (b.get("service") or {}).get("name")) is not None}


def _job_outcome(job: dict[str, Any]) -> str | None:
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("status") == "True" and condition.get("type") in ("Complete", "Failed"):
            return condition["type"]
    return None


def _summary(obj: dict[str, Any]) -> str:
    spec = obj.get("spec") or {}
    if "replicas" in spec:
        return f"replicas={spec['replicas']}"
    if "suspend" in spec:
        return f"suspend={spec['suspend']}"
    return "present"


# Annotations others write on green's objects that a converge keeps (controllers', and our own markers).
KEPT_ANNOTATIONS = ("deployment.kubernetes.io/revision",)
KEPT_PREFIXES = ("slow-injection.io/",)
SERVICE_ALLOCATED = ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy", "healthCheckNodePort")


def _keeping_server_fields(desired: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    """`desired` as a whole-object PUT: the live resourceVersion, and what the server or others own kept."""
    body = copy.deepcopy(desired)
    meta, live = body.setdefault("metadata", {}), current.get("metadata") or {}
    meta["resourceVersion"] = live.get("resourceVersion")
    kept = {
        k: v for k, v in (live.get("annotations") or {}).items() if k in KEPT_ANNOTATIONS or k.startswith(KEPT_PREFIXES)
    }
    if kept or meta.get("annotations"):
        meta["annotations"] = {**kept, **(meta.get("annotations") or {})}
    if body.get("kind") == "Service":
        spec, live_spec = body.setdefault("spec", {}), current.get("spec") or {}
        for key in SERVICE_ALLOCATED:
            if key in live_spec and spec.get(key) in (None, ""):
                spec[key] = live_spec[key]
        live_ports = {(p.get("port"), p.get("protocol", "TCP")): p for p in live_spec.get("ports") or []}
        for port in spec.get("ports") or []:
            node_port = live_ports.get((port.get("port"), port.get("protocol", "TCP")), {}).get("nodePort")
            if node_port and "nodePort" not in port and spec.get("type") in ("NodePort", "LoadBalancer"):
                port["nodePort"] = node_port
    return body


def _owned(obj: dict[str, Any]) -> dict[str, Any]:
    """What a converge decides: labels, annotations, spec and data (not status or server bookkeeping)."""
    meta = obj.get("metadata") or {}
    return {
        "labels": meta.get("labels") or {},
        "annotations": meta.get("annotations") or {},
        **{k: obj.get(k) for k in ("spec", "data", "binaryData")},
    }


def _selector(obj: dict[str, Any]) -> Any:
    return (obj.get("spec") or {}).get("selector") if obj.get("kind") in ("Deployment",) else None


def _wait_gone(access: KubeAccess, kind: str, namespace: str, name: str, timeout: float = 60.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while access.get(kind, namespace, name) is not None:
        if time.monotonic() > deadline:
            raise TimeoutError(f"green {kind} {namespace}/{name} still exists {timeout:g}s after its delete")
        time.sleep(0.2)
