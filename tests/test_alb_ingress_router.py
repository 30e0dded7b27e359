"""alb_ingress router on the real control plane; the ALB side against moto in server mode, with a stand-in
for the AWS Load Balancer Controller that turns the Ingress (read through the real API server) into an ALB,
target groups tagged as the controller tags them, and one weighted rule per path."""

from __future__ import annotations

import hashlib
import json
import threading
from typing import Any, Self

import pytest

from include.slow_injection import registry
from include.slow_injection.drivers.k8s_ingress import ACTIONS, AlbIngressRouter
from include.slow_injection.drivers.kubernetes import KubeAccess
from include.slow_injection.ports import ReadbackMismatch, Weights
from tests.support.aws import CONNECTION_ID, ApiCalls, MotoServer
from tests.support.kube import Kube
from tests.support.routing_support import TARGET_TYPE, annotation_json, ingress, seed_web

CONNECTION = "kube_routes"
ACTION = "web-split"
STEPS = (5, 25, 100)


class Ingresses:
    """The admin's view of the Ingress (never the router's connection)."""

    def __init__(self, kube: Kube, namespace: str) -> None:
        from kubernetes import client

        self.api = client.NetworkingV1Api(kube.api_client)
        self.namespace = namespace

    def get(self) -> dict[str, Any]:
        return json.loads(self.api.read_namespaced_ingress("shop", self.namespace, _preload_content=False).data)

    def replace(self, body: dict[str, Any]) -> None:
        self.api.replace_namespaced_ingress("shop", self.namespace, body)

    def action(self) -> dict[str, int] | None:
        action = annotation_json(self.get(), ACTIONS + ACTION)
        return {g["serviceName"]: g["weight"] for g in action["forwardConfig"]["targetGroups"]} if action else None

    def backends(self) -> list[str]:
        return [p["backend"]["service"]["name"] for p in self.get()["spec"]["rules"][0]["http"]["paths"]]

    def annotate(self, key: str, value: str) -> None:
        """Someone else's edit (kubectl annotate --overwrite)."""
        self.api.patch_namespaced_ingress("shop", self.namespace, {"metadata": {"annotations": {key: value}}})


@pytest.fixture
def shop(kube: Kube, monkeypatch: pytest.MonkeyPatch) -> Ingresses:
    namespace = kube.namespace("ing")
    seed_web(kube, namespace)
    KubeAccess(kube.api_client)._api("NetworkingV1Api").create_namespaced_ingress(namespace, ingress(namespace))
    kube.connection(monkeypatch, CONNECTION)
    return Ingresses(kube, namespace)


def settings(shop: Ingresses, **extra: Any) -> dict[str, Any]:
    return {
        "type": "alb_ingress",
        "connection": CONNECTION,
        "namespace": shop.namespace,
        "ingress": "shop",
        "action": ACTION,
        "blue_service": {"name": "web", "port": 80},
        "green_service": {"name": "web-green", "port": 80},
        "reconcile_delay": "0s",  # no controller here: nothing to wait for (test_a_write_waits_for_the_controller)
        **extra,
    }


def router(shop: Ingresses, **extra: Any) -> AlbIngressRouter:
    return registry.build("router", settings(shop, **extra), service="web")


# --- the Ingress alone ----------------------------------------------------------------------------


def test_steps_5_25_100_read_back_and_roll_back_to_blue(shop: Ingresses) -> None:
    route = router(shop)
    assert route.get_weights() == Weights(100, 0)  # plain backends to blue's Service
    [change] = route.attach_green(apply=True)
    assert change.after == "blue 100, green 0 (green attached and health-checked)"
    assert shop.backends() == [ACTION, ACTION, "docs"]  # /docs is not ours: as it was
    assert shop.action() == {"web": 100, "web-green": 0}
    path = shop.get()["spec"]["rules"][0]["http"]["paths"][0]["backend"]
    assert path == {"service": {"name": ACTION, "port": {"name": "use-annotation"}}}
    for green in STEPS:
        route.set_weights(Weights.green_at(green))
        assert route.get_weights() == Weights.green_at(green)
        assert shop.action() == {"web": 100 - green, "web-green": green}
    route.set_weights(Weights.green_at(0))
    assert route.get_weights() == Weights(100, 0)
    action = annotation_json(shop.get(), ACTIONS + ACTION)
    assert action == {
        "type": "forward",
        "forwardConfig": {
            "targetGroups": [
                {"serviceName": "web", "servicePort": "80", "weight": 100},
                {"serviceName": "web-green", "servicePort": "80", "weight": 0},
            ]
        },
    }


