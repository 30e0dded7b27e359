"""Gateway API router: the weights of blue's and green's Services in an HTTPRoute's `backendRefs`
(gateway.networking.k8s.io/v1), written through the Kubernetes API with an Airflow `kubernetes` connection.

The router owns every rule of the route that names blue's or green's Service; all of them carry the same
split, and any other backend of those rules keeps weight 0. It reads the split back from the route and from
the route's status where a gateway controller wrote one (each parent's `Accepted` and `ResolvedRefs`
conditions): after a write it waits until every parent that reports on the route has seen the new generation.
Green's Service may live in another namespace than the route when a ReferenceGrant there allows it. Each
write also records the split on the route (`slow-injection.io/split`); a split found there that this project
did not write is a readback mismatch, never taken as the wave's own.
"""

from __future__ import annotations

import copy
import json
import logging
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from include.slow_injection.drivers import k8s_routes as routes
from include.slow_injection.drivers.k8s_routes import RouteConfigError, Split
from include.slow_injection.ports import Change, ReadbackMismatch, Readiness, Weights
from include.slow_injection.spec.models import Duration

log = logging.getLogger(__name__)

GROUP, VERSION, PLURAL = "gateway.networking.k8s.io", "v1", "httproutes"
GRANTS_VERSION = "v1beta1"  # ReferenceGrant: v1beta1 is served by every release that has it
WRITE_ATTEMPTS = 5


