"""Test support for steps and whole waves on the real control plane (tests/kube.py): blue's `web`
Deployment and `report` CronJob with green's namespace beside them (`Shop`), an HTTPS proxy in front of the
API server that records every request on the wire and can go down or refuse chosen writes (`ApiProxy`), the
Jobs a CronJob ran and the exactly-once check over them, and kwok's pod behaviour knobs.

Schedules are real five-field crons: the CronJob controller ticks at most once a minute.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from kubernetes import client

from include.slow_injection.drivers.kubernetes import KubeAccess
from include.slow_injection.kubernetes.timestamps import from_rfc3339
from include.slow_injection.lab.kube.seed import cronjob as seed_cronjob
from include.slow_injection.lab.kube.seed import (  # blue's objects, as the lab seeds them
    deployment,
    pod_disruption_budget,
)
from tests.support.kube import Kube, wait_for
from tests.support.waves import metric_gate, sim

EVERY_MINUTE = "* * * * *"  # Kubernetes' finest schedule
RARELY = "17 3 1 1 *"  # once a year: for steps that must meet no scheduled run while they work
SCHEDULED_AT = "batch.kubernetes.io/cronjob-scheduled-timestamp"
# kwok's upstream pod stages (deploy/kube/build.sh): a Job's pod completes ~1 s after it runs, unless these
# (on the pod) say otherwise.
KWOK_DELAY = "pod-complete.stage.kwok.x-k8s.io/delay"
# The stage file's jitterDurationMilliseconds is 0, and kwok takes jitter as the upper bound of the delay
# (pkg/utils/lifecycle: jitter <= delay → the delay IS the jitter): without a jitter-delay as long as the
# delay, every Job pod completes (or fails) at once whatever its delay annotation says.
KWOK_JITTER = "pod-complete.stage.kwok.x-k8s.io/jitter-delay"
KWOK_FAIL = "pod-container-running-failed.stage.kwok.x-k8s.io"
KWOK_FAIL_DELAY = "pod-container-running-failed.stage.kwok.x-k8s.io/delay"
KWOK_FAIL_JITTER = "pod-container-running-failed.stage.kwok.x-k8s.io/jitter-delay"
WRITES = ("POST", "PUT", "PATCH", "DELETE")


# --- objects -----------------------------------------------------------------------------------


def cronjob(name: str, namespace: str, schedule: str) -> dict[str, Any]:
    """Blue's scheduled job as the lab seeds it (one failed pod is one failed run), with finished Jobs kept
    for the test to read (history limits 10)."""
    job = seed_cronjob(name, namespace, schedule)
    job["spec"] |= {"successfulJobsHistoryLimit": 10, "failedJobsHistoryLimit": 10}
    return job


def rfc3339(when: dt.datetime | None = None) -> str:
    return (when or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str) -> dt.datetime:
    return dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)


# --- blue's shop and green's namespace ------------------------------------------------------------


@dataclass
class Shop:
    """Blue's namespace (`web` Deployment on EC2, `report` CronJob) and green's (the default Fargate
    profile selects it; holds the PodDisruptionBudget the Fargate preflight asks for)."""

    kube: Kube
    blue: str
    green: str
    api: KubeAccess

    @classmethod
    def seed(cls, kube: Kube, schedule: str = EVERY_MINUTE, replicas: int = 2, wait_ready: bool = True) -> Shop:
        from kubernetes import client

        shop = cls(kube, kube.namespace("shop"), kube.namespace("green"), KubeAccess(kube.api_client))
        shop.api.create("Deployment", shop.blue, deployment("web", shop.blue, replicas))
        shop.api.create("CronJob", shop.blue, cronjob("report", shop.blue, schedule))
        client.PolicyV1Api(kube.api_client).create_namespaced_pod_disruption_budget(
            shop.green, pod_disruption_budget("web", shop.green)
        )
        if wait_ready:
            wait_for(
                lambda: (shop.deployment(shop.blue)["status"].get("readyReplicas") or 0) == replicas,
                "blue's web pods ready",
            )
        return shop

    # workloads as a spec names them
    @property
    def web(self) -> dict[str, Any]:
        return {"kind": "Deployment", "namespace": self.blue, "name": "web", "green_namespace": self.green}

    @property
    def report(self) -> dict[str, Any]:
        return {"kind": "CronJob", "namespace": self.blue, "name": "report", "green_namespace": self.green}

    def fill(self, text: str) -> str:
        """A text naming the namespaces as {blue} and {green}."""
        return text.format(blue=self.blue, green=self.green)

    # reads through the admin identity (never through a connection under test)
    def deployment(self, namespace: str, name: str = "web") -> dict[str, Any] | None:
        return self.api.get("Deployment", namespace, name)

    def cronjob(self, namespace: str, name: str = "report") -> dict[str, Any] | None:
        return self.api.get("CronJob", namespace, name)

    def suspended(self, namespace: str) -> bool:
        return bool(self.cronjob(namespace)["spec"].get("suspend"))

    def jobs(self, namespace: str | None = None) -> list[dict[str, Any]]:
        """`report`'s Jobs (the CronJob controller's, with their scheduled time) on one side or both."""
        out = []
        for ns in [namespace] if namespace else [self.blue, self.green]:
            out += [
                j
                for j in self.api.list("BatchV1Api", "list_namespaced_job", ns)
                if (j["metadata"].get("annotations") or {}).get(SCHEDULED_AT)
            ]
        return sorted(out, key=lambda j: j["metadata"]["annotations"][SCHEDULED_AT])

    def run_blue_now(self, timeout: float = 30.0) -> dict[str, Any]:
        """Blue's CronJob has been running for a while: its lastScheduleTime set three minutes back, the
        CronJob controller starts the most recent missed time (this minute's) at once, as it does after any
        pause. Returns that Job once it finished."""
        past = rfc3339(dt.datetime.now(dt.UTC) - dt.timedelta(minutes=3))
        self.api.patch_status("CronJob", self.blue, "report", {"status": {"lastScheduleTime": past}})
        return wait_for(
            lambda: next((j for j in self.jobs(self.blue) if job_end(j)), None),
            "blue's run of the missed minute, finished",
            timeout,
        )

    # what a test may compare before and after a step: what the steps own, never status a controller writes
    def owned_state(self) -> dict[tuple[str, str, str], Any]:
        kinds = {
            "Deployment": ("AppsV1Api", "list_namespaced_deployment"),
            "CronJob": ("BatchV1Api", "list_namespaced_cron_job"),
            "ConfigMap": ("CoreV1Api", "list_namespaced_config_map"),
            "Service": ("CoreV1Api", "list_namespaced_service"),
            "PodDisruptionBudget": ("PolicyV1Api", "list_namespaced_pod_disruption_budget"),
        }
        out = {}
        for ns in (self.blue, self.green):
            for kind, (api, method) in kinds.items():
                for obj in self.api.list(api, method, ns):
                    meta = obj["metadata"]
                    out[(kind, ns, meta["name"])] = {
                        "uid": meta["uid"],
                        "generation": meta.get("generation"),
                        "labels": meta.get("labels"),
                        "annotations": meta.get("annotations"),
                        "spec": obj.get("spec"),
                        "data": obj.get("data"),
                        "lastScheduleTime": (obj.get("status") or {}).get("lastScheduleTime")
                        if kind == "CronJob"
                        else None,
                    }
        return out

    def settled(self, timeout: float = 30.0) -> None:
        """Every Deployment's controller caught up with its spec (its revision annotation written)."""

        def caught_up() -> bool:
            for ns in (self.blue, self.green):
                for d in self.api.list("AppsV1Api", "list_namespaced_deployment", ns):
                    if (d.get("status") or {}).get("observedGeneration") != d["metadata"].get(
                        "generation"
                    ) or "deployment.kubernetes.io/revision" not in (d["metadata"].get("annotations") or {}):
                        return False
            return True

        wait_for(caught_up, "the Deployment controller to catch up", timeout)


def job_end(job: dict[str, Any]) -> str | None:
    """When a Job finished (completionTime, or its Failed condition's time), None while it runs."""
    status = job.get("status") or {}
    for condition in status.get("conditions") or []:
        if condition.get("status") == "True" and condition.get("type") in ("Complete", "Failed"):
            return status.get("completionTime") or condition.get("lastTransitionTime")
    return None


def job_failed(job: dict[str, Any]) -> bool:
    return any(
        c.get("type") == "Failed" and c.get("status") == "True"
        for c in (job.get("status") or {}).get("conditions") or []
    )


def assert_exactly_once(jobs: list[dict[str, Any]], every: float = 60.0) -> None:
    """Across both sides: no scheduled time ran twice, none was skipped between the first and the last,
    and no Job started on one side while the other side's Job still ran."""
    times = [parse_time(j["metadata"]["annotations"][SCHEDULED_AT]) for j in jobs]
    assert len(times) == len(set(times)), f"a scheduled time ran twice: {sorted(times)}"
    times.sort()
    assert all((b - a).total_seconds() == every for a, b in zip(times, times[1:], strict=False)), f"a gap: {times}"
    runs = sorted(
        (j["status"].get("startTime") or "", job_end(j) or "9999", j["metadata"]["namespace"], j["metadata"]["name"])
        for j in jobs
    )
    for (_, end, ns, name), (start, _, next_ns, next_name) in zip(runs, runs[1:], strict=False):
        assert ns == next_ns or start >= end, (
            f"{next_ns}/{next_name} started at {start} while {ns}/{name} ran until {end}"
        )


def set_job_pods(
    api: KubeAccess,
    namespace: str,
    cronjob_name: str,
    *,
    annotations: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
) -> None:
    """kwok's knobs on the pods a CronJob's Jobs will make (how long they run, whether they fail)."""
    api.patch(
        "CronJob",
        namespace,
        cronjob_name,
        {
            "spec": {
                "jobTemplate": {
                    "spec": {"template": {"metadata": {"annotations": annotations or {}, "labels": labels or {}}}}
                }
            }
        },
    )


def owned_job(
    api: KubeAccess,
    namespace: str,
    cronjob_name: str,
    name: str,
    *,
    run_ms: int = 1000,
    fail: bool = False,
    scheduled: str | None = None,
) -> dict[str, Any]:
    """A Job as the CronJob controller makes one (controller owner reference to the CronJob, its scheduled
    time); kwok runs its pod: complete after `run_ms`, or fail after half a second."""
    from kubernetes import client

    owner = api.get("CronJob", namespace, cronjob_name)
    annotations = {KWOK_DELAY: f"{run_ms}ms", KWOK_JITTER: f"{run_ms}ms"}
    labels = {KWOK_FAIL: "true"} if fail else {}
    if fail:
        annotations.update({KWOK_FAIL_DELAY: "500ms", KWOK_FAIL_JITTER: "500ms"})
    meta = {
        "name": name,
        "annotations": {SCHEDULED_AT: scheduled or rfc3339()},
        "ownerReferences": [
            {
                "apiVersion": "batch/v1",
                "kind": "CronJob",
                "name": cronjob_name,
                "uid": owner["metadata"]["uid"],
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ],
    }
    body = {
        "metadata": meta,
        "spec": {
            "backoffLimit": 0,
            "ttlSecondsAfterFinished": 600,
            "template": {
                "metadata": {"annotations": annotations, "labels": labels},
                "spec": {"containers": [{"name": "job", "image": "report:1"}], "restartPolicy": "Never"},
            },
        },
    }
    return client.BatchV1Api(api.api_client).create_namespaced_job(namespace, body).to_dict()


def restart_container(api: KubeAccess, namespace: str, pod_name: str, restarts: int = 1) -> None:
    """What the kubelet reports after a container died and was started again: restartCount and the
    terminated lastState, written to the pod's status subresource (kwok stands for the kubelet here)."""
    from kubernetes import client

    core = client.CoreV1Api(api.api_client)
    pod = json.loads(core.read_namespaced_pod_status(pod_name, namespace, _preload_content=False).data)
    for status in pod["status"]["containerStatuses"]:
        status["restartCount"] = restarts
        status["lastState"] = {
            "terminated": {"exitCode": 137, "reason": "OOMKilled", "startedAt": rfc3339(), "finishedAt": rfc3339()}
        }
    core.replace_namespaced_pod_status(pod_name, namespace, pod)


# --- the API server on the wire ---------------------------------------------------------------


@dataclass
class Request:
    method: str
    path: str
    query: str
    status: int

    @property
    def dry_run(self) -> bool:
        return "dryRun=All" in self.query

    @property
    def write(self) -> bool:
        """A request that may change what the API server stores (a dry run persists nothing)."""
        return self.method in WRITES and not self.dry_run


@dataclass
class ApiProxy:
    """HTTPS on a fixed loopback port (a serving certificate from the control plane's CA), passing every
    request to the real kube-apiserver with its own bearer token, and recording it with the status that came
    back. `stop()` closes the port and every open connection (clients then get "connection refused", as
    from an API server that is down); `refuse` answers chosen writes 503 without passing them on."""

    plane: Any
    root: Path
    requests: list[Request] = field(default_factory=list)
    refuse: set[tuple[str, str]] = field(default_factory=set)  # (method, path suffix)

    def __post_init__(self) -> None:
        from tests.support.aws import free_port

        self.port = free_port()
        self.root.mkdir(parents=True, exist_ok=True)
        crt, key = self.plane.pki.serving("api-proxy", ["127.0.0.1", "localhost"])
        self._server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._server_tls.load_cert_chain(str(crt), str(key))
        self._upstream_tls = ssl.create_default_context(cafile=str(self.plane.pki.ca_cert_path))
        self._httpd: ThreadingHTTPServer | None = None
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        return self._httpd is not None

    def kubeconfig_file(self, user: str = "admin", token: str | None = None, name: str | None = None) -> Path:
        """A kubeconfig reaching the API server through this proxy (the plane's CA, the user's token)."""
        config = self.plane.kubeconfig(user, token)
        config["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{self.port}"
        path = self.root / f"{name or user}-via-proxy.json"
        path.write_text(json.dumps(config))
        return path

    def writes(self) -> list[tuple[str, str]]:
        return [(r.method, r.path) for r in self.requests if r.write]

    def clear(self) -> None:
        self.requests.clear()

    def start(self) -> ApiProxy:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                with proxy._lock:
                    proxy._open.add(self.connection)

            def finish(self) -> None:
                with proxy._lock:
                    proxy._open.discard(self.connection)
                try:
                    super().finish()
                except OSError:
                    pass

            def log_message(self, *args: Any) -> None:
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                parts = urlsplit(self.path)
                if any(self.command == m and parts.path.endswith(p) for m, p in proxy.refuse):
                    status, headers = 503, {"Content-Type": "application/json"}
                    data = json.dumps(
                        {
                            "kind": "Status",
                            "apiVersion": "v1",
                            "metadata": {},
                            "status": "Failure",
                            "reason": "ServiceUnavailable",
                            "code": 503,
                            "message": "the test's proxy refuses this write",
                        }
                    ).encode()
                else:
                    upstream = http.client.HTTPSConnection(
                        "127.0.0.1", proxy.plane.ports["apiserver"], context=proxy._upstream_tls, timeout=60
                    )
                    try:
                        forwarded = {
                            k: v
                            for k, v in self.headers.items()
                            if k.lower()
                            not in (
                                "host",
                                "connection",
                                "keep-alive",
                                "content-length",
                                "transfer-encoding",
                                "accept-encoding",
                            )
                        }
                        upstream.request(self.command, self.path, body=body, headers=forwarded)
                        answer = upstream.getresponse()
                        status, data = answer.status, answer.read()
                        headers = {
                            k: v for k, v in answer.getheaders() if k.lower() in ("content-type", "audit-id", "warning")
                        }
                    finally:
                        upstream.close()
                proxy.requests.append(Request(self.command, parts.path, parts.query, status))
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _forward

        httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        httpd.daemon_threads = True
        httpd.socket = self._server_tls.wrap_socket(httpd.socket, server_side=True)
        threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self._httpd = httpd
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        with self._lock:
            for conn in list(self._open):
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                    conn.close()
                except OSError:
                    pass
            self._open.clear()
        self._httpd = None


@pytest.fixture(scope="module")
def api_proxy(control_plane: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiProxy]:
    """The recording proxy in front of the session's API server (import this fixture to use it)."""
    proxy = ApiProxy(control_plane, tmp_path_factory.mktemp("kube-proxy")).start()
    yield proxy
    proxy.stop()


def path_request(req: Request) -> tuple[str, str, str, str | None]:
    """(apiGroup, resource[/subresource], verb, namespace) of a request, as the API server's RBAC sees it."""
    parts = req.path.strip("/").split("/")
    if parts[0] == "api":
        group, rest = "", parts[2:]
    else:
        group, rest = parts[1], parts[3:]
    namespace = None
    if rest[:1] == ["namespaces"] and len(rest) > 2:
        namespace, rest = rest[1], rest[2:]
    elif rest[:1] == ["namespaces"] and len(rest) == 2:
        namespace = rest[1]  # a namespace itself: RBAC sees it in its own namespace
    resource = rest[0] + (f"/{rest[2]}" if len(rest) > 2 else "")
    named = len(rest) > 1
    verb = {"POST": "create", "PATCH": "patch", "PUT": "update", "DELETE": "delete"}.get(
        req.method, "get" if named else "list"
    )
    return group, resource, verb, namespace


def blue_deployment(namespace: str) -> dict:
    pod = {
        "nodeSelector": {"eks.amazonaws.com/nodegroup": "ec2-general"},
        "tolerations": [{"key": "spot", "operator": "Exists"}],
        "containers": [
            {
                "name": "app",
                "image": "web:1",
                "env": [{"name": "MODE", "value": "blue"}, {"name": "OLD_FLAG", "value": "1"}],
                "resources": {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "250m"}},
            }
        ],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": namespace, "labels": {"app": "web"}},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": pod},
        },
    }