def test_running_twice_changes_nothing(shop: Ingresses) -> None:
    route = router(shop)
    route.attach_green(apply=True)
    route.set_weights(Weights.green_at(25))
    version = shop.get()["metadata"]["resourceVersion"]
    assert route.attach_green(apply=True) == []
    route.set_weights(Weights.green_at(25))
    router(shop).set_weights(Weights.green_at(25))  # a second run's driver
    assert shop.get()["metadata"]["resourceVersion"] == version
    assert router(shop).get_weights() == Weights.green_at(25)


def test_a_dry_run_attach_writes_nothing(shop: Ingresses) -> None:
    version = shop.get()["metadata"]["resourceVersion"]
    assert len(router(shop).attach_green(apply=False)) == 1
    assert shop.get()["metadata"]["resourceVersion"] == version


def test_a_split_someone_else_set_is_reported_and_never_taken_as_ours(shop: Ingresses) -> None:
    route = router(shop)
    route.attach_green(apply=True)
    route.set_weights(Weights.green_at(25))
    shop.annotate(
        ACTIONS + ACTION,
        json.dumps(
            {
                "type": "forward",
                "forwardConfig": {
                    "targetGroups": [
                        {"serviceName": "web", "servicePort": "80", "weight": 50},
                        {"serviceName": "web-green", "servicePort": "80", "weight": 50},
                    ]
                },
            }
        ),
    )
    with pytest.raises(ReadbackMismatch, match="this project last set blue 75, green 25") as seen:
        route.get_weights()
    assert seen.value.found == Weights(50, 50) and seen.value.expected == Weights(75, 25)
    with pytest.raises(ReadbackMismatch):
        route.set_weights(Weights.green_at(50))  # never moves on from a split it did not set
    assert shop.action() == {"web": 50, "web-green": 50}
    route.set_weights(Weights.green_at(0))  # back to blue is always allowed
    assert route.get_weights() == Weights(100, 0) and shop.action() == {"web": 100, "web-green": 0}


def test_a_path_around_the_action_or_a_third_service_is_reported(shop: Ingresses) -> None:
    route = router(shop)
    route.attach_green(apply=True)
    route.set_weights(Weights.green_at(25))
    edited = shop.get()
    edited["spec"]["rules"][0]["http"]["paths"][1]["backend"] = {
        "service": {"name": "web-green", "port": {"number": 80}}
    }
    shop.replace(edited)
    with pytest.raises(ReadbackMismatch, match="straight to green's Service"):
        route.get_weights()
    route.set_weights(Weights.green_at(0))  # the rollback also takes /api back into the action
    assert shop.backends() == [ACTION, ACTION, "docs"] and route.get_weights() == Weights(100, 0)
    shop.annotate(
        ACTIONS + ACTION,
        json.dumps(
            {
                "type": "forward",
                "forwardConfig": {
                    "targetGroups": [
                        {"serviceName": "web", "servicePort": "80", "weight": 90},
                        {"serviceName": "docs", "servicePort": "80", "weight": 10},
                    ]
                },
            }
        ),
    )
    with pytest.raises(ReadbackMismatch, match="also forwards to docs"):
        route.get_weights()


def test_green_on_an_ingress_that_nobody_records_is_a_mismatch(shop: Ingresses) -> None:
    edited = shop.get()
    for path in edited["spec"]["rules"][0]["http"]["paths"][:2]:
        path["backend"] = {"service": {"name": ACTION, "port": {"name": "use-annotation"}}}
    edited["metadata"]["annotations"][ACTIONS + ACTION] = json.dumps(
        {
            "type": "forward",
            "forwardConfig": {
                "targetGroups": [
                    {"serviceName": "web", "servicePort": "80", "weight": 90},
                    {"serviceName": "web-green", "servicePort": "80", "weight": 10},
                ]
            },
        }
    )
    shop.replace(edited)
    with pytest.raises(ReadbackMismatch, match="never set that split"):
        router(shop).get_weights()


