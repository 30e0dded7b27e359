"""Kubernetes platform driver (blue and green clusters, or two namespaces of one): copy workloads to
green with the Fargate transforms, converge them, hand CronJobs over, retire and restore blue.

NOT registered yet: the CronJob handover here only orders the suspends (blue first); waiting for a
moment with no active Job and a safety margin before the next schedule — what makes it exactly-once —
is still to do (issue 4). Clients come from the cncf-kubernetes provider's KubernetesHook.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from include.slow_injection.kubernetes.fargate_profiles import FargateProfile
from include.slow_injection.kubernetes.handover import carry_over_status, next_run, safe_moment
from include.slow_injection.kubernetes.rollout import FAILED, READY, rollout_state
from include.slow_injection.kubernetes.preflight import Cluster, check
from include.slow_injection.kubernetes.transforms import is_subset, to_green
from include.slow_injection.ports import Change, Readiness

RETIRED_FROM = "slow-injection.io/retired-from-replicas"
_API = {  # kind → (client class, snake-case name in its methods)
    "Deployment": ("AppsV1Api", "deployment"),
    "CronJob": ("BatchV1Api", "cron_job"),
}


class ProfileSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    name: str
    selectors: list[dict[str, Any]] = Field(min_length=1)


class KubeAccess:
    """Dict-in, dict-out access to one cluster through the official client."""

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
        return json.loads(self._method(kind, "create")(namespace, body, _preload_content=False).data)

    def patch(self, kind: str, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        return json.loads(self._method(kind, "patch")(name, namespace, body, _preload_content=False).data)

    def patch_status(self, kind: str, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        api_name, snake = _API[kind]
        call = getattr(self._api(api_name), f"patch_namespaced_{snake}_status")
        return json.loads(call(name, namespace, body, _preload_content=False).data)

    def list(self, api_name: str, method: str, namespace: str | None = None) -> list[dict[str, Any]]:
        call = getattr(self._api(api_name), method)
        response = call(namespace, _preload_content=False) if namespace else call(_preload_content=False)
        return json.loads(response.data).get("items", [])


class KubernetesPlatform:
    port = "platform"

    class Settings(BaseModel):
        model_config = ConfigDict(extra="forbid", strict=True)
        add_labels: dict[str, str] = Field(default_factory=dict, description="green labels, e.g. to pick a Fargate profile")
        strip_scheduling: bool = True
        requests_equal_limits: bool = True
        fargate_profiles: list[ProfileSpec] | None = None

    def __init__(self, blue: KubeAccess, green: KubeAccess, settings: Settings) -> None:
        self.blue, self.green, self.settings = blue, green, settings

    @classmethod
    def from_spec(cls, settings: Settings, connection_id: str | None, *, blue_ref: dict[str, Any] | None = None,
                  **_: Any) -> KubernetesPlatform:
        from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook

        blue_conn = (blue_ref or {}).get("connection") or connection_id
        return cls(KubeAccess(KubernetesHook(conn_id=blue_conn).get_conn()),
                   KubeAccess(KubernetesHook(conn_id=connection_id).get_conn()), settings)

    def describe(self) -> str:
        return "kubernetes"

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
        profiles = None
        if self.settings.fargate_profiles is not None:
            profiles = [FargateProfile.from_eks(p.model_dump()) for p in self.settings.fargate_profiles]
        green_like = to_green(blue, namespace, self.settings.add_labels, self.settings.strip_scheduling,
                              self.settings.requests_equal_limits)
        cluster = Cluster(
            pvcs={f"{namespace}/{p['metadata']['name']}": p
                  for p in self.green.list("CoreV1Api", "list_namespaced_persistent_volume_claim", namespace)},
            storage_classes={s["metadata"]["name"]: s for s in self.green.list("StorageV1Api", "list_storage_class")},
            pdbs=self.green.list("PolicyV1Api", "list_namespaced_pod_disruption_budget", namespace),
            profiles=profiles,
        )
        return [str(f) for f in check(green_like, cluster, namespace)]

    def deploy_green(self, workload: dict[str, Any], apply: bool) -> list[Change]:
        blue = self._blue(workload)
        kind, namespace, name = self._where(workload, "green")
        desired = to_green(blue, namespace, self.settings.add_labels, self.settings.strip_scheduling,
                           self.settings.requests_equal_limits)
        current = self.green.get(kind, namespace, name)
        target = f"green {kind} {namespace}/{name}"
        if kind == "Deployment":
            desired["spec"]["replicas"] = (blue.get("spec") or {}).get("replicas", 1)
        if current is None:
            if kind == "CronJob":
                desired["spec"]["suspend"] = True  # never runs in both until the handover
            if apply:
                self.green.create(kind, namespace, desired)
            return [Change(target, "absent", _summary(desired), apply)]
        if kind == "CronJob":
            desired["spec"].pop("suspend", None)  # the handover owns it
        wanted = {"metadata": {"labels": desired["metadata"]["labels"]}, "spec": desired["spec"]}
        if is_subset(wanted, current):
            return []
        if apply:
            self.green.patch(kind, namespace, name, wanted)
        return [Change(target, _summary(current), _summary({**current, **wanted}), apply)]

    def _suspend(self, access: KubeAccess, env: str, workload: dict[str, Any], value: bool,
                 apply: bool) -> list[Change]:
        kind, namespace, name = self._where(workload, env)
        current = access.get(kind, namespace, name)
        if current is None or bool((current.get("spec") or {}).get("suspend")) == value:
            return []
        if apply:
            access.patch(kind, namespace, name, {"spec": {"suspend": value}})
        return [Change(f"{env} {kind} {namespace}/{name}", f"suspend={not value}", f"suspend={value}", apply)]

    def activate(self, workload: dict[str, Any], env: str, apply: bool) -> list[Change]:
        """Run the CronJob in `env` only: suspend the other side first, carry its lastScheduleTime
        over (so the controller does not re-run a time the other side ran), then unsuspend.
        The caller waits for a safe moment first (kubernetes/handover.py)."""
        if workload["kind"] != "CronJob":
            return []
        other = "blue" if env == "green" else "green"
        access = {"blue": self.blue, "green": self.green}
        changes = self._suspend(access[other], other, workload, True, apply)
        changes += self._carry_last_schedule(access[other], other, access[env], env, workload, apply)
        return changes + self._suspend(access[env], env, workload, False, apply)

    def _carry_last_schedule(self, source: KubeAccess, source_env: str, target: KubeAccess, target_env: str,
                             workload: dict[str, Any], apply: bool) -> list[Change]:
        kind, source_ns, name = self._where(workload, source_env)
        _, target_ns, _ = self._where(workload, target_env)
        carry = carry_over_status(source.get(kind, source_ns, name) or {})
        current = target.get(kind, target_ns, name)
        if carry is None or current is None:
            return []
        theirs = carry["status"]["lastScheduleTime"]
        ours = (current.get("status") or {}).get("lastScheduleTime")
        if ours is not None and ours >= theirs:  # RFC 3339 UTC strings order like times
            return []
        if apply:
            target.patch_status(kind, target_ns, name, carry)
        return [Change(f"{target_env} {kind} {target_ns}/{name}", f"lastScheduleTime={ours}",
                       f"lastScheduleTime={theirs}", apply)]

    def restore_blue(self, workload: dict[str, Any], apply: bool) -> list[Change]:
        if workload["kind"] == "CronJob":
            return self.activate(workload, "blue", apply)
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

        moment = safe_moment(self._blue(workload), dt.datetime.now(dt.timezone.utc), dt.timedelta(seconds=margin))
        return Readiness("ready" if moment.safe else "waiting", moment.reason)

    def first_run(self, workload: dict[str, Any], env: str, since: float) -> Readiness:
        """Green's first Job after `since`: ready when it completed, failed when it failed or its
        scheduled time passed startingDeadlineSeconds (plus a minute) without a Job."""
        import datetime as dt

        access = self.green if env == "green" else self.blue
        kind, namespace, name = self._where(workload, env)
        cronjob = access.get(kind, namespace, name)
        if cronjob is None:
            return Readiness("failed", f"{env} {kind} {namespace}/{name} does not exist")
        started = dt.datetime.fromtimestamp(since, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        jobs = [j for j in access.list("BatchV1Api", "list_namespaced_job", namespace)
                if any(o.get("name") == name for o in (j["metadata"].get("ownerReferences") or []))
                and j["metadata"].get("creationTimestamp", "") >= started]
        for job in sorted(jobs, key=lambda j: j["metadata"]["creationTimestamp"]):
            outcome = _job_outcome(job)
            if outcome == "Complete":
                return Readiness("ready", f"Job {job['metadata']['name']} succeeded")
            if outcome == "Failed":
                return Readiness("failed", f"Job {job['metadata']['name']} failed")
            return Readiness("waiting", f"Job {job['metadata']['name']} is running")
        spec = cronjob.get("spec") or {}
        due = next_run(spec["schedule"], dt.datetime.fromtimestamp(since, dt.timezone.utc), spec.get("timeZone"))
        late = (dt.datetime.now(dt.timezone.utc) - due).total_seconds()
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
            self.blue.patch(kind, namespace, name, {"metadata": {"annotations": {RETIRED_FROM: str(replicas)}},
                                                    "spec": {"replicas": 0}})
        return [Change(f"blue {kind} {namespace}/{name}", f"replicas={replicas}", "replicas=0", apply)]


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
