"""A small stateful Kubernetes API server, the stand-in for a cluster in tests and the lab: the
official client talks HTTP to it.

Readiness, CronJob scheduling and Job completion happen only when a test writes them through `store`
or the stand-in controllers (controllers.py) run. Serves what the drivers need: discovery, namespaces,
list (labelSelector =, !=, in), get, create, replace, merge/strategic-merge/JSON patch, delete, and the
`status` and `scale` subresources, a pod's `log` (serve_pod_log), with `Status` error bodies.
"""

from __future__ import annotations

import copy
import datetime as dt
import itertools
import json
import re
import socket
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from include.slow_injection.kubernetes.timestamps import to_rfc3339

# plural → (group/version, kind, namespaced)
RESOURCES: dict[str, tuple[str, str, bool]] = {
    "namespaces": ("v1", "Namespace", False),
    "pods": ("v1", "Pod", True),
    "services": ("v1", "Service", True),
    "configmaps": ("v1", "ConfigMap", True),
    "secrets": ("v1", "Secret", True),
    "persistentvolumeclaims": ("v1", "PersistentVolumeClaim", True),
    "deployments": ("apps/v1", "Deployment", True),
    "daemonsets": ("apps/v1", "DaemonSet", True),
    "cronjobs": ("batch/v1", "CronJob", True),
    "jobs": ("batch/v1", "Job", True),
    "poddisruptionbudgets": ("policy/v1", "PodDisruptionBudget", True),
    "events": ("v1", "Event", True),  # always empty: the KubernetesPodOperator lists them while a pod starts
    "storageclasses": ("storage.k8s.io/v1", "StorageClass", False),
    "ingresses": ("networking.k8s.io/v1", "Ingress", True),
}
_PATH = re.compile(
    r"^/(?:api/(?P<core>v1)|apis/(?P<group>[^/]+)/(?P<version>[^/]+))"
    r"(?:/namespaces/(?P<ns>[^/]+))?/(?P<plural>[^/]+)(?:/(?P<name>[^/]+))?(?:/(?P<sub>status|scale))?$"
)


_POD_LOG = re.compile(r"^/api/v1/namespaces/(?P<ns>[^/]+)/pods/(?P<name>[^/]+)/log$")


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 merge; lists replace (enough for the fields the drivers patch)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def json_patch(target: Any, ops: list[dict[str, Any]]) -> Any:
    doc = copy.deepcopy(target)
    for op in ops:
        parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].lstrip("/").split("/")]
        parent = doc
        for part in parts[:-1]:
            parent = parent[int(part)] if isinstance(parent, list) else parent[part]
        last = parts[-1]
        if op["op"] in ("add", "replace"):
            if isinstance(parent, list):
                index = len(parent) if last == "-" else int(last)
                parent.insert(index, op["value"]) if op["op"] == "add" else parent.__setitem__(index, op["value"])
            else:
                parent[last] = op["value"]
        elif op["op"] == "remove":
            del parent[int(last) if isinstance(parent, list) else last]
        else:
            raise ValueError(f"unsupported JSON patch op {op['op']}")
    return doc


def selector_matches(selector: str, labels: dict[str, str]) -> bool:
    terms = (t.strip() for t in re.split(r",(?![^()]*\))", selector))  # commas outside (…) separate terms
    for term in filter(None, terms):
        if m := re.match(r"^([\w./-]+)\s+(in|notin)\s+\((.*)\)$", term):
            values = {v.strip() for v in m.group(3).split(",")}
            if (labels.get(m.group(1)) in values) != (m.group(2) == "in"):
                return False
        elif "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key.strip()) == value.strip():
                return False
        elif "=" in term:
            key, value = term.split("==" if "==" in term else "=", 1)
            if labels.get(key.strip()) != value.strip():
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


