"""Ingress router for the AWS Load Balancer Controller: the weights live on the Ingress, as the controller's
weighted forward action, and the controller makes the ALB follow.

    metadata.annotations:
      alb.ingress.kubernetes.io/actions.<action>: '{"type":"forward","forwardConfig":{"targetGroups":[
          {"serviceName":"web","servicePort":"80","weight":75},
          {"serviceName":"web-green","servicePort":"80","weight":25}]}}'
    spec.rules[].http.paths[].backend: {service: {name: <action>, port: {name: use-annotation}}}

On EKS the controller owns the ALBs made from Ingresses and undoes any direct edit of them (the `alb` router
refuses such ALBs), so this router writes only the Ingress, through the Kubernetes API with an Airflow
`kubernetes` connection. It reads the split back from the Ingress and, given `elbv2_connection`, from the
ALB the controller made (found by the Ingress's status hostname, its target groups by the controller's
`ingress.k8s.aws/resource` tags): a step returns only once the ALB serves it. Each write also records the
split on the Ingress (`slow-injection.io/split.<action>`); a split found there that this project did not
write is a readback mismatch, never taken as the wave's own.
"""

from __future__ import annotations

import copy
import json
import logging
import time
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from include.slow_injection.drivers import k8s_routes as routes
from include.slow_injection.drivers.k8s_routes import RouteConfigError, ServiceRef, Split
from include.slow_injection.durations import format_duration
from include.slow_injection.ports import Change, ReadbackMismatch, Readiness, Weights
from include.slow_injection.spec.models import Duration

log = logging.getLogger(__name__)

ACTIONS = "alb.ingress.kubernetes.io/actions."
TARGET_TYPE = "alb.ingress.kubernetes.io/target-type"
USE_ANNOTATION = "use-annotation"  # the controller's magic port name: "the backend is the action annotation"
TG_RESOURCE_TAG = "ingress.k8s.aws/resource"  # on each target group: <ns>/<ingress>-<service>:<port>
WRITE_ATTEMPTS = 5  # a concurrent writer makes the PUT conflict (409): read again, decide again


