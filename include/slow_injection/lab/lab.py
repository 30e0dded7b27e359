"""The lab on loopback: blue and green demo services, HAProxy in front, Prometheus, a load generator,
PostgreSQL with the services' data, and a real Kubernetes control plane (kube/control_plane.py: upstream
etcd, kube-apiserver, controller-manager and scheduler; nodes and pod status by kwok; Fargate scheduling
emulated) holding blue's workloads (kube/seed.py).

    python -m include.slow_injection.lab.lab start|stop [--root .lab]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from include.slow_injection.lab.free_ports import free_ports
from include.slow_injection.lab.kube import gateway_api_crds
from include.slow_injection.lab.kube.control_plane import ControlPlane
from include.slow_injection.lab.kube.seed import LabCluster
from include.slow_injection.lab.processes import ProcessBook

PACKAGES = {"haproxy": "haproxy", "prometheus": "prometheus"}


@dataclass(frozen=True)
class Ports:
    haproxy: int = 18080
    blue: int = 18081
    green: int = 18082
    prometheus: int = 19090
    postgres: int = 15432  # the Kubernetes control plane picks free ports of its own (kube/control-plane.json)
    green_postgres: int = 15433  # green's database server (blue's is `postgres`): logical replication between them

    @classmethod
    def free(cls) -> Ports:
        """Ports free now and claimed for this process (free_ports), so tests can run beside a demo."""
        return cls(*free_ports(len(fields(cls))))


def binary(name: str) -> str | None:
    """A program's path, looking in sbin too (CI's PATH may leave it out)."""
    return shutil.which(name) or shutil.which(name, path="/usr/local/sbin:/usr/sbin:/sbin")


def ensure_binaries(packages: Mapping[str, str] = PACKAGES) -> None:
    """Install programs (name → Debian package; by default HAProxy and Prometheus) from Debian's packages when
    missing (never started as services: we start them by PID)."""
    missing = [pkg for name, pkg in packages.items() if binary(name) is None]
    if not missing:
        return
    print(f"installing {', '.join(missing)} (Debian packages, --no-install-recommends) …", flush=True)
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
        check=True,
        env={"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
    )


class Lab:
    BASE_LATENCY_MS = 20.0  # both services' normal latency: "green 40 % slower" needs a baseline

    def __init__(
        self,
        root: Path,
        ports: Ports | None = None,
        scrape_interval: str = "1s",
        load_rate: float = 20.0,
        load_duration: float = 1800.0,
        kube: bool = True,
        route_controller: str | None = "wave",
        controller_delay: float = 1.0,
    ) -> None:
        self.root, self.ports = root.resolve(), ports or Ports()
        self.scrape_interval, self.load_rate, self.load_duration = scrape_interval, load_rate, load_duration
        self.with_kube = kube  # False: no control plane (tests of HAProxy/Prometheus alone)
        # What the route controller watches: "ingress", "httproute", None (none runs: a router writes HAProxy
        # itself), or "wave": as the lab wave's web router needs (alb_ingress → ingress, gateway_api →
        # httproute, haproxy → none; two writers of HAProxy's weights would undo each other).
        self.route_controller = wave_route_kind() if route_controller == "wave" else route_controller
        self.controller_delay = controller_delay
        self.book = ProcessBook(self.root / "pids.json")
        self.data = LabData(self.root / "data", self.ports.postgres, self.ports.green_postgres)
        self._plane: ControlPlane | None = None  # under kube/, with its own ProcessBook (kube/pids.json)

    # --- addresses -------------------------------------------------------------------------
    @property
    def admin_socket(self) -> Path:
        return self.root / "haproxy.sock"

    @property
    def frontend_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.haproxy}/"

    @property
    def prometheus_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.prometheus}"

    def service_url(self, env: str) -> str:
        return f"http://127.0.0.1:{getattr(self.ports, env)}"

    @property
    def load_file(self) -> Path:
        return self.root / "load.json"

    @property
    def plane(self) -> ControlPlane:
        """The lab's control plane; one another process started (`make demo`) is attached to."""
        if self._plane is None:
            self._plane = ControlPlane.attach(self.root / "kube")
        return self._plane

    @property
    def kube_url(self) -> str:
        return self.plane.url

    @property
    def kubeconfig(self) -> Path:
        """The `lab_kube` connection's kubeconfig: the token of a ServiceAccount bound to exactly the RBAC
        `slow-injection iam --only rbac` prints for the lab wave (the API server enforces it)."""
        return self.root / "kubeconfig.json"

    @property
    def admin_kubeconfig(self) -> Path:
        """The lab's own (cluster admin): seeding, reset, faults, tests reading objects, kubectl."""
        return self.root / "kube" / "kubeconfigs" / "admin.json"

    def kube_client(self) -> Any:
        """An official-client ApiClient for the lab's cluster, as admin."""
        from kubernetes import config

        return config.new_client_from_config_dict(json.loads(self.admin_kubeconfig.read_text()))

    @property
    def cluster(self) -> LabCluster:
        return LabCluster(self.kube_client())

    def airflow_env(self) -> dict[str, str]:
        """What Airflow needs to reach the lab: AIRFLOW_CONN_* connections."""
        http = {"conn_type": "http", "host": "127.0.0.1", "schema": "http"}
        return {
            "AIRFLOW_CONN_LAB_HAPROXY": json.dumps({"conn_type": "generic", "host": str(self.admin_socket)}),
            "AIRFLOW_CONN_LAB_PROMETHEUS": json.dumps({**http, "port": self.ports.prometheus}),
            "AIRFLOW_CONN_LAB_GREEN": json.dumps({**http, "port": self.ports.green}),
            "AIRFLOW_CONN_LAB_KUBE": json.dumps(
                {"conn_type": "kubernetes", "extra": {"kube_config_path": str(self.kubeconfig)}}
            ),
            **{f"AIRFLOW_CONN_LAB_{env.upper()}_DB": self.data.connection_uri(env) for env in ("blue", "green")},
        }

    def reset_platform(self) -> None:
        """The cluster back to blue only, through the API: green's Deployment, CronJob and Jobs deleted,
        blue's web Deployment and report CronJob as seeded (unsuspended, full size, no Job faults)."""
        self.cluster.reset()

    def set_job_fault(self, namespace: str, **knobs: Any) -> dict:
        """How the Jobs of `namespace`'s report CronJob behave from its next run on (kwok's stages on its
        jobTemplate's pod template): job_outcome="fail" | "hang" | "succeed", job_seconds=N."""
        return self.cluster.set_job_fault(namespace, **knobs)

    # --- configuration ---------------------------------------------------------------------
    def write_configs(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        p = self.ports
        (self.root / "haproxy.cfg").write_text(
            haproxy_cfg(
                f"{self.admin_socket} mode 600", f"127.0.0.1:{p.haproxy}", f"127.0.0.1:{p.blue}", f"127.0.0.1:{p.green}"
            )
        )
        (self.root / "prometheus.yml").write_text(
            prometheus_yml([f"127.0.0.1:{p.blue}", f"127.0.0.1:{p.green}"], self.scrape_interval)
        )

    # --- processes -------------------------------------------------------------------------
    def start(self) -> None:
        ensure_binaries()
        self.stop()
        self.write_configs()
        self.admin_socket.unlink(missing_ok=True)
        py = sys.executable
        logs = self.root / "logs"
        for env in ("blue", "green"):
            self.book.start(
                env,
                [
                    py,
                    "-m",
                    "include.slow_injection.lab.service",
                    "--env",
                    env,
                    "--port",
                    str(getattr(self.ports, env)),
                    "--latency-ms",
                    str(self.BASE_LATENCY_MS),
                ],
                logs / f"{env}.log",
            )
        self.book.start(
            "haproxy",
            [binary("haproxy") or "haproxy", "-db", "-f", str(self.root / "haproxy.cfg")],
            logs / "haproxy.log",
        )
        self.start_prometheus()
        if self.with_kube:
            self.start_kube()
        for env in ("blue", "green"):
            wait_http(f"{self.service_url(env)}/healthz", f"{env} service")
        wait_until(lambda: self.admin_socket.exists(), "HAProxy admin socket")
        wait_http(f"{self.prometheus_url}/-/ready", "Prometheus")
        self.data.start()
        self.book.start(
            "load",
            [
                py,
                "-m",
                "include.slow_injection.lab.load",
                "--url",
                self.frontend_url,
                "--rate",
                str(self.load_rate),
                "--duration",
                str(self.load_duration),
                "--out",
                str(self.load_file),
            ],
            logs / "load.log",
        )

    def start_kube(self) -> None:
        """A fresh control plane under kube/ (etcd's data from an earlier lab is dropped), the `lab_kube`
        kubeconfig, and blue's workloads seeded through the API (kube/seed.py)."""
        shutil.rmtree(self.root / "kube", ignore_errors=True)
        (self.root / "kube").mkdir(parents=True)
        self._plane = ControlPlane(self.root / "kube").start()
        self._plane.kubeconfig_file("admin")  # kube/kubeconfigs/admin.json
        cluster = self.cluster
        cluster.seed()
        try:
            crds = gateway_api_crds.crds_path(self._plane)
        except FileNotFoundError as err:
            print(f"lab: no HTTPRoute ({err})", flush=True)
        else:
            gateway_api_crds.install(cluster.api_client, crds)
        cluster.seed_routing()
        token = cluster.bind_driver(driver_rbac())
        self.kubeconfig.write_text(json.dumps(self._plane.kubeconfig("slow-injection", token, context="lab")))
        if self.route_controller:
            self.start_route_controller()

    @property
    def controller_log(self) -> Path:
        return self.root / "logs" / "route-controller.log"

    def start_route_controller(self) -> None:
        """The lab's stand-in for the AWS Load Balancer Controller or a Gateway implementation
        (route_controller.py): the Ingress's or HTTPRoute's split → HAProxy's weights, `controller_delay` s later."""
        from include.slow_injection.lab.kube import seed

        kind = self.route_controller
        ready_file = self.root / "route-controller.ready"
        config = {
            "kubeconfig": str(self.admin_kubeconfig),
            "socket": str(self.admin_socket),
            "backend": "web",
            "servers": {seed.BLUE_SERVICE: "blue", seed.GREEN_SERVICE: "green"},
            "kind": kind,
            "namespace": self.cluster.green_namespace,
            "name": seed.INGRESS if kind == "ingress" else seed.ROUTE,
            "hostname": "localhost",
            "delay": self.controller_delay,
            "ready_file": str(ready_file),
        }
        path = self.root / "route-controller.json"
        path.write_text(json.dumps(config, indent=1))
        ready_file.unlink(missing_ok=True)
        self.book.start(
            "route-controller",
            [sys.executable, "-m", "include.slow_injection.lab.route_controller", str(path)],
            self.controller_log,
        )
        wait_until(lambda: ready_file.exists(), f"the route controller ({kind}; {self.controller_log})")

    def stop_route_controller(self) -> None:
        self.book.stop("route-controller")

    def start_prometheus(self) -> None:
        self.book.start(
            "prometheus",
            [
                binary("prometheus") or "prometheus",
                f"--config.file={self.root / 'prometheus.yml'}",
                f"--storage.tsdb.path={self.root / 'prometheus-data'}",
                f"--web.listen-address=127.0.0.1:{self.ports.prometheus}",
                "--storage.tsdb.retention.time=2h",
                "--log.level=warn",
            ],
            self.root / "logs" / "prometheus.log",
        )

    def stop_prometheus(self) -> None:
        self.book.stop("prometheus")

    def stop(self) -> None:
        self.book.stop_all()
        ProcessBook(self.root / "kube" / "pids.json").stop_all(grace=5.0)  # the control plane's, by PID
        self._plane = None
        self.data.stop()

    # --- faults ----------------------------------------------------------------------------
    def set_fault(self, env: str, **fault: object) -> dict:
        return post_json(f"{self.service_url(env)}/fault", fault)

    def clear_faults(self) -> None:
        """Both services healthy, at their normal latency."""
        for env in ("blue", "green"):
            self.set_fault(env, error_rate=0.0, latency_ms=self.BASE_LATENCY_MS, unhealthy=False)

    def describe(self) -> dict:
        kube = (
            {
                "kube_url": self.kube_url,
                "kubeconfig": str(self.kubeconfig),
                "admin_kubeconfig": str(self.admin_kubeconfig),
            }
            if self.with_kube
            else {}
        )
        return {"root": str(self.root), **asdict(self.ports), **kube}


def driver_rbac() -> list[dict[str, Any]]:
    """What `slow-injection iam --only rbac include/waves/lab-web.yaml` prints: the platform driver's Roles
    (lab, lab-fargate) and ClusterRole."""
    from include.slow_injection.permissions import rbac_manifests
    from include.slow_injection.spec import load_wave
    from include.slow_injection.spec.loader import PROJECT_ROOT

    return rbac_manifests(load_wave(PROJECT_ROOT / "include" / "waves" / "lab-web.yaml"))


def wave_route_kind() -> str | None:
    """What the lab wave's web router has a controller watch: alb_ingress → "ingress", gateway_api →
    "httproute", anything else (haproxy writes the weights itself) → None."""
    from include.slow_injection.spec import load_wave
    from include.slow_injection.spec.loader import PROJECT_ROOT

    wave = load_wave(PROJECT_ROOT / "include" / "waves" / "lab-web.yaml")
    kinds = {"alb_ingress": "ingress", "gateway_api": "httproute"}
    return next((kinds[s.router.type] for s in wave.services if s.router and s.router.type in kinds), None)


def haproxy_cfg(stats_socket: str, bind: str, blue: str, green: str) -> str:
    """The lab's HAProxy: one backend `web`, servers `blue` (weight 100) and `green` (0), weighted
    round-robin (exact splits; weighted random is biased by its consistent-hash ring: see README)."""
    return f"""global
    stats socket {stats_socket} level admin
    maxconn 2000
defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
frontend web
    bind {bind}
    default_backend web
backend web
    balance roundrobin
    server blue {blue} weight 100
    server green {green} weight 0
"""


def prometheus_yml(targets: list[str], interval: str) -> str:
    shown = ", ".join(f'"{t}"' for t in targets)
    return f"""global:
  scrape_interval: {interval}
  evaluation_interval: {interval}
scrape_configs:
  - job_name: lab
    honor_labels: true
    static_configs:
      - targets: [{shown}]
"""


# The same lab in docker-compose.yaml (profile `lab`): containers by name, a TCP runtime API.
COMPOSE_LAB = {
    "haproxy.cfg": haproxy_cfg("ipv4@0.0.0.0:9999", "0.0.0.0:8080", "lab-blue:8081", "lab-green:8082"),
    "prometheus.yml": prometheus_yml(["lab-blue:8081", "lab-green:8082"], "1s"),
}


class LabData:
    """The lab's application data: an `orders` table in blue's and green's databases, two PostgreSQL
    servers on loopback with wal_level=logical. The lab wave's data migration replicates blue's orders to
    green (postgres_logical), cuts writes over and reverses; the data-sync gate compares the two."""

    ROWS = 500
    ENVS = ("blue", "green")

    def __init__(self, root: Path, port: int, green_port: int) -> None:
        from include.slow_injection.lab.postgres import Postgres

        self.servers = {
            "blue": Postgres(root / "blue", port, logical=True),
            "green": Postgres(root / "green", green_port, logical=True),
        }

    def connection_uri(self, env: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.servers[env].port}/lab_{env}"

    def start(self) -> None:
        for env in self.ENVS:
            self.servers[env].start()
            self.servers[env].create_database(f"lab_{env}")
        self.reset()

    def stop(self) -> None:
        for server in self.servers.values():
            server.stop()

    def sql(self, env: str, statement: str, *params: object) -> list[tuple]:
        """One statement in its own autocommit session that passes a migration's write fence."""
        import psycopg2

        conn = psycopg2.connect(host="127.0.0.1", port=self.servers[env].port, user="postgres", dbname=f"lab_{env}")
        try:
            conn.autocommit = True  # DROP SUBSCRIPTION refuses a transaction block
            with conn.cursor() as cur:
                cur.execute("SET default_transaction_read_only = off")
                cur.execute(statement, params or None)
                return cur.fetchall() if cur.description else []
        finally:
            conn.close()

    def reset(self) -> None:
        """Before any migration: no replication, both writable, blue holds the orders, green an empty table
        of the same shape (the migration's initial copy fills it)."""
        for env in self.ENVS:
            for (name,) in self.sql(env, "SELECT subname FROM pg_subscription"):
                self.sql(env, f'DROP SUBSCRIPTION "{name}"')  # and its slot on the other server
        for env in self.ENVS:
            for (name,) in self.sql(env, "SELECT pubname FROM pg_publication"):
                self.sql(env, f'DROP PUBLICATION "{name}"')
            self.sql(env, f"ALTER DATABASE lab_{env} RESET default_transaction_read_only")
            self.sql(env, "DROP TABLE IF EXISTS orders; CREATE TABLE orders (id int PRIMARY KEY, item text, qty int)")
        self.sql("blue", f"INSERT INTO orders SELECT i, 'item-' || i, i % 7 FROM generate_series(1, {self.ROWS}) i")

    def write_order(self, order_id: int) -> None:
        """An order written on the side that takes writes now (none while a cut-over pauses them)."""
        for env in self.ENVS:
            if not self._fenced(env):
                self.sql(env, "INSERT INTO orders VALUES (%s, 'lab-order', 1) ON CONFLICT DO NOTHING", order_id)
                return

    def _fenced(self, env: str) -> bool:
        rows = self.sql(
            env,
            "SELECT count(*) FROM pg_db_role_setting s, unnest(s.setconfig) c WHERE s.setrole = 0"
            " AND c = 'default_transaction_read_only=on'"
            " AND s.setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())",
        )
        return rows[0][0] > 0


def post_json(url: str, body: dict) -> dict:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), method="POST", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def wait_until(check, what: str, timeout: float = 30.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{what} did not come up within {timeout:.0f}s")


def wait_http(url: str, what: str, timeout: float = 30.0) -> None:
    def ok() -> bool:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200

    wait_until(ok, what, timeout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("command", choices=["start", "stop"])
    parser.add_argument("--root", default=".lab")
    args = parser.parse_args(argv)
    lab = Lab(Path(args.root))
    if args.command == "start":
        lab.start()
        print(json.dumps(lab.describe()))
    else:
        lab.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