class Store:
    """Objects by (plural, namespace, name); every write bumps resourceVersion."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.versions = itertools.count(1)
        self.requests: list[tuple[str, str]] = []
        self.clock = lambda: dt.datetime.now(dt.timezone.utc)  # a simulated controller may replace it
        self.faults: dict[str, dict[str, str]] = {}  # stand-in knobs per namespace (controllers.py)
        self.pod_logs: dict[str, dict[str, Any]] = {}  # pod uid → its run and log (pod_runtime.py)

    def put(self, plural: str, obj: dict[str, Any], creating: bool = False) -> dict[str, Any]:
        version, kind, namespaced = RESOURCES[plural]
        meta = obj.setdefault("metadata", {})
        namespace = meta.get("namespace", "default") if namespaced else ""
        if namespaced:
            meta["namespace"] = namespace
        key = (plural, namespace, meta["name"])
        with self.lock:
            old = self.objects.get(key)
            obj["apiVersion"], obj["kind"] = version, kind
            if creating or old is None:
                meta.setdefault("uid", str(uuid.uuid4()))
                meta.setdefault("creationTimestamp", to_rfc3339(self.clock()))
                meta["generation"] = 1
            else:
                meta["uid"] = old["metadata"]["uid"]
                meta["creationTimestamp"] = old["metadata"]["creationTimestamp"]
                changed = obj.get("spec") != old.get("spec")
                meta["generation"] = old["metadata"].get("generation", 1) + (1 if changed else 0)
            meta["resourceVersion"] = str(next(self.versions))
            self.objects[key] = copy.deepcopy(obj)
            return copy.deepcopy(obj)

    def get(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        with self.lock:
            obj = self.objects.get((plural, namespace if RESOURCES[plural][2] else "", name))
            return copy.deepcopy(obj) if obj else None

    def list(self, plural: str, namespace: str | None, selector: str = "") -> list[dict[str, Any]]:
        with self.lock:
            return [copy.deepcopy(o) for (p, ns, _), o in sorted(self.objects.items())
                    if p == plural and (namespace is None or ns == namespace)
                    and selector_matches(selector, (o.get("metadata") or {}).get("labels") or {})]

    def delete(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        with self.lock:
            return self.objects.pop((plural, namespace if RESOURCES[plural][2] else "", name), None)


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": reason, "code": code}


def make_handler(store: Store, on_reset: Any = None) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no 40 ms Nagle stall per reply

        def log_message(self, *args: object) -> None:
            pass

        def _send(self, code: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> Any:
            length = int(self.headers.get("Content-Length") or 0)
            return json.loads(self.rfile.read(length) or b"null")

        def _route(self, method: str) -> None:
            url = urlparse(self.path)
            store.requests.append((method, url.path))
            if method == "DELETE":  # DeleteOptions are not used, but must be read off a kept-alive connection
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if url.path in ("/version", "/version/"):
                return self._send(200, {"major": "1", "minor": "31", "gitVersion": "v1.31.0-slow-injection-test"})
            if url.path == "/stand-in/faults":  # not Kubernetes: the lab's fault switch
                if method == "POST":
                    body = self._body()
                    for namespace, knobs in body.items():
                        store.faults[namespace] = {k: str(v) for k, v in (knobs or {}).items()}
                return self._send(200, store.faults)
            if url.path == "/stand-in/reset" and method == "POST":  # not Kubernetes: the lab's clean slate
                with store.lock:
                    store.objects.clear()
                    store.faults.clear()
                    if on_reset is not None:
                        on_reset(store)
                return self._send(200, {"objects": len(store.objects)})
            if url.path in ("/api", "/api/"):
                return self._send(200, {"kind": "APIVersions", "versions": ["v1"]})
            if url.path in ("/apis", "/apis/"):
                groups = sorted({v.split("/")[0] for v, _, _ in RESOURCES.values() if "/" in v})
                return self._send(200, {"kind": "APIGroupList", "groups": [
                    {"name": g, "versions": [{"groupVersion": f"{g}/v1", "version": "v1"}],
                     "preferredVersion": {"groupVersion": f"{g}/v1", "version": "v1"}} for g in groups]})
            if (log := _POD_LOG.match(url.path)) and method == "GET":
                return serve_pod_log(self, store, log.group("ns"), log.group("name"), parse_qs(url.query))
            m = _PATH.match(url.path)
            if not m or m.group("plural") not in RESOURCES:
                return self._send(404, _status(404, "NotFound", f"no route {url.path}"))
            plural, name, sub = m.group("plural"), m.group("name"), m.group("sub")
            version = m.group("core") or f"{m.group('group')}/{m.group('version')}"
            if RESOURCES[plural][0] != version:
                return self._send(404, _status(404, "NotFound", f"{plural} is not served at {version}"))
            namespace = m.group("ns")
            if plural == "namespaces" and name is None and m.group("ns"):
                plural, name, namespace = "namespaces", m.group("ns"), None
            query = parse_qs(url.query)
            try:
                return self._dispatch(method, plural, namespace or "default", name, sub, query, namespace is None)
            except (ValueError, KeyError, TypeError, IndexError) as err:
                return self._send(422, _status(422, "Invalid", f"{type(err).__name__}: {err}"))

        def _dispatch(self, method: str, plural: str, namespace: str, name: str | None, sub: str | None,
                      query: dict[str, list[str]], all_namespaces: bool) -> None:
            kind = RESOURCES[plural][1]
            if name is None:
                if method == "GET":
                    items = store.list(plural, None if all_namespaces else namespace,
                                       (query.get("labelSelector") or [""])[0])
                    return self._send(200, {"kind": f"{kind}List", "apiVersion": RESOURCES[plural][0],
                                            "metadata": {"resourceVersion": str(next(store.versions))},
                                            "items": items})
                if method == "POST":
                    body = self._body()
                    body.setdefault("metadata", {}).setdefault("namespace", namespace)
                    if plural == "pods":
                        body.setdefault("status", {"phase": "Pending"})  # as the API server does
                    if store.get(plural, namespace, body["metadata"]["name"]) is not None:
                        return self._send(409, _status(409, "AlreadyExists",
                                                       f'{plural} "{body["metadata"]["name"]}" already exists'))
                    return self._send(201, store.put(plural, body, creating=True))
                return self._send(405, _status(405, "MethodNotAllowed", method))
            current = store.get(plural, namespace, name)
            if current is None:
                return self._send(404, _status(404, "NotFound", f'{plural} "{name}" not found'))
            if sub == "scale":
                return self._scale(method, plural, current)
            if method == "GET":
                return self._send(200, current)
            if method == "DELETE":
                store.delete(plural, namespace, name)
                return self._send(200, _status(200, "Deleted", name) | {"status": "Success"})
            if method == "PUT":
                body = self._body()
                if sub == "status":
                    current["status"] = body.get("status")
                    body = current
                return self._send(200, store.put(plural, body))
            if method == "PATCH":
                patch = self._body()
                if "json-patch" in (self.headers.get("Content-Type") or ""):
                    updated = json_patch(current, patch)
                else:
                    updated = merge_patch(current, patch)
                if sub == "status":
                    current["status"] = updated.get("status")
                    updated = current
                return self._send(200, store.put(plural, updated))
            return self._send(405, _status(405, "MethodNotAllowed", method))

        def _scale(self, method: str, plural: str, current: dict[str, Any]) -> None:
            if method in ("PUT", "PATCH"):
                body = self._body()
                replicas = (body.get("spec") or {}).get("replicas")
                if not isinstance(replicas, int) or replicas < 0:
                    return self._send(422, _status(422, "Invalid", "spec.replicas must be a whole number ≥ 0"))
                current["spec"]["replicas"] = replicas
                current = store.put(plural, current)
            meta = current["metadata"]
            return self._send(200, {
                "kind": "Scale", "apiVersion": "autoscaling/v1",
                "metadata": {"name": meta["name"], "namespace": meta.get("namespace"),
                             "resourceVersion": meta["resourceVersion"], "uid": meta["uid"]},
                "spec": {"replicas": current["spec"].get("replicas", 0)},
                "status": {"replicas": (current.get("status") or {}).get("replicas", 0)},
            })

        def do_GET(self) -> None:  # noqa: N802
            self._route("GET")

        def do_POST(self) -> None:  # noqa: N802
            self._route("POST")

        def do_PUT(self) -> None:  # noqa: N802
            self._route("PUT")

        def do_PATCH(self) -> None:  # noqa: N802
            self._route("PATCH")

        def do_DELETE(self) -> None:  # noqa: N802
            self._route("DELETE")

    return Handler


def serve_pod_log(handler: BaseHTTPRequestHandler, store: Store, namespace: str, name: str,
                  query: dict[str, list[str]]) -> None:
    """`pods/{name}/log` with container, tailLines, sinceSeconds, timestamps and follow (streams until the
    container ends, then closes the connection, as the kubelet does)."""
    import time

    from include.slow_injection.lab.kube.pod_runtime import format_line, log_lines

    def arg(key: str) -> str | None:
        return (query.get(key) or [None])[0]

    pod = store.get("pods", namespace, name)
    if pod is None:
        return handler._send(404, _status(404, "NotFound", f'pods "{name}" not found'))
    container = arg("container") or pod["spec"]["containers"][0]["name"]
    with store.lock:
        found = log_lines(store, pod, container)
    if found is None:
        return handler._send(400, _status(400, "BadRequest", f'container "{container}" in pod "{name}" is '
                                                             "waiting to start: ContainerCreating"))
    lines, finished = found
    sent = len(lines)  # what the stream has covered (before sinceSeconds/tailLines pick what is shown)
    stamps, follow = (str(arg(k)).lower() == "true" for k in ("timestamps", "follow"))  # the client sends True
    if arg("sinceSeconds"):
        since = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=int(arg("sinceSeconds")))
        lines = [line for line in lines if line[0] >= since]
    if arg("tailLines"):
        lines = lines[-int(arg("tailLines")):] if int(arg("tailLines")) > 0 else []
    if not follow or finished:
        data = b"".join(format_line(at, text, stamps) for at, text in lines)
        handler.send_response(200)
        handler.send_header("Content-Type", "text/plain")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)
        return None
    handler.send_response(200)
    handler.send_header("Content-Type", "text/plain")
    handler.send_header("Connection", "close")  # no length: the stream ends when the container does
    handler.end_headers()
    handler.close_connection = True
    handler.wfile.write(b"".join(format_line(at, text, stamps) for at, text in lines))
    handler.wfile.flush()
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        time.sleep(0.05)
        with store.lock:
            found = log_lines(store, pod, container) if store.get("pods", namespace, name) else None
        if found is None:
            return None
        now_lines, finished = found
        if len(now_lines) > sent:
            handler.wfile.write(b"".join(format_line(at, text, stamps) for at, text in now_lines[sent:]))
            handler.wfile.flush()
            sent = len(now_lines)
        if finished:
            return None
    return None


class KubernetesTestServer:
    def __init__(self, port: int = 0, on_reset: Any = None) -> None:
        self.store = Store()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), make_handler(self.store, on_reset))
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def kubeconfig(self, context: str = "test") -> dict[str, Any]:
        return {"apiVersion": "v1", "kind": "Config", "current-context": context,
                "clusters": [{"name": context, "cluster": {"server": self.url}}],
                "users": [{"name": context, "user": {"token": "test-token"}}],
                "contexts": [{"name": context, "context": {"cluster": context, "user": context}}]}

    def __enter__(self) -> KubernetesTestServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
