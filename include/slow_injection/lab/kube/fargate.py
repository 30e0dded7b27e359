"""EKS Fargate, emulated: the one part of the control plane that is AWS's and not open source. Everything
else under the tests is upstream Kubernetes. Kept small on purpose; what it does, as EKS documents it:

- a mutating admission webhook (EKS runs one too): a new pod whose namespace and labels match a Fargate
  profile (the alphabetically first, or the one its `eks.amazonaws.com/fargate-profile` label names) gets
  `schedulerName: fargate-scheduler` and that label;
- the fargate-scheduler: each such pod gets a node of its own (a kwok node labelled
  `eks.amazonaws.com/compute-type: fargate`, tainted so nothing else lands there), the `CapacityProvisioned`
  annotation rounded up to Fargate's sizes (kubernetes/right_sizing.py), and is bound to the node; a pod
  above the largest size stays Pending with a FailedScheduling event. The node goes when its pod goes.
Unmatched pods keep the default scheduler: onto EC2 nodes if any fit, else Pending (as in EKS).

Profiles come from the ConfigMap kube-system/fargate-profiles (`profiles.json`: a list of
`{"name", "selectors": [{"namespace", "labels"}]}`, the shape of eks.describe_fargate_profile); tests and the
lab write it with `set_profiles`, standing for `eks create-fargate-profile`.

    python -m include.slow_injection.lab.kube.fargate --kubeconfig K --port P --cert-dir DIR
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import hashlib
import json
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from include.slow_injection.kubernetes.fargate_profiles import PROFILE_LABEL, FargateProfile, choose_profile
from include.slow_injection.kubernetes.right_sizing import fargate_size, pod_facts, pod_request

SCHEDULER = "fargate-scheduler"
COMPUTE_TYPE = "eks.amazonaws.com/compute-type"
POD_OF_NODE = "slow-injection.io/fargate-pod"  # ns/name of the one pod a Fargate node runs
PROFILES = ("kube-system", "fargate-profiles")
WEBHOOK = "slow-injection-fargate-emulation"


def set_profiles(api_client: Any, profiles: list[dict[str, Any]]) -> None:
    """Stand-in for `eks create-fargate-profile`: the profiles the emulation matches pods against."""
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    core = client.CoreV1Api(api_client)
    body = {
        "metadata": {"name": PROFILES[1], "namespace": PROFILES[0]},
        "data": {"profiles.json": json.dumps(profiles)},
    }
    try:
        core.replace_namespaced_config_map(PROFILES[1], PROFILES[0], body)
    except ApiException as err:
        if err.status != 404:
            raise
        core.create_namespaced_config_map(PROFILES[0], body)


class FargateEmulation:
    def __init__(self, api_client: Any) -> None:
        from kubernetes import client

        self.core = client.CoreV1Api(api_client)
        self.admission = client.AdmissionregistrationV1Api(api_client)
        self.refused: set[str] = set()

    # --- webhook -------------------------------------------------------------------------
    def profiles(self) -> list[FargateProfile]:
        from kubernetes.client.rest import ApiException

        try:
            cm = self.core.read_namespaced_config_map(PROFILES[1], PROFILES[0])
        except ApiException as err:
            if err.status == 404:
                return []
            raise
        return [FargateProfile.from_eks(p) for p in json.loads((cm.data or {}).get("profiles.json") or "[]")]

    def mutate(self, review: dict[str, Any]) -> dict[str, Any]:
        request = review["request"]
        pod = request.get("object") or {}
        meta = pod.get("metadata") or {}
        labels = meta.get("labels") or {}
        namespace = request.get("namespace") or meta.get("namespace") or ""
        response: dict[str, Any] = {"uid": request["uid"], "allowed": True}
        scheduler = (pod.get("spec") or {}).get("schedulerName")
        profile = (
            choose_profile(self.profiles(), namespace, labels) if scheduler in (None, "default-scheduler") else None
        )
        if profile is not None:
            patch: list[dict[str, Any]] = [{"op": "add", "path": "/spec/schedulerName", "value": SCHEDULER}]
            if labels:
                patch.append(
                    {"op": "add", "path": "/metadata/labels/" + PROFILE_LABEL.replace("/", "~1"), "value": profile.name}
                )
            else:
                patch.append({"op": "add", "path": "/metadata/labels", "value": {PROFILE_LABEL: profile.name}})
            response.update(patchType="JSONPatch", patch=base64.b64encode(json.dumps(patch).encode()).decode())
        return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response}

    def register(self, port: int, ca_bundle: bytes) -> None:
        body: dict[str, Any] = {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "MutatingWebhookConfiguration",
            "metadata": {"name": WEBHOOK},
            "webhooks": [
                {
                    "name": "fargate.slow-injection.io",
                    "admissionReviewVersions": ["v1"],
                    "sideEffects": "None",
                    "failurePolicy": "Fail",
                    "timeoutSeconds": 5,
                    "reinvocationPolicy": "Never",
                    "clientConfig": {
                        "url": f"https://127.0.0.1:{port}/mutate",
                        "caBundle": base64.b64encode(ca_bundle).decode(),
                    },
                    "namespaceSelector": {
                        "matchExpressions": [
                            {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["kube-system"]}
                        ]
                    },
                    "rules": [
                        {
                            "apiGroups": [""],
                            "apiVersions": ["v1"],
                            "operations": ["CREATE"],
                            "resources": ["pods"],
                            "scope": "Namespaced",
                        }
                    ],
                }
            ],
        }
        from kubernetes.client.rest import ApiException

        try:
            current = self.admission.read_mutating_webhook_configuration(WEBHOOK)
            body["metadata"]["resourceVersion"] = current.metadata.resource_version
            self.admission.replace_mutating_webhook_configuration(WEBHOOK, body)
        except ApiException as err:
            if err.status != 404:
                raise
            self.admission.create_mutating_webhook_configuration(body)

    # --- the fargate-scheduler -----------------------------------------------------------
    def schedule_once(self) -> None:
        pods = json.loads(
            self.core.list_pod_for_all_namespaces(
                field_selector=f"spec.schedulerName={SCHEDULER},spec.nodeName=", _preload_content=False
            ).data
        )["items"]
        for pod in pods:
            if not (pod["metadata"].get("deletionTimestamp")):
                self._place(pod)
        self._remove_nodes_without_pods()

    def _place(self, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        request = pod_request(pod_facts(pod))
        size = fargate_size(request.cpu, request.memory)
        where = f"{meta['namespace']}/{meta['name']}"
        if size is None:
            if meta["uid"] not in self.refused:
                self.refused.add(meta["uid"])
                self._event(
                    pod,
                    "FailedScheduling",
                    f"Pod not supported on Fargate: its requests ({request}) exceed the largest Fargate size",
                )
            return
        node = "fargate-ip-" + hashlib.sha1(meta["uid"].encode()).hexdigest()[:12]
        from kubernetes.client.rest import ApiException

        try:
            self.core.create_node(
                {
                    "apiVersion": "v1",
                    "kind": "Node",
                    "metadata": {
                        "name": node,
                        "annotations": {"kwok.x-k8s.io/node": "fake", POD_OF_NODE: where},
                        "labels": {
                            COMPUTE_TYPE: "fargate",
                            "kubernetes.io/hostname": node,
                            "type": "kwok",
                            "kubernetes.io/os": "linux",
                        },
                    },
                    "spec": {"taints": [{"key": COMPUTE_TYPE, "value": "fargate", "effect": "NoSchedule"}]},
                    "status": {
                        "allocatable": {"cpu": f"{size.vcpu:g}", "memory": str(size.memory_bytes), "pods": "1"},
                        "capacity": {"cpu": f"{size.vcpu:g}", "memory": str(size.memory_bytes), "pods": "1"},
                    },
                }
            )
        except ApiException as err:
            if err.status != 409:
                raise
        self.core.patch_namespaced_pod(
            meta["name"], meta["namespace"], {"metadata": {"annotations": {"CapacityProvisioned": str(size)}}}
        )
        try:
            self.core.create_namespaced_pod_binding(
                meta["name"],
                meta["namespace"],
                {
                    "apiVersion": "v1",
                    "kind": "Binding",
                    "metadata": {"name": meta["name"]},
                    "target": {"apiVersion": "v1", "kind": "Node", "name": node},
                },
                _preload_content=False,
            )
        except ApiException as err:
            if err.status not in (404, 409):  # deleted meanwhile, or bound already
                raise

    def _remove_nodes_without_pods(self) -> None:
        from kubernetes.client.rest import ApiException

        nodes = self.core.list_node(label_selector=f"{COMPUTE_TYPE}=fargate").items
        for node in nodes:
            where = (node.metadata.annotations or {}).get(POD_OF_NODE, "/")
            namespace, name = where.split("/", 1)
            try:
                pod = self.core.read_namespaced_pod(name, namespace)
                if pod.spec.node_name == node.metadata.name:
                    continue
            except ApiException as err:
                if err.status != 404:
                    raise
            age = (dt.datetime.now(dt.UTC) - node.metadata.creation_timestamp).total_seconds()
            if age > 5:  # not one whose binding is still on its way
                try:
                    self.core.delete_node(node.metadata.name)
                except ApiException as err:
                    if err.status != 404:
                        raise

    def _event(self, pod: dict[str, Any], reason: str, message: str) -> None:
        meta = pod["metadata"]
        now = dt.datetime.now(dt.UTC).isoformat()
        self.core.create_namespaced_event(
            meta["namespace"],
            {
                "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
                "involvedObject": {
                    "kind": "Pod",
                    "namespace": meta["namespace"],
                    "name": meta["name"],
                    "uid": meta["uid"],
                    "apiVersion": "v1",
                },
                "reason": reason,
                "message": message,
                "type": "Warning",
                "source": {"component": SCHEDULER},
                "firstTimestamp": now,
                "lastTimestamp": now,
                "count": 1,
            },
        )
        print(f"{meta['namespace']}/{meta['name']}: {reason}: {message}", flush=True)


def serve(emulation: FargateEmulation, port: int, cert: Path, key: Path) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._send(200, {"status": "ok"} if self.path == "/healthz" else {"error": "not found"})

        def do_POST(self) -> None:
            review = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
            self._send(200, emulation.mutate(review))

        def _send(self, code: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert), str(key))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main(argv: list[str] | None = None) -> int:
    from kubernetes import config

    from include.slow_injection.lab.kube.pki import Pki

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cert-dir", type=Path, required=True)
    parser.add_argument("--interval", type=float, default=0.25)
    args = parser.parse_args(argv)
    pki = Pki(args.cert_dir)
    cert, key = pki.serving("fargate-webhook", ["127.0.0.1"])
    emulation = FargateEmulation(config.new_client_from_config_dict(json.loads(Path(args.kubeconfig).read_text())))
    emulation.register(args.port, pki.ca_cert_path.read_bytes())
    serve(emulation, args.port, cert, key)
    print(f"Fargate emulation: webhook on https://127.0.0.1:{args.port}/mutate, fargate-scheduler running", flush=True)
    while True:
        try:
            emulation.schedule_once()
        except Exception as err:
            print(f"fargate-scheduler pass failed: {err}", flush=True)
        time.sleep(args.interval)


if __name__ == "__main__":
    sys.exit(main())