class AlbIngressRouter:
    port = "router"

    class Settings(BaseModel):
        model_config = ConfigDict(extra="forbid", strict=True)
        namespace: str = Field(
            max_length=63,
            pattern=routes.DNS_LABEL,
            description="the Ingress's namespace; "
            "blue's and green's Services must be there too (the controller looks them up there)",
        )
        ingress: str = Field(min_length=1, max_length=253, description="the Ingress's name")
        action: str = Field(
            max_length=55,
            pattern=routes.DNS_LABEL,
            description="the action's name: annotation alb.ingress.kubernetes.io/actions.<action>, "
            "and the `service.name` its paths point at",
        )
        blue_service: ServiceRef = Field(description="blue's Service, the one the Ingress's paths name today")
        green_service: ServiceRef = Field(description="green's Service, in the same namespace, with IP targets")
        min_healthy_targets: int = Field(
            default=1,
            ge=1,
            le=1000,
            description="green's ready endpoints (and, with elbv2_connection, healthy "
            "ALB targets) required before any traffic moves",
        )
        require_ip_targets: bool = Field(
            default=True,
            description="Fargate pods register by IP only: green's "
            "target type (alb.ingress.kubernetes.io/target-type on its Service or on "
            "the Ingress) must be `ip`",
        )
        elbv2_connection: str | None = Field(
            default=None,
            min_length=1,
            description="an Airflow AWS connection: "
            "read the ALB the controller made, and wait until it serves each split",
        )
        region: str | None = None
        reconcile_timeout: Annotated[Duration, Field(gt=0)] = Field(
            default=300.0, description="longest wait for the ALB to serve a split written on the Ingress"
        )
        poll_interval: Annotated[Duration, Field(gt=0)] = Field(default=5.0, description="between ALB reads")
        reconcile_delay: Annotated[Duration, Field(ge=0, le=600)] = Field(
            default=30.0,
            description="without elbv2_connection nothing shows when the ALB serves a new split: a step that "
            "wrote the Ingress waits this long (the controller's reconcile lag) before its bake and gates start, "
            "so they judge the new split, not the old one; with elbv2_connection the ALB is read instead",
        )

        @model_validator(mode="after")
        def _distinct(self) -> AlbIngressRouter.Settings:
            if self.blue_service.name == self.green_service.name:
                raise ValueError(
                    f"green_service: must be another Service than blue_service (both are {self.blue_service.name!r})"
                )
            if self.action in (self.blue_service.name, self.green_service.name):
                raise ValueError(f"action: {self.action!r} is a Service's name; the action needs a name of its own")
            return self

    def __init__(self, api: Any, settings: Settings, elbv2: Any = None) -> None:
        self.api, self.settings, self.elbv2 = api, settings, elbv2
        self.action_key = ACTIONS + settings.action
        self.record_key = routes.record_key(settings.action)

    @classmethod
    def from_spec(cls, settings: Settings, connection_id: str | None, **_: Any) -> AlbIngressRouter:
        if not connection_id:
            raise ValueError(
                "alb_ingress router needs `connection` (an Airflow kubernetes connection to the "
                "cluster holding the Ingress, e.g. the green platform's)"
            )
        elbv2 = None
        if settings.elbv2_connection:
            from include.slow_injection.aws.hooks import ElbV2Hook

            elbv2 = ElbV2Hook(aws_conn_id=settings.elbv2_connection, region_name=settings.region).conn
        return cls(routes.api_client(connection_id), settings, elbv2)

    @classmethod
    def iam_statements(cls, settings: Settings) -> list[Any]:
        from include.slow_injection.aws.iam import Statement

        if not settings.elbv2_connection:
            return []
        # Describe* calls have no resource-level permissions in ELBv2; this router never writes to AWS.
        return [
            Statement(
                (
                    "elasticloadbalancing:DescribeLoadBalancers",
                    "elasticloadbalancing:DescribeListeners",
                    "elasticloadbalancing:DescribeRules",
                    "elasticloadbalancing:DescribeTargetGroups",
                    "elasticloadbalancing:DescribeTargetHealth",
                    "elasticloadbalancing:DescribeTags",
                ),
                ("*",),
                "alb_ingress reads the controller's ALB",
            )
        ]

    @classmethod
    def rbac_rules(cls, settings: Settings) -> dict[str, list[tuple[str, str, tuple[str, ...]]]]:
        """Every request this router sends, in the Ingress's namespace (tests/test_router_rbac.py)."""
        return {
            settings.namespace: [
                ("networking.k8s.io", "ingresses", ("get", "update")),
                ("", "services", ("get",)),  # green's Service exists, its target type
                ("discovery.k8s.io", "endpointslices", ("list",)),
            ]
        }  # green's ready endpoints

    @classmethod
    def plan_warnings(cls, settings: Settings, steps: list[tuple[int, float]]) -> list[str]:
        if settings.elbv2_connection:
            return []
        return [
            (
                f"router alb_ingress {settings.namespace}/{settings.ingress}: no elbv2_connection, so a step cannot "
                "see when the AWS Load Balancer Controller applied it to the ALB: each bake starts "
                f"{format_duration(settings.reconcile_delay)} (reconcile_delay) after the Ingress was written, "
                "and the ALB may lag it longer"
            )
        ]

    def describe(self) -> str:
        return f"alb_ingress {self.settings.namespace}/{self.settings.ingress} action {self.settings.action}"

    def by_hand(self, weights: Weights) -> str:
        s = self.settings
        action = json.dumps(self._action({}, Split(weights.blue, weights.green), True), separators=(",", ":"))
        return (
            f"`kubectl -n {s.namespace} annotate ingress {s.ingress} --overwrite '{self.action_key}={action}' "
            f"'{self.record_key}={routes.record_value(Split(weights.blue, weights.green))}'`"
        )

    # -- reading the Ingress -------------------------------------------------------------------------

    def _read(self) -> dict[str, Any]:
        from kubernetes import client
        from kubernetes.client.rest import ApiException

        try:
            return json.loads(
                client.NetworkingV1Api(self.api)
                .read_namespaced_ingress(self.settings.ingress, self.settings.namespace, _preload_content=False)
                .data
            )
        except ApiException as err:
            if err.status == 404:
                raise LookupError(
                    f"{self.describe()}: Ingress {self.settings.namespace}/{self.settings.ingress} does not exist"
                ) from None
            raise

    @staticmethod
    def _backends(ingress: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        """(where, backend) for the default backend and every path of every rule."""
        spec = ingress.get("spec") or {}
        out = [("defaultBackend", spec["defaultBackend"])] if spec.get("defaultBackend") else []
        for i, rule in enumerate(spec.get("rules") or []):
            for path in (rule.get("http") or {}).get("paths") or []:
                label = f"rules[{i}] {rule.get('host') or '*'}{path.get('path') or ''}"
                out.append((label, path.setdefault("backend", {})))
        return out

    def _is_action(self, backend: dict[str, Any]) -> bool:
        service = backend.get("service") or {}
        return service.get("name") == self.settings.action and (service.get("port") or {}).get("name") == USE_ANNOTATION

    @staticmethod
    def _service_name(backend: dict[str, Any]) -> str | None:
        return (backend.get("service") or {}).get("name")

    def _split(self, ingress: dict[str, Any]) -> tuple[Split, bool]:
        """The split the Ingress holds, and whether green is in its forward action (attached). A path that
        goes around the action, or a forward to a third Service, is a split this project did not set."""
        s, where = self.settings, self.describe()
        backends = self._backends(ingress)
        at_action = [w for w, b in backends if self._is_action(b)]
        direct = {
            side: [w for w, b in backends if self._service_name(b) == getattr(s, f"{side}_service").name]
            for side in ("blue", "green")
        }
        if direct["green"]:
            raise ReadbackMismatch(
                f"readback mismatch: {where}: {', '.join(direct['green'])} send(s) straight to "
                f"green's Service {s.green_service.name}, around the weighted action"
            )
        if not at_action:
            if not direct["blue"]:
                raise RouteConfigError(
                    f"{where}: no path of the Ingress goes to blue's Service "
                    f"{s.blue_service.name} or to the action {s.action}"
                )
            return Split(100, 0), False  # plain backends: all of it to blue
        if direct["blue"]:
            raise ReadbackMismatch(
                f"readback mismatch: {where}: {', '.join(direct['blue'])} send(s) straight to "
                f"blue's Service {s.blue_service.name}, around the weighted action"
            )
        raw = ((ingress.get("metadata") or {}).get("annotations") or {}).get(self.action_key)
        if raw is None:
            raise RouteConfigError(
                f"{where}: {', '.join(at_action)} point(s) at the action but the Ingress has no "
                f"{self.action_key} annotation: the controller answers 503 there"
            )
        try:
            action = json.loads(raw)
            groups = action["forwardConfig"]["targetGroups"] if action.get("type") == "forward" else None
        except (ValueError, KeyError, TypeError, AttributeError):
            groups = None
        if not isinstance(groups, list) or not groups:
            raise ReadbackMismatch(
                f"readback mismatch: {where}: {self.action_key} is not a weighted forward "
                f"(forwardConfig.targetGroups): {raw[:200]}"
            )
        blue = green = 0
        strangers, attached = [], False
        for group in groups:
            name = group.get("serviceName") or group.get("targetGroupARN") or "?"
            weight = group.get("weight", 1 if len(groups) == 1 else 0)
            if isinstance(weight, bool) or not isinstance(weight, int) or weight < 0:
                raise ReadbackMismatch(f"readback mismatch: {where}: weight {weight!r} of {name} is not a weight")
            for side in ("blue", "green"):
                ref: ServiceRef = getattr(s, f"{side}_service")
                if name == ref.name:
                    if str(group.get("servicePort")) != ref.port_text():
                        raise RouteConfigError(
                            f"{where}: the action forwards to {side}'s Service {ref.name} on port "
                            f"{group.get('servicePort')!r}, the settings say {ref.port!r}"
                        )
                    blue, green = (blue + weight, green) if side == "blue" else (blue, green + weight)
                    attached = attached or side == "green"
                    break
            else:
                if weight > 0:
                    strangers.append(f"{name} (weight {weight})")
        if strangers:
            raise ReadbackMismatch(
                f"readback mismatch: {where} also forwards to {', '.join(strangers)}; only blue's "
                "and green's Services may take traffic here"
            )
        return Split(blue, green), attached

    def _checked(self, ingress: dict[str, Any]) -> tuple[Split, bool]:
        split, attached = self._split(ingress)
        routes.check_ours(
            split, routes.recorded(ingress, self.record_key, self.describe()), self.record_key, self.describe()
        )
        return split, attached

    def get_weights(self) -> Weights:
        ingress = self._read()
        split, _ = self._checked(ingress)
        if self.elbv2 is not None:
            served = self._alb_split(ingress)
            if not served.same_share(split):
                raise ReadbackMismatch(
                    f"readback mismatch: {self.describe()} says {split.weights(self.describe())} "
                    f"but its ALB serves {served.weights('the ALB')}: the controller has not applied "
                    "it yet, or someone edited the ALB",
                    found=served.weights("the ALB"),
                    expected=split.weights(self.describe()),
                )
        return split.weights(self.describe())

    # -- writing -------------------------------------------------------------------------------------

    def _action(self, current: dict[str, Any], split: Split, with_green: bool) -> dict[str, Any]:
        """The forward action with blue's and green's weights; other keys of the current action (stickiness)
        kept, other target groups kept at weight 0."""
        s = self.settings
        forward = dict(current.get("forwardConfig") or {}) if current.get("type") == "forward" else {}
        names = {s.blue_service.name, s.green_service.name}
        others = [
            {**g, "weight": 0}
            for g in forward.get("targetGroups") or []
            if isinstance(g, dict) and g.get("serviceName") not in names
        ]
        groups = [{"serviceName": s.blue_service.name, "servicePort": s.blue_service.port_text(), "weight": split.blue}]
        if with_green:
            groups.append(
                {"serviceName": s.green_service.name, "servicePort": s.green_service.port_text(), "weight": split.green}
            )
        forward["targetGroups"] = groups + others
        return {"type": "forward", "forwardConfig": forward}

    def _desired(self, ingress: dict[str, Any], split: Split, with_green: bool) -> dict[str, Any]:
        out = copy.deepcopy(ingress)
        annotations = out.setdefault("metadata", {}).setdefault("annotations", {}) or {}
        out["metadata"]["annotations"] = annotations
        try:
            current = json.loads(annotations.get(self.action_key) or "{}")
        except ValueError:
            current = {}
        annotations[self.action_key] = json.dumps(
            self._action(current if isinstance(current, dict) else {}, split, with_green), separators=(",", ":")
        )
        names = {self.settings.blue_service.name, self.settings.green_service.name}
        for _, backend in self._backends(out):
            if self._service_name(backend) in names:
                backend.clear()
                backend["service"] = {"name": self.settings.action, "port": {"name": USE_ANNOTATION}}
        out.pop("status", None)
        return out

    def _same(self, ingress: dict[str, Any], desired: dict[str, Any], split: Split) -> bool:
        """Nothing to write: same action, same backends, and our record already says this split."""

        def owned(obj: dict[str, Any]) -> Any:
            raw = ((obj.get("metadata") or {}).get("annotations") or {}).get(self.action_key)
            try:
                action = json.loads(raw) if raw else None
            except ValueError:
                action = raw
            return action, [b for _, b in self._backends(copy.deepcopy(obj))]

        try:
            record = routes.recorded(ingress, self.record_key, self.describe())
        except ReadbackMismatch:
            return False
        return owned(ingress) == owned(desired) and record == split

    def _write(self, split: Split, allow_foreign: bool) -> bool:
        """Converge the Ingress to `split` (read, decide, PUT guarded by resourceVersion); True if written."""
        from kubernetes import client
        from kubernetes.client.rest import ApiException

        s = self.settings
        for _ in range(WRITE_ATTEMPTS):
            ingress = self._read()
            try:
                self._checked(ingress)
            except (ReadbackMismatch, RouteConfigError) as err:
                if not allow_foreign:
                    raise
                log.warning("%s; returning all traffic to blue anyway", err)
            green_exists = routes.read_service(self.api, s.namespace, s.green_service.name) is not None
            if not green_exists and split.green > 0:
                raise LookupError(
                    f"{self.describe()}: green's Service {s.namespace}/{s.green_service.name} does not "
                    "exist; the controller fails the whole Ingress when a forward names a missing Service"
                )
            desired = self._desired(ingress, split, with_green=green_exists)
            if self._same(ingress, desired, split):
                return False
            desired["metadata"]["annotations"][self.record_key] = routes.record_value(split)
            try:
                client.NetworkingV1Api(self.api).replace_namespaced_ingress(
                    s.ingress, s.namespace, desired, _preload_content=False
                )
                return True
            except ApiException as err:
                if err.status != 409:
                    raise
                log.info("%s: the Ingress changed while being written (409); reading it again", self.describe())
        raise RuntimeError(
            f"{self.describe()}: the Ingress kept changing under {WRITE_ATTEMPTS} writes (409 "
            "Conflict each time); another tool is writing it"
        )

    def set_weights(self, weights: Weights) -> None:
        split = routes.split_of(weights, "alb_ingress")
        # Back to blue is always allowed, whatever someone else left on the Ingress (a rollback must not
        # stop at a foreign split); any other split only moves on from one this project set.
        written = self._write(split, allow_foreign=split.green == 0)
        if self.elbv2 is not None:
            self._wait_served(split)
        elif written and self.settings.reconcile_delay:
            # Blind: the controller's lag, not a reading. A re-run that wrote nothing does not wait again.
            log.info(
                "%s: written; waiting %.0fs for the controller to reconcile (no elbv2_connection to read the ALB)",
                self.describe(),
                self.settings.reconcile_delay,
            )
            time.sleep(self.settings.reconcile_delay)

    def _wait_served(self, split: Split) -> None:
        def check() -> str | None:
            try:
                served = self._alb_split(self._read())
            except (ReadbackMismatch, RouteConfigError) as err:
                return str(err)
            return None if served.same_share(split) else f"the ALB serves {served}"

        routes.wait_until(
            check,
            self.settings.reconcile_timeout,
            self.settings.poll_interval,
            f"{self.describe()}: the ALB to serve {split.weights(self.describe())} (the AWS Load Balancer "
            "Controller reconciles the Ingress; is it running, and are its logs clean?)",
        )

    def attach_green(self, apply: bool) -> list[Change]:
        """Green's Service joins the weighted action at weight 0 (the controller then makes its target group
        and registers green's pods, which the ALB health-checks); paths to blue's Service move to the action.
        No traffic moves. Refused while green's Service is missing: the controller would fail the Ingress."""
        s = self.settings
        ingress = self._read()
        split, attached = self._checked(ingress)
        if attached:
            return []
        if routes.read_service(self.api, s.namespace, s.green_service.name) is None:
            raise LookupError(
                f"{self.describe()}: green's Service {s.namespace}/{s.green_service.name} does not "
                "exist; create it before attaching (a forward naming a missing Service makes the "
                "controller fail the whole Ingress)"
            )
        change = Change(
            f"router {self.describe()}",
            f"{split} (green not in the action)",
            "blue 100, green 0 (green attached and health-checked)",
            applied=apply,
        )
        if apply:
            self._write(Split(100, 0), allow_foreign=False)
        return [change]

    # -- green's readiness ---------------------------------------------------------------------------

    def green_ready(self) -> Readiness:
        s = self.settings
        green = routes.read_service(self.api, s.namespace, s.green_service.name)
        if green is None:
            return Readiness(
                "failed",
                f"green's Service {s.namespace}/{s.green_service.name} does not exist; the "
                "Ingress's action can only forward to Services of its own namespace",
            )
        if routes.service_port(green, s.green_service.port) is None:
            return Readiness("failed", f"green's Service {s.green_service.name} has no port {s.green_service.port!r}")
        ingress = self._read()
        target_type = (
            (green["metadata"].get("annotations") or {}).get(TARGET_TYPE)
            or ((ingress.get("metadata") or {}).get("annotations") or {}).get(TARGET_TYPE)
            or "instance"
        )
        if s.require_ip_targets and target_type != "ip":
            return Readiness(
                "failed",
                f"green's target type is {target_type} ({TARGET_TYPE} on its Service or the "
                "Ingress; the controller's default is instance): Fargate pods register by IP, "
                "set it to ip",
            )
        ready, seen = routes.ready_endpoints(self.api, s.namespace, s.green_service.name)
        if ready < s.min_healthy_targets:
            return Readiness(
                "waiting",
                f"green's Service {s.green_service.name}: {ready} ready endpoint(s) of {seen}, "
                f"need {s.min_healthy_targets}",
            )
        try:
            split, attached = self._checked(ingress)
        except (ReadbackMismatch, RouteConfigError) as err:
            return Readiness("failed", str(err))
        if not attached:
            return Readiness("waiting", f"green's Service is not in {self.action_key} yet (attach_green adds it)")
        detail = f"green's Service {s.green_service.name}: {ready} ready endpoint(s), target type ip"
        if self.elbv2 is None:
            return Readiness("ready", detail + "; no elbv2_connection, so the ALB itself is not checked")
        return self._alb_ready(ingress, split, detail)

    # -- the ALB the controller made ------------------------------------------------------------------

    def _load_balancer(self, ingress: dict[str, Any]) -> dict[str, Any]:
        found = ((ingress.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        hostname = next((i.get("hostname") for i in found if i.get("hostname")), None)
        if not hostname:
            raise ReadbackMismatch(
                f"{self.describe()}: the controller has not given the Ingress an ALB yet "
                "(no status.loadBalancer hostname)"
            )
        for page in self.elbv2.get_paginator("describe_load_balancers").paginate():
            for lb in page["LoadBalancers"]:
                if lb.get("DNSName", "").lower() == hostname.lower():
                    return lb
        raise ReadbackMismatch(f"{self.describe()}: no load balancer has the Ingress's hostname {hostname}")

    def _target_groups(self, forwards: list[tuple[str, dict[str, int]]]) -> dict[str, str]:
        """ARN by the controller's resource tag (<ns>/<ingress>-<service>:<port>) of every target group the
        ALB's rules forward to (the controller keeps a weight-0 group in the forward, so green's is there
        from its attach on)."""
        arns = sorted({arn for _, weights in forwards for arn in weights})
        out: dict[str, str] = {}
        for i in range(0, len(arns), 20):  # DescribeTags takes 20 ARNs at most
            for description in self.elbv2.describe_tags(ResourceArns=arns[i : i + 20])["TagDescriptions"]:
                for tag in description.get("Tags") or []:
                    if tag["Key"] == TG_RESOURCE_TAG:
                        out[tag["Value"]] = description["ResourceArn"]
        return out

    def _resource_id(self, ref: ServiceRef) -> str:
        return f"{self.settings.namespace}/{self.settings.ingress}-{ref.name}:{ref.port_text()}"

    def _forwards(self, lb_arn: str) -> list[tuple[str, dict[str, int]]]:
        """(rule, weight per target group ARN) of every forward action on the ALB's listeners."""
        out = []
        for page in self.elbv2.get_paginator("describe_listeners").paginate(LoadBalancerArn=lb_arn):
            for listener in page["Listeners"]:
                request: dict[str, Any] = {"ListenerArn": listener["ListenerArn"]}
                while True:
                    answer = self.elbv2.describe_rules(**request)
                    for rule in answer["Rules"]:
                        for action in rule.get("Actions") or []:
                            if action.get("Type") != "forward":
                                continue
                            groups = (action.get("ForwardConfig") or {}).get("TargetGroups")
                            weights = (
                                {g["TargetGroupArn"]: int(g.get("Weight", 1)) for g in groups}
                                if groups
                                else {action["TargetGroupArn"]: 1}
                            )
                            out.append((f"port {listener.get('Port')} rule {rule.get('Priority')}", weights))
                    if not answer.get("NextMarker"):
                        break
                    request["Marker"] = answer["NextMarker"]
        return out

    def _alb_split(self, ingress: dict[str, Any]) -> Split:
        """The split the ALB serves on every rule that forwards to blue's or green's target group; rules that
        disagree, or a forward that also feeds another target group, are a readback mismatch."""
        lb = self._load_balancer(ingress)
        forwards = self._forwards(lb["LoadBalancerArn"])
        groups = self._target_groups(forwards)
        blue = groups.get(self._resource_id(self.settings.blue_service))
        if blue is None:
            raise ReadbackMismatch(
                f"{self.describe()}: no rule of the ALB {lb['LoadBalancerName']} forwards to a "
                f"target group for blue's Service yet (tag {TG_RESOURCE_TAG}="
                f"{self._resource_id(self.settings.blue_service)})"
            )
        green = groups.get(self._resource_id(self.settings.green_service))
        ours = {blue, green} - {None}
        splits: dict[str, Split] = {}
        for rule, weights in forwards:
            if not ours & set(weights):
                continue
            strangers = {arn.split(":")[-1]: w for arn, w in weights.items() if arn not in ours and w > 0}
            if strangers:
                raise ReadbackMismatch(f"readback mismatch: the ALB's {rule} also forwards to {strangers}")
            splits[rule] = Split(weights.get(blue, 0), weights.get(green, 0) if green else 0)
        first = next(iter(splits.values()))
        if any(not split.same_share(first) for split in splits.values()):
            raise ReadbackMismatch(
                "readback mismatch: the ALB's rules disagree: "
                + ", ".join(f"{rule}: {split}" for rule, split in splits.items())
            )
        return first

    def _alb_ready(self, ingress: dict[str, Any], split: Split, detail: str) -> Readiness:
        s = self.settings
        try:
            lb = self._load_balancer(ingress)
            arn = self._target_groups(self._forwards(lb["LoadBalancerArn"])).get(self._resource_id(s.green_service))
            if arn is None:
                return Readiness(
                    "waiting",
                    f"no rule of the ALB {lb['LoadBalancerName']} forwards to a target group "
                    "for green's Service yet (the controller adds it once the action names green)",
                )
            group = self.elbv2.describe_target_groups(TargetGroupArns=[arn])["TargetGroups"][0]
            if s.require_ip_targets and group.get("TargetType") != "ip":
                return Readiness(
                    "failed",
                    f"green's target group {group['TargetGroupName']} has target type "
                    f"{group.get('TargetType')}; Fargate pods register by IP",
                )
            health = self.elbv2.describe_target_health(TargetGroupArn=group["TargetGroupArn"])[
                "TargetHealthDescriptions"
            ]
            healthy = sum(1 for h in health if (h.get("TargetHealth") or {}).get("State") == "healthy")
            if healthy < s.min_healthy_targets:
                return Readiness(
                    "waiting",
                    f"green's target group {group['TargetGroupName']}: {healthy} healthy of "
                    f"{len(health)} target(s), need {s.min_healthy_targets}",
                )
            served = self._alb_split(ingress)
        except (ReadbackMismatch, RouteConfigError) as err:
            return Readiness("waiting", str(err))
        if not served.same_share(split):
            return Readiness(
                "waiting", f"the ALB serves {served}, the Ingress says {split}: the controller has not reconciled yet"
            )
        return Readiness(
            "ready", f"{detail}; ALB target group {group['TargetGroupName']}: {healthy} healthy, serving {split}"
        )