class Backend(BaseModel):
    """A Service as an HTTPRoute backendRef names it."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    name: str = Field(max_length=63, pattern=routes.DNS_LABEL)
    port: int = Field(ge=1, le=65535, description="the Service port number (backendRefs take numbers only)")
    namespace: str | None = Field(
        default=None,
        max_length=63,
        pattern=routes.DNS_LABEL,
        description="when not the route's: a ReferenceGrant there must allow it",
    )

    def __str__(self) -> str:
        return f"{self.namespace + '/' if self.namespace else ''}{self.name}:{self.port}"


class GatewayApiRouter:
    port = "router"

    class Settings(BaseModel):
        model_config = ConfigDict(extra="forbid", strict=True)
        namespace: str = Field(max_length=63, pattern=routes.DNS_LABEL, description="the HTTPRoute's namespace")
        route: str = Field(min_length=1, max_length=253, description="the HTTPRoute's name")
        blue_service: Backend = Field(description="blue's Service, as the route's backendRefs name it today")
        green_service: Backend = Field(description="green's Service")
        min_healthy_targets: int = Field(
            default=1, ge=1, le=1000, description="green's ready endpoints required before any traffic moves"
        )
        status_timeout: Annotated[Duration, Field(gt=0)] = Field(
            default=120.0, description="longest wait for the gateway(s) to accept a written split (route status)"
        )
        poll_interval: Annotated[Duration, Field(gt=0)] = Field(default=2.0, description="between status reads")

        @model_validator(mode="after")
        def _distinct(self) -> GatewayApiRouter.Settings:
            def key(b: Backend) -> tuple:
                return (b.namespace or self.namespace, b.name, b.port)

            if key(self.blue_service) == key(self.green_service):
                raise ValueError(f"green_service: must be another backend than blue_service (both {self.blue_service})")
            return self

    def __init__(self, api: Any, settings: Settings) -> None:
        self.api, self.settings = api, settings
        self.record_key = routes.record_key()

    @classmethod
    def from_spec(cls, settings: Settings, connection_id: str | None, **_: Any) -> GatewayApiRouter:
        if not connection_id:
            raise ValueError(
                "gateway_api router needs `connection` (an Airflow kubernetes connection to the "
                "cluster holding the HTTPRoute)"
            )
        return cls(routes.api_client(connection_id), settings)

    @classmethod
    def rbac_rules(cls, settings: Settings) -> dict[str, list[tuple[str, str, tuple[str, ...]]]]:
        """Every request this router sends, per namespace (tests/test_router_rbac.py)."""
        green = settings.green_service.namespace or settings.namespace
        rules: dict[str, list[tuple[str, str, tuple[str, ...]]]] = {
            settings.namespace: [(GROUP, PLURAL, ("get", "update"))]
        }
        rules.setdefault(green, []).extend(
            [("", "services", ("get",)), ("discovery.k8s.io", "endpointslices", ("list",))]
        )
        if green != settings.namespace:  # a ReferenceGrant there must open green's Service to the route
            rules[green].append((GROUP, "referencegrants", ("list",)))
        return rules

    def describe(self) -> str:
        return f"gateway_api {self.settings.namespace}/{self.settings.route}"

    def by_hand(self, weights: Weights) -> str:
        s = self.settings
        return (
            f"`kubectl -n {s.namespace} edit httproute {s.route}`: in every rule naming {s.blue_service.name}, "
            f"weight {weights.blue} on {s.blue_service} and {weights.green} on {s.green_service}; then "
            f"`kubectl -n {s.namespace} annotate httproute {s.route} --overwrite "
            f"'{self.record_key}={routes.record_value(Split(weights.blue, weights.green))}'`"
        )

    # -- reading ---------------------------------------------------------------------------------------

    def _objects(self) -> Any:
        from kubernetes import client

        return client.CustomObjectsApi(self.api)

    def _read(self) -> dict[str, Any]:
        from kubernetes.client.rest import ApiException

        s = self.settings
        try:
            return json.loads(
                self._objects()
                .get_namespaced_custom_object(GROUP, VERSION, s.namespace, PLURAL, s.route, _preload_content=False)
                .data
            )
        except ApiException as err:
            if err.status == 404:
                raise LookupError(
                    f"{self.describe()}: HTTPRoute {s.namespace}/{s.route} does not exist (or the "
                    "Gateway API CRDs are not installed)"
                ) from None
            raise

    def _side(self, ref: dict[str, Any]) -> str | None:
        """'blue' / 'green' when a backendRef names that Service, else None."""
        if ref.get("group", "") not in ("", "core") or ref.get("kind", "Service") != "Service":
            return None
        for side in ("blue", "green"):
            backend: Backend = getattr(self.settings, f"{side}_service")
            if (
                ref.get("name") == backend.name
                and ref.get("port") == backend.port
                and (ref.get("namespace") or self.settings.namespace) == (backend.namespace or self.settings.namespace)
            ):
                return side
        return None

    def _owned_rules(self, route: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
        rules = list(enumerate((route.get("spec") or {}).get("rules") or []))
        owned = [(i, r) for i, r in rules if any(self._side(ref) for ref in r.get("backendRefs") or [])]
        if not owned:
            raise RouteConfigError(
                f"{self.describe()}: no rule of the route has {self.settings.blue_service} or "
                f"{self.settings.green_service} among its backendRefs"
            )
        return owned

    def _split(self, route: dict[str, Any]) -> tuple[Split, bool]:
        """The split every owned rule carries, and whether green is in all of them (attached)."""
        splits, attached = {}, True
        for i, rule in self._owned_rules(route):
            weights = {"blue": 0, "green": 0}
            present, strangers = set(), []
            for ref in rule.get("backendRefs") or []:
                weight = ref.get("weight", 1)  # the Gateway API's default
                side = self._side(ref)
                if side:
                    weights[side] += weight
                    present.add(side)
                elif weight > 0:
                    strangers.append(
                        f"{ref.get('kind', 'Service')} {ref.get('namespace', '') and ref['namespace'] + '/'}"
                        f"{ref.get('name')}:{ref.get('port')} (weight {weight})"
                    )
            if strangers:
                raise ReadbackMismatch(
                    f"readback mismatch: {self.describe()} rules[{i}] also sends traffic to "
                    f"{', '.join(strangers)}; only blue's and green's Services may take it here"
                )
            attached = attached and "green" in present
            splits[i] = Split(weights["blue"], weights["green"])
        first = next(iter(splits.values()))
        if any(not split.same_share(first) for split in splits.values()):
            raise ReadbackMismatch(
                "readback mismatch: "
                + self.describe()
                + "'s rules disagree: "
                + ", ".join(f"rules[{i}] {split}" for i, split in splits.items())
            )
        return first, attached

    def _checked(self, route: dict[str, Any]) -> tuple[Split, bool]:
        split, attached = self._split(route)
        routes.check_ours(
            split, routes.recorded(route, self.record_key, self.describe()), self.record_key, self.describe()
        )
        return split, attached

    @staticmethod
    def _parents(route: dict[str, Any]) -> list[tuple[str, dict[str, dict[str, Any]]]]:
        """(parent, conditions by type) of every parent a gateway controller reported on."""
        out = []
        for parent in (route.get("status") or {}).get("parents") or []:
            ref = parent.get("parentRef") or {}
            name = (
                f"{ref.get('kind', 'Gateway')} {ref.get('namespace', '') and ref['namespace'] + '/'}{ref.get('name')}"
            )
            out.append((name, {c["type"]: c for c in parent.get("conditions") or [] if "type" in c}))
        return out

    def _status(self, route: dict[str, Any]) -> tuple[str, str] | None:
        """("refused", why) when a gateway reports the route's current generation not Accepted or its refs
        not resolved; ("pending", why) while a gateway that reports on the route has not seen that generation
        yet; None when every reporting gateway serves it (or none reports)."""
        generation = (route.get("metadata") or {}).get("generation") or 0
        pending = None
        for parent, conditions in self._parents(route):
            accepted = conditions.get("Accepted")
            if accepted is None or (accepted.get("observedGeneration") or 0) < generation:
                pending = pending or (
                    "pending",
                    f"{parent} has not reported on generation {generation} of the route yet",
                )
                continue
            for kind in ("Accepted", "ResolvedRefs"):
                condition = conditions.get(kind)
                if (
                    condition
                    and condition.get("status") == "False"
                    and (condition.get("observedGeneration") or 0) >= generation
                ):
                    return "refused", (
                        f"{parent}: {kind} is False ({condition.get('reason')}: "
                        f"{(condition.get('message') or '')[:200]})"
                    )
        return pending

    def get_weights(self) -> Weights:
        route = self._read()
        split, _ = self._checked(route)
        status = self._status(route)
        if status and status[0] == "refused":
            raise ReadbackMismatch(
                f"readback mismatch: {self.describe()} holds {split} but the gateway does not serve it: {status[1]}",
                found=None,
                expected=split.weights(self.describe()),
            )
        return split.weights(self.describe())

    # -- writing ---------------------------------------------------------------------------------------

    def _ref(self, side: str, weight: int) -> dict[str, Any]:
        backend: Backend = getattr(self.settings, f"{side}_service")
        ref: dict[str, Any] = {
            "group": "",
            "kind": "Service",
            "name": backend.name,
            "port": backend.port,
            "weight": weight,
        }
        if backend.namespace and backend.namespace != self.settings.namespace:
            ref["namespace"] = backend.namespace
        return ref

    def _desired(self, route: dict[str, Any], split: Split, with_green: bool) -> dict[str, Any]:
        out = copy.deepcopy(route)
        out.pop("status", None)
        rules = out["spec"]["rules"]
        for i, _ in self._owned_rules(route):
            refs: list[dict[str, Any]] = rules[i].get("backendRefs") or []
            kept = {side: next((r for r in refs if self._side(r) == side), None) for side in ("blue", "green")}
            new = []
            for ref in refs:
                side = self._side(ref)
                if side is None:
                    new.append({**ref, "weight": 0})
                elif ref is kept[side]:
                    new.append({**ref, "weight": getattr(split, side)})
                # a second ref to the same Service is folded into the first
            if kept["blue"] is None:
                new.insert(0, self._ref("blue", split.blue))
            if kept["green"] is None and with_green:
                position = next((j + 1 for j, r in enumerate(new) if self._side(r) == "blue"), len(new))
                new.insert(position, self._ref("green", split.green))
            rules[i]["backendRefs"] = new
        return out

    def _write(self, split: Split, allow_foreign: bool) -> dict[str, Any] | None:
        """Converge the route to `split`; the route as written, or None when nothing had to change."""
        from kubernetes.client.rest import ApiException

        s = self.settings
        for _ in range(WRITE_ATTEMPTS):
            route = self._read()
            try:
                self._checked(route)
            except (ReadbackMismatch, RouteConfigError) as err:
                if not allow_foreign or not isinstance(err, ReadbackMismatch):
                    raise
                log.warning("%s; returning all traffic to blue anyway", err)
            green = s.green_service
            green_exists = routes.read_service(self.api, green.namespace or s.namespace, green.name) is not None
            if not green_exists and split.green > 0:
                raise LookupError(f"{self.describe()}: green's Service {green} does not exist")
            desired = self._desired(route, split, with_green=green_exists or self._split_attached(route))
            try:
                same_record = routes.recorded(route, self.record_key, self.describe()) == split
            except ReadbackMismatch:
                same_record = False
            if desired["spec"] == route.get("spec") and same_record:
                return None
            desired["metadata"].setdefault("annotations", {})[self.record_key] = routes.record_value(split)
            try:
                return json.loads(
                    self._objects()
                    .replace_namespaced_custom_object(
                        GROUP, VERSION, s.namespace, PLURAL, s.route, desired, _preload_content=False
                    )
                    .data
                )
            except ApiException as err:
                if err.status != 409:
                    raise
                log.info("%s: the route changed while being written (409); reading it again", self.describe())
        raise RuntimeError(
            f"{self.describe()}: the route kept changing under {WRITE_ATTEMPTS} writes (409 Conflict "
            "each time); another tool is writing it"
        )

    def _split_attached(self, route: dict[str, Any]) -> bool:
        try:
            return self._split(route)[1]
        except (ReadbackMismatch, RouteConfigError):
            return False

    def set_weights(self, weights: Weights) -> None:
        split = routes.split_of(weights, "gateway_api")
        written = self._write(split, allow_foreign=split.green == 0)  # back to blue is always allowed
        if written is not None:
            self._wait_accepted()

    def _wait_accepted(self) -> None:
        """Every gateway that reports on the route has seen the written generation and accepts it."""

        def check() -> str | None:
            status = self._status(self._read())
            if status and status[0] == "refused":
                raise ReadbackMismatch(f"{self.describe()}: the gateway refuses the written split: {status[1]}")
            return status[1] if status else None

        if not self._parents(self._read()):
            log.info(
                "%s: no gateway reports status on the route; the split is read back from its spec only", self.describe()
            )
            return
        routes.wait_until(
            check,
            self.settings.status_timeout,
            self.settings.poll_interval,
            f"{self.describe()}: the gateway(s) to accept the written split",
        )

    def attach_green(self, apply: bool) -> list[Change]:
        """Green's Service joins every owned rule at weight 0; no traffic moves. Refused while green's
        Service is missing, or lives in another namespace that no ReferenceGrant opens to the route."""
        route = self._read()
        split, attached = self._checked(route)
        if attached:
            return []
        problem = self._green_reachable()
        if problem:
            raise LookupError(f"{self.describe()}: {problem}")
        change = Change(
            f"router {self.describe()}",
            f"{split} (green not in the route)",
            "blue 100, green 0 (green attached)",
            applied=apply,
        )
        if apply and self._write(Split(100, 0), allow_foreign=False) is not None:
            self._wait_accepted()
        return [change]

    def _green_reachable(self) -> str | None:
        s = self.settings
        green, namespace = s.green_service, s.green_service.namespace or s.namespace
        service = routes.read_service(self.api, namespace, green.name)
        if service is None:
            return f"green's Service {namespace}/{green.name} does not exist"
        if routes.service_port(service, green.port) is None:
            return f"green's Service {namespace}/{green.name} has no port {green.port}"
        if namespace != s.namespace and not self._granted(namespace, green.name):
            return (
                f"no ReferenceGrant in {namespace} lets HTTPRoutes of {s.namespace} reach Service {green.name}: "
                "the gateway would refuse the reference (ResolvedRefs False, RefNotPermitted)"
            )
        return None

    def _granted(self, namespace: str, service: str) -> bool:
        grants = (
            json.loads(
                self._objects()
                .list_namespaced_custom_object(
                    GROUP, GRANTS_VERSION, namespace, "referencegrants", _preload_content=False
                )
                .data
            ).get("items")
            or []
        )
        for grant in grants:
            spec = grant.get("spec") or {}
            sources = any(
                f.get("group") == GROUP
                and f.get("kind") == "HTTPRoute"
                and f.get("namespace") == self.settings.namespace
                for f in spec.get("from") or []
            )
            targets = any(
                t.get("group", "") == "" and t.get("kind") == "Service" and t.get("name") in (None, service)
                for t in spec.get("to") or []
            )
            if sources and targets:
                return True
        return False

    # -- green's readiness -----------------------------------------------------------------------------

    def green_ready(self) -> Readiness:
        s = self.settings
        problem = self._green_reachable()
        if problem:
            return Readiness("failed", problem)
        namespace = s.green_service.namespace or s.namespace
        ready, seen = routes.ready_endpoints(self.api, namespace, s.green_service.name)
        if ready < s.min_healthy_targets:
            return Readiness(
                "waiting",
                f"green's Service {namespace}/{s.green_service.name}: {ready} ready endpoint(s) "
                f"of {seen}, need {s.min_healthy_targets}",
            )
        route = self._read()
        try:
            _, attached = self._checked(route)
        except (ReadbackMismatch, RouteConfigError) as err:
            return Readiness("failed", str(err))
        if not attached:
            return Readiness("waiting", "green's Service is not in the route's backendRefs yet (attach_green adds it)")
        status = self._status(route)
        if status:
            return Readiness("waiting", status[1])
        parents = [name for name, _ in self._parents(route)]
        return Readiness(
            "ready",
            f"green's Service {namespace}/{s.green_service.name}: {ready} ready endpoint(s); "
            + (f"accepted by {', '.join(parents)}" if parents else "no gateway reports status"),
        )
