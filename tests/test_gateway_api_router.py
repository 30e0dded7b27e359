"""Gateway API router on the real control plane, with the upstream Gateway API CRDs installed (the
`gateway_api` fixture: sigs.k8s.io/gateway-api's standard channel, as deploy/kube/build.sh fetches it). The
API server validates every HTTPRoute written against the CRD's schema; where a test needs a gateway, the test
writes the route's status as a gateway controller would (through the /status subresource)."""

from __future__ import annotations

import datetime as dt
import json
import threading
from typing import Any, Self

import pytest

from include.slow_injection import registry
from include.slow_injection.drivers.gateway_api import GROUP, GatewayApiRouter
from include.slow_injection.ports import ReadbackMismatch, Weights
from tests.support.kube import Kube, wait_for
from tests.support.routing_support import http_route, seed_web

CONNECTION = "kube_routes"
GATEWAY_CONTROLLER = "example.com/stand-in-gateway"
STEPS = (5, 25, 100)


class Routes:
    """The admin's view of HTTPRoutes (never the router's connection)."""

    def __init__(self, kube: Kube, namespace: str) -> None:
        from kubernetes import client

        self.api = client.CustomObjectsApi(kube.api_client)
        self.namespace = namespace

    def create(self, body: dict[str, Any]) -> None:
        self.api.create_namespaced_custom_object(GROUP, "v1", self.namespace, "httproutes", body)

    def get(self, name: str = "shop") -> dict[str, Any]:
        return self.api.get_namespaced_custom_object(GROUP, "v1", self.namespace, "httproutes", name)

    def weights(self, rule: int) -> dict[str, int]:
        return {r["name"]: r.get("weight", 1) for r in self.get()["spec"]["rules"][rule]["backendRefs"]}

    def edit_weights(self, rule: int, weights: dict[str, int]) -> None:
        """Someone else's edit (kubectl edit): the weights of one rule, every other rule as it was."""
        route = self.get()
        for ref in route["spec"]["rules"][rule]["backendRefs"]:
            ref["weight"] = weights[ref["name"]]
        self.api.replace_namespaced_custom_object(GROUP, "v1", self.namespace, "httproutes", "shop", route)

    def report(self, accepted: bool = True, resolved: bool = True, reason: str = "RefNotPermitted") -> None:
        """What a gateway controller writes on the route's status for its current generation."""
        route = self.get()
        generation = route["metadata"]["generation"]
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

        def condition(kind: str, ok: bool, bad_reason: str) -> dict[str, Any]:
            return {
                "type": kind,
                "status": "True" if ok else "False",
                "reason": kind if ok else bad_reason,
                "message": "" if ok else f"{bad_reason} (the stand-in gateway)",
                "observedGeneration": generation,
                "lastTransitionTime": now,
            }

        status = {
            "parents": [
                {
                    "parentRef": {"name": "shop-gateway"},
                    "controllerName": GATEWAY_CONTROLLER,
                    "conditions": [
                        condition("Accepted", accepted, "NotAllowedByListeners"),
                        condition("ResolvedRefs", resolved, reason),
                    ],
                }
            ]
        }
        self.api.patch_namespaced_custom_object_status(
            GROUP, "v1", self.namespace, "httproutes", "shop", {"status": status}
        )


@pytest.fixture
def shop(kube: Kube, gateway_api: list[str], monkeypatch: pytest.MonkeyPatch) -> Routes:
    assert "httproutes.gateway.networking.k8s.io" in gateway_api
    namespace = kube.namespace("gw")
    seed_web(kube, namespace)
    routes = Routes(kube, namespace)
    routes.create(http_route(namespace))
    kube.connection(monkeypatch, CONNECTION)
    return routes


def settings(routes: Routes, **extra: Any) -> dict[str, Any]:
    return {
        "type": "gateway_api",
        "connection": CONNECTION,
        "namespace": routes.namespace,
        "route": "shop",
        "blue_service": {"name": "web", "port": 80},
        "green_service": {"name": "web-green", "port": 80},
        "poll_interval": "100ms",
        "status_timeout": "10s",
        **extra,
    }


def router(routes: Routes, **extra: Any) -> GatewayApiRouter:
    return registry.build("router", settings(routes, **extra), service="web")


def test_the_upstream_crds_are_served_and_validate_routes(shop: Routes) -> None:
    """The API server checks routes against the real schema: a weight above the Gateway API's bound is refused."""
    from kubernetes.client.rest import ApiException

    bad = http_route(shop.namespace)
    bad["metadata"]["name"] = "too-heavy"
    bad["spec"]["rules"][0]["backendRefs"] = [{"name": "web", "port": 80, "weight": 1_000_001}]
    with pytest.raises(ApiException) as refused:
        shop.create(bad)
    assert refused.value.status == 422 and "weight" in refused.value.body


