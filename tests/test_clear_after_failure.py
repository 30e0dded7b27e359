"""Clear after failure: a step fails because its backend is down; the backend comes back; the task,
cleared, runs again (the next try) and converges to the right end state, without redoing what the
failed try already did.

The real backends go down for real: HAProxy's admin socket disappears (HAProxy keeps routing) or the
HAProxy process is stopped and restarted (losing its runtime weights); the Kubernetes API test server
stops listening (connections refused) or refuses only some writes; the moto endpoint stops listening.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from include.slow_injection.lab.kube.api_server import Store, make_handler
from include.slow_injection.lab.kube.seed import seed
from include.slow_injection.tasks.flow import RollbackTraffic, RollbackWorkloads
from include.slow_injection.tasks.operators import PlatformStep, SetTraffic
from tests.aws import CONNECTION_ID, ApiCalls, MotoServer, free_port
from tests.test_run_twice import (  # noqa: F401 - fixtures
    KUBE_CONN,
    PLATFORM,
    REPORT,
    STEP,
    WEB,
    WRITES,
    HAProxy,
    context,
    haproxy,
    haproxy_commands,
    haproxy_process,
    haproxy_router,
    make_aws,
    mutations,
    sets,
)


# --- HAProxy ------------------------------------------------------------------------------------

class AdminSocketGone:
    """HAProxy keeps routing, but its runtime API cannot be reached (the socket path is gone)."""

    def __init__(self, proxy: HAProxy) -> None:
        self.proxy, self.hidden = proxy, proxy.socket.with_name("hidden.sock")

    def __enter__(self) -> AdminSocketGone:
        self.proxy.socket.rename(self.hidden)
        return self

    def __exit__(self, *exc: object) -> None:
        self.hidden.rename(self.proxy.socket)


def test_set_traffic_fails_while_haproxy_admin_is_unreachable_then_converges_when_cleared(
        haproxy: HAProxy, haproxy_commands: list[str]) -> None:
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
        haproxy: HAProxy, haproxy_commands: list[str]) -> None:
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
    assert sets(haproxy_commands) == ["set weight web/blue 75; set weight web/green 25"]


# --- Kubernetes: an API server that can go down and come back with its objects -------------------

class FlakyKube:
    """The Kubernetes API test server's store and handler on a fixed port, stopped (connections
    refused) and started again at will; `refuse` makes it answer chosen writes 503."""

    def __init__(self, root: Path) -> None:
        self.store, self.port = Store(), free_port()
        self.refuse: set[tuple[str, str]] = set()  # (method, path suffix)
        self.kubeconfig = root / "kubeconfig.json"
        self.kubeconfig.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "t",
            "clusters": [{"name": "t", "cluster": {"server": f"http://127.0.0.1:{self.port}"}}],
            "users": [{"name": "t", "user": {"token": "t"}}],
            "contexts": [{"name": "t", "context": {"cluster": "t", "user": "t"}}]}))
        self.httpd: ThreadingHTTPServer | None = None

    def _handler(self) -> type:
        flaky = self
        base = make_handler(self.store)

        class Handler(base):  # type: ignore[misc, valid-type]
            def _route(self, method: str) -> None:
                if any(method == m and self.path.split("?")[0].endswith(p) for m, p in flaky.refuse):
                    self.store_request(method)
                    return self._send(503, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "code": 503,
                                            "status": "Failure", "reason": "ServiceUnavailable",
                                            "message": "the test refuses this write"})
                return super()._route(method)

            def store_request(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                flaky.store.requests.append((method, self.path.split("?")[0]))

        return Handler

    def start(self) -> FlakyKube:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None

    def writes(self) -> list[tuple[str, str]]:
        return [r for r in self.store.requests if r[0] in WRITES]

    def get(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self.store.get(plural, namespace, name)


@pytest.fixture(scope="module")
def flaky_kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FlakyKube]:
    server = FlakyKube(tmp_path_factory.mktemp("kube")).start()
    yield server
    server.stop()


@pytest.fixture
def kube(flaky_kube: FlakyKube, monkeypatch: pytest.MonkeyPatch) -> Iterator[FlakyKube]:
    if flaky_kube.httpd is None:
        flaky_kube.start()
    flaky_kube.refuse.clear()
    with flaky_kube.store.lock:
        flaky_kube.store.objects.clear()
        seed(flaky_kube.store, "shop", "shop-fargate")
        flaky_kube.store.requests.clear()
    monkeypatch.setenv(f"AIRFLOW_CONN_{KUBE_CONN.upper()}", json.dumps(
        {"conn_type": "kubernetes", "extra": {"kube_config_path": str(flaky_kube.kubeconfig)}}))
    yield flaky_kube
    if flaky_kube.httpd is None:
        flaky_kube.start()


def deploy_web(**workload: Any) -> PlatformStep:
    return PlatformStep(task_id="deploy_green", action="deploy_green", service="web", platform=PLATFORM,
                        workload={**WEB, **workload}, **STEP)


def test_deploy_green_fails_while_the_kubernetes_api_is_down_then_converges_when_cleared(kube: FlakyKube) -> None:
    kube.stop()
    started = time.monotonic()
    with pytest.raises(Exception, match="Connection refused|Max retries"):
        deploy_web().execute(context(try_number=1))
    assert time.monotonic() - started < 30
    assert kube.get("deployments", "shop-fargate", "web") is None

    kube.start()
    cleared = deploy_web().execute(context(try_number=2))
    assert [c["target"] for c in cleared["changes"]] == ["green Deployment shop-fargate/web"]
    green = kube.get("deployments", "shop-fargate", "web")
    assert green["spec"]["replicas"] == 2 and green["spec"]["template"]["metadata"]["labels"]["compute"] == "fargate"
    assert "nodeSelector" not in green["spec"]["template"]["spec"]

    kube.store.requests.clear()
    assert deploy_web().execute(context(try_number=3))["changes"] == [] and kube.writes() == []


def test_deploy_green_that_failed_half_way_finishes_without_redoing_the_first_half(kube: FlakyKube) -> None:
    """The ConfigMap the pod uses is copied, then the API refuses the Deployment: the cleared step
    leaves the copied ConfigMap alone and creates only the Deployment."""
    kube.store.put("configmaps", {"metadata": {"name": "web-env", "namespace": "shop"}, "data": {"MODE": "shop"}},
                   creating=True)
    blue = kube.get("deployments", "shop", "web")
    blue["spec"]["template"]["spec"]["containers"][0]["envFrom"] = [{"configMapRef": {"name": "web-env"}}]
    kube.store.put("deployments", blue)
    kube.refuse.add(("POST", "/namespaces/shop-fargate/deployments"))

    with pytest.raises(Exception, match="503|ServiceUnavailable"):
        deploy_web(copy_config_maps=True).execute(context(try_number=1))
    copied = kube.get("configmaps", "shop-fargate", "web-env")
    assert copied["data"] == {"MODE": "shop"} and kube.get("deployments", "shop-fargate", "web") is None

    kube.refuse.clear()
    kube.store.requests.clear()
    cleared = deploy_web(copy_config_maps=True).execute(context(try_number=2))
    assert [c["target"] for c in cleared["changes"]] == ["green Deployment shop-fargate/web"]
    assert kube.writes() == [("POST", "/apis/apps/v1/namespaces/shop-fargate/deployments")]
    assert kube.get("configmaps", "shop-fargate", "web-env")["metadata"]["resourceVersion"] == \
        copied["metadata"]["resourceVersion"]


def test_a_handover_that_failed_half_way_resumes_green_without_touching_blue_again(kube: FlakyKube) -> None:
    """Blue's CronJob is suspended, then the API refuses green's unsuspend: for now the job runs
    nowhere (never in both). Cleared, the step unsuspends green and leaves blue as it is."""
    PlatformStep(task_id="copy", action="deploy_green", service="report", platform=PLATFORM, workload=REPORT,
                 **STEP).execute(context())
    hand_over = PlatformStep(task_id="hand_over", action="activate_green", service="report", platform=PLATFORM,
                             workload=REPORT, **STEP)
    kube.refuse.add(("PATCH", "/namespaces/shop-fargate/cronjobs/report"))
    with pytest.raises(Exception, match="503|ServiceUnavailable"):
        hand_over.execute(context(try_number=1))
    blue = kube.get("cronjobs", "shop", "report")
    assert blue["spec"]["suspend"] is True and kube.get("cronjobs", "shop-fargate", "report")["spec"]["suspend"] is True

    kube.refuse.clear()
    kube.store.requests.clear()
    cleared = hand_over.execute(context(try_number=2))
    assert [c["target"] for c in cleared["changes"]] == ["green CronJob shop-fargate/report"]
    assert kube.writes() == [("PATCH", "/apis/batch/v1/namespaces/shop-fargate/cronjobs/report")]
    assert kube.get("cronjobs", "shop-fargate", "report")["spec"]["suspend"] is False
    assert kube.get("cronjobs", "shop", "report")["metadata"]["resourceVersion"] == blue["metadata"]["resourceVersion"]


def test_restore_blue_workloads_fails_while_the_api_is_down_then_restores_both_when_cleared(kube: FlakyKube) -> None:
    for step in (PlatformStep(task_id="copy", action="deploy_green", service="report", platform=PLATFORM,
                              workload=REPORT, **STEP),
                 PlatformStep(task_id="hand_over", action="activate_green", service="report", platform=PLATFORM,
                              workload=REPORT, **STEP),
                 deploy_web(),
                 PlatformStep(task_id="retire", action="retire_blue", service="web", platform=PLATFORM,
                              workload=WEB, **STEP)):
        step.execute(context())
    restore = RollbackWorkloads(task_id="restore_blue_workloads", platform=PLATFORM,
                                workloads={"report": REPORT, "web": WEB}, **STEP)
    kube.stop()
    with pytest.raises(Exception, match="Connection refused|Max retries"):
        restore.execute(context(try_number=1))
    kube.start()
    assert kube.get("deployments", "shop", "web")["spec"]["replicas"] == 0  # nothing restored yet

    cleared = restore.execute(context(try_number=2))
    assert [c["target"] for c in cleared["changes"]] == ["green CronJob shop-fargate/report", "blue Deployment shop/web"]
    assert kube.get("deployments", "shop", "web")["spec"]["replicas"] == 2
    assert kube.get("cronjobs", "shop-fargate", "report")["spec"]["suspend"] is True


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
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONNECTION_ID.upper()}", json.dumps(
        {"conn_type": "aws", "login": "testing", "password": "testing",
         "extra": {"region_name": "eu-west-1", "endpoint_url": ours.server.url,
                   "config_kwargs": {"retries": {"mode": "standard", "max_attempts": 2}}}}))
    yield ours
    ours.server.stop()


def routers(alb: Any) -> dict[str, dict[str, Any]]:
    return {"web": haproxy_router(), "api": alb.alb_router()}


@pytest.mark.parametrize("down", ["haproxy", "aws"])
def test_rollback_traffic_with_one_router_down_converges_the_other_then_all_when_cleared(
        haproxy: HAProxy, haproxy_commands: list[str], endpoint: Endpoint, api_calls: ApiCalls, down: str) -> None:
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
