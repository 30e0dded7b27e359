"""The lab (its services, HAProxy, Prometheus and a real Kubernetes control plane: lab.py) and a real
Airflow (API server, scheduler, dag-processor, triggerer) on PostgreSQL, started once for the e2e tests and
stopped by PID afterwards."""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path

import pytest
import yaml

from include.slow_injection.drivers.haproxy import HAProxyRouter, HAProxyRuntime
from include.slow_injection.lab.airflow_stack import COMPONENTS, AirflowStack
from include.slow_injection.lab.lab import Lab, Ports
from include.slow_injection.ports import Weights

ROOT = Path(__file__).resolve().parents[2]
E2E_WAVES = (
    "e2e-web",
    "e2e-gates",
    "e2e-hold",
    "e2e-uat",
    "e2e-uat-timeout",
    "e2e-emergency",
    "e2e-fast",
    "e2e-clear",
    "e2e-drill",
    "e2e-ingress",
)
LEASE_WAVES = tuple(f"e2e-lease-{n}" for n in ("a", "b", "c", "d", "e"))  # five waves sharing one service
LEASE_WORLD = "e2e-leases"
UAT_TIMEOUT = "8s"


def e2e_wave(wave_id: str, on_no_data: str = "fail", jobs: bool = True) -> dict:
    """The shipped lab wave with short bakes. With `jobs`, the report CronJob moves first (its handover and
    parallel operation wait on two minute ticks); without, the web service alone (for scenarios about gates)."""
    wave = yaml.safe_load((ROOT / "include" / "waves" / "lab-web.yaml").read_text())
    wave["id"] = wave_id
    svc = next(s for s in wave["services"] if s["name"] == "web")
    svc["traffic_steps"] = [{"weight": w, "bake": "8s"} for w in (5, 25, 50, 100)]
    svc["health_checks"][0]["timeout"] = "60s"  # margin for a loaded 2-core machine (see the lab note)
    for gate in svc["gates"]:
        gate.update(interval="2s", on_no_data=on_no_data, hold_timeout="8s")
    wave["release_monitoring"]["gates"][0].update(interval="2s", bake="4s")
    if not jobs:
        wave["services"] = [svc]
    wave["validation"].pop("approval")  # answered by a human: tests/e2e/test_uat_approval.py
    wave["validation"]["stress"][0]["duration"] = "10s"
    wave["validation"]["parity"]["step"] = "1s"  # ≥ min_samples points from a short stress window
    wave["retries"] = {"count": 2, "delay": "2s"}
    wave["rollback"] = {"retries": 3, "retry_delay": "1s"}
    return wave


# The drills that break HAProxy's admin socket (tests/e2e/test_pause_and_clear.py, test_resilience_drills.py)
# need a router that writes HAProxy itself: with the Ingress router the broken socket would be the route
# controller's problem, not the wave's.
HAPROXY_ROUTER = {
    "type": "haproxy",
    "connection": "lab_haproxy",
    "backend": "web",
    "blue_server": "blue",
    "green_server": "green",
}


def emergency_wave(wave_id: str) -> dict:
    """The lab's web service alone, straight to a long 25 % step, routed straight through HAProxy: an
    emergency lands mid-wave."""
    wave = e2e_wave(wave_id)
    svc = next(s for s in wave["services"] if s["name"] == "web")
    svc["traffic_steps"] = [{"weight": 25, "bake": "20s"}, {"weight": 100, "bake": "8s"}]
    svc["router"] = dict(HAPROXY_ROUTER)
    # no data migration: these waves are about traffic and operating verbs (the lab waves cover the data's
    # cut-over and its rollback end to end), and a data_migration disarms the circuit breaker their drills test
    wave.pop("data_migration", None)
    wave["services"], wave["validation"] = [svc], {}
    return wave


def fast_wave(wave_id: str, automatic_rollback: bool = True) -> dict:
    """The lab's web service alone, no validation phase, steps 5 → 100 %: for the operating verbs
    (pause, clear), which need a step in progress, not the whole lab wave."""
    wave = emergency_wave(wave_id)
    # 5 % bakes 12 s: long enough for a pause to land while its gates measure, short enough that they
    # measure inside their task (< 20 s inline) instead of deferring (a deferred gate would wait for unpause)
    wave["services"][0]["traffic_steps"] = [{"weight": 5, "bake": "12s"}, {"weight": 100, "bake": "4s"}]
    wave["rollback"]["automatic"] = automatic_rollback
    return wave


def deferring_wave(wave_id: str) -> dict:
    """fast_wave whose 5 % step bakes 40 s: its gates measure 20 s in their task, then defer to the
    triggerer (plugins/slow_injection_gates/sensors.py INLINE_SECONDS), for drills that kill components."""
    wave = fast_wave(wave_id)
    wave["services"][0]["traffic_steps"][0]["bake"] = "40s"
    return wave


def ingress_wave(wave_id: str) -> dict:
    """fast_wave routed as on EKS, like the shipped lab wave: the alb_ingress router writes the lab's Ingress
    (lab-fargate/web) and the lab's route controller applies it to HAProxy."""
    wave = fast_wave(wave_id)
    wave["services"][0]["router"] = e2e_wave(wave_id)["services"][-1]["router"]
    assert wave["services"][0]["router"]["type"] == "alb_ingress"
    return wave


def uat_wave(wave_id: str, timeout: str) -> dict:
    """A simulated wave (world = its id) whose validation asks a human; everything else is instant."""
    from tests.support.waves import small_wave

    wave = small_wave(wave_id, wave_id)
    wave["services"] = [s for s in wave["services"] if s["name"] == "web"]
    wave["validation"] = {
        "approval": {
            "timeout": timeout,
            "on_timeout": "rollback",
            "instructions": "Open green's URL and place an order.",
        }
    }
    return wave


