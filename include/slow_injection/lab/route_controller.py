"""The lab's stand-in for the controller that turns a Kubernetes routing object into real traffic: an
emulation, kept small, of vendor and third-party controllers — the AWS Load Balancer Controller's reconcile of
an Ingress (its weighted forward action, `alb.ingress.kubernetes.io/actions.<name>`, as the `alb_ingress`
router writes it) and a Gateway API implementation's reconcile of an HTTPRoute (`backendRefs` weights, as the
`gateway_api` router writes them). Neither is the real thing: it knows one HAProxy backend and two Services.

It watches the object through the Kubernetes watch API (a list, then a watch from its resourceVersion; a
list again when the watch expires or its version is gone) and, `delay` seconds after the last change it saw,
sets the HAProxy server weights to the object's split through the runtime API — so a lab wave goes spec →
Kubernetes object → controller → real traffic, with a controller's lag. Like the real controllers it retries
a failed apply (HAProxy down) with backoff, and tells only through its log and the object's status:

- Ingress: `status.loadBalancer.ingress[].hostname` once (the ALB's DNS name on EKS; here the HAProxy
  frontend's host), as the AWS Load Balancer Controller does after its first successful reconcile.
- HTTPRoute: per parentRef, `Accepted` and `ResolvedRefs` conditions with the route's `observedGeneration`,
  written only after HAProxy took the split (so the router's wait for the new generation is a wait for the
  data plane); a backend that is not one of the two Services is `ResolvedRefs: False` (BackendNotFound) and
  nothing is applied.

Its lag, applies and errors go to its log (the lab's logs/route-controller.log).

    python -m include.slow_injection.lab.route_controller CONFIG.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from include.slow_injection.drivers.haproxy import HAProxyRuntime, set_weight_command

log = logging.getLogger("route-controller")

ACTIONS = "alb.ingress.kubernetes.io/actions."
USE_ANNOTATION = "use-annotation"
GATEWAY_GROUP, GATEWAY_VERSION = "gateway.networking.k8s.io", "v1"
CONTROLLER_NAME = "slow-injection.io/lab-gateway"  # the GatewayClass's controllerName in the lab
WATCH_SECONDS = 60


class ObjectError(ValueError):
    """The object names something this stand-in cannot route (an unknown Service, an unreadable action)."""


@dataclass
class Config:
    """What the lab writes to route-controller.json."""

    kubeconfig: str
    socket: str
    backend: str
    servers: dict[str, str]  # Service name → HAProxy server (blue's and green's)
    kind: str  # "ingress" | "httproute"
    namespace: str
    name: str
    hostname: str = "localhost"
    delay: float = 1.0
    ready_file: str | None = None  # written after the first reconcile (the lab waits for it)

    @classmethod
    def read(cls, path: Path) -> Config:
        return cls(**json.loads(path.read_text()))


@dataclass
class Pending:
    obj: dict[str, Any] | None = None
    seen_at: float = 0.0
    cond: threading.Condition = field(default_factory=threading.Condition)


# --- the split an object asks for ---------------------------------------------------------------------


def ingress_split(ingress: dict[str, Any], servers: dict[str, str]) -> dict[str, int]:
    """Weight per Service of the Ingress's paths (every path must agree: one backend here)."""
    spec = ingress.get("spec") or {}
    annotations = (ingress.get("metadata") or {}).get("annotations") or {}
    backends = [spec["defaultBackend"]] if spec.get("defaultBackend") else []
    backends += [
        p.get("backend") or {} for r in spec.get("rules") or [] for p in (r.get("http") or {}).get("paths") or []
    ]
    splits = []
    for backend in backends:
        service = backend.get("service") or {}
        if (service.get("port") or {}).get("name") == USE_ANNOTATION:
            raw: Any = annotations.get(ACTIONS + service.get("name", ""))  # not JSON text: TypeError below
            try:
                groups = json.loads(raw)["forwardConfig"]["targetGroups"]
                split = {g["serviceName"]: int(g.get("weight", 1 if len(groups) == 1 else 0)) for g in groups}
            except (TypeError, ValueError, KeyError):
                raise ObjectError(f"action {service.get('name')}: not a weighted forward ({str(raw)[:200]})") from None
        else:
            split = {service.get("name"): 1}
        splits.append(split)
    return _one(splits)


