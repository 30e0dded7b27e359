"""Clear after failure: a step fails because its backend is down; the backend comes back; the task,
cleared, runs again (the next try) and converges to the right end state, without redoing what the
failed try already did.

The real backends go down for real: HAProxy's admin socket disappears (HAProxy keeps routing) or the
HAProxy process is stopped and restarted (losing its runtime weights); the real Kubernetes API server
(tests/kube.py) becomes unreachable (the HTTPS proxy the connection goes through closes its port and every
open connection: connections refused, while the control plane itself keeps running, as it is shared by the
whole session) or has only some writes refused (503 from that proxy); the moto endpoint stops listening.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from include.slow_injection.tasks.operators import PlatformStep, SetTraffic
from include.slow_injection.tasks.rollback_steps import RollbackTraffic, RollbackWorkloads
from tests.support.aws import CONNECTION_ID, ApiCalls, MotoServer
from tests.support.kube_support import RARELY, ApiProxy, Shop
from tests.support.reruns import (
    KUBE_CONN,
    PLATFORM,
    STEP,
    AdminSocketGone,
    HAProxy,
    context,
    haproxy_router,
    make_aws,
    mutations,
    sets,
)

# --- HAProxy ------------------------------------------------------------------------------------


def test_set_traffic_fails_while_haproxy_admin_is_unreachable_then_converges_when_cleared(
    haproxy: HAProxy, haproxy_commands: list[str]
) -> None:
    haproxy.set_green(5)  # the previous step's weight
    step = SetTraffic(task_id="set_traffic", service="web", router=haproxy_router(), weight=25, **STEP)
    with AdminSocketGone(haproxy) as gone:
        with pytest.raises(OSError):
            step.execute(context(try_number=1))
        assert sets(haproxy_commands) == []
        haproxy.socket, saved = gone.hidden, haproxy.socket  # the test still sees HAProxy: unchanged at 5 %
        try:
            assert haproxy.green() == 5
        finally:
            haproxy.socket = saved

    cleared = step.execute(context(try_number=2))
    assert cleared["changed"] and cleared["before"] == "blue 95, green 5" and cleared["after"] == "blue 75, green 25"
    assert haproxy.raw_weights() == ("75 (initial 100)", "25 (initial 0)")
    haproxy_commands.clear()
    assert not step.execute(context(try_number=3))["changed"] and sets(haproxy_commands) == []


def test_set_traffic_after_haproxy_restarted_reads_the_weights_it_came_back_with(
    haproxy: HAProxy, haproxy_commands: list[str]
) -> None:
    """A restart loses runtime weights (back to the config's blue 100, green 0): the cleared step
    converges from what HAProxy has now, not from what the wave last set."""
    haproxy.set_green(5)
    step = SetTraffic(task_id="set_traffic", service="web", router=haproxy_router(), weight=25, **STEP)
    haproxy.stop()
    try:
        with pytest.raises(OSError):
            step.execute(context(try_number=1))
    finally:
        haproxy.start()
    assert haproxy.green() == 0

    cleared = step.execute(context(try_number=2))
    assert cleared["changed"] and cleared["before"] == "blue 100, green 0" and haproxy.green() == 25
    assert sets(haproxy_commands) == ["set weight web/green 25; set weight web/blue 75"]  # rising first


# --- Kubernetes: the real API server behind a proxy that can go down and come back ---------------


@pytest.fixture
def shop(kube: Any, api_proxy: ApiProxy, monkeypatch: pytest.MonkeyPatch) -> Iterator[Shop]:
    """Blue's web and report (a schedule that does not fire during the test) and green's namespace;
    connection `rt_kube` reaches the API server through the proxy, which is up and refuses nothing."""
    if not api_proxy.running:
        api_proxy.start()
    api_proxy.refuse.clear()
    shop = Shop.seed(kube, schedule=RARELY)
    kube.connection(monkeypatch, KUBE_CONN, api_proxy.kubeconfig_file(name="clear-after-failure"))
    api_proxy.clear()
    yield shop
    api_proxy.refuse.clear()
    if not api_proxy.running:
        api_proxy.start()


def deploy_web(shop: Shop, **workload: Any) -> PlatformStep:
    return PlatformStep(
        task_id="deploy_green",
        action="deploy_green",
        service="web",
        platform=PLATFORM,
        workload={**shop.web, **workload},
        **STEP,
    )


def test_deploy_green_fails_while_the_kubernetes_api_is_down_then_converges_when_cleared(
    shop: Shop, api_proxy: ApiProxy
) -> None:
    api_proxy.stop()
    started = time.monotonic()
    with pytest.raises(Exception, match="Connection refused|Max retries"):
        deploy_web(shop).execute(context(try_number=1))
    assert time.monotonic() - started < 30
    assert shop.deployment(shop.green) is None

    api_proxy.start()
    cleared = deploy_web(shop).execute(context(try_number=2))
    assert [c["target"] for c in cleared["changes"]] == [f"green Deployment {shop.green}/web"]
    green = shop.deployment(shop.green)
    assert green["spec"]["replicas"] == 2 and green["spec"]["template"]["metadata"]["labels"]["compute"] == "fargate"
    assert "nodeSelector" not in green["spec"]["template"]["spec"]

    api_proxy.clear()
    assert deploy_web(shop).execute(context(try_number=3))["changes"] == [] and api_proxy.writes() == []


def test_deploy_green_that_failed_half_way_finishes_without_redoing_the_first_half(
    shop: Shop, api_proxy: ApiProxy
) -> None:
    """The ConfigMap the pod uses is copied, then the API refuses the Deployment: the cleared step
    leaves the copied ConfigMap alone and creates only the Deployment."""
    from kubernetes import client

    client.CoreV1Api(shop.api.api_client).create_namespaced_config_map(
        shop.blue, {"metadata": {"name": "web-env"}, "data": {"MODE": "shop"}}
    )
    blue = shop.deployment(shop.blue)
    blue["spec"]["template"]["spec"]["containers"][0]["envFrom"] = [{"configMapRef": {"name": "web-env"}}]
    shop.api.replace("Deployment", shop.blue, "web", blue)
    api_proxy.refuse.add(("POST", f"/namespaces/{shop.green}/deployments"))

    with pytest.raises(Exception, match="503|ServiceUnavailable"):
        deploy_web(shop, copy_config_maps=True).execute(context(try_number=1))
    copied = shop.api.get("ConfigMap", shop.green, "web-env")
    assert copied["data"] == {"MODE": "shop"} and shop.deployment(shop.green) is None

    api_proxy.refuse.clear()
    api_proxy.clear()
    cleared = deploy_web(shop, copy_config_maps=True).execute(context(try_number=2))
    assert [c["target"] for c in cleared["changes"]] == [f"green Deployment {shop.green}/web"]
    assert api_proxy.writes() == [("POST", f"/apis/apps/v1/namespaces/{shop.green}/deployments")]
    assert (
        shop.api.get("ConfigMap", shop.green, "web-env")["metadata"]["resourceVersion"]
        == copied["metadata"]["resourceVersion"]
    )


def test_a_handover_that_failed_half_way_resumes_green_without_touching_blue_again(
    shop: Shop, api_proxy: ApiProxy
) -> None:
    """Blue's CronJob is suspended, then the API refuses green's unsuspend: for now the job runs
    nowhere (never in both). Cleared, the step unsuspends green and leaves blue as it is."""
    PlatformStep(
        task_id="copy", action="deploy_green", service="report", platform=PLATFORM, workload=shop.report, **STEP
    ).execute(context())
    hand_over = PlatformStep(
        task_id="hand_over", action="hand_over", service="report", platform=PLATFORM, workload=shop.report, **STEP
    )
    api_proxy.refuse.add(("PATCH", f"/namespaces/{shop.green}/cronjobs/report"))
    with pytest.raises(Exception, match="503|ServiceUnavailable"):
        hand_over.execute(context(try_number=1))
    blue = shop.cronjob(shop.blue)
    assert blue["spec"]["suspend"] is True and shop.suspended(shop.green) is True

    api_proxy.refuse.clear()
    api_proxy.clear()
    cleared = hand_over.execute(context(try_number=2))
    assert [c["target"] for c in cleared["changes"]] == [f"green CronJob {shop.green}/report"]
    assert api_proxy.writes() == [("PATCH", f"/apis/batch/v1/namespaces/{shop.green}/cronjobs/report")]
    assert shop.suspended(shop.green) is False
    assert shop.cronjob(shop.blue)["metadata"]["resourceVersion"] == blue["metadata"]["resourceVersion"]


def test_restore_blue_workloads_fails_while_the_api_is_down_then_restores_both_when_cleared(
    shop: Shop, api_proxy: ApiProxy
) -> None:
    for step in (
        PlatformStep(
            task_id="copy", action="deploy_green", service="report", platform=PLATFORM, workload=shop.report, **STEP
        ),
        PlatformStep(
            task_id="hand_over",
            action="hand_over",
            service="report",
            platform=PLATFORM,
            workload=shop.report,
            **STEP,
        ),
        deploy_web(shop),
        PlatformStep(
            task_id="retire", action="retire_blue", service="web", platform=PLATFORM, workload=shop.web, **STEP
        ),
    ):
        step.execute(context())
    restore = RollbackWorkloads(
        task_id="restore_blue_workloads", platform=PLATFORM, workloads={"report": shop.report, "web": shop.web}, **STEP
    )
    api_proxy.stop()
    with pytest.raises(Exception, match="Connection refused|Max retries"):
        restore.execute(context(try_number=1))
    api_proxy.start()
    assert shop.deployment(shop.blue)["spec"]["replicas"] == 0  # nothing restored yet

    cleared = restore.execute(context(try_number=2))
    assert [c["target"] for c in cleared["changes"]] == [
        f"green CronJob {shop.green}/report",
        f"blue Deployment {shop.blue}/web",
    ]
    assert shop.deployment(shop.blue)["spec"]["replicas"] == 2
    assert shop.suspended(shop.green) is True


# --- RollbackTraffic over two routers, one of them down -------------------------------------------


class Endpoint:
    """A moto server of our own (moto's state is per process, so it survives a restart): stopped,
    its port refuses connections; started again on the same port."""

    def __init__(self) -> None:
        self.server = MotoServer()

    def stop(self) -> None:
        threaded = self.server._server
        threaded.stop()
        threaded._server.server_close()  # shutdown() alone leaves the port accepting, never answering

    def start(self) -> None:
        from moto.server import ThreadedMotoServer

        self.server._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.server.port, verbose=False)
        self.server.start()


@pytest.fixture
def endpoint(aws: MotoServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[Endpoint]:
    """The AWS connection pointing at a moto endpoint this test may take down (fewer retries than
    botocore's default, so a refused endpoint fails the step in seconds)."""
    ours = Endpoint()
    ours.server.start()
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{CONNECTION_ID.upper()}",
        json.dumps(
            {
                "conn_type": "aws",
                "login": "testing",
                "password": "testing",
                "extra": {
                    "region_name": "eu-west-1",
                    "endpoint_url": ours.server.url,
                    "config_kwargs": {"retries": {"mode": "standard", "max_attempts": 2}},
                },
            }
        ),
    )
    yield ours
    ours.server.stop()


def routers(alb: Any) -> dict[str, dict[str, Any]]:
    return {"web": haproxy_router(), "api": alb.alb_router()}


@pytest.mark.parametrize("down", ["haproxy", "aws"])
def test_rollback_traffic_with_one_router_down_converges_the_other_then_all_when_cleared(
    haproxy: HAProxy, haproxy_commands: list[str], endpoint: Endpoint, api_calls: ApiCalls, down: str
) -> None:
    alb = make_aws(endpoint.server)
    haproxy.set_green(25)
    SetTraffic(task_id="s", service="api", router=alb.alb_router(), weight=25, **STEP).execute(context())
    haproxy_commands.clear()
    api_calls.calls.clear()
    step = RollbackTraffic(task_id="traffic_to_blue", routers=routers(alb), **STEP)

    if down == "haproxy":
        with AdminSocketGone(haproxy), pytest.raises(RuntimeError) as failed:
            step.execute(context(try_number=1))
    else:
        endpoint.stop()
        try:
            with pytest.raises(RuntimeError) as failed:
                step.execute(context(try_number=1))
        finally:
            endpoint.start()
    message = str(failed.value)
    assert message.startswith("traffic NOT yet back on blue for: ")
    left = "web (haproxy)" if down == "haproxy" else "api (alb)"
    other = "api (alb)" if down == "haproxy" else "web (haproxy)"
    assert left in message and other not in message, message
    # The router that was up is converged already; the one that was down is still where it was.
    assert (haproxy.green(), alb.alb_weights()["green"]) == ((25, 0) if down == "haproxy" else (0, 25))

    haproxy_commands.clear()
    api_calls.calls.clear()
    cleared = step.execute(context(try_number=2))
    assert {s: r["changed"] for s, r in cleared["services"].items()} == {"web": down == "haproxy", "api": down == "aws"}
    assert haproxy.green() == 0 and alb.alb_weights() == {"blue": 100, "green": 0}
    # Only the router that was down is written on the cleared try.
    assert sets(haproxy_commands) == ([] if down == "aws" else ["set weight web/blue 100; set weight web/green 0"])
    assert mutations(api_calls) == ([] if down == "haproxy" else ["elasticloadbalancing:ModifyListener"])
