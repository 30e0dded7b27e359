"""A real Kubernetes control plane on loopback, from upstream binaries (deploy/kube/build.sh): etcd,
kube-apiserver (RBAC on), kube-controller-manager (every default controller: Deployment/ReplicaSet,
CronJob, Job, TTL-after-finished, garbage collector, namespace lifecycle, service accounts), kube-scheduler
and kwok (nodes and pod status from Stages; its kubelet-like server answers the API server's containerLogs
with the files kwok Logs/ClusterLogs objects name), plus our small Fargate emulation (fargate.py). Own PKI and
tokens, free ports, stopped by PID, logs kept under its folder.

    python -m include.slow_injection.lab.kube up --root .kube   # prints the kubeconfig path, stays up
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from include.slow_injection.lab.free_ports import free_ports
from include.slow_injection.lab.kube.pki import Pki
from include.slow_injection.lab.processes import ProcessBook

ROOT = Path(__file__).resolve().parents[4]
BUILD_SCRIPT = ROOT / "deploy" / "kube" / "build.sh"
# kwok's Logs/ClusterLogs CRDs (upstream's, applied before kwok starts) and our one extra pod Stage.
KWOK_DIR = ROOT / "deploy" / "kube" / "kwok"
SERVICE_CIDR = "10.96.0.0/16"
# Users of the static token file; the controller-manager and scheduler names are the ones the API server's
# bootstrap RBAC grants their roles to.
USERS = {
    "admin": ("admin", "system:masters"),
    "kube-controller-manager": ("system:kube-controller-manager", ""),
    "kube-scheduler": ("system:kube-scheduler", ""),
    "kwok": ("kwok", "system:masters"),
    "fargate": ("eks:fargate-emulation", "system:masters"),
}


def binaries() -> Path:
    """The folder of upstream binaries: KUBEBUILDER_ASSETS when it holds them all, else built (once) and cached."""
    proc = subprocess.run(["bash", str(BUILD_SCRIPT)], stdout=subprocess.PIPE, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{BUILD_SCRIPT} failed (exit {proc.returncode}); its progress is above")
    return Path(proc.stdout.strip().splitlines()[-1])


@dataclass
class ControlPlane:
    """`root` holds the PKI, tokens, etcd data, kubeconfigs and one log per component."""

    root: Path
    bin_dir: Path | None = None
    ec2_nodes: int = 2  # kwok nodes standing for blue's EC2 node group
    ports: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.root = self.root.resolve()
        self.book = ProcessBook(self.root / "pids.json")
        self.pki = Pki(self.root / "pki")
        self.logs = self.root / "logs"
        self.state_file = self.root / "control-plane.json"

    # --- addresses and credentials -------------------------------------------------------
    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.ports['apiserver']}"

    def token(self, user: str) -> str:
        return self._tokens()[user]

    def _tokens(self) -> dict[str, str]:
        path = self.root / "tokens.json"
        if not path.exists():
            path.write_text(json.dumps({u: secrets.token_hex(16) for u in USERS}))
        return json.loads(path.read_text())

    def kubeconfig(
        self,
        user: str = "admin",
        token: str | None = None,
        context: str = "slow-injection-test",
        namespace: str | None = None,
    ) -> dict[str, Any]:
        ca = base64.b64encode(self.pki.ca_cert_path.read_bytes()).decode()
        ctx: dict[str, Any] = {"cluster": context, "user": user}
        if namespace:
            ctx["namespace"] = namespace
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": context,
            "clusters": [{"name": context, "cluster": {"server": self.url, "certificate-authority-data": ca}}],
            "users": [{"name": user, "user": {"token": token or self.token(user)}}],
            "contexts": [{"name": context, "context": ctx}],
        }

    def kubeconfig_file(self, user: str = "admin", token: str | None = None, name: str | None = None) -> Path:
        path = self.root / "kubeconfigs" / f"{name or user}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.kubeconfig(user, token)))
        return path

    def api_client(self, user: str = "admin", token: str | None = None) -> Any:
        from kubernetes import config

        return config.new_client_from_config_dict(self.kubeconfig(user, token))

    # --- life cycle ----------------------------------------------------------------------
    def start(self, timeout: float = 60.0) -> ControlPlane:
        bin_dir = self.bin_dir or binaries()
        started = time.monotonic()
        names = ("etcd", "etcd_peer", "apiserver", "controller_manager", "scheduler", "kwok", "fargate")
        self.ports = dict(zip(names, free_ports(len(names)), strict=False))
        self.state_file.write_text(json.dumps({"ports": self.ports, "bin_dir": str(bin_dir)}))
        tokens = self._tokens()
        token_file = self.root / "tokens.csv"
        token_file.write_text("".join(f'{tokens[u]},{name},{u},"{groups}"\n' for u, (name, groups) in USERS.items()))
        serving_crt, serving_key = self.pki.serving(
            "apiserver",
            ["127.0.0.1", "localhost", "10.96.0.1", "kubernetes", "kubernetes.default", "kubernetes.default.svc"],
        )
        sa_key, sa_pub = self.pki.service_account_key()
        # kwok's kubelet-like server (containerLogs, served from the files its Logs/ClusterLogs name): every
        # kwok node reports InternalIP 127.0.0.1 and kubelet port p['kwok']; the API server verifies its cert.
        kwok_crt, kwok_key = self.pki.serving("kwok", ["127.0.0.1", "localhost"])
        etcd_data = self.root / "etcd"
        p = self.ports
        self.book.start(
            "etcd",
            [
                str(bin_dir / "etcd"),
                "--name",
                "default",
                "--data-dir",
                str(etcd_data),
                "--listen-client-urls",
                f"http://127.0.0.1:{p['etcd']}",
                "--advertise-client-urls",
                f"http://127.0.0.1:{p['etcd']}",
                "--listen-peer-urls",
                f"http://127.0.0.1:{p['etcd_peer']}",
                "--initial-advertise-peer-urls",
                f"http://127.0.0.1:{p['etcd_peer']}",
                "--initial-cluster",
                f"default=http://127.0.0.1:{p['etcd_peer']}",
                "--unsafe-no-fsync",
                "--log-level",
                "warn",
            ],
            self.logs / "etcd.log",
        )
        self.book.start(
            "kube-apiserver",
            [
                str(bin_dir / "kube-apiserver"),
                f"--etcd-servers=http://127.0.0.1:{p['etcd']}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={p['apiserver']}",
                f"--cert-dir={self.root / 'apiserver-certs'}",
                f"--tls-cert-file={serving_crt}",
                f"--tls-private-key-file={serving_key}",
                f"--client-ca-file={self.pki.ca_cert_path}",
                f"--token-auth-file={token_file}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={sa_pub}",
                f"--service-account-signing-key-file={sa_key}",
                "--authorization-mode=RBAC",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--endpoint-reconciler-type=none",
                "--allow-privileged=true",
                "--profiling=false",
                f"--kubelet-certificate-authority={self.pki.ca_cert_path}",
                "--kubelet-preferred-address-types=InternalIP",
                "--v=1",
            ],
            self.logs / "kube-apiserver.log",
        )
        self._wait(self._api_ready, "kube-apiserver /readyz", started + timeout)
        kwok_crds = self._apply_kwok_crds()
        for user in ("kube-controller-manager", "kube-scheduler", "kwok", "fargate"):
            self.kubeconfig_file(user)
        kubeconfigs = self.root / "kubeconfigs"
        self.book.start(
            "kube-controller-manager",
            [
                str(bin_dir / "kube-controller-manager"),
                f"--kubeconfig={kubeconfigs / 'kube-controller-manager.json'}",
                f"--authentication-kubeconfig={kubeconfigs / 'kube-controller-manager.json'}",
                f"--authorization-kubeconfig={kubeconfigs / 'kube-controller-manager.json'}",
                "--bind-address=127.0.0.1",
                f"--secure-port={p['controller_manager']}",
                f"--cert-dir={self.root / 'controller-manager-certs'}",
                "--leader-elect=false",
                "--use-service-account-credentials=true",
                f"--service-account-private-key-file={sa_key}",
                f"--root-ca-file={self.pki.ca_cert_path}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--profiling=false",
                "--v=1",
            ],
            self.logs / "kube-controller-manager.log",
        )
        self.book.start(
            "kube-scheduler",
            [
                str(bin_dir / "kube-scheduler"),
                f"--kubeconfig={kubeconfigs / 'kube-scheduler.json'}",
                f"--authentication-kubeconfig={kubeconfigs / 'kube-scheduler.json'}",
                f"--authorization-kubeconfig={kubeconfigs / 'kube-scheduler.json'}",
                "--bind-address=127.0.0.1",
                f"--secure-port={p['scheduler']}",
                "--leader-elect=false",
                "--profiling=false",
                "--v=1",
            ],
            self.logs / "kube-scheduler.log",
        )
        self._wait(lambda: self._established(kwok_crds), "kwok's Logs/ClusterLogs CRDs", started + timeout)
        self.book.start(
            "kwok",
            [
                str(bin_dir / "kwok"),
                f"--kubeconfig={kubeconfigs / 'kwok.json'}",
                "--manage-all-nodes=false",
                "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
                # node Leases renewed every 10 s: without, kwok heartbeats about once a minute, past the node
                # controller's 50 s grace, so nodes flap NotReady and their pods stay Ready=False for good
                "--node-lease-duration-seconds=40",
                f"--server-address=127.0.0.1:{p['kwok']}",
                "--node-ip=127.0.0.1",
                "--cidr=10.244.0.0/16",
                f"--node-port={p['kwok']}",
                f"--tls-cert-file={kwok_crt}",
                f"--tls-private-key-file={kwok_key}",
                "--enable-crds=Logs,ClusterLogs",
                f"--config={bin_dir / 'kwok-stages.yaml'}",
                f"--config={KWOK_DIR / 'stages.yaml'}",
            ],
            self.logs / "kwok.log",
        )
        self.book.start(
            "fargate",
            [
                sys.executable,
                "-m",
                "include.slow_injection.lab.kube.fargate",
                f"--kubeconfig={kubeconfigs / 'fargate.json'}",
                f"--port={p['fargate']}",
                f"--cert-dir={self.pki.root}",
            ],
            self.logs / "fargate.log",
            env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))},
        )
        self._wait(
            lambda: self._healthy(p["controller_manager"]), "kube-controller-manager /healthz", started + timeout
        )
        self._wait(lambda: self._healthy(p["scheduler"]), "kube-scheduler /healthz", started + timeout)
        self._wait(
            self._default_service_account, "the default ServiceAccount (service-account controller)", started + timeout
        )
        self._wait(
            lambda: self._http_ok(f"https://127.0.0.1:{p['fargate']}/healthz"),
            "the Fargate emulation",
            started + timeout,
        )
        self._wait(lambda: self._http_ok(f"https://127.0.0.1:{p['kwok']}/healthz"), "kwok's server", started + timeout)
        self._add_ec2_nodes()
        self.started_in = time.monotonic() - started
        return self

    def stop(self) -> None:
        self.book.stop_all(grace=5.0)

    def __enter__(self) -> ControlPlane:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @classmethod
    def attach(cls, root: Path) -> ControlPlane:
        """The control plane another process started under `root` (its ports from control-plane.json)."""
        plane = cls(root)
        plane.ports = json.loads(plane.state_file.read_text())["ports"]
        return plane

    # --- readiness -----------------------------------------------------------------------
    def _wait(self, ready: Any, what: str, deadline: float) -> None:
        last: Any = None
        while time.monotonic() < deadline:
            try:
                if ready():
                    return
            except Exception as err:
                last = err
            self._check_alive(what)
            time.sleep(0.2)
        raise TimeoutError(f"control plane: {what} not ready in time (last: {last}); logs in {self.logs}")

    def _check_alive(self, what: str) -> None:
        for name in self.book.exited():
            log = self.logs / f"{name}.log"
            tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
            raise RuntimeError(f"control plane: {name} exited while waiting for {what}; {log}:\n{tail}")

    def _context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.pki.ca_cert_path))

    def _api_get(self, path: str) -> tuple[int, bytes]:
        request = urllib.request.Request(self.url + path, headers={"Authorization": f"Bearer {self.token('admin')}"})
        try:
            with urllib.request.urlopen(request, timeout=5, context=self._context()) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as err:
            return err.code, err.read()

    def _api_ready(self) -> bool:
        return self._api_get("/readyz")[0] == 200

    def _healthy(self, port: int) -> bool:
        return self._http_ok(f"https://127.0.0.1:{port}/healthz", verify=False)

    def _http_ok(self, url: str, verify: bool = True) -> bool:
        context = self._context() if verify else ssl._create_unverified_context()
        try:
            with urllib.request.urlopen(url, timeout=2, context=context) as resp:
                return resp.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def _apply_kwok_crds(self) -> list[str]:
        """kwok's Logs and ClusterLogs CRDs (what kwokctl applies before it starts kwok with --enable-crds).
        Plain HTTPS: importing the kubernetes client here would put seconds on the start-up's critical path."""
        import yaml

        names = []
        for crd in (d for d in yaml.safe_load_all((KWOK_DIR / "crds.yaml").read_text()) if d):
            names.append(crd["metadata"]["name"])
            request = urllib.request.Request(
                self.url + "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                data=json.dumps(crd).encode(),
                method="POST",
                headers={"Authorization": f"Bearer {self.token('admin')}", "Content-Type": "application/json"},
            )
            try:
                with urllib.request.urlopen(request, timeout=10, context=self._context()):
                    pass
            except urllib.error.HTTPError as err:
                if err.code != 409:  # already there: a restart on the same etcd data
                    raise RuntimeError(
                        f"control plane: CRD {names[-1]} refused: {err.code} {err.read()[:500]!r}"
                    ) from None
        return names

    def _established(self, crds: list[str]) -> bool:
        for name in crds:
            status, body = self._api_get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
            conditions = json.loads(body).get("status", {}).get("conditions", []) if status == 200 else []
            if not any(c["type"] == "Established" and c["status"] == "True" for c in conditions):
                return False
        return True

    def _default_service_account(self) -> bool:
        return self._api_get("/api/v1/namespaces/default/serviceaccounts/default")[0] == 200

    def _add_ec2_nodes(self) -> None:
        from kubernetes import client

        core = client.CoreV1Api(self.api_client())
        existing = {n.metadata.name for n in core.list_node().items}
        for i in range(self.ec2_nodes):
            name = f"ec2-node-{i}"
            if name not in existing:
                core.create_node(ec2_node(name))


def ec2_node(name: str) -> dict[str, Any]:
    """A kwok node standing for one EC2 instance of blue's managed node group."""
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {"kwok.x-k8s.io/node": "fake"},
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "type": "kwok",
                "eks.amazonaws.com/nodegroup": "ec2-general",
                "eks.amazonaws.com/capacityType": "ON_DEMAND",
            },
        },
        "status": {
            "allocatable": {"cpu": "16", "memory": "64Gi", "pods": "110"},
            "capacity": {"cpu": "16", "memory": "64Gi", "pods": "110"},
        },
    }


def main(argv: list[str] | None = None) -> int:
    import argparse
    import signal
    import threading

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("command", choices=["up", "build"])
    parser.add_argument("--root", type=Path, default=Path(".kube"))
    args = parser.parse_args(argv)
    if args.command == "build":
        print(binaries())
        return 0
    args.root.mkdir(parents=True, exist_ok=True)
    plane = ControlPlane(args.root).start()
    print(
        f"control plane up in {plane.started_in:.1f} s at {plane.url}; kubeconfig {plane.kubeconfig_file('admin')}",
        flush=True,
    )
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    try:
        done.wait()
    except KeyboardInterrupt:
        pass
    plane.stop()
    return 0