def test_attach_is_refused_while_green_has_no_service(kube: Kube, monkeypatch: pytest.MonkeyPatch) -> None:
    namespace = kube.namespace("ing")
    seed_web(kube, namespace, green=False)
    KubeAccess(kube.api_client)._api("NetworkingV1Api").create_namespaced_ingress(namespace, ingress(namespace))
    kube.connection(monkeypatch, CONNECTION)
    shop = Ingresses(kube, namespace)
    version = shop.get()["metadata"]["resourceVersion"]
    with pytest.raises(LookupError, match="fail the whole Ingress"):
        router(shop).attach_green(apply=True)
    with pytest.raises(LookupError, match="does not exist"):
        router(shop).set_weights(Weights.green_at(5))
    assert shop.get()["metadata"]["resourceVersion"] == version
    missing = router(shop).green_ready()
    assert missing.state == "failed" and "does not exist" in missing.detail


def test_green_ready_wants_ip_targets_ready_endpoints_and_the_attach(
    kube: Kube, monkeypatch: pytest.MonkeyPatch
) -> None:
    namespace = kube.namespace("ing")
    seed_web(kube, namespace, green_annotations={}, replicas=1)
    body = ingress(namespace)
    del body["metadata"]["annotations"][TARGET_TYPE]
    KubeAccess(kube.api_client)._api("NetworkingV1Api").create_namespaced_ingress(namespace, body)
    kube.connection(monkeypatch, CONNECTION)
    shop = Ingresses(kube, namespace)
    instance = router(shop).green_ready()
    assert instance.state == "failed" and "target type is instance" in instance.detail
    shop.annotate(TARGET_TYPE, "ip")
    waiting = router(shop, min_healthy_targets=2).green_ready()
    assert waiting.state == "waiting" and "1 ready endpoint(s) of 1, need 2" in waiting.detail
    assert router(shop).green_ready().detail.endswith("(attach_green adds it)")
    router(shop).attach_green(apply=True)
    ready = router(shop).green_ready()
    assert ready.state == "ready" and "ALB itself is not checked" in ready.detail


def test_settings_errors_name_the_field() -> None:
    from pydantic import ValidationError

    ref = {
        "namespace": "shop",
        "ingress": "shop",
        "action": "web-split",
        "blue_service": {"name": "web", "port": 80},
        "green_service": {"name": "web", "port": 80},
    }
    with pytest.raises(ValidationError, match="green_service: must be another Service than blue_service"):
        AlbIngressRouter.Settings.model_validate(ref)
    with pytest.raises(ValidationError, match="action: 'web' is a Service's name"):
        AlbIngressRouter.Settings.model_validate(
            {**ref, "action": "web", "green_service": {"name": "web-green", "port": 80}}
        )
    with pytest.raises(ValidationError) as bad_port:
        AlbIngressRouter.Settings.model_validate({**ref, "green_service": {"name": "web-green", "port": "HTTP_PORT"}})
    assert bad_port.value.errors()[0]["loc"][:2] == ("green_service", "port")
    with pytest.raises(ValueError, match="needs `connection`"):
        registry.build("router", {"type": "alb_ingress", **ref, "green_service": {"name": "web-green", "port": 80}})