CONN = "kube_wave"
TICK = 90.0  # a minute tick, plus the Job and the gate's polling


@pytest.fixture
def shop(kube, monkeypatch):
    """Blue's web (2 replicas) and report (every minute) in their namespace, green's namespace selected by
    the Fargate profile; the Airflow connection reaches the cluster with the admin kubeconfig."""
    shop = Shop.seed(kube, schedule=EVERY_MINUTE)
    kube.connection(monkeypatch, CONN)
    return shop


def kubernetes_wave_frame(wave_id: str, conn: str) -> dict[str, Any]:
    """A test wave's id, owner, blue (EKS on EC2) and green (Fargate) on one Kubernetes connection, and short
    retries: the part every Kubernetes wave test shares (services and phases are each test's own)."""
    platform = {"type": "kubernetes", "connection": conn, "add_labels": {"compute": "fargate"}}
    return {
        "id": wave_id,
        "owner": "team-test",
        "environments": {
            "blue": {"name": "eks-ec2", "platform": platform},
            "green": {"name": "eks-fargate", "platform": dict(platform)},
        },
        "retries": {"count": 2, "delay": 0.5},
        "rollback": {"retries": 2, "retry_delay": 0.5},
    }


def k8s_wave(world: str, shop: Shop, step_bake: float = 0.4, conn: str = CONN, **web: Any) -> dict:
    """Report (scheduled) and web (exposed, 50 → 100 %) from blue's namespace to green's; `web` adds to the
    web workload (e.g. copy_config_maps)."""
    gate = metric_gate(world, "error-rate", 'error_ratio{service="${service}",env="${env}"}')
    return {
        **kubernetes_wave_frame("k8s", conn),
        "services": [
            {
                "name": "report",
                "exposure": "scheduled",
                "workload": shop.report,
                "handover": {"margin": 10, "wait_timeout": TICK, "first_run_timeout": TICK + 30},
            },
            {
                "name": "web",
                "exposure": "exposed",
                "workload": {**shop.web, **web},
                "router": sim(world),
                "rollout_timeout": 90,
                "traffic_steps": [{"weight": 50, "bake": step_bake}, {"weight": 100, "bake": 0.4}],
                "gates": [{**gate, "bake": step_bake}],
            },
        ],
        "parallel_operation": {"jobs": {"runs": 1, "timeout": TICK + 30}, "blue_pods": {"window": 2}},
    }


