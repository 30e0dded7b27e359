"""Controllers for the stand-in API server: Deployments roll out, CronJobs start Jobs, Jobs finish.

They behave like Kubernetes' where a migration depends on it: a Deployment's status follows its spec
after a short delay (or reports ProgressDeadlineExceeded); an unsuspended CronJob starts the most
recent scheduled time it missed since status.lastScheduleTime (or its creation) if that time is
within startingDeadlineSeconds, and keeps status.active; a Job's pod runs, then the Job completes or
fails; a pod created through the API runs its tiny shell command (pod_runtime.py). Every start is
recorded in `runs`. The clock is either real or advanced by `tick` (tests).

Stand-in knobs are annotations on the Deployment or CronJob (the lab's faults use them):
    stand-in.slow-injection.io/job-seconds    how long a Job runs (default 2)
    stand-in.slow-injection.io/job-outcome    succeed | fail | hang (default succeed)
    stand-in.slow-injection.io/pod-restarts   restarts each new pod reports (default 0)
    stand-in.slow-injection.io/rollout        ok | fail (default ok: ready after rollout-seconds)
    stand-in.slow-injection.io/rollout-seconds (default 1)
The same knobs can be set for a whole namespace in `faults` (the lab's drills break green only).
A namespace annotated stand-in.slow-injection.io/fargate: "true" stands for a Fargate profile's: its
pods get Fargate's CapacityProvisioned annotation, sized from their requests by Fargate's rules.
Unlike Kubernetes, a six-field schedule (seconds last, as croniter reads it) is accepted, so a lab
job can run every 20 s; Job names carry the scheduled time in epoch seconds, not minutes.
"""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

from croniter import croniter

from include.slow_injection.kubernetes.preflight import pod_template
from include.slow_injection.kubernetes.right_sizing import LARGEST, fargate_size, pod_facts, pod_request
from include.slow_injection.kubernetes.timestamps import from_rfc3339, to_rfc3339
from include.slow_injection.lab.kube.pod_runtime import run_jobs, run_pods

KNOB = "stand-in.slow-injection.io/"




def fargate_capacity(pod: dict[str, Any]) -> str:
    """What Fargate's scheduler annotates a pod with (CapacityProvisioned), from its requests."""
    request = pod_request(pod_facts(pod))
    return str(fargate_size(request.cpu, request.memory) or LARGEST)


