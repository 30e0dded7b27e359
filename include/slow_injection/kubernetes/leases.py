"""Workload leases as coordination.k8s.io/v1 Lease objects in the workload's (blue) namespace.

The API server makes them atomic: of several creates of one name exactly one succeeds (the others get
409 AlreadyExists), and a replace or delete carrying a resourceVersion fails with 409 once anyone else
wrote the object. `kubectl -n NS get leases` shows the holder (HOLDER = wave/run id); the annotations
carry the run id, DAG and service. No leaseDurationSeconds: a lease never expires by time, because a
migration run may pause for days at an approval; whether its holder ended is Airflow's to say."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

from include.slow_injection.ports import Held, HeldBy, LeaseHolder

PREFIX = "slow-injection"
MANAGED_BY = {"app.kubernetes.io/managed-by": "slow-injection"}
WAVE, RUN_ID, DAG_ID, SERVICE, WORKLOAD = (
    f"slow-injection.io/{k}" for k in ("wave", "run-id", "dag-id", "service", "workload")
)
VERBS = ("get", "create", "update", "delete")  # what the driver calls (rbac.py grants exactly these)
TRIES = 5  # create/read races (a lease deleted between our 409 and our read) settle in one or two


def lease_name(workload: dict[str, Any]) -> str:
    """slow-injection.<kind>.<name>; a name too long for the API (253) keeps a hash of the rest."""
    name = f"{PREFIX}.{workload['kind'].lower()}.{workload['name']}"
    if len(name) <= 253:
        return name
    return f"{name[:242].rstrip('.-')}.{hashlib.sha256(name.encode()).hexdigest()[:10]}"


def micro_time(epoch: float) -> str:
    """The API's MicroTime (RFC 3339 with microseconds, UTC)."""
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _epoch(value: str | None) -> float:
    if not value:
        return 0.0
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def holder_of(lease: dict[str, Any]) -> LeaseHolder:
    """The holder a Lease names (a Lease written by hand still says its holderIdentity as the run)."""
    notes = (lease.get("metadata") or {}).get("annotations") or {}
    spec = lease.get("spec") or {}
    identity = spec.get("holderIdentity") or ""
    wave, _, run_id = identity.partition("/")
    return LeaseHolder(
        wave=notes.get(WAVE, wave),
        run_id=notes.get(RUN_ID, run_id or identity),
        acquired_at=_epoch(spec.get("acquireTime")),
        dag_id=notes.get(DAG_ID, ""),
        service=notes.get(SERVICE, ""),
    )