def route_split(route: dict[str, Any]) -> dict[str, int]:
    """Weight per Service of the HTTPRoute's rules (backendRefs' weight defaults to 1)."""
    splits = [
        {ref.get("name"): int(ref.get("weight", 1)) for ref in rule.get("backendRefs") or []}
        for rule in (route.get("spec") or {}).get("rules") or []
        if rule.get("backendRefs")
    ]
    return _one(splits)


def _one(splits: list[dict[str, int]]) -> dict[str, int]:
    if not splits:
        raise ObjectError("no path or rule names a backend")

    def share(s: dict[str, int]) -> dict[str, float]:
        total = sum(s.values()) or 1
        return {k: v / total for k, v in s.items() if v}

    if any(share(s) != share(splits[0]) for s in splits[1:]):
        raise ObjectError(f"paths disagree ({splits}); the lab has one HAProxy backend")
    return splits[0]


def haproxy_weights(split: dict[str, int], servers: dict[str, str]) -> dict[str, int]:
    """Server → weight 0..100 (the share in percent, as the haproxy router reads it back)."""
    unknown = sorted(name for name, weight in split.items() if name not in servers and weight > 0)
    if unknown:
        raise ObjectError(f"backend(s) {', '.join(map(str, unknown))} are not among {', '.join(sorted(servers))}")
    total = sum(split.get(name, 0) for name in servers)
    if total <= 0:
        raise ObjectError("every backend has weight 0")
    weights = {server: round(100 * split.get(name, 0) / total) for name, server in servers.items()}
    first = next(iter(weights))
    weights[first] = 100 - sum(w for s, w in weights.items() if s != first)  # the shares add up to 100
    return weights


# --- the controller -----------------------------------------------------------------------------------


