"""Router wait: green ready behind a service's router (e.g. enough healthy targets) before any traffic
moves, read through the router port. Made by the validation planner; run by the GateSensor."""

from __future__ import annotations

from typing import Any

from include.slow_injection import registry
from include.slow_injection.durations import format_duration
from include.slow_injection.kinds.base import WaitCheck, WaitKind
from include.slow_injection.plan import Gate
from include.slow_injection.ports import Readiness
from include.slow_injection.spec.models import Service


class RouterCheck(WaitCheck):
    """Green ready behind a service's router before traffic moves."""

    name: str = "green_targets"
    check: str = "green_ready"
    router: dict


def wait(service: Service) -> Gate:
    assert service.router is not None
    spec = RouterCheck(timeout=service.rollout_timeout, router=service.router.model_dump())
    return Gate("wait_green_targets", KIND.name, spec, service.name, 0.0)


class RouterKind(WaitKind):
    name = "router"
    spec_model = RouterCheck

    def plan_line(self, gate: Gate) -> str:
        r = gate.spec
        assert isinstance(r, RouterCheck)
        return (
            f"wait: green ready behind the {r.router['type']} router before any traffic "
            f"(within {format_duration(r.timeout)})"
        )

    def connect(self, gate: dict[str, Any], service: str | None) -> Any:
        return registry.build("router", gate["router"], service=service)

    def read(self, router: Any, gate: dict[str, Any], service: str | None, started_at: float) -> Readiness:
        return router.green_ready()


KIND = RouterKind()