def test_a_write_waits_for_the_controller_and_a_rewrite_does_not(
    shop: Ingresses, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without elbv2_connection the step cannot see the ALB: it waits reconcile_delay after a real write, so
    its bake and gates start on the new split; a re-run that writes nothing does not wait again."""
    from include.slow_injection.drivers import k8s_ingress

    slept: list[float] = []
    monkeypatch.setattr(k8s_ingress.time, "sleep", slept.append)
    route = router(shop, reconcile_delay="20s")
    route.attach_green(apply=True)
    route.set_weights(Weights.green_at(25))
    assert slept == [20.0]
    route.set_weights(Weights.green_at(25))
    assert slept == [20.0]
    route.set_weights(Weights.green_at(0))
    assert slept == [20.0, 20.0]
    assert shop.action() == {"web": 100, "web-green": 0}


def test_the_plan_warns_when_the_alb_is_not_read() -> None:
    ref = {
        "namespace": "shop",
        "ingress": "shop",
        "action": "web-split",
        "blue_service": {"name": "web", "port": 80},
        "green_service": {"name": "web-green", "port": "http"},
    }
    without = AlbIngressRouter.Settings.model_validate(ref)
    [warning] = AlbIngressRouter.plan_warnings(without, [(5, 600.0)])
    assert "no elbv2_connection" in warning and "30s (reconcile_delay)" in warning
    with_alb = AlbIngressRouter.Settings.model_validate({**ref, "elbv2_connection": "aws_shop"})
    assert AlbIngressRouter.plan_warnings(with_alb, [(5, 600.0)]) == []


# --- the ALB the controller makes (moto) ------------------------------------------------------------


class StandInController:
    """Stands in for the AWS Load Balancer Controller: on every new resourceVersion of the Ingress (after
    `delay` s) it makes, in moto, the ALB (listener :80), an `ip` or `instance` target group per Service and
    port (tagged ingress.k8s.aws/resource=<ns>/<ingress>-<service>:<port>, its targets the Service's ready
    endpoints), one rule per path with the action's weights, and writes the ALB's hostname to the Ingress's
    status. Controller-made resources carry the controller's tags, as on EKS."""

    def __init__(self, kube: Kube, aws: MotoServer, namespace: str, delay: float = 0.3) -> None:
        from kubernetes import client

        self.kube, self.namespace, self.delay = kube, namespace, delay
        self.reconciling = threading.Lock()  # a test's own reconcile() and the watch thread's, one at a time
        self.net, self.core = client.NetworkingV1Api(kube.api_client), client.CoreV1Api(kube.api_client)
        self.access = KubeAccess(kube.api_client)
        self.elbv2, ec2 = aws.client("elbv2"), aws.client("ec2")
        self.vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        self.subnets = [
            ec2.create_subnet(VpcId=self.vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"eu-west-1{az}")["Subnet"][
                "SubnetId"
            ]
            for i, az in enumerate("ab")
        ]
        self.stack = f"{namespace}/shop"
        self.tags = [
            {"Key": "elbv2.k8s.aws/cluster", "Value": "shop-prod"},
            {"Key": "ingress.k8s.aws/stack", "Value": self.stack},
        ]
        self.lb: dict[str, Any] | None = None
        self.listener = ""
        self.groups: dict[str, str] = {}
        self.rules: dict[int, str] = {}
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None

    def reconcile(self) -> None:
        with self.reconciling:
            self._reconcile()

    def _reconcile(self) -> None:
        ing = json.loads(self.net.read_namespaced_ingress("shop", self.namespace, _preload_content=False).data)
        annotations = ing["metadata"].get("annotations") or {}
        if self.lb is None:
            self.lb = self.elbv2.create_load_balancer(
                Name=f"k8s-{self.namespace[:8]}-shop",
                Subnets=self.subnets,
                Type="application",
                Tags=self.tags + [{"Key": "ingress.k8s.aws/resource", "Value": "LoadBalancer"}],
            )["LoadBalancers"][0]
            self.listener = self.elbv2.create_listener(
                LoadBalancerArn=self.lb["LoadBalancerArn"],
                Protocol="HTTP",
                Port=80,
                Tags=self.tags,
                DefaultActions=[{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "404"}}],
            )["Listeners"][0]["ListenerArn"]
            self.net.patch_namespaced_ingress_status(
                "shop", self.namespace, {"status": {"loadBalancer": {"ingress": [{"hostname": self.lb["DNSName"]}]}}}
            )
        for priority, path in enumerate(ing["spec"]["rules"][0]["http"]["paths"], start=1):
            service = path["backend"]["service"]
            if service["port"].get("name") == "use-annotation":
                action = json.loads(annotations[f"alb.ingress.kubernetes.io/actions.{service['name']}"])
                targets = [
                    (g["serviceName"], str(g["servicePort"]), g.get("weight", 1))
                    for g in action["forwardConfig"]["targetGroups"]
                ]
            else:
                targets = [(service["name"], str(service["port"].get("number") or service["port"]["name"]), 1)]
            forward = {
                "Type": "forward",
                "ForwardConfig": {
                    "TargetGroups": [
                        {"TargetGroupArn": self.group(ing, name, port), "Weight": weight}
                        for name, port, weight in targets
                    ]
                },
            }
            if priority in self.rules:
                self.elbv2.modify_rule(RuleArn=self.rules[priority], Actions=[forward])
            else:
                self.rules[priority] = self.elbv2.create_rule(
                    ListenerArn=self.listener,
                    Priority=priority,
                    Tags=self.tags,
                    Actions=[forward],
                    Conditions=[{"Field": "path-pattern", "PathPatternConfig": {"Values": [path["path"] + "*"]}}],
                )["Rules"][0]["RuleArn"]

    def group(self, ing: dict[str, Any], service: str, port: str) -> str:
        resource = f"{self.namespace}/shop-{service}:{port}"
        if resource not in self.groups:
            svc = self.access.get("Service", self.namespace, service) or {"metadata": {}}
            merged = {**(ing["metadata"].get("annotations") or {}), **(svc["metadata"].get("annotations") or {})}
            name = f"k8s-{service[:8]}-{hashlib.sha256(resource.encode()).hexdigest()[:10]}"
            arn = self.elbv2.create_target_group(
                Name=name,
                Protocol="HTTP",
                Port=8080,
                VpcId=self.vpc,
                TargetType=merged.get(TARGET_TYPE, "instance"),
                Tags=self.tags + [{"Key": "ingress.k8s.aws/resource", "Value": resource}],
            )["TargetGroups"][0]["TargetGroupArn"]
            slices = self.access.list(
                "DiscoveryV1Api",
                "list_namespaced_endpoint_slice",
                self.namespace,
                label_selector=f"kubernetes.io/service-name={service}",
            )
            ips = [a for s in slices for e in s.get("endpoints") or [] for a in e.get("addresses") or []]
            if ips:
                self.elbv2.register_targets(TargetGroupArn=arn, Targets=[{"Id": ip, "Port": 8080} for ip in ips])
            self.groups[resource] = arn
        return self.groups[resource]

    def _run(self) -> None:
        seen = None
        while not self.stop.wait(0.05):
            version = self.net.read_namespaced_ingress("shop", self.namespace).metadata.resource_version
            if version != seen and not self.stop.wait(self.delay):
                # the version read before reconciling: a write landing during the reconcile is seen next round
                seen = self.net.read_namespaced_ingress("shop", self.namespace).metadata.resource_version
                self.reconcile()

    def __enter__(self) -> Self:
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        if self.thread:
            self.thread.join(5)

    def forwards(self) -> list[dict[str, int]]:
        names = {arn: name for name, arn in self.groups.items()}
        out = []
        for rule in self.elbv2.describe_rules(ListenerArn=self.listener)["Rules"]:
            for action in rule["Actions"]:
                if action["Type"] == "forward":
                    out.append(
                        {
                            names[g["TargetGroupArn"]].split("/shop-", 1)[1]: g["Weight"]
                            for g in action["ForwardConfig"]["TargetGroups"]
                        }
                    )
        return out