class KubeLeases:
    """The lease calls of the Kubernetes platform driver, on one cluster's API client."""

    def __init__(self, api_client: Any) -> None:
        self.api_client = api_client

    @property
    def _api(self) -> Any:
        from kubernetes import client

        return client.CoordinationV1Api(self.api_client)

    @staticmethod
    def where(workload: dict[str, Any]) -> str:
        return f"Lease {workload['namespace']}/{lease_name(workload)}"

    def _body(
        self, workload: dict[str, Any], holder: LeaseHolder, version: str = "", transitions: int = 0
    ) -> dict[str, Any]:
        metadata: dict[str, Any] = {
            "name": lease_name(workload),
            "namespace": workload["namespace"],
            "labels": dict(MANAGED_BY),
            "annotations": {
                WAVE: holder.wave,
                RUN_ID: holder.run_id,
                DAG_ID: holder.dag_id,
                SERVICE: holder.service,
                WORKLOAD: f"{workload['kind']} {workload['namespace']}/{workload['name']}",
            },
        }
        if version:
            metadata["resourceVersion"] = version  # the replace only lands on exactly this version
        moment = micro_time(holder.acquired_at)
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": metadata,
            "spec": {
                "holderIdentity": f"{holder.wave}/{holder.run_id}",
                "acquireTime": moment,
                "renewTime": moment,
                "leaseTransitions": transitions,
            },
        }

    def read(self, workload: dict[str, Any]) -> dict[str, Any] | None:
        from kubernetes.client.rest import ApiException

        try:
            answer = self._api.read_namespaced_lease(
                lease_name(workload), workload["namespace"], _preload_content=False
            )
        except ApiException as err:
            if err.status == 404:
                return None
            raise
        return json.loads(answer.data)

    def _answer(self, workload: dict[str, Any], lease: dict[str, Any], holder: LeaseHolder) -> Held | HeldBy:
        found = holder_of(lease)
        version = lease["metadata"]["resourceVersion"]
        if found.same_run(holder):
            return Held(found, self.where(workload), version)
        return HeldBy(found, self.where(workload), version)

    def acquire(self, workload: dict[str, Any], holder: LeaseHolder) -> Held | HeldBy:
        from kubernetes.client.rest import ApiException

        for _ in range(TRIES):
            try:
                made = self._api.create_namespaced_lease(
                    workload["namespace"], self._body(workload, holder), _preload_content=False
                )
                return self._answer(workload, json.loads(made.data), holder)  # the holder as stored
            except ApiException as err:
                if err.status == 404:
                    raise LookupError(
                        f"namespace {workload['namespace']} does not exist (for {self.where(workload)})"
                    ) from None
                if err.status != 409:
                    raise
            lease = self.read(workload)
            if lease is not None:
                return self._answer(workload, lease, holder)
            # released between our create and our read: create again
        raise RuntimeError(f"{self.where(workload)} kept appearing and vanishing over {TRIES} tries")

    def take_over(self, workload: dict[str, Any], holder: LeaseHolder, previous: HeldBy) -> Held | HeldBy:
        from kubernetes.client.rest import ApiException

        lease = self.read(workload)
        if lease is None:
            return self.acquire(workload, holder)  # released meanwhile: an ordinary create decides
        if lease["metadata"]["resourceVersion"] != previous.version:
            return self._answer(workload, lease, holder)  # changed hands since `previous` was read
        transitions = int((lease.get("spec") or {}).get("leaseTransitions") or 0) + 1
        body = self._body(workload, holder, previous.version, transitions)
        try:
            done = self._api.replace_namespaced_lease(
                lease_name(workload), workload["namespace"], body, _preload_content=False
            )
        except ApiException as err:
            if err.status not in (404, 409):
                raise
            now = self.read(workload)  # another writer won: say who holds it now
            return self.acquire(workload, holder) if now is None else self._answer(workload, now, holder)
        return self._answer(workload, json.loads(done.data), holder)

    def release(self, workload: dict[str, Any], holder: LeaseHolder) -> bool:
        from kubernetes import client
        from kubernetes.client.rest import ApiException

        for _ in range(TRIES):
            lease = self.read(workload)
            if lease is None or not holder_of(lease).same_run(holder):
                return False
            version = lease["metadata"]["resourceVersion"]
            try:
                self._api.delete_namespaced_lease(
                    lease_name(workload),
                    workload["namespace"],
                    body=client.V1DeleteOptions(preconditions=client.V1Preconditions(resource_version=version)),
                    _preload_content=False,
                )
                return True
            except ApiException as err:
                if err.status == 404:
                    return False
                if err.status != 409:
                    raise
            # written since we read it: read again (it may no longer be ours)
        raise RuntimeError(f"{self.where(workload)} kept changing over {TRIES} tries to release it")

    def holder(self, workload: dict[str, Any]) -> HeldBy | None:
        lease = self.read(workload)
        if lease is None:
            return None
        return HeldBy(holder_of(lease), self.where(workload), lease["metadata"]["resourceVersion"])

    def refused_verbs(self, namespace: str) -> list[str]:
        """The lease verbs the connection may not use in `namespace` (a SelfSubjectAccessReview each)."""
        from kubernetes import client

        api = client.AuthorizationV1Api(self.api_client)
        refused = []
        for verb in VERBS:
            review = {
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SelfSubjectAccessReview",
                "spec": {
                    "resourceAttributes": {
                        "group": "coordination.k8s.io",
                        "resource": "leases",
                        "verb": verb,
                        "namespace": namespace,
                    }
                },
            }
            answer = json.loads(api.create_self_subject_access_review(review, _preload_content=False).data)
            if not (answer.get("status") or {}).get("allowed"):
                refused.append(verb)
        return refused