class RouteController:
    def __init__(self, config: Config, api_client: Any) -> None:
        self.config, self.api = config, api_client
        self.runtime = HAProxyRuntime(config.socket)
        self.pending = Pending()
        self.stopping = threading.Event()
        self.applied: tuple[str, Any] | None = None  # (resourceVersion or generation, weights) last applied

    def where(self) -> str:
        return f"{self.config.kind} {self.config.namespace}/{self.config.name}"

    # the watch ------------------------------------------------------------------------------------
    def _list_call(self) -> tuple[Any, dict[str, Any]]:
        from kubernetes import client

        c = self.config
        selector = {"field_selector": f"metadata.name={c.name}"}
        if c.kind == "ingress":
            return client.NetworkingV1Api(self.api).list_namespaced_ingress, {"namespace": c.namespace, **selector}
        return client.CustomObjectsApi(self.api).list_namespaced_custom_object, {
            "group": GATEWAY_GROUP,
            "version": GATEWAY_VERSION,
            "namespace": c.namespace,
            "plural": "httproutes",
            **selector,
        }

    def watch(self) -> None:
        from kubernetes import watch
        from kubernetes.client.rest import ApiException

        call, kwargs = self._list_call()
        while not self.stopping.is_set():
            try:
                listed = call(**kwargs, _preload_content=False)
                answer = json.loads(listed.data)
                version = answer["metadata"]["resourceVersion"]
                for item in answer.get("items") or []:
                    self.saw(item)
                w = watch.Watch()
                for event in w.stream(
                    call,
                    **kwargs,
                    resource_version=version,
                    timeout_seconds=WATCH_SECONDS,
                    allow_watch_bookmarks=True,
                    deserialize=False,
                ):
                    if self.stopping.is_set():
                        w.stop()
                        break
                    kind, obj = event["type"], event.get("raw_object") or event["object"]
                    if kind in ("ADDED", "MODIFIED"):
                        self.saw(obj)
                    elif kind == "DELETED":
                        log.warning("%s deleted; HAProxy keeps its last weights", self.where())
                    elif kind == "ERROR":
                        log.info("watch of %s ended (%s); listing again", self.where(), obj.get("message"))
                        break
            except ApiException as err:
                log.error("watching %s: %s %s; again in 2 s", self.where(), err.status, err.reason)
                self.stopping.wait(2)
            except Exception as err:
                log.error("watching %s: %s; again in 2 s", self.where(), err)
                self.stopping.wait(2)

    def saw(self, obj: dict[str, Any]) -> None:
        with self.pending.cond:
            self.pending.obj, self.pending.seen_at = obj, time.monotonic()
            self.pending.cond.notify()

    # the reconcile --------------------------------------------------------------------------------
    def run(self) -> None:
        """Apply the newest object `delay` s after it was seen (a newer one restarts the wait); a failed
        apply is retried with backoff (0.5 s, doubling to 10 s) until it succeeds or a newer object comes."""
        backoff = 0.0
        while not self.stopping.is_set():
            with self.pending.cond:
                while self.pending.obj is None and not self.stopping.is_set():
                    self.pending.cond.wait(0.5)
                if self.stopping.is_set():
                    return
                wait = self.pending.seen_at + max(self.config.delay, backoff) - time.monotonic()
                if wait > 0:
                    self.pending.cond.wait(wait)
                    continue  # a newer object, or the time has come: look again
                obj, seen_at = self.pending.obj, self.pending.seen_at
                assert obj is not None  # the wait above ends with an object (or returns on stop)
            try:
                self.reconcile(obj, seen_at)
                backoff = 0.0
                if self.config.ready_file and not Path(self.config.ready_file).exists():
                    Path(self.config.ready_file).write_text(str(time.time()))
                with self.pending.cond:
                    if self.pending.seen_at == seen_at:
                        self.pending.obj = None
            except Exception as err:
                backoff = min(10.0, max(0.5, backoff * 2))
                log.error("reconcile %s failed: %s; again in %.1f s", self.where(), err, backoff)
                with self.pending.cond:
                    if self.pending.seen_at == seen_at:
                        self.pending.seen_at = time.monotonic()  # the retry waits `backoff` from now

    def reconcile(self, obj: dict[str, Any], seen_at: float) -> None:
        meta = obj.get("metadata") or {}
        if self.config.kind == "ingress":
            try:
                weights = haproxy_weights(ingress_split(obj, self.config.servers), self.config.servers)
            except ObjectError as err:
                log.error(
                    "%s (resourceVersion %s): %s; HAProxy left as it is", self.where(), meta.get("resourceVersion"), err
                )
                return
            self.apply(weights, f"resourceVersion {meta.get('resourceVersion')}", seen_at)
            self.ingress_status(obj)
            return
        generation = meta.get("generation")
        try:
            weights = haproxy_weights(route_split(obj), self.config.servers)
        except ObjectError as err:
            log.error("%s (generation %s): %s; HAProxy left as it is", self.where(), generation, err)
            self.route_status(obj, resolved=str(err))
            return
        self.apply(weights, f"generation {generation}", seen_at)
        self.route_status(obj, resolved=None)

    def apply(self, weights: dict[str, int], version: str, seen_at: float) -> None:
        backend = self.config.backend
        current = {s: self._weight(s) for s in weights}
        if current == weights:
            log.info("%s %s: HAProxy %s already %s", self.where(), version, backend, weights)
            return
        reply = self.runtime.run(set_weight_command(backend, current, weights)).strip()
        if reply:
            raise RuntimeError(f"HAProxy refused set weight: {reply}")
        log.info(
            "%s %s: HAProxy %s set to %s (was %s), %.2f s after the change was seen",
            self.where(),
            version,
            backend,
            weights,
            current,
            time.monotonic() - seen_at,
        )

    def _weight(self, server: str) -> int:
        reply = self.runtime.run(f"get weight {self.config.backend}/{server}").strip()
        try:
            return int(reply.split()[0])
        except (IndexError, ValueError):
            raise RuntimeError(f"HAProxy get weight {self.config.backend}/{server}: {reply or 'no answer'}") from None

    # status ---------------------------------------------------------------------------------------
    def ingress_status(self, ingress: dict[str, Any]) -> None:
        found = ((ingress.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        if any(i.get("hostname") == self.config.hostname for i in found):
            return
        from kubernetes import client

        client.NetworkingV1Api(self.api).patch_namespaced_ingress_status(
            self.config.name,
            self.config.namespace,
            {"status": {"loadBalancer": {"ingress": [{"hostname": self.config.hostname}]}}},
        )
        log.info("%s: status.loadBalancer hostname %s", self.where(), self.config.hostname)

    def route_status(self, route: dict[str, Any], resolved: str | None) -> None:
        from kubernetes import client

        generation = (route.get("metadata") or {}).get("generation")
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

        def condition(kind: str, ok: bool, reason: str, message: str) -> dict[str, Any]:
            return {
                "type": kind,
                "status": "True" if ok else "False",
                "reason": reason,
                "message": message,
                "observedGeneration": generation,
                "lastTransitionTime": now,
            }

        def same(conditions: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
            return [(c.get("type"), c.get("status"), c.get("reason"), c.get("observedGeneration")) for c in conditions]

        parents = []
        for ref in (route.get("spec") or {}).get("parentRefs") or []:
            parents.append(
                {
                    "parentRef": ref,
                    "controllerName": CONTROLLER_NAME,
                    "conditions": [
                        condition("Accepted", True, "Accepted", "the lab's HAProxy serves this route"),
                        condition(
                            "ResolvedRefs",
                            resolved is None,
                            "ResolvedRefs" if resolved is None else "BackendNotFound",
                            resolved or "blue's and green's Services map to HAProxy servers",
                        ),
                    ],
                }
            )
        current = (route.get("status") or {}).get("parents") or []
        if [(p.get("parentRef"), same(p.get("conditions") or [])) for p in current] == [
            (p["parentRef"], same(p["conditions"])) for p in parents
        ]:
            return  # written already (a write would be one more event to reconcile)
        client.CustomObjectsApi(self.api).patch_namespaced_custom_object_status(
            GATEWAY_GROUP,
            GATEWAY_VERSION,
            self.config.namespace,
            "httproutes",
            self.config.name,
            {"status": {"parents": parents}},
        )
        log.info(
            "%s generation %s: status Accepted, ResolvedRefs %s",
            self.where(),
            generation,
            "True" if resolved is None else "False",
        )

    # life -----------------------------------------------------------------------------------------
    def serve(self) -> None:
        watcher = threading.Thread(target=self.watch, name="watch", daemon=True)
        watcher.start()
        log.info(
            "watching %s (delay %.1f s) → HAProxy %s at %s, servers %s",
            self.where(),
            self.config.delay,
            self.config.backend,
            self.config.socket,
            self.config.servers,
        )
        self.run()

    def stop(self, *_: Any) -> None:
        self.stopping.set()
        with self.pending.cond:
            self.pending.cond.notify_all()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", type=Path)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("kubernetes").setLevel(logging.WARNING)
    config = Config.read(args.config)
    from kubernetes import config as kube_config

    api = kube_config.new_client_from_config_dict(json.loads(Path(config.kubeconfig).read_text()))
    controller = RouteController(config, api)
    signal.signal(signal.SIGTERM, controller.stop)
    controller.serve()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