@pytest.fixture
def controller(kube: Kube, shop: Ingresses, aws: MotoServer) -> StandInController:
    return StandInController(kube, aws, shop.namespace)


def with_alb(shop: Ingresses, **extra: Any) -> AlbIngressRouter:
    return router(
        shop, **{"elbv2_connection": CONNECTION_ID, "poll_interval": "100ms", "reconcile_timeout": "15s", **extra}
    )


def test_each_step_returns_once_the_alb_serves_it(shop: Ingresses, controller: StandInController) -> None:
    route = with_alb(shop)
    with controller:
        controller.reconcile()
        assert route.get_weights() == Weights(100, 0)  # the ALB forwards / and /api to blue's group
        route.attach_green(apply=True)
        for green in STEPS:
            route.set_weights(Weights.green_at(green))
            # set_weights waited for the controller: the ALB serves it now, on both of our paths
            web = [f for f in controller.forwards() if "web:80" in f]
            assert web == [{"web:80": 100 - green, "web-green:80": green}] * 2, controller.forwards()
            assert route.get_weights() == Weights.green_at(green)
        route.set_weights(Weights.green_at(0))
        assert route.get_weights() == Weights(100, 0)


def test_green_ready_waits_for_the_controller_and_healthy_ip_targets(
    shop: Ingresses, controller: StandInController
) -> None:
    route = with_alb(shop, min_healthy_targets=2)
    controller.reconcile()
    route.attach_green(apply=True)
    waiting = route.green_ready()  # the controller has not seen the attach yet
    assert waiting.state == "waiting" and "a target group for green's Service yet" in waiting.detail
    controller.reconcile()
    ready = route.green_ready()
    assert ready.state == "ready" and "2 healthy" in ready.detail, ready