def test_steps_5_25_100_read_back_and_roll_back_to_blue(shop: Routes) -> None:
    route = router(shop)
    assert route.get_weights() == Weights(100, 0)  # blue's plain backendRef (weight 1 by default)
    [change] = route.attach_green(apply=True)
    assert change.after == "blue 100, green 0 (green attached)"
    assert shop.weights(0) == shop.weights(1) == {"web": 100, "web-green": 0}
    for green in STEPS:
        route.set_weights(Weights.green_at(green))
        assert route.get_weights() == Weights.green_at(green)
        assert shop.weights(0) == shop.weights(1) == {"web": 100 - green, "web-green": green}
    route.set_weights(Weights.green_at(0))
    assert route.get_weights() == Weights(100, 0)
    assert shop.weights(0) == {"web": 100, "web-green": 0}
    assert shop.get()["spec"]["rules"][2]["backendRefs"] == [
        {"group": "", "kind": "Service", "name": "docs", "port": 80, "weight": 1}
    ]  # not ours: as it was


def test_running_twice_changes_nothing(shop: Routes) -> None:
    route = router(shop)
    route.attach_green(apply=True)
    route.set_weights(Weights.green_at(25))
    version = shop.get()["metadata"]["resourceVersion"]
    assert route.attach_green(apply=True) == []
    route.set_weights(Weights.green_at(25))
    router(shop).set_weights(Weights.green_at(25))  # a second run's driver
    assert shop.get()["metadata"]["resourceVersion"] == version
    assert router(shop).get_weights() == Weights.green_at(25)


def test_a_dry_run_attach_writes_nothing(shop: Routes) -> None:
    version = shop.get()["metadata"]["resourceVersion"]
    assert len(router(shop).attach_green(apply=False)) == 1
    assert shop.get()["metadata"]["resourceVersion"] == version


def test_a_split_someone_else_set_is_reported_and_never_taken_as_ours(shop: Routes) -> None:
    route = router(shop)
    route.attach_green(apply=True)
    route.set_weights(Weights.green_at(25))
    shop.edit_weights(0, {"web": 50, "web-green": 50})
    shop.edit_weights(1, {"web": 50, "web-green": 50})
    with pytest.raises(ReadbackMismatch, match="this project last set blue 75, green 25") as seen:
        route.get_weights()
    assert seen.value.found == Weights(50, 50) and seen.value.expected == Weights(75, 25)
    with pytest.raises(ReadbackMismatch):
        route.set_weights(Weights.green_at(50))  # never moves on from a split it did not set
    assert shop.weights(0) == {"web": 50, "web-green": 50}
    route.set_weights(Weights.green_at(0))  # back to blue is always allowed
    assert route.get_weights() == Weights(100, 0)


def test_rules_that_disagree_or_a_third_backend_are_reported(shop: Routes) -> None:
    route = router(shop)
    route.attach_green(apply=True)
    route.set_weights(Weights.green_at(25))
    shop.edit_weights(1, {"web": 100, "web-green": 0})
    with pytest.raises(ReadbackMismatch, match="rules disagree"):
        route.get_weights()
    route.set_weights(Weights.green_at(0))
    data = shop.get()
    data["spec"]["rules"][0]["backendRefs"].append({"name": "docs", "port": 80, "weight": 10})
    shop.api.replace_namespaced_custom_object(GROUP, "v1", shop.namespace, "httproutes", "shop", data)
    with pytest.raises(ReadbackMismatch, match="docs:80"):
        route.get_weights()


def test_green_on_a_route_that_nobody_records_is_a_mismatch(shop: Routes) -> None:
    data = shop.get()
    for rule in (0, 1):
        data["spec"]["rules"][rule]["backendRefs"] = [
            {"name": "web", "port": 80, "weight": 90},
            {"name": "web-green", "port": 80, "weight": 10},
        ]
    shop.api.replace_namespaced_custom_object(GROUP, "v1", shop.namespace, "httproutes", "shop", data)
    with pytest.raises(ReadbackMismatch, match="never set that split"):
        router(shop).get_weights()


class StandInGateway:
    """Reports on every new generation of the route after `delay` s, as a gateway controller does."""

    def __init__(self, routes: Routes, delay: float = 0.3, **report: Any) -> None:
        self.routes, self.delay, self.report = routes, delay, report
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        seen = None
        while not self.stop.wait(0.05):
            generation = self.routes.get()["metadata"]["generation"]
            if generation != seen and not self.stop.wait(self.delay):
                self.routes.report(**self.report)
                seen = generation

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(5)


def test_with_a_gateway_a_step_returns_once_the_gateway_accepted_it(shop: Routes) -> None:
    route = router(shop)
    shop.report()
    with StandInGateway(shop, delay=0.5):
        route.attach_green(apply=True)
        route.set_weights(Weights.green_at(5))
        status = shop.get()
        accepted = status["status"]["parents"][0]["conditions"][0]
        assert accepted["observedGeneration"] == status["metadata"]["generation"]  # waited for the report
        assert route.get_weights() == Weights.green_at(5)
        assert route.green_ready().state == "ready"


