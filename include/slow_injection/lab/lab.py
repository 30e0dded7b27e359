"""The lab on loopback: blue and green demo services, HAProxy in front, Prometheus, a load generator,
and a stand-in Kubernetes API (not a cluster: an API server with simulated controllers).

    python -m include.slow_injection.lab.lab start|stop [--root .lab]
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from include.slow_injection.lab.processes import ProcessBook

PACKAGES = {"haproxy": "haproxy", "prometheus": "prometheus"}


@dataclass(frozen=True)
class Ports:
    haproxy: int = 18080
    blue: int = 18081
    green: int = 18082
    prometheus: int = 19090
    kube: int = 16443
    postgres: int = 15432

    @classmethod
    def free(cls) -> Ports:
        """Ports the kernel says are free now (for tests that run beside a demo)."""
        socks = [socket.socket() for _ in range(6)]
        try:
            for s in socks:
                s.bind(("127.0.0.1", 0))
            return cls(*(s.getsockname()[1] for s in socks))
        finally:
            for s in socks:
                s.close()


def binary(name: str) -> str | None:
    """A program's path, looking in sbin too (CI's PATH may leave it out)."""
    return shutil.which(name) or shutil.which(name, path="/usr/local/sbin:/usr/sbin:/sbin")


def ensure_binaries() -> None:
    """Install HAProxy and Prometheus from Debian's packages when missing (never started as services)."""
    missing = [pkg for name, pkg in PACKAGES.items() if binary(name) is None]
    if not missing:
        return
    print(f"installing {', '.join(missing)} (Debian packages, --no-install-recommends) …", flush=True)
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing], check=True,
                   env={"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})


class Lab:
    BASE_LATENCY_MS = 20.0  # both services' normal latency: "green 40 % slower" needs a baseline

    def __init__(self, root: Path, ports: Ports | None = None, scrape_interval: str = "1s",
                 load_rate: float = 20.0, load_duration: float = 1800.0) -> None:
        self.root, self.ports = root.resolve(), ports or Ports()
        self.scrape_interval, self.load_rate, self.load_duration = scrape_interval, load_rate, load_duration
        self.book = ProcessBook(self.root / "pids.json")
        self.data = LabData(self.root / "data", self.ports.postgres)

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
    def kube_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.kube}"

    @property
    def kubeconfig(self) -> Path:
        return self.root / "kubeconfig.json"

    def airflow_env(self) -> dict[str, str]:
        """What Airflow needs to reach the lab: AIRFLOW_CONN_* connections."""
        http = {"conn_type": "http", "host": "127.0.0.1", "schema": "http"}
        return {
            "AIRFLOW_CONN_LAB_HAPROXY": json.dumps({"conn_type": "generic", "host": str(self.admin_socket)}),
            "AIRFLOW_CONN_LAB_PROMETHEUS": json.dumps({**http, "port": self.ports.prometheus}),
            "AIRFLOW_CONN_LAB_GREEN": json.dumps({**http, "port": self.ports.green}),
            "AIRFLOW_CONN_LAB_KUBE": json.dumps({"conn_type": "kubernetes",
                                                 "extra": {"kube_config_path": str(self.kubeconfig)}}),
            **{f"AIRFLOW_CONN_LAB_{env.upper()}_DB": self.data.connection_uri(env) for env in ("blue", "green")},
        }

    def kube_call(self, path: str, body: dict | None = None) -> dict:
        """The stand-in's own endpoints (not Kubernetes): /stand-in/reset, /stand-in/faults."""
        return post_json(f"{self.kube_url}{path}", body or {})

    def reset_platform(self) -> None:
        """The stand-in cluster back to blue only: web Deployment and report CronJob, no faults."""
        self.kube_call("/stand-in/reset")

    def set_job_fault(self, namespace: str, **knobs: object) -> dict:
        """Stand-in knobs for every Job of a namespace, e.g. job_outcome="fail" (see controllers.py)."""
        return self.kube_call("/stand-in/faults", {namespace: {k.replace("_", "-"): v for k, v in knobs.items()}})

    # --- configuration ---------------------------------------------------------------------
    def write_configs(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        p = self.ports
        self.kubeconfig.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "stand-in",
            "clusters": [{"name": "stand-in", "cluster": {"server": self.kube_url}}],
            "users": [{"name": "stand-in", "user": {"token": "lab"}}],
            "contexts": [{"name": "stand-in", "context": {"cluster": "stand-in", "user": "stand-in"}}]}))
        (self.root / "haproxy.cfg").write_text(haproxy_cfg(f"{self.admin_socket} mode 600", f"127.0.0.1:{p.haproxy}",
                                                           f"127.0.0.1:{p.blue}", f"127.0.0.1:{p.green}"))
        (self.root / "prometheus.yml").write_text(prometheus_yml([f"127.0.0.1:{p.blue}", f"127.0.0.1:{p.green}"],
                                                                 self.scrape_interval))

    # --- processes -------------------------------------------------------------------------
    def start(self) -> None:
        ensure_binaries()
        self.stop()
        self.write_configs()
        self.admin_socket.unlink(missing_ok=True)
        py = sys.executable
        logs = self.root / "logs"
        for env in ("blue", "green"):
            self.book.start(env, [py, "-m", "include.slow_injection.lab.service", "--env", env,
                                  "--port", str(getattr(self.ports, env)), "--latency-ms", str(self.BASE_LATENCY_MS)],
                            logs / f"{env}.log")
        self.book.start("haproxy", [binary("haproxy") or "haproxy", "-db", "-f", str(self.root / "haproxy.cfg")],
                        logs / "haproxy.log")
        self.start_prometheus()
        self.book.start("kube", [py, "-m", "include.slow_injection.lab.kube", "--port", str(self.ports.kube)],
                        logs / "kube.log")
        for env in ("blue", "green"):
            wait_http(f"{self.service_url(env)}/healthz", f"{env} service")
        wait_until(lambda: self.admin_socket.exists(), "HAProxy admin socket")
        wait_http(f"{self.prometheus_url}/-/ready", "Prometheus")
        wait_http(f"{self.kube_url}/version", "stand-in Kubernetes API")
        self.data.start()
        self.book.start("load", [py, "-m", "include.slow_injection.lab.load", "--url", self.frontend_url,
                                 "--rate", str(self.load_rate), "--duration", str(self.load_duration),
                                 "--out", str(self.load_file)], logs / "load.log")

    def start_prometheus(self) -> None:
        self.book.start("prometheus", [
            binary("prometheus") or "prometheus", f"--config.file={self.root / 'prometheus.yml'}",
            f"--storage.tsdb.path={self.root / 'prometheus-data'}",
            f"--web.listen-address=127.0.0.1:{self.ports.prometheus}",
            "--storage.tsdb.retention.time=2h", "--log.level=warn",
        ], self.root / "logs" / "prometheus.log")

    def stop_prometheus(self) -> None:
        self.book.stop("prometheus")

    def stop(self) -> None:
        self.book.stop_all()
        self.data.stop()

    # --- faults ----------------------------------------------------------------------------
    def set_fault(self, env: str, **fault: object) -> dict:
        return post_json(f"{self.service_url(env)}/fault", fault)

    def clear_faults(self) -> None:
        """Both services healthy, at their normal latency."""
        for env in ("blue", "green"):
            self.set_fault(env, error_rate=0.0, latency_ms=self.BASE_LATENCY_MS, unhealthy=False)

    def describe(self) -> dict:
        return {"root": str(self.root), **asdict(self.ports)}


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
    """The lab's application data: an `orders` table in a blue and a green database (PostgreSQL on
    loopback), kept identical as replication would, so the data-sync gate has something real to check."""

    ROWS = 500

    def __init__(self, root: Path, port: int) -> None:
        from include.slow_injection.lab.postgres import Postgres

        self.pg = Postgres(root, port)

    def connection_uri(self, env: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.pg.port}/lab_{env}"

    def start(self) -> None:
        self.pg.start()
        for env in ("blue", "green"):
            self.pg.create_database(f"lab_{env}")
        self.reset()

    def stop(self) -> None:
        self.pg.stop()

    def sql(self, env: str, statement: str, *params: object) -> None:
        import psycopg2

        with psycopg2.connect(host="127.0.0.1", port=self.pg.port, user="postgres", dbname=f"lab_{env}") as conn:
            with conn.cursor() as cur:
                cur.execute(statement, params or None)
        conn.close()

    def reset(self) -> None:
        """Both databases hold the same orders."""
        for env in ("blue", "green"):
            self.sql(env, "DROP TABLE IF EXISTS orders; CREATE TABLE orders (id int PRIMARY KEY, item text, qty int);"
                          f" INSERT INTO orders SELECT i, 'item-' || i, i % 7 FROM generate_series(1, {self.ROWS}) i")

    def diverge(self) -> None:
        """An order written on blue only: green missed it (replication broke)."""
        self.sql("blue", "INSERT INTO orders VALUES (%s, 'missed-on-green', 1)", self.ROWS + 1)


def post_json(url: str, body: dict) -> dict:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - loopback
        return json.loads(response.read())


def wait_until(check, what: str, timeout: float = 30.0) -> None:  # noqa: ANN001
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
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback
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