def test_the_alb_lagging_or_edited_behind_the_ingress_is_a_mismatch(
    shop: Ingresses, controller: StandInController
) -> None:
    route = with_alb(shop, reconcile_timeout="1s")
    controller.reconcile()
    route.attach_green(apply=True)
    controller.reconcile()
    with pytest.raises(TimeoutError, match="the ALB to serve blue 75, green 25.*the ALB serves blue 100, green 0"):
        route.set_weights(Weights.green_at(25))  # no controller running: the Ingress says 25, the ALB 0
    with pytest.raises(ReadbackMismatch, match="its ALB serves blue 100, green 0"):
        route.get_weights()
    controller.reconcile()
    assert route.get_weights() == Weights.green_at(25)
    rule = next(iter(controller.rules.values()))
    forward = controller.elbv2.describe_rules(RuleArns=[rule])["Rules"][0]["Actions"][0]
    for group in forward["ForwardConfig"]["TargetGroups"]:
        group["Weight"] = 50  # someone edits the ALB directly
    controller.elbv2.modify_rule(RuleArn=rule, Actions=[forward])
    with pytest.raises(ReadbackMismatch, match="rules disagree"):
        route.get_weights()


def test_every_alb_call_is_in_its_iam_statements(
    shop: Ingresses, controller: StandInController, api_calls: ApiCalls
) -> None:
    controller.reconcile()
    route = with_alb(shop)
    route.attach_green(apply=True)
    controller.reconcile()
    route.get_weights()
    route.green_ready()
    settings_model = AlbIngressRouter.Settings.model_validate(
        {k: v for k, v in settings(shop, elbv2_connection=CONNECTION_ID).items() if k not in ("type", "connection")}
    )
    allowed = {a for st in AlbIngressRouter.iam_statements(settings_model) for a in st.actions}
    made = api_calls.actions()
    assert made and made <= allowed, made - allowed
    assert (
        AlbIngressRouter.iam_statements(
            AlbIngressRouter.Settings.model_validate(
                {k: v for k, v in settings(shop).items() if k not in ("type", "connection")}
            )
        )
        == []
    )


def test_the_by_hand_rollback_command_works_as_printed(kube: Kube, shop: Ingresses) -> None:
    """What the rollback's message tells an operator to run when the router could not be reached."""
    import os
    import subprocess

    from include.slow_injection.lab.kube.gateway_api_crds import crds_path

    route = router(shop)
    route.attach_green(apply=True)
    route.set_weights(Weights.green_at(25))
    command = route.by_hand(Weights.green_at(0)).strip("`")
    assert command.startswith(f"kubectl -n {shop.namespace} annotate ingress shop --overwrite")
    env = {
        **os.environ,
        "KUBECONFIG": str(kube.kubeconfig_file()),
        "PATH": f"{crds_path(kube.plane).parent}{os.pathsep}{os.environ['PATH']}",
    }
    done = subprocess.run(["bash", "-c", command], check=False, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert route.get_weights() == Weights(100, 0)  # no mismatch: the record was set by hand too
    assert shop.action() == {"web": 100, "web-green": 0}