def lease_wave(wave_id: str) -> dict:
    """A simulated wave whose only service is the web every lease wave shares (one world, one workload):
    straight to 25 % then 100 %, its gates baking 6 s so the winner still holds the lease while the
    others plan."""
    from tests.support.waves import small_wave

    wave = small_wave(LEASE_WORLD, wave_id)
    web = next(s for s in wave["services"] if s["name"] == "web")
    web["gates"][0].update(bake=6, interval=0.5)
    wave["services"] = [web]
    return wave


class LabStack:
    def __init__(self, root: Path) -> None:
        self.lab = Lab(root / "lab", Ports.free(), load_rate=50)
        waves = root / "waves"
        waves.mkdir(parents=True)
        (waves / "e2e-web.yaml").write_text(yaml.safe_dump(e2e_wave("e2e-web"), sort_keys=False))
        (waves / "e2e-gates.yaml").write_text(yaml.safe_dump(e2e_wave("e2e-gates", jobs=False), sort_keys=False))
        (waves / "e2e-hold.yaml").write_text(yaml.safe_dump(e2e_wave("e2e-hold", "hold", jobs=False), sort_keys=False))
        (waves / "e2e-emergency.yaml").write_text(yaml.safe_dump(emergency_wave("e2e-emergency"), sort_keys=False))
        (waves / "e2e-fast.yaml").write_text(yaml.safe_dump(fast_wave("e2e-fast"), sort_keys=False))
        (waves / "e2e-clear.yaml").write_text(yaml.safe_dump(fast_wave("e2e-clear", False), sort_keys=False))
        (waves / "e2e-drill.yaml").write_text(yaml.safe_dump(deferring_wave("e2e-drill"), sort_keys=False))
        (waves / "e2e-ingress.yaml").write_text(yaml.safe_dump(ingress_wave("e2e-ingress"), sort_keys=False))
        self.waves = waves
        for wave_id, timeout in (("e2e-uat", "10m"), ("e2e-uat-timeout", UAT_TIMEOUT)):
            (waves / f"{wave_id}.yaml").write_text(yaml.safe_dump(uat_wave(wave_id, timeout), sort_keys=False))
        for wave_id in LEASE_WAVES:
            (waves / f"{wave_id}.yaml").write_text(yaml.safe_dump(lease_wave(wave_id), sort_keys=False))
        self.airflow = AirflowStack(root / "airflow", waves, extra_env=self.lab.airflow_env())
        self.router = None

    def start(self) -> None:
        self.lab.start()
        self.bind_router_rbac()
        self.router = HAProxyRouter(
            HAProxyRuntime(str(self.lab.admin_socket)),
            HAProxyRouter.Settings(backend="web", blue_server="blue", green_server="green"),
        )
        self.airflow.start()
        for wave_id in E2E_WAVES + LEASE_WAVES:
            self.airflow.wait_for_dag(f"wave_{wave_id}")

    def bind_router_rbac(self) -> None:
        """The `lab_kube` ServiceAccount gets what `slow-injection iam --only rbac` prints for e2e-ingress
        too (the alb_ingress router's Role in lab-fargate), as an operator would before such a wave."""
        from include.slow_injection.permissions import rbac_manifests
        from include.slow_injection.spec import load_wave

        self.lab.cluster.bind_driver(rbac_manifests(load_wave(self.waves / "e2e-ingress.yaml")))

    def stop(self) -> None:
        self.airflow.stop()
        self.lab.stop()

    def reset(self) -> None:
        """Blue takes all traffic, no faults, Prometheus up, the cluster back to blue only (green's objects
        deleted, blue's Deployment at full size and its CronJob unsuspended), every Airflow component
        running (a drill that failed half-way may have left one killed)."""
        running = self.airflow.book.read()
        missing = [c for c in COMPONENTS if c not in running]
        if missing:
            self.airflow.restart(*missing)
        if "prometheus" not in self.lab.book.read():
            self.lab.start_prometheus()
        self.lab.clear_faults()
        self.lab.data.reset()
        self.router.set_weights(Weights(blue=100, green=0))
        self.airflow.end_unfinished_runs([f"wave_{w}" for w in E2E_WAVES + LEASE_WAVES] + ["emergency_rollback"])
        self.lab.reset_platform()
        self.airflow.forget_wave_states()


@pytest.fixture(scope="session")
def lab_stack():
    root = Path(tempfile.mkdtemp(prefix="slow-injection-e2e-"))
    stack = LabStack(root)
    try:
        stack.start()
    except Exception:
        stack.stop()
        raise
    yield stack
    stack.stop()
    print(f"e2e logs kept in {root} (Airflow task logs under airflow/airflow/logs, Kubernetes under lab/kube/logs)")


@pytest.fixture
def lab(lab_stack: LabStack) -> LabStack:
    lab_stack.reset()
    return copy.copy(lab_stack)


@pytest.fixture
def without_route_controller(lab: LabStack):
    """For waves on the haproxy router (HAPROXY_ROUTER): the lab's route controller resyncs HAProxy to the
    Ingress every minute, as the AWS Load Balancer Controller resyncs its ALBs, so it would undo their
    writes. Stopped for the test, started again after (it then applies the Ingress, all to blue)."""
    running = "route-controller" in lab.lab.book.read()
    if running:
        lab.lab.stop_route_controller()
    try:
        yield lab
    finally:
        if running:
            lab.lab.start_route_controller()