def test_a_step_the_gateway_refuses_or_never_reports_on_fails(shop: Routes) -> None:
    route = router(shop, status_timeout="1s")
    shop.report()
    with StandInGateway(shop):
        route.attach_green(apply=True)
    with pytest.raises(TimeoutError, match="has not reported on generation"):
        route.set_weights(Weights.green_at(5))  # the stand-in stopped: nobody reports on the new generation
    shop.report(resolved=False, reason="BackendNotFound")
    with pytest.raises(ReadbackMismatch, match="ResolvedRefs is False \\(BackendNotFound"):
        route.get_weights()
    assert route.green_ready().state == "waiting"
    with StandInGateway(shop, accepted=False), pytest.raises(ReadbackMismatch, match="refuses the written split"):
        route.set_weights(Weights.green_at(25))


def test_green_in_another_namespace_needs_a_reference_grant(kube: Kube, shop: Routes) -> None:
    green_ns = kube.namespace("gw-green")
    seed_web_green_only(kube, green_ns)
    route = router(shop, green_service={"name": "web-green", "port": 80, "namespace": green_ns})
    with pytest.raises(LookupError, match="no ReferenceGrant"):
        route.attach_green(apply=True)
    assert route.green_ready().state == "failed"
    shop.api.create_namespaced_custom_object(
        GROUP,
        "v1beta1",
        green_ns,
        "referencegrants",
        {
            "apiVersion": f"{GROUP}/v1beta1",
            "kind": "ReferenceGrant",
            "metadata": {"name": "shop-routes"},
            "spec": {
                "from": [{"group": GROUP, "kind": "HTTPRoute", "namespace": shop.namespace}],
                "to": [{"group": "", "kind": "Service", "name": "web-green"}],
            },
        },
    )
    route.attach_green(apply=True)
    route.set_weights(Weights.green_at(25))
    refs = shop.get()["spec"]["rules"][0]["backendRefs"]
    assert [(r["name"], r.get("namespace"), r["weight"]) for r in refs] == [
        ("web", None, 75),
        ("web-green", green_ns, 25),
    ]
    assert route.green_ready().state == "ready"


def seed_web_green_only(kube: Kube, namespace: str) -> None:
    from include.slow_injection.drivers.kubernetes import KubeAccess
    from include.slow_injection.lab.kube.seed import deployment
    from tests.support.routing_support import ready_endpoints, service

    api = KubeAccess(kube.api_client)
    api.create("Deployment", namespace, deployment("web-green", namespace, 1))
    api.create("Service", namespace, service("web-green", namespace, "web-green"))
    wait_for(lambda: ready_endpoints(api, namespace, "web-green") == 1, "green's endpoint", timeout=60)


def test_green_ready_waits_for_endpoints_and_the_attach(
    kube: Kube, gateway_api: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    namespace = kube.namespace("gw")
    seed_web(kube, namespace, green=False)
    routes = Routes(kube, namespace)
    routes.create(http_route(namespace))
    kube.connection(monkeypatch, CONNECTION)
    route = router(routes, min_healthy_targets=2)
    missing = route.green_ready()
    assert missing.state == "failed" and "does not exist" in missing.detail
    with pytest.raises(LookupError, match="does not exist"):
        route.attach_green(apply=True)
    seed_web_green_only(kube, namespace)  # one pod, two wanted
    waiting = route.green_ready()
    assert waiting.state == "waiting" and "1 ready endpoint(s) of 1, need 2" in waiting.detail
    assert router(routes).green_ready().detail.endswith("(attach_green adds it)")
    router(routes).attach_green(apply=True)
    assert router(routes).green_ready().state == "ready"


def test_settings_errors_name_the_field() -> None:
    from pydantic import ValidationError

    ref = {
        "namespace": "shop",
        "route": "shop",
        "blue_service": {"name": "web", "port": 80},
        "green_service": {"name": "web", "port": 80},
    }
    with pytest.raises(ValidationError, match="green_service: must be another backend than blue_service"):
        GatewayApiRouter.Settings.model_validate(ref)
    with pytest.raises(ValidationError) as bad_port:
        GatewayApiRouter.Settings.model_validate({**ref, "green_service": {"name": "web-green", "port": "http"}})
    assert bad_port.value.errors()[0]["loc"][:2] == ("green_service", "port")
    with pytest.raises(ValueError, match="needs `connection`"):
        registry.build("router", {"type": "gateway_api", **ref, "green_service": {"name": "web-green", "port": 80}})


def test_the_json_the_route_holds_is_what_the_crd_keeps(shop: Routes) -> None:
    """Defaults the API server fills in (group, kind, weight) are read as the router writes them."""
    route = router(shop)
    route.attach_green(apply=True)
    refs = shop.get()["spec"]["rules"][0]["backendRefs"]
    assert refs == [
        {"group": "", "kind": "Service", "name": "web", "port": 80, "weight": 100},
        {"group": "", "kind": "Service", "name": "web-green", "port": 80, "weight": 0},
    ]
    record = json.loads(shop.get()["metadata"]["annotations"]["slow-injection.io/split"])
    assert (record["blue"], record["green"]) == (100, 0)