def long_job_annotations(run_ms: int) -> dict[str, str]:
    """kwok's pod-complete stage waits min(delay, jitter-delay) (the jitter defaults to 0 ms): both are set."""
    return {
        "pod-complete.stage.kwok.x-k8s.io/delay": f"{run_ms}ms",
        "pod-complete.stage.kwok.x-k8s.io/jitter-delay": f"{run_ms}ms",
    }


def minute_cronjob(namespace: str, run_ms: int = 0, ttl_zero: bool = False) -> dict[str, Any]:
    """A `* * * * *` CronJob whose Jobs run `run_ms` (kwok), deleted at once when `ttl_zero`."""
    pod_meta = {"annotations": long_job_annotations(run_ms)} if run_ms else {}
    job = {
        "backoffLimit": 0,
        "template": {
            "metadata": pod_meta,
            "spec": {"restartPolicy": "Never", "containers": [{"name": "job", "image": "report:1"}]},
        },
    }
    if ttl_zero:
        job["ttlSecondsAfterFinished"] = 0
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "report", "namespace": namespace},
        "spec": {
            "schedule": "* * * * *",
            "concurrencyPolicy": "Forbid",
            "suspend": False,
            "jobTemplate": {"spec": job},
        },
    }


class JobRecorder(threading.Thread):
    """Lists every Job of the cluster every `interval` s; keeps each (by uid) with its scheduled time."""

    def __init__(self, api_client: Any, namespaces: set[str], interval: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.batch, self.namespaces, self.interval = client.BatchV1Api(api_client), namespaces, interval
        self.jobs: dict[str, tuple[str, str, float]] = {}  # uid → (namespace, name, scheduled epoch s)
        self.seen: dict[str, list[float]] = {}  # uid → [first, last] poll that listed it (epoch s)
        self.stopping = threading.Event()
        self.errors: list[str] = []

    def poll(self) -> None:
        answer = json.loads(self.batch.list_job_for_all_namespaces(_preload_content=False).data)
        now = time.time()
        for job in answer.get("items", []):
            meta = job["metadata"]
            scheduled = (meta.get("annotations") or {}).get(SCHEDULED_AT)
            if meta["namespace"] in self.namespaces and scheduled:
                self.jobs.setdefault(
                    meta["uid"], (meta["namespace"], meta["name"], from_rfc3339(scheduled).timestamp())
                )
                self.seen.setdefault(meta["uid"], [now, now])[1] = now

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                self.poll()
            except Exception as err:
                self.errors.append(repr(err))
            self.stopping.wait(self.interval)

    def stop(self) -> None:
        self.stopping.set()
        self.join()
        self.poll()  # a last look

    def runs(self, namespace: str) -> list[float]:
        return [t for ns, _, t in self.jobs.values() if ns == namespace]

    def history(self, namespaces: dict[str, str]) -> list[str]:
        """Each Job of these namespaces (namespace → side): its scheduled time, when the polls listed it."""
        rows = [
            (
                t,
                f"{namespaces[ns]} {name} scheduled {_hms(t)}, listed {self.seen[uid][0] - t:+.1f}"
                f"..{self.seen[uid][1] - t:+.1f} s",
            )
            for uid, (ns, name, t) in self.jobs.items()
            if ns in namespaces
        ]
        return [row for _, row in sorted(rows)]


def _hms(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%H:%M:%S")
