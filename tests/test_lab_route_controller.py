"""The lab's route controller (lab/route_controller.py), on the lab's real control plane and real HAProxy: a
split written on the Ingress (alb_ingress) or the HTTPRoute (gateway_api) reaches HAProxy's weights after
the controller's delay, as on EKS; someone else's edit of the Ingress is applied by the controller (it owns
the data plane) and reported by the router, never taken as the wave's; a rollback still returns to blue."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import pytest

from include.slow_injection.drivers.gateway_api import GatewayApiRouter
from include.slow_injection.drivers.haproxy import HAProxyRouter, HAProxyRuntime
from include.slow_injection.drivers.k8s_ingress import AlbIngressRouter
from include.slow_injection.lab import route_controller as rc
from include.slow_injection.lab.kube import seed
from include.slow_injection.lab.lab import Lab, Ports
from include.slow_injection.ports import ReadbackMismatch, Weights
from include.slow_injection.tasks.operators import converge_traffic

DELAY = 0.5
CONNECTION = "lab_admin_kube"


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    lab = Lab(
        tmp_path_factory.mktemp("lab"),
        Ports.free(),
        load_rate=20,
        load_duration=300,
        route_controller="ingress",
        controller_delay=DELAY,
    )
    lab.start()
    yield lab
    lab.stop()


@pytest.fixture
def kube_conn(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{CONNECTION.upper()}",
        json.dumps({"conn_type": "kubernetes", "extra": {"kube_config_path": str(lab.admin_kubeconfig)}}),
    )


def haproxy(lab: Lab) -> HAProxyRouter:
    return HAProxyRouter(
        HAProxyRuntime(str(lab.admin_socket)),
        HAProxyRouter.Settings(backend="web", blue_server="blue", green_server="green"),
    )


def wait_haproxy(lab: Lab, wanted: Weights, timeout: float = 15.0) -> float:
    """Seconds until HAProxy serves `wanted`."""
    start = time.monotonic()
    while True:
        try:
            seen: Weights | str = haproxy(lab).get_weights()
        except OSError as err:  # HAProxy (re)starting: no socket yet
            seen = str(err)
        if seen == wanted:
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise AssertionError(
                f"HAProxy still at {seen}, not {wanted}, after {timeout:g}s; controller log:\n"
                + lab.controller_log.read_text()[-3000:]
            )
        time.sleep(0.05)


def ingress_router(lab: Lab) -> AlbIngressRouter:
    ns = lab.cluster.green_namespace
    return AlbIngressRouter.from_spec(
        AlbIngressRouter.Settings.model_validate(
            {
                "namespace": ns,
                "ingress": seed.INGRESS,
                "action": seed.ACTION,
                "blue_service": {"name": seed.BLUE_SERVICE, "port": 80},
                "green_service": {"name": seed.GREEN_SERVICE, "port": 80},
                "reconcile_delay": 0,  # these tests measure the controller's lag at HAProxy themselves
            },
            strict=False,
        ),
        CONNECTION,
    )


def read_ingress(lab: Lab) -> dict[str, Any]:
    from kubernetes import client

    return json.loads(
        client.NetworkingV1Api(lab.kube_client())
        .read_namespaced_ingress(seed.INGRESS, lab.cluster.green_namespace, _preload_content=False)
        .data
    )


class Step:
    log = logging.getLogger("test")


def step_ref() -> dict[str, Any]:
    return {
        "type": "alb_ingress",
        "connection": CONNECTION,
        "namespace": "lab-fargate",
        "ingress": seed.INGRESS,
        "action": seed.ACTION,
        "blue_service": {"name": seed.BLUE_SERVICE, "port": 80},
        "green_service": {"name": seed.GREEN_SERVICE, "port": 80},
        "reconcile_delay": "0s",  # the tests watch HAProxy for the controller's apply themselves
    }


def test_the_seeded_ingress_routes_to_blue_and_the_controller_gives_it_a_hostname(lab: Lab, kube_conn: None) -> None:
    wait_haproxy(lab, Weights(100, 0))
    deadline = time.monotonic() + 10
    while not (read_ingress(lab).get("status") or {}).get("loadBalancer", {}).get("ingress"):
        assert time.monotonic() < deadline, lab.controller_log.read_text()[-2000:]
        time.sleep(0.1)
    assert read_ingress(lab)["status"]["loadBalancer"]["ingress"] == [{"hostname": "localhost"}]
    assert ingress_router(lab).get_weights() == Weights(100, 0)


def test_each_ingress_step_reaches_haproxy_after_the_controllers_delay(lab: Lab, kube_conn: None) -> None:
    lab.reset_platform()
    router = ingress_router(lab)
    assert [c.after for c in router.attach_green(apply=True)] == [
        "blue 100, green 0 (green attached and health-checked)"
    ]
    for green in (5, 25, 50, 100, 0):
        router.set_weights(Weights.green_at(green))
        lag = wait_haproxy(lab, Weights.green_at(green))
        assert router.get_weights() == Weights.green_at(green)
        assert lag >= DELAY * 0.5, f"HAProxy followed the Ingress {lag:.2f} s after the write: no controller lag?"
    assert "set to" in lab.controller_log.read_text()


def test_an_edited_ingress_is_served_by_the_controller_reported_by_the_router_and_rolled_back(
    lab: Lab, kube_conn: None
) -> None:
    """The drill on the objects: someone sets 60 % mid-bake. The controller applies it (it owns the data
    plane); the router reports a readback mismatch; the next traffic step refuses to move on from it; the
    rollback returns all traffic to blue anyway."""
    lab.reset_platform()
    router = ingress_router(lab)
    router.attach_green(apply=True)
    converge_traffic(Step(), "web", step_ref(), Weights.green_at(25), dry_run=False)
    wait_haproxy(lab, Weights.green_at(25))
    from kubernetes import client

    action = {
        "type": "forward",
        "forwardConfig": {
            "targetGroups": [
                {"serviceName": seed.BLUE_SERVICE, "servicePort": "80", "weight": 40},
                {"serviceName": seed.GREEN_SERVICE, "servicePort": "80", "weight": 60},
            ]
        },
    }
    client.NetworkingV1Api(lab.kube_client()).patch_namespaced_ingress(
        seed.INGRESS,
        lab.cluster.green_namespace,
        {"metadata": {"annotations": {rc.ACTIONS + seed.ACTION: json.dumps(action)}}},
    )
    wait_haproxy(lab, Weights.green_at(60))
    with pytest.raises(ReadbackMismatch, match="edited by someone else") as found:
        router.get_weights()
    assert found.value.found == Weights.green_at(60) and found.value.expected == Weights.green_at(25)
    with pytest.raises(ReadbackMismatch):
        converge_traffic(Step(), "web", step_ref(), Weights.green_at(50), dry_run=False)
    assert haproxy(lab).get_weights() == Weights.green_at(60)  # the step wrote nothing
    result = converge_traffic(Step(), "web", step_ref(), Weights.green_at(0), dry_run=False)
    assert result["before"] == "blue 40, green 60" and result["after"] == "blue 100, green 0"
    wait_haproxy(lab, Weights(100, 0))


def test_reset_returns_the_ingress_and_haproxy_to_blue(lab: Lab, kube_conn: None) -> None:
    router = ingress_router(lab)
    router.attach_green(apply=True)
    router.set_weights(Weights.green_at(50))
    wait_haproxy(lab, Weights.green_at(50))
    lab.reset_platform()
    wait_haproxy(lab, Weights(100, 0))
    assert rc.ingress_split(read_ingress(lab), {}) == {seed.BLUE_SERVICE: 1}


def test_haproxy_down_is_logged_and_retried_until_it_applies(lab: Lab, kube_conn: None) -> None:
    lab.reset_platform()
    wait_haproxy(lab, Weights(100, 0))
    router = ingress_router(lab)
    router.attach_green(apply=True)
    lab.book.stop("haproxy")
    try:
        router.set_weights(Weights.green_at(25))  # the Ingress takes it; the controller cannot apply it
        time.sleep(DELAY + 1.5)
        assert "failed" in lab.controller_log.read_text()
    finally:
        lab.admin_socket.unlink(missing_ok=True)
        from include.slow_injection.lab.lab import binary

        lab.book.start(
            "haproxy",
            [binary("haproxy") or "haproxy", "-db", "-f", str(lab.root / "haproxy.cfg")],
            lab.root / "logs" / "haproxy.log",
        )
    wait_haproxy(lab, Weights.green_at(25), timeout=20)  # the retry lands once HAProxy is back
    lab.reset_platform()
    wait_haproxy(lab, Weights(100, 0))


def test_the_httproute_controller_writes_status_after_haproxy_took_the_split(lab: Lab, kube_conn: None) -> None:
    assert lab.cluster.has_gateway_api(), "the lab installs the Gateway API CRDs"
    lab.stop_route_controller()
    lab.route_controller = "httproute"
    lab.start_route_controller()
    try:
        lab.reset_platform()
        wait_haproxy(lab, Weights(100, 0))
        router = GatewayApiRouter.from_spec(
            GatewayApiRouter.Settings.model_validate(
                {
                    "namespace": lab.cluster.green_namespace,
                    "route": seed.ROUTE,
                    "blue_service": {"name": seed.BLUE_SERVICE, "port": 80},
                    "green_service": {"name": seed.GREEN_SERVICE, "port": 80},
                    "poll_interval": "100ms",
                },
                strict=False,
            ),
            CONNECTION,
        )
        router.attach_green(apply=True)
        for green in (25, 100, 0):
            router.set_weights(Weights.green_at(green))  # returns once the gateway accepted the new generation
            assert haproxy(lab).get_weights() == Weights.green_at(green)
            assert router.get_weights() == Weights.green_at(green)
    finally:
        lab.stop_route_controller()
        lab.route_controller = "ingress"
        lab.start_route_controller()


def test_split_parsing_names_what_it_cannot_route() -> None:
    servers = {"web-blue": "blue", "web-green": "green"}
    assert rc.haproxy_weights({"web-blue": 750, "web-green": 250}, servers) == {"blue": 75, "green": 25}
    with pytest.raises(rc.ObjectError, match="web-canary"):
        rc.haproxy_weights({"web-blue": 1, "web-canary": 1}, servers)
    with pytest.raises(rc.ObjectError, match="weight 0"):
        rc.haproxy_weights({"web-blue": 0, "web-green": 0}, servers)
    route = {"spec": {"rules": [{"backendRefs": [{"name": "web-blue", "port": 80}]}]}}
    assert rc.route_split(route) == {"web-blue": 1}