class StandInControllers:
    def __init__(self, store: Any, start: dt.datetime | None = None) -> None:
        """`start` given: a simulated clock that only `tick` advances; None: real time."""
        self.store, self.simulated = store, start is not None
        self.now = start or dt.datetime.now(dt.timezone.utc)
        if self.simulated:
            store.clock = lambda: self.now  # objects are created at the simulated time
        self.runs: list[tuple[str, str, dt.datetime]] = []  # (namespace, CronJob, scheduled time)
        self.skipped: list[tuple[str, str, dt.datetime]] = []
        self._seen: dict[tuple[str, str, int], dt.datetime] = {}  # Deployment generation → first seen

    @property
    def faults(self) -> dict[str, dict[str, str]]:
        """namespace → knobs that override annotations (kept on the store: the API server sets them too)."""
        return self.store.faults

    def _knob(self, obj: dict[str, Any], name: str, default: str) -> str:
        meta = obj.get("metadata") or {}
        fault = self.faults.get(meta.get("namespace", ""), {}).get(name)
        return fault if fault is not None else (meta.get("annotations") or {}).get(KNOB + name, default)

    def tick(self, seconds: float = 1.0) -> None:
        if self.simulated:
            self.now += dt.timedelta(seconds=seconds)
        else:
            self.now = dt.datetime.now(dt.timezone.utc)
        with self.store.lock:
            self._deployments()
            self._cronjobs()
            self._jobs()
            run_jobs(self.store, self.now)  # Jobs made through the API get their pod
            run_pods(self.store, self.now)  # pods made through the API run their tiny command

    def run_in_background(self, every: float = 0.25) -> threading.Event:
        """Real-time mode: tick until the returned event is set."""
        stop = threading.Event()

        def loop() -> None:
            while not stop.wait(every):
                self.tick()

        threading.Thread(target=loop, daemon=True, name="stand-in-controllers").start()
        return stop

    # --- Deployments ---------------------------------------------------------------------------
    def _deployments(self) -> None:
        for obj in self.store.list("deployments", None):
            meta, spec = obj["metadata"], obj["spec"]
            key = (meta["namespace"], meta["name"], meta.get("generation", 1))
            first_seen = self._seen.setdefault(key, self.now)
            if (self.now - first_seen).total_seconds() < float(self._knob(obj, "rollout-seconds", "1")):
                continue
            wanted = spec.get("replicas", 1)
            if self._knob(obj, "rollout", "ok") == "fail":
                status = {"observedGeneration": meta.get("generation", 1), "replicas": wanted, "updatedReplicas": 0,
                          "conditions": [{"type": "Progressing", "status": "False",
                                          "reason": "ProgressDeadlineExceeded",
                                          "message": f'ReplicaSet "{meta["name"]}" has timed out progressing.'}]}
            else:
                status = {"observedGeneration": meta.get("generation", 1), "replicas": wanted,
                          "updatedReplicas": wanted, "readyReplicas": wanted, "availableReplicas": wanted,
                          "conditions": [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                                         {"type": "Progressing", "status": "True",
                                          "reason": "NewReplicaSetAvailable"}]}
                self._pods_for(obj, wanted)
            if obj.get("status") != status:
                obj["status"] = status
                self.store.put("deployments", obj)

    def _pods_for(self, deployment: dict[str, Any], wanted: int) -> None:
        meta = deployment["metadata"]
        labels = (deployment["spec"]["template"].get("metadata") or {}).get("labels") or {}
        names = {f"{meta['name']}-{i}" for i in range(wanted)}
        for pod in self.store.list("pods", meta["namespace"]):
            owner = (pod["metadata"].get("labels") or {}).get("stand-in/deployment")
            if owner == meta["name"] and pod["metadata"]["name"] not in names:
                self.store.delete("pods", meta["namespace"], pod["metadata"]["name"])
        for name in sorted(names):
            if self.store.get("pods", meta["namespace"], name) is None:
                self._new_pod(deployment, name, {**labels, "stand-in/deployment": meta["name"]}, "Running")

    def _new_pod(self, owner: dict[str, Any], name: str, labels: dict[str, str], phase: str) -> None:
        restarts = int(self._knob(owner, "pod-restarts", "0"))
        namespace = owner["metadata"]["namespace"]
        template = pod_template(owner) or {}
        containers = [{k: c[k] for k in ("name", "image", "resources") if k in c}
                      for c in (template.get("spec") or {}).get("containers") or []] or [{"name": "main", "image": "stand-in"}]
        container = {"name": containers[0]["name"], "ready": phase == "Running", "restartCount": restarts}
        if restarts:
            container["lastState"] = {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": to_rfc3339(self.now)}}
        pod = {"metadata": {"name": name, "namespace": namespace, "labels": labels},
               "spec": {"containers": containers},
               "status": {"phase": phase, "containerStatuses": [container]}}
        if self._on_fargate(namespace):
            pod["metadata"]["annotations"] = {"CapacityProvisioned": fargate_capacity(pod)}
        self.store.put("pods", pod, creating=True)

    def _on_fargate(self, namespace: str) -> bool:
        ns = self.store.get("namespaces", "", namespace) or {}
        return ((ns.get("metadata") or {}).get("annotations") or {}).get(KNOB + "fargate") == "true"

    # --- CronJobs ------------------------------------------------------------------------------
    def _cronjobs(self) -> None:
        for obj in self.store.list("cronjobs", None):
            spec, status, meta = obj["spec"], obj.setdefault("status", {}), obj["metadata"]
            if spec.get("suspend"):
                continue
            since = from_rfc3339(status.get("lastScheduleTime") or meta["creationTimestamp"])
            missed = None
            it = croniter(spec["schedule"], since)
            while (t := it.get_next(dt.datetime)) <= self.now:
                missed = t
            if missed is None:
                continue
            status["lastScheduleTime"] = to_rfc3339(missed)
            deadline = spec.get("startingDeadlineSeconds")
            if deadline is not None and (self.now - missed).total_seconds() > deadline:
                self.skipped.append((meta["namespace"], meta["name"], missed))  # as the controller does
            else:
                self.runs.append((meta["namespace"], meta["name"], missed))
                job = self._start_job(obj, missed)
                status.setdefault("active", []).append(
                    {"kind": "Job", "namespace": meta["namespace"], "name": job["metadata"]["name"]})
            self.store.put("cronjobs", obj)

    def _start_job(self, cronjob: dict[str, Any], scheduled: dt.datetime) -> dict[str, Any]:
        meta = cronjob["metadata"]
        name = f"{meta['name']}-{int(scheduled.timestamp())}"
        template = cronjob["spec"]["jobTemplate"]
        annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k.startswith(KNOB)}
        annotations["batch.kubernetes.io/cronjob-scheduled-timestamp"] = scheduled.isoformat()
        job = self.store.put("jobs", {
            "metadata": {"name": name, "namespace": meta["namespace"], "annotations": annotations,
                         "labels": {**((template.get("metadata") or {}).get("labels") or {}), "job-name": name},
                         "ownerReferences": [{"apiVersion": "batch/v1", "kind": "CronJob", "name": meta["name"],
                                              "uid": meta["uid"], "controller": True}]},
            "spec": template.get("spec") or {},
            "status": {"startTime": to_rfc3339(self.now), "active": 1},
        }, creating=True)
        self._new_pod(job, f"{name}-pod", {"job-name": name}, "Running")
        return job

    # --- Jobs ----------------------------------------------------------------------------------
    def _jobs(self) -> None:
        for job in self.store.list("jobs", None):
            status, meta = job.get("status") or {}, job["metadata"]
            if not status.get("active") or self._knob(job, "job-outcome", "succeed") == "hang":
                continue
            if (self.now - from_rfc3339(status["startTime"])).total_seconds() < float(self._knob(job, "job-seconds", "2")):
                continue
            ok = self._knob(job, "job-outcome", "succeed") != "fail"
            job["status"] = {"startTime": status["startTime"], "completionTime": to_rfc3339(self.now),
                             "succeeded" if ok else "failed": 1,
                             "conditions": [{"type": "Complete" if ok else "Failed", "status": "True",
                                             "lastTransitionTime": to_rfc3339(self.now)}]}
            self.store.put("jobs", job)
            pod = self.store.get("pods", meta["namespace"], f"{meta['name']}-pod")
            if pod is not None:
                pod["status"]["phase"] = "Succeeded" if ok else "Failed"
                self.store.put("pods", pod)
            self._finished(job, ok)

    def _finished(self, job: dict[str, Any], ok: bool) -> None:
        owner = next(iter(job["metadata"].get("ownerReferences") or []), None)
        cronjob = owner and self.store.get("cronjobs", job["metadata"]["namespace"], owner["name"])
        if not cronjob:
            return
        status = cronjob.setdefault("status", {})
        status["active"] = [a for a in status.get("active") or [] if a["name"] != job["metadata"]["name"]]
        if not status["active"]:
            del status["active"]
        if ok:
            status["lastSuccessfulTime"] = to_rfc3339(self.now)
        self.store.put("cronjobs", cronjob)
