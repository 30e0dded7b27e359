"""What the Kubernetes routers (`alb_ingress`, `gateway_api`) share: the API client from an Airflow
`kubernetes` connection (the cncf-kubernetes provider's KubernetesHook, as the platform driver), the record
of the split this project last wrote (an annotation on the routing object itself, so a split somebody else
wrote is told apart from ours in any later run), green's Service and its ready endpoints, and polling with a
deadline that says what it last saw.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from include.slow_injection.ports import ReadbackMismatch, Weights

RECORD_PREFIX = "slow-injection.io/split"  # + ".<name>" when one object holds several splits
DNS_LABEL = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"  # a Service name (RFC 1035 label)
PORT_NAME = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"  # a Service port name (IANA_SVC_NAME, ≤ 15)


class RouteConfigError(RuntimeError):
    """The routing object is not in a shape this router can own (no path to blue, an unreadable action)."""


@dataclass(frozen=True)
class Split:
    """Raw weights on the routing object (what it holds; `Weights` is their share in percent)."""

    blue: int
    green: int

    def weights(self, where: str) -> Weights:
        if self.blue + self.green <= 0:
            raise RouteConfigError(f"{where} sends no traffic to blue or green (both weights 0)")
        green = round(100 * self.green / (self.blue + self.green))
        return Weights(blue=100 - green, green=green)

    def same_share(self, other: Split) -> bool:
        if self.blue + self.green <= 0 or other.blue + other.green <= 0:
            return (self.blue, self.green) == (other.blue, other.green)
        return self.green * (other.blue + other.green) == other.green * (self.blue + self.green)

    def __str__(self) -> str:
        return f"blue {self.blue}, green {self.green}"


def split_of(weights: Weights, name: str, top: int = 100) -> Split:
    for side in ("blue", "green"):
        value = getattr(weights, side)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= top:
            raise ValueError(f"{name}: {side} weight must be an integer 0..{top}, got {value!r}")
    if weights.blue + weights.green == 0:
        raise ValueError(f"{name}: blue and green weights are both 0; traffic would have nowhere to go")
    return Split(weights.blue, weights.green)


class ServiceRef(BaseModel):
    """A Kubernetes Service and one of its ports."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    name: str = Field(max_length=63, pattern=DNS_LABEL, description="the Service's name")
    port: int | str = Field(description="the Service port: its number, or its name")

    def port_text(self) -> str:
        """How the AWS Load Balancer Controller prints the port (intstr): "80" or "http"."""
        return str(self.port)

    @field_validator("port")
    @classmethod
    def _port(cls, value: int | str) -> int | str:
        if isinstance(value, int) and not 1 <= value <= 65535:
            raise ValueError(f"must be a port number 1..65535 or a port name, got {value}")
        if isinstance(value, str) and (not re.fullmatch(PORT_NAME, value) or len(value) > 15):
            raise ValueError(
                f"must be a Service port name (lower case letters, digits and '-', at most 15) "
                f"or a port number, got {value!r}"
            )
        return value

    def __str__(self) -> str:
        return f"{self.name}:{self.port}"


def api_client(connection_id: str) -> Any:
    """The Kubernetes API client of an Airflow `kubernetes` connection (in_cluster, or a kubeconfig)."""
    from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook

    return KubernetesHook(conn_id=connection_id).get_conn()


def record_key(name: str | None = None) -> str:
    return f"{RECORD_PREFIX}.{name}" if name else RECORD_PREFIX


def recorded(obj: dict[str, Any], key: str, where: str) -> Split | None:
    """The split this project last wrote on `obj` (None: it never wrote one)."""
    raw = ((obj.get("metadata") or {}).get("annotations") or {}).get(key)
    if raw is None:
        return None
    try:
        data = json.loads(raw)
        return Split(int(data["blue"]), int(data["green"]))
    except (ValueError, TypeError, KeyError):
        raise ReadbackMismatch(
            f"{where}: annotation {key} is not a split this project wrote ({raw[:120]!r}); someone edited it"
        ) from None


def record_value(split: Split) -> str:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return json.dumps({"blue": split.blue, "green": split.green, "at": now}, separators=(",", ":"))


def check_ours(found: Split, record: Split | None, key: str, where: str) -> None:
    """Refuse a split on the object that this project did not write (its record says otherwise)."""
    if record is None:
        if found.green > 0:
            raise ReadbackMismatch(
                f"readback mismatch: {where} sends {found.weights(where)} but has no {key} annotation: this "
                "project never set that split (someone else moved traffic to green); set the route back to "
                "blue or add the record by hand once you have checked it",
                found=_safe(found, where),
            )
        return
    if (found.blue, found.green) != (record.blue, record.green):
        raise ReadbackMismatch(
            f"readback mismatch: {where} holds {found} but this project last set {record} ({key}): edited by "
            "someone else; the wave does not take that split as its own",
            found=_safe(found, where),
            expected=_safe(record, where),
        )


def _safe(split: Split, where: str) -> Weights | None:
    try:
        return split.weights(where)
    except RouteConfigError:
        return None


def read_service(api: Any, namespace: str, name: str) -> dict[str, Any] | None:
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    try:
        return json.loads(client.CoreV1Api(api).read_namespaced_service(name, namespace, _preload_content=False).data)
    except ApiException as err:
        if err.status == 404:
            return None
        raise


def service_port(service: dict[str, Any], port: int | str) -> dict[str, Any] | None:
    for entry in (service.get("spec") or {}).get("ports") or []:
        if (isinstance(port, int) and entry.get("port") == port) or (
            isinstance(port, str) and entry.get("name") == port
        ):
            return entry
    return None


def ready_endpoints(api: Any, namespace: str, service: str) -> tuple[int, int]:
    """(ready, all) addresses behind a Service, from its EndpointSlices (the endpoint-slice controller's);
    an endpoint whose `ready` condition is unset counts as ready, as the API documents."""
    from kubernetes import client

    answer = json.loads(
        client.DiscoveryV1Api(api)
        .list_namespaced_endpoint_slice(
            namespace, label_selector=f"kubernetes.io/service-name={service}", _preload_content=False
        )
        .data
    )
    ready, seen = set(), set()
    for slice_ in answer.get("items") or []:
        for endpoint in slice_.get("endpoints") or []:
            for address in endpoint.get("addresses") or []:
                seen.add(address)
                if (endpoint.get("conditions") or {}).get("ready") is not False:
                    ready.add(address)
    return len(ready), len(seen)


def wait_until(
    check: Callable[[], str | None],
    timeout: float,
    interval: float,
    what: str,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Poll `check` (None = done, else why not yet) until done or `timeout` s; TimeoutError says the last why."""
    deadline = clock() + timeout
    while True:
        why = check()
        if why is None:
            return
        left = deadline - clock()
        if left <= 0:
            raise TimeoutError(f"{what}: not done after {timeout:g}s; last seen: {why}")
        sleep(min(interval, left))
